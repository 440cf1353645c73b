/*
 * The identity service's rules and store on a real PostgreSQL: the password policy of
 * DOMAIN.md §2, recovery-answer normalization, PKCE S256 (RFC 7636 appendix B), the
 * authentication state machine, and the SQL behind lockout, transactions, tenant status
 * and row-level security.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "console/migrate.h"
#include "identity.h"
#include "policy.h"
#include "store_authn.h"
#include "testdb.h"

static char *url;
static cc_db_t *db;

#define PLATFORM "0190f000-0000-7000-8000-000000000001"
#define MSP "0190f000-0000-7000-8000-000000000002"
#define CUSTOMER "0190f000-0000-7000-8000-000000000003"
#define USER "0190f000-0000-7000-8000-0000000000aa"

static const cc_scope_t sys = {.system = true};

static int setup(void **state)
{
    (void)state;
    url = testdb_create("identity");
    assert_int_equal(cc_db_open(url, "test", "identity, public", &db), 0);
    int applied = 0;
    /* identity reads the users view and the tenant tree */
    static const char *const sets[] = {"tenants", "users", "identity"};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(cc_migrate_apply(db, cc_migrations_embedded, sets[i], sets[i], &applied),
                         0);
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(
        cc_db_exec(db, "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path,"
                       " msp_id) VALUES"
                       " ('" PLATFORM "', NULL, 'platform', 'P', 'p', 'a', '" PLATFORM "'),"
                       " ('" MSP "', '" PLATFORM "', 'msp', 'M', 'm', 'a.b', '" MSP "'),"
                       " ('" CUSTOMER "', '" MSP "', 'customer', 'C', 'c', 'a.b.c', '" MSP "');"
                       "INSERT INTO users.users (id, tenant_id, msp_id, username, primary_email,"
                       " first_name, last_name) VALUES ('" USER "', '" CUSTOMER "', '" MSP "',"
                       " 'Kim@Example.com', 'kim@example.com', 'Kim', 'Lee');"
                       "INSERT INTO identity.credentials (user_id, msp_id, status, password_hash,"
                       " recovery_question, recovery_answer_hash) VALUES ('" USER "', '" MSP
                       "', 'password_set', 'x', 'q', 'y')"),
        0);
    assert_int_equal(cc_db_commit(db), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cc_db_close(db);
    testdb_drop(url);
    free(url);
    return 0;
}

/* ---- pure rules ---- */

static void test_password_policy(void **state)
{
    (void)state;
    static const struct {
        const char *pw;
        unsigned flaws;
    } v[] = {
        {"Violet-Harbor-42", 0},
        {"Abcdef1", IDENTITY_PW_TOO_SHORT},
        {"abcdefg1", IDENTITY_PW_NO_UPPER},
        {"ABCDEFG1", IDENTITY_PW_NO_LOWER},
        {"Abcdefgh", IDENTITY_PW_NO_DIGIT},
        {"xxKIMxx99Q", IDENTITY_PW_HAS_USERNAME},    /* a part of the username */
        {"Example-2024a", IDENTITY_PW_HAS_USERNAME}, /* another part */
        {"Password123", IDENTITY_PW_COMMON},
        {"pASSW0RD1", IDENTITY_PW_COMMON}, /* case-insensitive */
        {"", IDENTITY_PW_TOO_SHORT | IDENTITY_PW_NO_LOWER | IDENTITY_PW_NO_UPPER |
                 IDENTITY_PW_NO_DIGIT},
        {"Ünïcödé9X", 0},                 /* 9 code points */
        {"Ünï9X", IDENTITY_PW_TOO_SHORT}, /* 8 bytes, 5 code points */
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        unsigned got = identity_password_flaws(v[i].pw, "kim@example.com");
        if (got != v[i].flaws)
            fail_msg("%s: flaws %#x, want %#x", v[i].pw, got, v[i].flaws);
    }
    char long_pw[200];
    memset(long_pw, 'a', sizeof(long_pw) - 1);
    long_pw[sizeof(long_pw) - 1] = '\0';
    long_pw[0] = 'A';
    long_pw[1] = '1';
    assert_int_equal(identity_password_flaws(long_pw, "kim"), IDENTITY_PW_TOO_LONG);
    /* short username parts (< 3) do not forbid every password containing them */
    assert_int_equal(identity_password_flaws("Go-Anywhere-9", "go@x.io"), 0);
}

static void test_recovery_normalize(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    assert_string_equal(identity_recovery_normalize(pool, "  Sakura \t  ELEMENTARY "),
                        "sakura elementary");
    assert_string_equal(identity_recovery_normalize(pool, "\xe3\x80\x80さくら\xe3\x80\x80小学校"),
                        "さくら 小学校");
    assert_string_equal(identity_recovery_normalize(pool, ""), "");
    cc_pool_free(pool);
}

static void test_pkce_s256(void **state)
{
    (void)state;
    /* RFC 7636 appendix B */
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const char *challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_true(identity_pkce_challenge_valid(challenge));
    assert_true(identity_pkce_s256_matches(verifier, challenge));
    assert_false(
        identity_pkce_s256_matches("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge));
    assert_false(identity_pkce_s256_matches("short", challenge));
    assert_false(identity_pkce_s256_matches(NULL, challenge));
    assert_false(identity_pkce_s256_matches(verifier, verifier)); /* "plain" is not S256 */
    assert_false(identity_pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c"));
    assert_false(identity_pkce_challenge_valid("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
}

static void test_state_machine(void **state)
{
    (void)state;
    assert_string_equal(identity_authn_after_password(false), IDENTITY_MFA_ENROLL);
    assert_string_equal(identity_authn_after_password(true), IDENTITY_MFA_REQUIRED);
    assert_true(identity_authn_allows(IDENTITY_MFA_ENROLL, IDENTITY_EV_ENROLL));
    assert_true(identity_authn_allows(IDENTITY_MFA_ENROLL, IDENTITY_EV_ACTIVATE));
    assert_false(identity_authn_allows(IDENTITY_MFA_ENROLL, IDENTITY_EV_VERIFY));
    assert_true(identity_authn_allows(IDENTITY_MFA_REQUIRED, IDENTITY_EV_VERIFY));
    assert_false(identity_authn_allows(IDENTITY_MFA_REQUIRED, IDENTITY_EV_ENROLL));
    assert_false(identity_authn_allows(IDENTITY_MFA_REQUIRED, IDENTITY_EV_ACTIVATE));
    for (int ev = IDENTITY_EV_ENROLL; ev <= IDENTITY_EV_VERIFY; ev++) {
        assert_false(identity_authn_allows(IDENTITY_SUCCESS, (identity_authn_event_t)ev));
        assert_false(identity_authn_allows("FAILED", (identity_authn_event_t)ev));
        assert_false(identity_authn_allows(NULL, (identity_authn_event_t)ev));
    }
    assert_true(identity_factor_type_known("webauthn"));
    assert_true(identity_factor_type_supported("webauthn"));
    assert_false(identity_factor_type_supported("sms")); /* not built yet (issue 10) */
    assert_true(identity_factor_type_supported("totp"));
    assert_false(identity_factor_type_known("push"));
    assert_true(identity_security_image_valid("owl"));
    assert_false(identity_security_image_valid("../etc/passwd"));
}

/* ---- store ---- */

static const char *one(cc_pool_t *pool, const cc_stmt_t *stmt, const char *const *params)
{
    PGresult *res = NULL;
    assert_int_equal(cc_db_query(db, pool, stmt, params, &res), 0);
    assert_int_equal(PQntuples(res), 1);
    return PQgetvalue(res, 0, 0);
}

/* acr_values is a space-separated list: the MFA level asked for anywhere in it, exactly */
static void test_acr_values_step_up(void **state)
{
    (void)state;
    assert_true(identity_acr_wants_mfa("urn:console:loa:mfa"));
    assert_true(identity_acr_wants_mfa("urn:console:loa:1fa urn:console:loa:mfa"));
    assert_true(identity_acr_wants_mfa("  urn:console:loa:mfa  "));
    assert_false(identity_acr_wants_mfa(NULL));
    assert_false(identity_acr_wants_mfa(""));
    assert_false(identity_acr_wants_mfa("urn:console:loa:1fa"));
    assert_false(identity_acr_wants_mfa("urn:console:loa:mfa2"));
    assert_false(identity_acr_wants_mfa("xurn:console:loa:mfa"));
    assert_false(identity_acr_wants_mfa("urn:console:loa:mf"));
}

static void test_lockout_window(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    const char *p[] = {USER};
    assert_int_equal(cc_db_begin(db, &sys), 0);
    for (int i = 1; i <= 10; i++) {
        char want[4];
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(one(pool, &identity_q_cred_fail, p), want);
    }
    assert_int_equal(cc_db_query(db, pool, &identity_q_cred_lock, p, NULL), 0);
    PGresult *res = NULL;
    assert_int_equal(cc_db_query(db, pool, &identity_q_cred_get, p, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 2), "t"); /* locked */
    /* a failure outside the 15-minute window starts a new one */
    assert_int_equal(cc_db_exec(db, "UPDATE identity.credentials SET locked_until = NULL,"
                                    " failed_count = 7, failed_since = now() - interval '16 min'"),
                     0);
    assert_string_equal(one(pool, &identity_q_cred_fail, p), "1");
    assert_int_equal(cc_db_query(db, pool, &identity_q_cred_ok, p, NULL), 0);
    assert_int_equal(cc_db_query(db, pool, &identity_q_cred_get, p, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 2), "f");
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_transaction_dies_after_five(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    assert_int_equal(cc_db_begin(db, &sys), 0);
    const char *pi[] = {"digest-of-a-state-token", USER, IDENTITY_MFA_REQUIRED, "900"};
    one(pool, &identity_q_tx_insert, pi);
    const char *p[] = {"digest-of-a-state-token"};
    for (int i = 1; i <= 5; i++)
        one(pool, &identity_q_tx_fail, p);
    PGresult *res = NULL;
    assert_int_equal(cc_db_query(db, pool, &identity_q_tx_get, p, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 1), "FAILED");
    assert_false(identity_authn_allows(PQgetvalue(res, 0, 1), IDENTITY_EV_VERIFY));
    /* an expired transaction is not found at all */
    assert_int_equal(cc_db_exec(db, "UPDATE identity.authn_transactions"
                                    " SET expires_at = now() - interval '1 second'"),
                     0);
    assert_int_equal(cc_db_query(db, pool, &identity_q_tx_get, p, &res), 0);
    assert_int_equal(PQntuples(res), 0);
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_recovery_link_dies_after_five(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(cc_db_exec(db, "UPDATE identity.credentials SET status = 'active'"), 0);
    const char *pi[] = {"digest-of-a-recovery-link", USER};
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_insert, pi, NULL), 0);
    const char *p[] = {"digest-of-a-recovery-link"};
    PGresult *res = NULL;
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_get, p, &res), 0);
        assert_int_equal(PQntuples(res), 1);
        one(pool, &identity_q_recovery_fail, p);
    }
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_get, p, &res), 0);
    assert_int_equal(PQntuples(res), 0); /* five wrong answers: the link is dead */
    /* a fresh link is live; once used it is not; a user just mailed is "recent" */
    const char *pu[] = {USER};
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_clear, pu, NULL), 0);
    const char *pn[] = {"digest-of-another-link", USER};
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_insert, pn, NULL), 0);
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_recent, pu, &res), 0);
    assert_int_equal(PQntuples(res), 1);
    const char *pg[] = {"digest-of-another-link"};
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_use, pg, NULL), 0);
    assert_int_equal(cc_db_query(db, pool, &identity_q_recovery_get, pg, &res), 0);
    assert_int_equal(PQntuples(res), 0);
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_tenant_status_along_the_path(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    bool active = false;
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(identity_store_tenant_active(db, pool, CUSTOMER, &active), 0);
    assert_true(active);
    assert_int_equal(cc_db_exec(db, "UPDATE tenants.tenants SET status = 'suspended'"
                                    " WHERE id = '" MSP "'"),
                     0);
    assert_int_equal(identity_store_tenant_active(db, pool, CUSTOMER, &active), 0);
    assert_false(active); /* a suspended parent blocks its customers */
    assert_int_equal(identity_store_tenant_active(db, pool, PLATFORM, &active), 0);
    assert_true(active);
    assert_int_equal(
        identity_store_tenant_active(db, pool, "0190f000-0000-7000-8000-0000000000ff", &active), 0);
    assert_false(active); /* unknown */
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_user_lookup_and_rls(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    identity_user_t u;
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(identity_store_user_by_username(db, pool, "kim@EXAMPLE.com", &u), 0);
    assert_string_equal(u.id, USER);
    assert_string_equal(u.status, "staged");
    assert_int_equal(identity_store_user_by_username(db, pool, "' OR '1'='1", &u), CC_ENOENT);
    assert_int_equal(identity_store_user_by_id(db, pool, "not-a-uuid", &u), CC_ENOENT);
    cc_db_rollback(db);
    /* identity's tables are for its trusted code only: another scope sees nothing */
    const cc_scope_t tenant = {.tenant_id = CUSTOMER, .msp_id = MSP, .principal_id = USER};
    static const cc_stmt_t q_count = CC_STMT("t_cred_count", "SELECT count(*) FROM credentials", 0);
    PGresult *res = NULL;
    assert_int_equal(cc_db_read(db, pool, &tenant, &q_count, NULL, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    assert_int_equal(cc_db_read(db, pool, &sys, &q_count, NULL, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "1");
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_policy),
        cmocka_unit_test(test_recovery_normalize),
        cmocka_unit_test(test_pkce_s256),
        cmocka_unit_test(test_state_machine),
        cmocka_unit_test(test_acr_values_step_up),
        cmocka_unit_test(test_lockout_window),
        cmocka_unit_test(test_transaction_dies_after_five),
        cmocka_unit_test(test_recovery_link_dies_after_five),
        cmocka_unit_test(test_tenant_status_along_the_path),
        cmocka_unit_test(test_user_lookup_and_rls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
