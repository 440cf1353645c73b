/*
 * The users service's profile validators (pure functions) and its store against a real
 * PostgreSQL: profiles round trip, platform-wide case-insensitive usernames, scopes from
 * the authorization module (another MSP and a sibling customer see nothing), list
 * order and totals, deactivation and reactivation, and the last-super-admin query.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../services/users/users.h"
#include "console/authz.h"
#include "console/migrate.h"
#include "testdb.h"

#define PLATFORM "01900000-0000-7000-8000-000000000001"
#define MSP_A "01900000-0000-7000-8000-00000000000a"
#define MSP_B "01900000-0000-7000-8000-00000000000b"
#define CUST_A1 "01900000-0000-7000-8000-0000000000a1"
#define CUST_A2 "01900000-0000-7000-8000-0000000000a2"
#define A_SUPER "01900000-0000-7000-8000-0000000000fa"  /* msp_super_admin of A (client) */
#define A2_ADMIN "01900000-0000-7000-8000-0000000000f2" /* tenant_admin of A2 (client) */
#define B_SUPER "01900000-0000-7000-8000-0000000000fb"  /* msp_super_admin of B (client) */

static char *url;
static cc_db_t *db;

static const char *const seed_sql[] = {
    "SELECT set_config('console.system', 'on', false)",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id) VALUES"
    " ('" PLATFORM
    "', NULL, 'platform', 'Platform', 'platform', '01900000000070008000000000000001',"
    " '" PLATFORM "')",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, '" PLATFORM "', 'msp', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), v.id::uuid"
    " FROM (VALUES ('" MSP_A "', 'MSP A'), ('" MSP_B "', 'MSP B')) v(id, name)"
    " JOIN tenants.tenants p ON p.id = '" PLATFORM "'",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, v.parent::uuid, 'customer', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), p.msp_id"
    " FROM (VALUES ('" CUST_A1 "', '" MSP_A "', '顧客会社A'), ('" CUST_A2 "', '" MSP_A
    "', '顧客会社B')) v(id, parent, name) JOIN tenants.tenants p ON p.id = v.parent::uuid",
    "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id)"
    " VALUES (gen_random_uuid(), '" A_SUPER "', 'api_client', 'msp_super_admin', '" MSP_A
    "', '" MSP_A "'),"
    " (gen_random_uuid(), '" A2_ADMIN "', 'api_client', 'tenant_admin', '" CUST_A2 "', '" MSP_A
    "'),"
    " (gen_random_uuid(), '" B_SUPER "', 'api_client', 'msp_super_admin', '" MSP_B "', '" MSP_B
    "')",
    "SELECT set_config('console.system', 'off', false)",
};

static int setup(void **state)
{
    (void)state;
    url = testdb_create("users");
    if (cc_db_open(url, "test", "users, public", &db) != 0)
        return -1;
    int n = 0;
    const char *sets[] = {"tenants", "roles", "users"};
    for (size_t i = 0; i < 3; i++)
        if (cc_migrate_apply(db, cc_migrations_embedded, sets[i], sets[i], &n) != 0)
            return -1;
    for (size_t i = 0; i < sizeof(seed_sql) / sizeof(seed_sql[0]); i++)
        if (cc_db_exec(db, seed_sql[i]) != 0)
            return -1;
    users_store_init();
    cc_authz_set_cache_ms(0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    users_store_dispose();
    cc_db_close(db);
    testdb_drop(url);
    free(url);
    return 0;
}

/* ---- validators ---- */

static void test_email(void **state)
{
    (void)state;
    const char *good[] = {"taro@example.co.jp", "a.b+tag@sub.example.com", "x@xn--wgv71a.jp",
                          "o'neil@example.org"};
    const char *bad[] = {
        "",          "taro",      "taro@",     "@example.com",  "a..b@ex.com", ".a@ex.com",
        "a.@ex.com", "a@example", "a@-ex.com", "a@ex-.com",     "a b@ex.com",  "a@ex.c",
        "a@ex..com", "a@ex.com.", "a@ex.c0m",  "ａ@example.com"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(good); i++)
        assert_true(users_valid_email(good[i]));
    for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++) {
        if (users_valid_email(bad[i]))
            fail_msg("accepted %s", bad[i]);
    }
}

static void test_codes(void **state)
{
    (void)state;
    assert_true(users_valid_currency("JPY"));
    assert_true(users_valid_currency("USD"));
    assert_true(users_valid_currency("EUR"));
    assert_false(users_valid_currency("jpy"));
    assert_false(users_valid_currency("YEN"));
    assert_false(users_valid_currency("JP"));
    assert_false(users_valid_currency("JPYY"));
    assert_true(users_valid_country("JP"));
    assert_true(users_valid_country("US"));
    assert_false(users_valid_country("XX"));
    assert_false(users_valid_country("jp"));
    assert_false(users_valid_country("JPN"));
    const char *langs[] = {"ja", "en", "en-US", "ja-JP", "zh-Hant-TW", "es-419", "de-CH-1996"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(langs); i++)
        if (!users_valid_language(langs[i]))
            fail_msg("refused %s", langs[i]);
    const char *nolang[] = {"",    "j",      "JA",    "xx",        "japanese",           "ja-",
                            "-ja", "ja--JP", "ja_JP", "en-x-priv", "en-US-u-ca-japanese"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(nolang); i++)
        if (users_valid_language(nolang[i]))
            fail_msg("accepted %s", nolang[i]);
}

static void test_zones_phones_names(void **state)
{
    (void)state;
    assert_true(users_valid_time_zone("Asia/Tokyo"));
    assert_true(users_valid_time_zone("America/Argentina/Buenos_Aires"));
    assert_true(users_valid_time_zone("UTC"));
    assert_true(users_valid_time_zone("Etc/GMT+9"));
    const char *badtz[] = {
        "",      "Asia/Nowhere", "asia/tokyo",       "../etc/passwd", "/etc/passwd",
        "Asia/", "Asia//Tokyo",  "posix/Asia/Tokyo", "Asia/Tokyo\n"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(badtz); i++)
        if (users_valid_time_zone(badtz[i]))
            fail_msg("accepted %s", badtz[i]);
    const char *phones[] = {"+81 3-1234-5678", "090-1234-5678", "(03) 1234 5678", "+14155550100"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(phones); i++)
        if (!users_valid_phone(phones[i]))
            fail_msg("refused %s", phones[i]);
    const char *nophones[] = {"",        "123456",    "+0 123 4567", "1234567890123456",
                              "call me", "12--34567", "+ 81 3 1234"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(nophones); i++)
        if (users_valid_phone(nophones[i]))
            fail_msg("accepted %s", nophones[i]);
    assert_true(users_valid_username("taro@example.co.jp"));
    assert_true(users_valid_username("t.yamada_01"));
    assert_false(users_valid_username("ab"));
    assert_false(users_valid_username("has space"));
    assert_false(users_valid_username("山田"));
    assert_true(users_valid_postal_code("100-0001"));
    assert_true(users_valid_postal_code("SW1A 1AA"));
    assert_false(users_valid_postal_code(""));
    assert_false(users_valid_postal_code("100_0001"));
}

static json_t *full_body(const char *email)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "first_name",
                     "太郎", "last_name", "山田", "preferred_currency", "JPY", "language", "ja",
                     "primary_email", email, "phone", "+81 3-1234-5678", "street", "千代田1-1",
                     "city", "千代田区", "state", "東京都", "postal_code", "100-0001", "time_zone",
                     "Asia/Tokyo", "country", "JP");
}

static void test_validate_profile(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_validator_t v;
    user_profile_t p;
    json_t *body = full_body("Taro@Example.com");
    cc_v_init(&v, pool);
    users_validate_profile(&v, body, true, &p);
    assert_true(cc_v_ok(&v));
    assert_string_equal(p.username, "Taro@Example.com"); /* defaults to the e-mail */
    assert_null(p.mobile);
    /* every required field missing in turn is named */
    const char *required[] = {"first_name",  "last_name",     "preferred_currency",
                              "language",    "primary_email", "phone",
                              "street",      "city",          "state",
                              "postal_code", "time_zone"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(required); i++) {
        json_t *b = json_deep_copy(body);
        json_object_del(b, required[i]);
        cc_v_init(&v, pool);
        users_validate_profile(&v, b, true, &p);
        assert_false(cc_v_ok(&v));
        json_t *e = json_array_get(v.errors, 0);
        assert_string_equal(json_string_value(json_object_get(e, "field")), required[i]);
        json_decref(b);
    }
    /* PATCH: only what is given; null clears optional fields, not required ones */
    json_t *patch = json_pack("{s:n, s:s}", "mobile", "city", "港区");
    cc_v_init(&v, pool);
    users_validate_profile(&v, patch, false, &p);
    assert_true(cc_v_ok(&v));
    assert_string_equal(p.mobile, "");
    assert_string_equal(p.city, "港区");
    assert_null(p.first_name);
    json_decref(patch);
    patch = json_pack("{s:n}", "time_zone");
    cc_v_init(&v, pool);
    users_validate_profile(&v, patch, false, &p);
    assert_false(cc_v_ok(&v));
    json_decref(patch);
    json_decref(body);
    cc_pool_free(pool);
}

/* ---- the store ---- */

static cc_authz_t *authz_of(cc_pool_t *pool, const char *sub, const char *tid, const char *msp)
{
    cc_principal_t p = {
        .kind = CC_PRINCIPAL_API_CLIENT, .sub = sub, .tenant_id = tid, .msp_id = msp};
    cc_authz_t *a = NULL;
    assert_int_equal(cc_authz_load(db, pool, &p, &a), 0);
    return a;
}

static int add_user(cc_pool_t *pool, const cc_scope_t *scope, const char *tenant, const char *email,
                    const char *first, char id[37])
{
    cc_validator_t v;
    user_profile_t p;
    json_t *body = full_body(email);
    json_object_set_new(body, "first_name", json_string(first));
    cc_v_init(&v, pool);
    users_validate_profile(&v, body, true, &p);
    assert_true(cc_v_ok(&v));
    user_tenant_t t;
    user_t u;
    cc_uuid_new(id);
    assert_int_equal(cc_db_begin(db, scope), 0);
    int rc = users_tenant_tx(db, pool, tenant, &t);
    if (rc == 0)
        rc = users_insert(db, pool, id, &t, &p, "test", "Test", &u);
    if (rc == 0)
        rc = cc_db_commit(db);
    else
        cc_db_rollback(db);
    json_decref(body);
    return rc;
}

static void test_store(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_authz_t *a = authz_of(pool, A_SUPER, MSP_A, MSP_A);
    cc_authz_t *a2 = authz_of(pool, A2_ADMIN, CUST_A2, MSP_A);
    cc_authz_t *b = authz_of(pool, B_SUPER, MSP_B, MSP_B);
    char id1[37], id2[37], id3[37], idb[37];
    assert_int_equal(add_user(pool, &a->scope, CUST_A1, "charlie@example.com", "Charlie", id1), 0);
    assert_int_equal(add_user(pool, &a->scope, CUST_A1, "alice@example.com", "alice", id2), 0);
    assert_int_equal(add_user(pool, &a->scope, CUST_A1, "Bob@example.com", "Bob", id3), 0);
    /* usernames: unique across MSPs, whatever the case */
    assert_int_equal(add_user(pool, &b->scope, MSP_B, "ALICE@example.com", "A", idb), CC_ECONFLICT);
    /* B cannot even reach A's customer */
    assert_int_equal(add_user(pool, &b->scope, CUST_A1, "new@example.com", "N", idb), CC_ENOENT);

    user_t u;
    assert_int_equal(users_get(db, pool, &a->scope, id2, &u), 0);
    assert_string_equal(u.status, "staged");
    assert_string_equal(u.p.preferred_currency, "JPY");
    assert_string_equal(u.p.country, "JP");
    assert_string_equal(u.p.city, "千代田区");
    assert_string_equal(u.roles_json, "[]");
    assert_int_equal(users_get(db, pool, &b->scope, id2, &u), CC_ENOENT);
    assert_int_equal(users_get(db, pool, &a2->scope, id2, &u), CC_ENOENT); /* sibling */

    user_filter_t f = {.tenant_id = CUST_A1, .sort = USORT_EMAIL, .limit = 2};
    user_t *items;
    int n;
    long long total;
    assert_int_equal(users_list(db, pool, &a->scope, &f, &items, &n, &total), 0);
    assert_int_equal(total, 3);
    assert_int_equal(n, 3); /* limit + 1 */
    assert_string_equal(items[0].p.first_name, "alice");
    assert_string_equal(items[1].p.first_name, "Bob");
    f.after_key = items[1].sort_key;
    f.after_id = items[1].id;
    assert_int_equal(users_list(db, pool, &a->scope, &f, &items, &n, &total), 0);
    assert_int_equal(n, 1);
    assert_string_equal(items[0].p.first_name, "Charlie");
    user_filter_t q = {.tenant_id = CUST_A1, .q = "CHAR", .sort = USORT_NAME, .limit = 10};
    assert_int_equal(users_list(db, pool, &a->scope, &q, &items, &n, &total), 0);
    assert_int_equal(total, 1);
    assert_int_equal(users_list(db, pool, &b->scope, &f, &items, &n, &total), 0);
    assert_int_equal(total, 0);

    /* deactivation keeps the status to return to */
    user_t out;
    assert_int_equal(cc_db_begin(db, &a->scope), 0);
    assert_int_equal(users_set_status(db, pool, id1, "deactivated", &out), 0);
    assert_string_equal(out.status, "deactivated");
    assert_int_equal(users_set_status(db, pool, id1, "active", &out), 0);
    assert_string_equal(out.status, "staged");
    assert_int_equal(out.version, 3);
    /* a rename to a taken username */
    user_profile_t p = out.p;
    p.username = "ALICE@EXAMPLE.COM";
    assert_int_equal(users_update(db, pool, id1, &p, &out), CC_ECONFLICT);
    cc_db_rollback(db);

    /* the last active super-admin user of an account */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id)"
             " SELECT gen_random_uuid(), id, 'user', 'tenant_admin', '%s', '%s'"
             " FROM users.users WHERE id IN ('%s', '%s')",
             CUST_A1, MSP_A, id1, id2);
    assert_int_equal(cc_db_begin(db, &a->scope), 0);
    assert_int_equal(cc_db_exec(db, sql), 0);
    snprintf(sql, sizeof(sql),
             "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id)"
             " VALUES (gen_random_uuid(), '%s', 'user', 'msp_super_admin', '%s', '%s')",
             id3, MSP_A, MSP_A);
    assert_int_equal(cc_db_exec(db, sql), 0);
    bool last = false;
    assert_int_equal(users_lock_super_admins(db, pool, MSP_A), 0);
    assert_int_equal(users_is_last_super_admin(db, pool, id3, &last), 0);
    assert_true(last); /* the API client with msp_super_admin does not count */
    assert_int_equal(users_is_last_super_admin(db, pool, id1, &last), 0);
    assert_false(last); /* tenant_admin is no super admin */
    const char **paths;
    assert_int_equal(users_super_paths(db, pool, id3, &paths, &n), 0);
    assert_int_equal(n, 1);
    /* A's super admin holds its grant on the same account: id3 is of its level */
    assert_false(cc_authz_can_above(a, "users:manage", paths[0]));
    assert_int_equal(cc_db_commit(db), 0);
    assert_int_equal(users_get(db, pool, &a->scope, id1, &u), 0);
    assert_string_equal(u.roles_json,
                        "[{\"role\" : \"tenant_admin\", \"tenant_ids\" : [\"" CUST_A1 "\"]}]");
    cc_pool_free(pool);
}

/*
 * Row-level security down to the account: with no WHERE at all, a tenant admin of the
 * sibling customer A2 neither reads, changes nor adds users of A1; A's MSP-wide scope
 * sees them all; another MSP none.
 */
static void test_rls_confines_users_to_the_callers_customers(void **state)
{
    (void)state;
    static const cc_stmt_t q_all =
        CC_STMT("t_users_all", "SELECT count(*) FROM users.users WHERE tenant_id = $1::uuid", 1);
    static const cc_stmt_t q_rename = CC_STMT(
        "t_users_rename", "UPDATE users.users SET first_name = 'x' WHERE tenant_id = $1::uuid", 1);
    static const cc_stmt_t q_forge = CC_STMT(
        "t_users_forge",
        "INSERT INTO users.users (id, tenant_id, msp_id, username, primary_email, first_name,"
        " last_name) VALUES (gen_random_uuid(), $1::uuid, $2::uuid, 'forged@example.com',"
        " 'forged@example.com', 'F', 'F')",
        2);
    cc_pool_t *pool = cc_pool_new();
    cc_authz_t *a = authz_of(pool, A_SUPER, MSP_A, MSP_A);
    cc_authz_t *a2 = authz_of(pool, A2_ADMIN, CUST_A2, MSP_A);
    cc_authz_t *b = authz_of(pool, B_SUPER, MSP_B, MSP_B);
    char id[37];
    assert_int_equal(add_user(pool, &a->scope, CUST_A1, "rls.a1@example.com", "Rls", id), 0);
    PGresult *res;
    const char *a1[] = {CUST_A1};
    assert_int_equal(cc_db_read(db, pool, &a->scope, &q_all, a1, &res), 0);
    assert_true(atoi(PQgetvalue(res, 0, 0)) >= 1);
    assert_int_equal(cc_db_read(db, pool, &a2->scope, &q_all, a1, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    assert_int_equal(cc_db_read(db, pool, &b->scope, &q_all, a1, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    assert_int_equal(cc_db_begin(db, &a2->scope), 0);
    assert_int_equal(cc_db_query(db, pool, &q_rename, a1, &res), 0);
    assert_string_equal(PQcmdTuples(res), "0");
    /* a row into a customer outside the caller's subtree breaks the policy */
    assert_int_equal(cc_db_query(db, pool, &q_forge, (const char *[]){CUST_A1, MSP_A}, NULL),
                     CC_EDB);
    cc_db_rollback(db);
    /* the path is filled from the tenants tree, whoever inserts */
    static const cc_stmt_t q_path =
        CC_STMT("t_users_path", "SELECT tenant_path::text FROM users.users WHERE id = $1::uuid", 1);
    assert_int_equal(cc_db_read(db, pool, &a->scope, &q_path, (const char *[]){id}, &res), 0);
    assert_int_equal(PQntuples(res), 1);
    assert_true(strlen(PQgetvalue(res, 0, 0)) > 0);
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_codes),
        cmocka_unit_test(test_zones_phones_names),
        cmocka_unit_test(test_validate_profile),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_rls_confines_users_to_the_callers_customers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
