/*
 * The effective brand against a real PostgreSQL (schemas/branding, common/brand.c):
 * inheritance field by field (customer override over its MSP's brand over the platform's
 * over the built-in defaults), lookup by login domain, row-level security of brands, the
 * platform-wide uniqueness of login domains, and a branded mail as it is built.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../services/branding/branding.h"
#include "console/brand.h"
#include "console/migrate.h"
#include "testdb.h"

#define PLATFORM "01900000-0000-7000-8000-000000000001"
#define MSP_A "01900000-0000-7000-8000-00000000000a"
#define MSP_B "01900000-0000-7000-8000-00000000000b"
#define CUST_A1 "01900000-0000-7000-8000-0000000000a1"
#define CUST_A2 "01900000-0000-7000-8000-0000000000a2"
#define LOGO "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

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
    " SELECT v.id::uuid, p.id, 'customer', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), p.msp_id"
    " FROM (VALUES ('" CUST_A1 "', 'A1'), ('" CUST_A2 "', 'A2')) v(id, name)"
    " JOIN tenants.tenants p ON p.id = '" MSP_A "'",
    "SELECT set_config('console.system', 'off', false)",
};

static int setup(void **state)
{
    (void)state;
    url = testdb_create("branding");
    if (cc_db_open(url, "test", "branding, public", &db) != 0)
        return -1;
    int n = 0;
    /* the effective view reads the tenant tree */
    static const char *const schemas[] = {"tenants", "users", "branding"};
    for (size_t i = 0; i < 3; i++)
        if (cc_migrate_apply(db, cc_migrations_embedded, schemas[i], schemas[i], &n) != 0)
            return -1;
    for (size_t i = 0; i < sizeof(seed_sql) / sizeof(seed_sql[0]); i++)
        if (cc_db_exec(db, seed_sql[i]) != 0)
            return -1;
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

static void system_exec(const char *sql)
{
    static const cc_scope_t sys = {.system = true};
    assert_int_equal(cc_db_begin(db, &sys), 0);
    if (cc_db_exec(db, sql) != 0)
        fail_msg("%s: %s", sql, cc_db_errmsg(db));
    assert_int_equal(cc_db_commit(db), 0);
}

static void test_inheritance(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_brand_t b;
    /* nothing set anywhere: the built-in defaults */
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A1, &b), 0);
    assert_string_equal(b.product_name, "Console");
    assert_string_equal(b.primary_color, "#1f4e79");
    assert_null(b.support_email);

    /* the platform's brand replaces the defaults for everyone */
    system_exec("INSERT INTO brands (tenant_id, msp_id, product_name, accent_color, footer_text)"
                " VALUES ('" PLATFORM "', '" PLATFORM "', 'Vendor Cloud', '#000001', 'Vendor')");
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A1, &b), 0);
    assert_string_equal(b.product_name, "Vendor Cloud");
    assert_string_equal(b.accent_color, "#000001");
    assert_string_equal(b.primary_color, "#1f4e79"); /* still the default */

    /* the MSP's brand over the platform's */
    system_exec("INSERT INTO brands (tenant_id, msp_id, product_name, primary_color,"
                " support_email, social_links, logo_asset, sender_name, login_domain)"
                " VALUES ('" MSP_A "', '" MSP_A "', 'Alpha Backup', '#aa0000',"
                " 'support@alpha.example', '{\"x\": \"https://x.com/alpha\"}', '" LOGO "',"
                " 'Alpha Team', 'login.alpha.example')");
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A1, &b), 0);
    assert_string_equal(b.product_name, "Alpha Backup");
    assert_string_equal(b.primary_color, "#aa0000");
    assert_string_equal(b.accent_color, "#000001"); /* from the platform */
    assert_string_equal(b.footer_text, "Vendor");
    assert_string_equal(b.support_email, "support@alpha.example");
    assert_string_equal(b.logo_asset, LOGO);
    assert_string_equal(json_string_value(json_object_get(b.social_links, "x")),
                        "https://x.com/alpha");

    /* a customer override: field by field */
    system_exec("INSERT INTO brands (tenant_id, msp_id, product_name, footer_text)"
                " VALUES ('" CUST_A1 "', '" MSP_A "', 'A1 Safe', 'A1 only')");
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A1, &b), 0);
    assert_string_equal(b.product_name, "A1 Safe");
    assert_string_equal(b.footer_text, "A1 only");
    assert_string_equal(b.primary_color, "#aa0000");
    assert_string_equal(b.accent_color, "#000001");
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A2, &b), 0);
    assert_string_equal(b.product_name, "Alpha Backup"); /* its sibling is untouched */
    assert_int_equal(cc_brand_for_tenant(db, pool, MSP_B, &b), 0);
    assert_string_equal(b.product_name, "Vendor Cloud"); /* another MSP: the platform's */
    assert_null(b.support_email);
    assert_int_equal(cc_brand_for_tenant(db, pool, PLATFORM, &b), 0);
    assert_string_equal(b.product_name, "Vendor Cloud");

    /* an unknown tenant, or no id: the defaults, no error */
    assert_int_equal(cc_brand_for_tenant(db, pool, "01900000-0000-7000-8000-0000000000ff", &b), 0);
    assert_string_equal(b.product_name, "Console");
    assert_int_equal(cc_brand_for_tenant(db, pool, NULL, &b), 0);

    /* inside an open transaction (outbox consumers mail from one) */
    static const cc_scope_t sys = {.system = true};
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A2, &b), 0);
    assert_string_equal(b.product_name, "Alpha Backup");
    assert_true(cc_db_in_tx(db));
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_host(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_brand_t b;
    const char *tenant = NULL;
    assert_int_equal(cc_brand_for_host(db, pool, "Login.Alpha.Example:8443", &b, &tenant), 0);
    assert_string_equal(b.product_name, "Alpha Backup");
    assert_string_equal(tenant, MSP_A);
    assert_int_equal(cc_brand_for_host(db, pool, "other.example", &b, &tenant), CC_ENOENT);
    assert_null(tenant);
    assert_string_equal(b.product_name, "Vendor Cloud"); /* the platform's brand */
    assert_int_equal(cc_brand_for_host(db, pool, "bad host'; --", &b, NULL), CC_ENOENT);
    assert_int_equal(cc_brand_for_host(db, pool, NULL, &b, NULL), CC_ENOENT);
    /* public JSON: presentation only */
    assert_int_equal(cc_brand_for_host(db, pool, "login.alpha.example", &b, NULL), 0);
    json_t *pub = cc_brand_public_json(&b, "https://console.example");
    assert_null(json_object_get(pub, "sender_name"));
    assert_null(json_object_get(pub, "login_domain"));
    assert_null(json_object_get(pub, "tenant_id"));
    assert_string_equal(json_string_value(json_object_get(pub, "logo_url")),
                        "https://console.example/branding/assets/" LOGO);
    json_decref(pub);
    cc_pool_free(pool);
}

static void test_rls_and_unique_domain(void **state)
{
    (void)state;
    static const cc_stmt_t q_count = CC_STMT("t_brand_count", "SELECT count(*) FROM brands", 0);
    static const cc_stmt_t q_insert =
        CC_STMT("t_brand_insert",
                "INSERT INTO brands (tenant_id, msp_id, login_domain) VALUES"
                " ($1::uuid, $2::uuid, $3)",
                3);
    cc_pool_t *pool = cc_pool_new();
    PGresult *res;
    /* confined to MSP A: its own rows only (A and A1), not the platform's or B's */
    cc_scope_t a = {.tenant_id = MSP_A, .msp_id = MSP_A, .msp_wide = true};
    assert_int_equal(cc_db_read(db, pool, &a, &q_count, NULL, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "2");
    cc_scope_t b = {.tenant_id = MSP_B, .msp_id = MSP_B, .msp_wide = true};
    assert_int_equal(cc_db_read(db, pool, &b, &q_count, NULL, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    /* B cannot write a row into A's tree */
    assert_int_equal(cc_db_begin(db, &b), 0);
    assert_int_equal(
        cc_db_query(db, pool, &q_insert, (const char *const[]){CUST_A2, MSP_A, NULL}, NULL),
        CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "42501");
    cc_db_rollback(db);
    /* a login domain is unique across MSPs, even one B cannot see */
    assert_int_equal(cc_db_begin(db, &b), 0);
    assert_int_equal(cc_db_query(db, pool, &q_insert,
                                 (const char *const[]){MSP_B, MSP_B, "login.alpha.example"}, NULL),
                     CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "23505");
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_mail(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_brand_t b;
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A2, &b), 0);
    cc_brand_message_t m = {.to = "ken@customer.example",
                            .lang = "ja",
                            .subject = "テスト",
                            .text = "本文\r\n",
                            .html = "<p>本文</p>"};
    cc_mail_t mail;
    cc_brand_mail_compose(pool, &b, "https://console.example", &m, &mail);
    assert_string_equal(mail.subject, "Alpha Backup: テスト");
    assert_string_equal(mail.from_name, "Alpha Team");
    assert_null(mail.from_addr); /* no sender address: the platform's */
    assert_string_equal(mail.reply_to, "support@alpha.example");
    assert_non_null(strstr(mail.text, "サポート: support@alpha.example"));
    assert_non_null(strstr(mail.text, "X: https://x.com/alpha"));
    /* the customer inherits its MSP's login domain: the logo comes from there */
    assert_string_equal(b.login_domain, "login.alpha.example");
    assert_non_null(strstr(mail.html, "https://login.alpha.example/branding/assets/" LOGO));
    assert_null(strstr(mail.html, "console.example"));
    assert_non_null(strstr(mail.html, "background:#aa0000"));
    cc_mail_config_t conf = {.envelope_from = "no-reply@platform.example"};
    char *raw;
    size_t len;
    assert_int_equal(cc_mail_build(&conf, &mail, &raw, &len), 0);
    assert_non_null(strstr(raw, "Reply-To: support@alpha.example\r\n"));
    assert_non_null(strstr(raw, "<no-reply@platform.example>"));
    free(raw);
    cc_pool_free(pool);
}

static void test_purge(void **state)
{
    (void)state;
    static const cc_stmt_t q_left =
        CC_STMT("t_brand_left",
                "SELECT (SELECT count(*) FROM brands WHERE tenant_id = $1::uuid),"
                " (SELECT count(*) FROM assets WHERE msp_id = $2::uuid)",
                2);
    static const cc_scope_t sys = {.system = true};
    cc_pool_t *pool = cc_pool_new();
    /* B's brand and an asset of B's that nothing uses; A's logo asset, in use */
    system_exec("INSERT INTO brands (tenant_id, msp_id, product_name) VALUES ('" MSP_B "', '" MSP_B
                "', 'Beta')");
    system_exec("INSERT INTO assets (sha256, content_type, bytes, width, height, msp_id) VALUES"
                " (repeat('b', 64), 'image/png', '\\x00', 16, 16, '" MSP_B "'),"
                " ('" LOGO "', 'image/png', '\\x00', 16, 16, '" MSP_A "')");
    cc_outbox_event_t ev = {.id = 1, .type = "tenant.purged", .aggregate_id = MSP_B};
    for (int replay = 0; replay < 2; replay++) { /* idempotent */
        assert_int_equal(cc_db_begin(db, &sys), 0);
        assert_int_equal(branding_on_tenants_event(db, pool, &ev, NULL), 0);
        assert_int_equal(cc_db_commit(db), 0);
    }
    PGresult *res;
    assert_int_equal(cc_db_read(db, pool, &sys, &q_left, (const char *const[]){MSP_B, MSP_B}, &res),
                     0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    assert_string_equal(PQgetvalue(res, 0, 1), "0");
    /* a customer's purge removes its override only; the MSP's asset in use stays */
    ev.aggregate_id = CUST_A1;
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(branding_on_tenants_event(db, pool, &ev, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);
    assert_int_equal(
        cc_db_read(db, pool, &sys, &q_left, (const char *const[]){CUST_A1, MSP_A}, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    assert_string_equal(PQgetvalue(res, 0, 1), "1");
    cc_brand_t b;
    assert_int_equal(cc_brand_for_tenant(db, pool, CUST_A2, &b), 0);
    assert_string_equal(b.product_name, "Alpha Backup");
    /* other events are ignored */
    ev.type = "tenant.renamed";
    assert_int_equal(branding_on_tenants_event(db, pool, &ev, NULL), 0);
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inheritance),
        cmocka_unit_test(test_host),
        cmocka_unit_test(test_rls_and_unique_domain),
        cmocka_unit_test(test_mail),
        cmocka_unit_test(test_purge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
