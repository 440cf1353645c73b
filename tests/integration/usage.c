/*
 * The usage service against a real PostgreSQL: the daily rollup (last value per source,
 * carried forward, late and out-of-order samples, replays), the billing arithmetic of
 * docs/billing.md worked by hand (peak and average, half-up rounding, discount and tax,
 * JPY without decimals), frozen exports identical byte for byte, and hard quotas through
 * the real router, authentication and authorization (cc_server_dispatch).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../services/usage/usage.h"
#include "console/authz.h"
#include "console/migrate.h"
#include "testdb.h"

#define ISSUER "http://issuer.test"
#define AUDIENCE "console"
#define KID "k1"

#define PLATFORM "01900000-0000-7000-8000-000000000001"
#define MSP_A "01900000-0000-7000-8000-00000000000a"
#define MSP_B "01900000-0000-7000-8000-00000000000b"
#define CUST_A1 "01900000-0000-7000-8000-0000000000a1"
#define CUST_A2 "01900000-0000-7000-8000-0000000000a2"
#define CUST_B1 "01900000-0000-7000-8000-0000000000b1"
#define WRITER "01900000-0000-7000-8000-0000000000e0"   /* usage_writer API client */
#define A_WRITER "01900000-0000-7000-8000-0000000000ea" /* msp_usage_writer of A */
#define A_ADMIN "01900000-0000-7000-8000-0000000000fa"  /* msp_admin of A */
#define B_ADMIN "01900000-0000-7000-8000-0000000000fb"  /* msp_admin of B */

static char *url;
static cc_db_t *db;
static cc_server_t *srv;
static cc_jwks_t *jwks;
static char *priv_pem;

static const char *const seed_sql[] = {
    "SELECT set_config('console.system', 'on', false)",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id) VALUES"
    " ('" PLATFORM "', NULL, 'platform', 'Platform', 'platform',"
    " '01900000000070008000000000000001', '" PLATFORM "')",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, v.parent::uuid, 'msp', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), v.id::uuid"
    " FROM (VALUES ('" MSP_A "', '" PLATFORM "', 'MSP A'), ('" MSP_B "', '" PLATFORM "', 'MSP B'))"
    " v(id, parent, name) JOIN tenants.tenants p ON p.id = v.parent::uuid",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, v.parent::uuid, 'customer', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), p.msp_id"
    " FROM (VALUES ('" CUST_A1 "', '" MSP_A "', '顧客会社A'), ('" CUST_A2 "', '" MSP_A
    "', 'Acme, \"East\"'), ('" CUST_B1 "', '" MSP_B "', 'Beta 1')) v(id, parent, name)"
    " JOIN tenants.tenants p ON p.id = v.parent::uuid",
    "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id) VALUES"
    " (gen_random_uuid(), '" WRITER "', 'api_client', 'usage_writer', '" PLATFORM "', '" PLATFORM
    "'),"
    " (gen_random_uuid(), '" A_WRITER "', 'api_client', 'msp_usage_writer', '" MSP_A "', '" MSP_A
    "'),"
    " (gen_random_uuid(), '" A_ADMIN "', 'user', 'msp_admin', '" MSP_A "', '" MSP_A "'),"
    " (gen_random_uuid(), '" B_ADMIN "', 'user', 'msp_admin', '" MSP_B "', '" MSP_B "')",
    "SELECT set_config('console.system', 'off', false)",
};

static int setup(void **state)
{
    (void)state;
    url = testdb_create("usage");
    if (cc_db_open(url, "test", "usage, public", &db) != 0)
        return -1;
    int n = 0;
    static const char *const schemas[] = {"tenants", "roles", "users", "quotas", "usage"};
    for (size_t i = 0; i < 5; i++)
        if (cc_migrate_apply(db, cc_migrations_embedded, schemas[i], schemas[i], &n) != 0)
            return -1;
    for (size_t i = 0; i < sizeof(seed_sql) / sizeof(seed_sql[0]); i++)
        if (cc_db_exec(db, seed_sql[i]) != 0)
            return -1;
    json_t *jwk = NULL;
    if (cc_es256_generate(KID, &priv_pem, &jwk) != 0)
        return -1;
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    jwks = cc_jwks_new(NULL, 10);
    int rc = cc_jwks_load(jwks, text);
    free(text);
    if (rc != 0)
        return -1;
    cc_authz_set_cache_ms(0);
    cc_server_config_t c = {
        .service = "usage",
        .version = "test",
        .host = "127.0.0.1",
        .threads = 1,
        .workers = 1,
        .max_body = 1 << 20,
        .routes = usage_routes,
        .nroutes = usage_nroutes,
        .jwks = jwks,
        .auth = {.issuer = ISSUER, .audience = AUDIENCE, .leeway_s = 5},
        .authorize = cc_authz_enforce,
    };
    return cc_server_new(&c, &srv);
}

static int teardown(void **state)
{
    (void)state;
    cc_server_free(srv);
    cc_jwks_free(jwks);
    free(priv_pem);
    cc_db_close(db);
    testdb_drop(url);
    free(url);
    return 0;
}

static cc_req_t *call(const char *sub, const char *kind, const char *tid, const char *msp,
                      const char *method, const char *path, const char *body, const char *idem)
{
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss",
                               ISSUER, "aud", AUDIENCE, "sub", sub, "tid", tid, "msp", msp, "kind",
                               kind, "name", "Tester", "client_id", sub, "iat", (json_int_t)now,
                               "nbf", (json_int_t)now, "exp", (json_int_t)(now + 300));
    char *token = NULL;
    assert_int_equal(cc_jwt_sign_es256(priv_pem, KID, "at+jwt", claims, &token), 0);
    json_decref(claims);
    char *authz = cc_aprintf("Bearer %s", token);
    cc_header_t h[] = {
        {"authorization", authz}, {"content-type", "application/json"}, {"idempotency-key", idem}};
    cc_req_t *req =
        cc_server_dispatch(srv, db, method, path, h, idem ? 3 : 2, body, body ? strlen(body) : 0);
    if (req->status >= 400) /* the problem, to read when an assertion fails */
        print_message("%s %s -> %d %s\n", method, path, req->status,
                      req->res_body.data ? req->res_body.data : "");
    free(authz);
    free(token);
    return req;
}

/* One value of a query run in system scope. Caller frees. */
static char *value_sql(const char *sql_text)
{
    static int seq;
    cc_pool_t *pool = cc_pool_new();
    cc_stmt_t st = {.name = cc_pool_printf(pool, "t_value_%d", ++seq), .sql = sql_text};
    const cc_scope_t system = {.system = true};
    PGresult *res;
    assert_int_equal(cc_db_begin(db, &system), 0);
    int rc = cc_db_query(db, pool, &st, NULL, &res);
    if (rc != 0) {
        print_error("%s\n%s\n", sql_text, cc_db_errmsg(db));
        cc_db_rollback(db);
    }
    assert_int_equal(rc, 0);
    char *out = PQntuples(res) ? cc_strdup(PQgetvalue(res, 0, 0)) : NULL;
    assert_int_equal(cc_db_commit(db), 0);
    cc_pool_free(pool);
    return out;
}

static void exec_sql(const char *sql_text)
{
    free(value_sql(sql_text));
}

static void assert_value(const char *sql_text, const char *want)
{
    char *v = value_sql(sql_text);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

#define SAMPLE(t, res, src, bytes, at)                                                             \
    "{\"tenant_id\":\"" t "\",\"msp_id\":\"" MSP_A "\",\"resource\":\"" res                        \
    "\",\"source_id\":\"" src "\",\"used_bytes\":" #bytes ",\"at\":\"" at "\"}"

/* The daily usage of A1 cloud storage on a day, as billing reads it (carried forward). */
#define DAY_VALUE(day)                                                                             \
    "SELECT quantity::bigint FROM usage.usage_measure('" CUST_A1 "', 'cloud_storage', '" day       \
    "', '" day "', 'peak')"

/* The days of A1's cloud storage whose rollup differs from a recomputation from the raw
 * samples (each source's latest sample at the end of the day, summed). */
#define RECOMPUTED_DAYS_DIFFERING                                                                  \
    "SELECT count(*) FROM generate_series('2026-08-30'::date, '2026-09-05', '1 day')"              \
    " g(d) WHERE (SELECT quantity FROM usage.usage_measure('" CUST_A1                              \
    "', 'cloud_storage', g.d::date, g.d::date, 'peak')) <>"                                        \
    " (SELECT coalesce(sum(x.used_bytes), 0) FROM (SELECT DISTINCT ON (source_id)"                 \
    " used_bytes FROM usage.samples WHERE tenant_id = '" CUST_A1                                   \
    "' AND resource = 'cloud_storage' AND at < (g.d::date + 1)::timestamp AT TIME "                \
    "ZONE 'UTC' ORDER BY source_id, at DESC)"                                                      \
    " x)"

/* Accounts whose maintained figures differ from a recount (ingestion keeps them by
 * differences): current usage = the sum of the sources' last values, the published totals
 * = that usage and the number of sources. */
#define TOTALS_DIFFERING                                                                           \
    "SELECT (SELECT count(*) FROM usage.tenant_usage tu WHERE tu.used_bytes <>"                    \
    " (SELECT coalesce(sum(su.used_bytes), 0) FROM usage.source_usage su"                          \
    " WHERE su.tenant_id = tu.tenant_id AND su.resource = tu.resource))"                           \
    " + (SELECT count(*) FROM usage.tenant_totals tt WHERE tt.sources_total <>"                    \
    " (SELECT count(*) FROM usage.sources s WHERE s.tenant_id = tt.tenant_id)"                     \
    " OR tt.cloud_usage_bytes <> (SELECT coalesce(sum(su.used_bytes), 0) FROM usage.source_usage"  \
    " su WHERE su.tenant_id = tt.tenant_id AND su.resource = 'cloud_storage')"                     \
    " OR tt.datastore_usage_bytes <> (SELECT coalesce(sum(su.used_bytes), 0)"                      \
    " FROM usage.source_usage su WHERE su.tenant_id = tt.tenant_id AND su.resource = "             \
    "'datastore'))"

static void test_rollup_last_value_per_source_carried_forward(void **state)
{
    (void)state;
    const char *batch1 = "SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A1, "cloud_storage", "s1", 100,
        "2026-09-01T10:00:00Z") "," SAMPLE(CUST_A1, "cloud_storage", "s1", 50,
                                           "2026-09-03T10:00:00Z") "," SAMPLE(CUST_A1,
                                                                              "cloud_storage", "s2",
                                                                              30,
                                                                              "2026-09-02T23:59:"
                                                                              "59Z") "]')";
    exec_sql(batch1);
    /* late and out of order: s1 on day 2 (between two known days), and an earlier sample of
     * day 1 that must not replace the later one of the same day */
    const char *batch2 = "SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A1, "cloud_storage", "s1", 80,
        "2026-09-02T08:00:00Z") "," SAMPLE(CUST_A1, "cloud_storage", "s1", 999,
                                           "2026-09-01T09:00:00Z") "]')";
    exec_sql(batch2);
    assert_value(DAY_VALUE("2026-08-31"), "0");
    assert_value(DAY_VALUE("2026-09-01"), "100");
    assert_value(DAY_VALUE("2026-09-02"), "110"); /* s1 80 + s2 30 */
    assert_value(DAY_VALUE("2026-09-03"), "80");  /* s1 50 + s2 30 */
    assert_value(DAY_VALUE("2026-09-20"), "80");  /* carried: nothing changed since */
    /* the current value: each source's latest sample */
    assert_value("SELECT used_bytes FROM usage.tenant_usage WHERE tenant_id = '" CUST_A1
                 "' AND resource = 'cloud_storage'",
                 "80");
    /* a replay of both batches changes nothing */
    exec_sql(batch1);
    exec_sql(batch2);
    assert_value(DAY_VALUE("2026-09-02"), "110");
    assert_value(DAY_VALUE("2026-09-03"), "80");
    assert_value("SELECT count(*) FROM usage.samples WHERE tenant_id = '" CUST_A1 "'", "5");
    /* the rollup agrees with a recomputation from the raw samples for every day */
    assert_value(RECOMPUTED_DAYS_DIFFERING, "0");
    /* a new source whose only day lies before the tenant's latest day: its value counts
     * from that day on, in every later day of the tenant (the set-based path) */
    exec_sql("SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A1, "cloud_storage", "s3", 5, "2026-09-02T12:00:00Z") "]')");
    assert_value(DAY_VALUE("2026-09-01"), "100");
    assert_value(DAY_VALUE("2026-09-02"), "115");
    assert_value(DAY_VALUE("2026-09-03"), "85");
    assert_value(RECOMPUTED_DAYS_DIFFERING, "0");
    exec_sql("SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A1, "cloud_storage", "s3", 0, "2026-09-02T13:00:00Z") "]')");
    assert_value(DAY_VALUE("2026-09-03"), "80");
    assert_value(TOTALS_DIFFERING, "0");
    /* average over 2026-09-01..03: (100 + 110 + 80) / 3 byte-days per day */
    assert_value("SELECT quantity FROM usage.usage_measure('" CUST_A1
                 "', 'cloud_storage', '2026-09-01', '2026-09-03', 'average')",
                 "290");
}

#define LINE(period, t, res, col)                                                                  \
    "SELECT " col "::text FROM usage.billing_compute('" period "', 'month', '" period              \
    "-01'::date, (date '" period "-01' + interval '1 month' - interval '1 day')::date,"            \
    " (SELECT path FROM tenants.tenants WHERE id = '" t "')) WHERE resource = '" res "'"

static void test_billing_arithmetic_worked_by_hand(void **state)
{
    (void)state;
    /* A2 (MSP A's default plan): 0.05 USD per GB-month, 5 % discount, 10 % tax, peak.
     * Peak 100.1 GB exactly on 2026-10-15, 40 GB before. */
    exec_sql("INSERT INTO usage.billing_plans (tenant_id, msp_id, unit, period, price_per_unit,"
             " currency, measure, tax_rate_pct, discount_pct) VALUES ('" MSP_A "', '" MSP_A
             "', 'GB', 'month', 0.05, 'USD', 'peak', 10, 5)");
    exec_sql("SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A2, "cloud_storage", "vm1", 40000000000,
        "2026-10-02T00:00:00Z") "," SAMPLE(CUST_A2, "cloud_storage", "vm1", 100100000000,
                                           "2026-10-15T12:00:00Z") "," SAMPLE(CUST_A2,
                                                                              "cloud_storage",
                                                                              "vm1", 1,
                                                                              "2026-10-16T00:00:"
                                                                              "00Z") "]')");
    /* units = ceil(100 100 000 000 / 10^9, 3) = 100.100; amount = 100.100 x 0.05 = 5.005
     * -> 5.01 (half up); discount 5 % of 5.01 = 0.2505 -> 0.25; tax 10 % of 4.76 = 0.476
     * -> 0.48; total 4.76 + 0.48 = 5.24 */
    assert_value(LINE("2026-10", CUST_A2, "cloud_storage", "billable_units"), "100.100");
    assert_value(LINE("2026-10", CUST_A2, "cloud_storage", "amount"), "5.01");
    assert_value(LINE("2026-10", CUST_A2, "cloud_storage", "discount_amount"), "0.25");
    assert_value(LINE("2026-10", CUST_A2, "cloud_storage", "tax_amount"), "0.48");
    assert_value(LINE("2026-10", CUST_A2, "cloud_storage", "total_amount"), "5.24");
    assert_value(LINE("2026-10", CUST_A2, "datastore", "amount"), "0.00");
    /* one byte over a unit boundary rounds the units up: 1 byte = 0.001 GB */
    assert_value(LINE("2026-11", CUST_A2, "cloud_storage", "billable_units"), "0.001");

    /* A1's own plan: 1000 JPY per GB-month, average. 10 GB for one day of September's 30
     * (and the 80 bytes of the rollup test): byte-days = 10 000 000 000 + ...; units =
     * ceil(avg / 10^9, 3) = 0.334; amount = 334 JPY (no decimals) */
    exec_sql("INSERT INTO usage.billing_plans (tenant_id, msp_id, unit, period, price_per_unit,"
             " currency, measure) VALUES ('" CUST_A1 "', '" MSP_A
             "', 'GB', 'month', 1000, 'JPY', 'average')");
    exec_sql("SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A1, "datastore", "nas", 10000000000,
        "2026-09-10T00:00:00Z") "," SAMPLE(CUST_A1, "datastore", "nas", 0,
                                           "2026-09-11T00:00:00Z") "]')");
    assert_value(LINE("2026-09", CUST_A1, "datastore", "billable_units"), "0.334");
    assert_value(LINE("2026-09", CUST_A1, "datastore", "amount"), "334");
    assert_value(LINE("2026-09", CUST_A1, "datastore", "currency"), "JPY");
    assert_value(TOTALS_DIFFERING, "0");
    /* a yearly export does not list monthly plans */
    assert_value("SELECT count(*) FROM usage.billing_compute('2026', 'year', '2026-01-01',"
                 " '2026-12-31', (SELECT path FROM tenants.tenants WHERE id = '" MSP_A "'))",
                 "0");
}

static void test_frozen_export_is_identical_byte_for_byte(void **state)
{
    (void)state;
    cc_req_t *r = call(A_ADMIN, "api_client", MSP_A, MSP_A, "GET",
                       "/api/v1/billing/export?period=2026-09&format=csv", NULL, NULL);
    assert_int_equal(r->status, 200);
    char *first = cc_strdup(r->res_body.data ? r->res_body.data : "");
    cc_req_free(r);
    assert_non_null(strstr(first, "2026-09,"));
    assert_non_null(strstr(first, ",334,JPY,"));
    assert_non_null(strstr(first, "\"Acme, \"\"East\"\"\"")); /* RFC 4180 quoting */
    /* late usage and a new price after the freeze change nothing in the closed period */
    exec_sql("SELECT count(*) FROM usage.ingest_samples('[" SAMPLE(
        CUST_A1, "datastore", "nas2", 999000000000, "2026-09-20T00:00:00Z") "]')");
    exec_sql("UPDATE usage.billing_plans SET price_per_unit = 7 WHERE tenant_id = '" CUST_A1 "'");
    exec_sql(
        "UPDATE tenants.tenants SET name = 'Renamed', name_key = 'renamed' WHERE id = '" CUST_A1
        "'");
    r = call(A_ADMIN, "api_client", MSP_A, MSP_A, "GET",
             "/api/v1/billing/export?period=2026-09&format=csv", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->res_body.data, first);
    cc_req_free(r);
    exec_sql(
        "UPDATE tenants.tenants SET name = '顧客会社A', name_key = '顧客会社a' WHERE id = '" CUST_A1
        "'");
    /* MSP B sees none of A's lines, and not A's account at all */
    r = call(B_ADMIN, "api_client", MSP_B, MSP_B, "GET", "/api/v1/billing/export?period=2026-09",
             NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_null(strstr(r->res_body.data ? r->res_body.data : "", CUST_A1));
    cc_req_free(r);
    r = call(B_ADMIN, "api_client", MSP_B, MSP_B, "GET",
             "/api/v1/billing/export?period=2026-09&parent_id=" MSP_A, NULL, NULL);
    assert_int_equal(r->status, 404);
    cc_req_free(r);
    free(first);
}

#define BODY_SAMPLE(t, src, bytes, at)                                                             \
    "{\"tenant_id\":\"" t "\",\"resource\":\"cloud_storage\",\"source_id\":\"" src                 \
    "\",\"used_bytes\":" #bytes ",\"at\":\"" at "\"}"

static void test_hard_quota_refuses_growth_not_shrinking(void **state)
{
    (void)state;
    exec_sql("INSERT INTO quotas.quotas (tenant_id, resource, msp_id, limit_bytes, enforcement)"
             " VALUES ('" CUST_B1 "', 'cloud_storage', '" MSP_B "', 1000, 'hard')");
    char now[32];
    time_t t = time(NULL) - 60;
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    char *body = cc_aprintf("[" BODY_SAMPLE(CUST_B1, "b", 900, "%s") "]", now);
    cc_req_t *r =
        call(WRITER, "api_client", PLATFORM, PLATFORM, "POST", "/api/v1/usage/samples", body, NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    free(body);
    /* growth past the limit: the whole batch is refused, naming B1's item only */
    t += 1;
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    body = cc_aprintf(
        "[" BODY_SAMPLE(CUST_A1, "x", 5, "%s") "," BODY_SAMPLE(CUST_B1, "b", 1200, "%s") "]", now,
        now);
    r = call(WRITER, "api_client", PLATFORM, PLATFORM, "POST", "/api/v1/usage/samples", body, NULL);
    assert_int_equal(r->status, 409);
    assert_non_null(strstr(r->res_body.data, "\"quota_exceeded\""));
    assert_non_null(strstr(r->res_body.data, "[1].used_bytes"));
    assert_null(strstr(r->res_body.data, "[0].used_bytes"));
    cc_req_free(r);
    free(body);
    assert_value("SELECT used_bytes FROM usage.tenant_usage WHERE tenant_id = '" CUST_B1 "'",
                 "900");
    assert_value("SELECT count(*) FROM usage.samples WHERE source_id = 'x'", "0");
    /* shrinking (a restore or a cleanup) is always accepted, even over the limit */
    exec_sql("UPDATE quotas.quotas SET limit_bytes = 100 WHERE tenant_id = '" CUST_B1 "'");
    t += 1;
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    body = cc_aprintf("[" BODY_SAMPLE(CUST_B1, "b", 700, "%s") "]", now);
    r = call(WRITER, "api_client", PLATFORM, PLATFORM, "POST", "/api/v1/usage/samples", body,
             "key-1");
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    /* a replay with the key answers the first answer; the same key with another body 422 */
    r = call(WRITER, "api_client", PLATFORM, PLATFORM, "POST", "/api/v1/usage/samples", body,
             "key-1");
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    free(body);
    r = call(WRITER, "api_client", PLATFORM, PLATFORM, "POST", "/api/v1/usage/samples",
             "[" BODY_SAMPLE(CUST_B1, "b", 1, "2026-10-01T00:00:00Z") "]", "key-1");
    assert_int_equal(r->status, 422);
    cc_req_free(r);
    /* MSP A's writer may not post for MSP B's customer: the item is named */
    r = call(A_WRITER, "api_client", MSP_A, MSP_A, "POST", "/api/v1/usage/samples",
             "[" BODY_SAMPLE(CUST_A1, "a", 1, "2026-10-01T00:00:00Z") "," BODY_SAMPLE(
                 CUST_B1, "b", 1, "2026-10-01T00:00:00Z") "]",
             NULL);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->res_body.data, "[1].tenant_id"));
    assert_null(strstr(r->res_body.data, "[0].tenant_id"));
    cc_req_free(r);
    /* people do not post usage */
    r = call(A_ADMIN, "api_client", MSP_A, MSP_A, "POST", "/api/v1/usage/samples",
             "[" BODY_SAMPLE(CUST_A1, "a", 1, "2026-10-01T00:00:00Z") "]", NULL);
    assert_int_equal(r->status, 403);
    cc_req_free(r);
}

static void test_job_events_count_once(void **state)
{
    (void)state;
    char now[32];
    time_t t = time(NULL) - 120;
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    char *body = cc_aprintf(
        "[{\"tenant_id\":\"" CUST_A1 "\",\"source_id\":\"pc1\",\"source_type\":\"agent\","
        "\"job_id\":\"j1\",\"status\":\"completed\",\"started_at\":\"%s\",\"finished_at\":\"%s\","
        "\"bytes_transferred\":1000},"
        "{\"tenant_id\":\"" CUST_A1 "\",\"source_id\":\"vm9\",\"source_type\":\"agentless\","
        "\"job_id\":\"j2\",\"status\":\"failed\",\"finished_at\":\"%s\",\"bytes_transferred\":5}]",
        now, now, now);
    for (int i = 0; i < 2; i++) { /* the second time without a key: both jobs already seen */
        cc_req_t *r = call(WRITER, "api_client", PLATFORM, PLATFORM, "POST",
                           "/api/v1/usage/job-events", body, NULL);
        assert_int_equal(r->status, 200);
        assert_non_null(strstr(r->res_body.data, i == 0 ? "\"new_jobs\":2" : "\"new_jobs\":0"));
        cc_req_free(r);
    }
    free(body);
    assert_value("SELECT sum(completed + failed)::text || '/' || sum(bytes_transferred)::text"
                 " FROM usage.daily_jobs WHERE tenant_id = '" CUST_A1 "'",
                 "2/1005");
    cc_req_t *r = call(A_ADMIN, "api_client", MSP_A, MSP_A, "GET",
                       "/api/v1/reports/jobs-24h?format=csv&bom=true", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_memory_equal(r->res_body.data, "\xEF\xBB\xBFtenant_id,name,", 18);
    assert_non_null(strstr(r->res_body.data, ","
                                             "顧客会社A"
                                             ",1,0,1,0,0,2\r\n"));
    cc_req_free(r);
    r = call(A_ADMIN, "api_client", MSP_A, MSP_A, "GET",
             "/api/v1/reports/account-details?sort=-name", NULL, NULL);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->res_body.data, "\"agent_sources\":1,\"agentless_sources\":1"));
    cc_req_free(r);
}

static void test_grace_period_delays_hard_enforcement(void **state)
{
    (void)state;
    /* hard, 1 000 bytes, 2 hours of grace: growth past the limit is accepted until the
     * limit has been exceeded for the grace period (exceeded_since, kept by quotas) */
    exec_sql("INSERT INTO quotas.quotas (tenant_id, resource, msp_id, limit_bytes, enforcement,"
             " grace_period_hours) VALUES ('" CUST_A2 "', 'datastore', '" MSP_A
             "', 1000, 'hard', 2)");
    char now[32], *body;
    time_t t = time(NULL) - 30;
    cc_req_t *r;
    for (int i = 0; i < 3; i++) {
        t += 1;
        strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
        body = cc_aprintf("[{\"tenant_id\":\"" CUST_A2 "\",\"resource\":\"datastore\","
                          "\"source_id\":\"g\",\"used_bytes\":%d,\"at\":\"%s\"}]",
                          2000 + i, now);
        if (i == 1) /* the quotas service saw it exceeded an hour ago: still in grace */
            exec_sql("UPDATE quotas.quotas SET exceeded_since = now() - interval '1 hour'"
                     " WHERE tenant_id = '" CUST_A2 "' AND resource = 'datastore'");
        if (i == 2) /* three hours ago: the grace period is over */
            exec_sql("UPDATE quotas.quotas SET exceeded_since = now() - interval '3 hours'"
                     " WHERE tenant_id = '" CUST_A2 "' AND resource = 'datastore'");
        r = call(WRITER, "api_client", PLATFORM, PLATFORM, "POST", "/api/v1/usage/samples", body,
                 NULL);
        assert_int_equal(r->status, i < 2 ? 200 : 409);
        cc_req_free(r);
        free(body);
    }
    assert_value("SELECT used_bytes FROM usage.tenant_usage WHERE tenant_id = '" CUST_A2
                 "' AND resource = 'datastore'",
                 "2001");
}

static void test_purged_tenant_usage_is_deleted(void **state)
{
    (void)state;
    assert_value("SELECT count(*) > 0 FROM usage.samples WHERE tenant_id = '" CUST_B1 "'", "t");
    cc_pool_t *pool = cc_pool_new();
    json_t *payload = json_pack("{s:s}", "id", CUST_B1);
    cc_outbox_event_t ev = {.id = 1, .type = "tenant.purged", .payload = payload};
    const cc_scope_t system = {.system = true};
    assert_int_equal(cc_db_begin(db, &system), 0);
    assert_int_equal(usage_on_tenant_event(db, pool, &ev, NULL), 0);
    assert_int_equal(usage_on_tenant_event(db, pool, &ev, NULL), 0); /* a replay: nothing */
    assert_int_equal(cc_db_commit(db), 0);
    json_decref(payload);
    cc_pool_free(pool);
    assert_value("SELECT (SELECT count(*) FROM usage.samples WHERE tenant_id = '" CUST_B1 "')"
                 " + (SELECT count(*) FROM usage.daily_usage WHERE tenant_id = '" CUST_B1 "')"
                 " + (SELECT count(*) FROM usage.tenant_totals WHERE tenant_id = '" CUST_B1 "')",
                 "0");
    /* other accounts keep theirs */
    assert_value("SELECT count(*) > 0 FROM usage.samples WHERE tenant_id = '" CUST_A1 "'", "t");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollup_last_value_per_source_carried_forward),
        cmocka_unit_test(test_billing_arithmetic_worked_by_hand),
        cmocka_unit_test(test_frozen_export_is_identical_byte_for_byte),
        cmocka_unit_test(test_hard_quota_refuses_growth_not_shrinking),
        cmocka_unit_test(test_job_events_count_once),
        cmocka_unit_test(test_grace_period_delays_hard_enforcement),
        cmocka_unit_test(test_purged_tenant_usage_is_deleted),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
