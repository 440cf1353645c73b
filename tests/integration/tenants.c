/*
 * The tenants service against a real PostgreSQL: row-level security proven with
 * deliberately unscoped SQL, the authorization module's scopes, and the end of the
 * recycle bin (purge, its event and audit record, restore after purge). Requests run
 * through the real router, authentication and authorization (cc_server_dispatch).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../services/tenants/tenants.h"
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
#define P_ADMIN "01900000-0000-7000-8000-0000000000f0"  /* platform super admin */
#define A_ADMIN "01900000-0000-7000-8000-0000000000fa"  /* msp_admin of A */
#define A1_ADMIN "01900000-0000-7000-8000-0000000000f1" /* tenant_admin of A1 */
#define B_ADMIN "01900000-0000-7000-8000-0000000000fb"  /* msp_admin of B */

static char *url;
static cc_db_t *db;
static cc_server_t *srv;
static cc_jwks_t *jwks;
static char *priv_pem;
static tenants_app_t app = {.retention_days = 14, .purge_interval_s = 60};

static const char *const seed_sql[] = {
    "SELECT set_config('console.system', 'on', false)",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id) VALUES"
    " ('" PLATFORM
    "', NULL, 'platform', 'Platform', 'platform', '01900000000070008000000000000001',"
    " '" PLATFORM "')",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, v.parent::uuid, v.kind, v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), coalesce(v.msp::uuid, v.id::uuid)"
    " FROM (VALUES ('" MSP_A "', '" PLATFORM "', 'msp', 'MSP A', NULL),"
    " ('" MSP_B "', '" PLATFORM "', 'msp', 'MSP B', NULL)) v(id, parent, kind, name, msp)"
    " JOIN tenants.tenants p ON p.id = v.parent::uuid",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, v.parent::uuid, 'customer', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), p.msp_id"
    " FROM (VALUES ('" CUST_A1 "', '" MSP_A "', '顧客会社A'), ('" CUST_A2 "', '" MSP_A
    "', '顧客会社B'), ('" CUST_B1 "', '" MSP_B "', 'Beta 1')) v(id, parent, name)"
    " JOIN tenants.tenants p ON p.id = v.parent::uuid",
    "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id)"
    " VALUES (gen_random_uuid(), '" P_ADMIN "', 'user', 'platform_super_admin', '" PLATFORM
    "', '" PLATFORM "'),"
    " (gen_random_uuid(), '" A_ADMIN "', 'user', 'msp_admin', '" MSP_A "', '" MSP_A "'),"
    " (gen_random_uuid(), '" A1_ADMIN "', 'user', 'tenant_admin', '" CUST_A1 "', '" MSP_A "'),"
    " (gen_random_uuid(), '" B_ADMIN "', 'user', 'msp_admin', '" MSP_B "', '" MSP_B "')",
    "SELECT set_config('console.system', 'off', false)",
};

static int setup(void **state)
{
    (void)state;
    url = testdb_create("tenants");
    if (cc_db_open(url, "test", "tenants, public", &db) != 0)
        return -1;
    int n = 0;
    /* authorization reads the tenants, roles and users schemas' published views */
    /* and the list's usage columns and quota sort the usage and quotas schemas' views */
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
    tenants_store_init();
    cc_authz_set_cache_ms(0); /* every request reads the grants as they are now */
    cc_server_config_t c = {
        .service = "tenants",
        .version = "test",
        .host = "127.0.0.1",
        .threads = 1,
        .workers = 1,
        .max_body = 1 << 20,
        .routes = tenants_routes,
        .nroutes = tenants_nroutes,
        .jwks = jwks,
        .auth = {.issuer = ISSUER, .audience = AUDIENCE, .leeway_s = 5},
        .authorize = cc_authz_enforce,
        .app = &app,
    };
    return cc_server_new(&c, &srv);
}

static int teardown(void **state)
{
    (void)state;
    cc_server_free(srv);
    tenants_store_dispose();
    cc_jwks_free(jwks);
    free(priv_pem);
    cc_db_close(db);
    testdb_drop(url);
    free(url);
    return 0;
}

/* An API client's token: the test's principals hold grants but have no users row (a
 * user's token needs its user to exist). */
static char *token_for(const char *sub, const char *tid, const char *msp)
{
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", ISSUER,
                               "aud", AUDIENCE, "sub", sub, "tid", tid, "msp", msp, "kind",
                               "api_client", "name", "Tester", "iat", (json_int_t)now, "nbf",
                               (json_int_t)now, "exp", (json_int_t)(now + 300));
    char *token = NULL;
    assert_int_equal(cc_jwt_sign_es256(priv_pem, KID, "at+jwt", claims, &token), 0);
    json_decref(claims);
    return token;
}

/* Runs a request as sub; returns the request (free with cc_req_free). */
static cc_req_t *call(const char *sub, const char *tid, const char *msp, const char *method,
                      const char *path, const char *body)
{
    char *token = token_for(sub, tid, msp);
    char *authz = cc_aprintf("Bearer %s", token);
    cc_header_t h[] = {{"authorization", authz}, {"content-type", "application/json"}};
    cc_req_t *req = cc_server_dispatch(srv, db, method, path, h, 2, body, body ? strlen(body) : 0);
    free(authz);
    free(token);
    return req;
}

static long count_sql(const cc_scope_t *scope, const char *sql_text)
{
    static int seq;
    cc_pool_t *pool = cc_pool_new();
    cc_stmt_t st = {.name = cc_pool_printf(pool, "t_count_%d", ++seq), .sql = sql_text};
    PGresult *res;
    assert_int_equal(cc_db_begin(db, scope), 0);
    assert_int_equal(cc_db_query(db, pool, &st, NULL, &res), 0);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    cc_db_rollback(db);
    cc_pool_free(pool);
    return n;
}

/* The scope the authorization module gives a principal, as a request would get it. */
static cc_authz_t *authz_of(cc_pool_t *pool, const char *sub, const char *tid, const char *msp)
{
    /* an API client: a principal whose grants are the test's, with no users row needed */
    cc_principal_t p = {
        .kind = CC_PRINCIPAL_API_CLIENT, .sub = sub, .tenant_id = tid, .msp_id = msp};
    cc_authz_t *a = NULL;
    assert_int_equal(cc_authz_load(db, pool, &p, &a), 0);
    return a;
}

static void test_unscoped_select_sees_only_the_callers_tree(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    const char *all = "SELECT count(*) FROM tenants.tenants";
    /* no WHERE at all: row-level security alone decides */
    cc_authz_t *a = authz_of(pool, A_ADMIN, MSP_A, MSP_A);
    assert_true(a->scope.msp_wide);
    assert_int_equal(count_sql(&a->scope, all), 3); /* MSP A and its two customers */
    assert_int_equal(
        count_sql(&a->scope, "SELECT count(*) FROM tenants.tenants WHERE msp_id = '" MSP_B "'"), 0);
    cc_authz_t *a1 = authz_of(pool, A1_ADMIN, MSP_A, MSP_A);
    assert_false(a1->scope.msp_wide);
    assert_int_equal(count_sql(&a1->scope, all), 1); /* its one customer */
    cc_authz_t *p = authz_of(pool, P_ADMIN, PLATFORM, PLATFORM);
    assert_true(p->platform);
    assert_int_equal(count_sql(&p->scope, all), 6);
    /* no scope at all: nothing */
    const cc_scope_t none = {0};
    assert_int_equal(count_sql(&none, all), 0);
    /* a forged msp_id without grants' paths or msp_wide still sees nothing */
    const cc_scope_t forged = {.msp_id = MSP_B, .tenant_id = MSP_B};
    assert_int_equal(count_sql(&forged, all), 0);

    /* an UPDATE without WHERE changes only the caller's rows */
    static const cc_stmt_t touch =
        CC_STMT("t_touch", "UPDATE tenants.tenants SET updated_at = updated_at", 0);
    static const cc_stmt_t insert_b = CC_STMT(
        "t_insert_b",
        "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
        " VALUES (gen_random_uuid(), '" MSP_B "', 'customer', 'x', 'x', 'a.b', '" MSP_B "')",
        0);
    PGresult *res;
    assert_int_equal(cc_db_begin(db, &a->scope), 0);
    assert_int_equal(cc_db_query(db, pool, &touch, NULL, &res), 0);
    assert_string_equal(PQcmdTuples(res), "3");
    /* and it cannot write a row into another MSP */
    assert_int_equal(cc_db_query(db, pool, &insert_b, NULL, NULL), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "42501");
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_authz_permissions(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_authz_t *a = authz_of(pool, A_ADMIN, MSP_A, MSP_A);
    cc_authz_t *a1 = authz_of(pool, A1_ADMIN, MSP_A, MSP_A);
    const char *msp_path = a->grants[0].path;
    const char *cust = a1->grants[0].path;
    assert_true(cc_authz_can(a, "tenants:write", msp_path));
    assert_true(cc_authz_can(a, "tenants:write", cust));
    assert_false(cc_authz_can(a, "users:manage", cust)); /* msp_admin: everything but users */
    assert_false(cc_authz_can_above(a, "tenants:delete", msp_path)); /* not its own account */
    assert_true(cc_authz_can_above(a, "tenants:delete", cust));
    /* a prefix that is not a path boundary does not cover */
    char *sibling = cc_pool_printf(pool, "%sx", msp_path);
    assert_false(cc_authz_can(a, "tenants:read", sibling));
    assert_false(cc_authz_can(a1, "tenants:read", msp_path));
    assert_true(cc_authz_sees(a1, msp_path)); /* an ancestor of its grant */
    cc_pool_free(pool);
}

static void test_suspended_home_refuses_every_request(void **state)
{
    (void)state;
    cc_req_t *r = call(A_ADMIN, MSP_A, MSP_A, "POST", "/api/v1/tenants/" CUST_A1 "/suspend", NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    r = call(A1_ADMIN, CUST_A1, MSP_A, "GET", "/api/v1/tenants/" CUST_A1, NULL);
    assert_int_equal(r->status, 403);
    assert_non_null(strstr(r->res_body.data, "\"tenant_suspended\""));
    cc_req_free(r);
    /* suspending the MSP suspends everyone below it */
    r = call(P_ADMIN, PLATFORM, PLATFORM, "POST", "/api/v1/tenants/" CUST_A1 "/resume", NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    r = call(P_ADMIN, PLATFORM, PLATFORM, "POST", "/api/v1/tenants/" MSP_A "/suspend", NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    r = call(A1_ADMIN, CUST_A1, MSP_A, "GET", "/api/v1/tenants/" CUST_A1, NULL);
    assert_int_equal(r->status, 403);
    cc_req_free(r);
    r = call(P_ADMIN, PLATFORM, PLATFORM, "POST", "/api/v1/tenants/" MSP_A "/resume", NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    r = call(A1_ADMIN, CUST_A1, MSP_A, "GET", "/api/v1/tenants/" CUST_A1, NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
}

static void test_purge_ends_the_recycle_bin(void **state)
{
    (void)state;
    cc_req_t *r =
        call(A_ADMIN, MSP_A, MSP_A, "POST", "/api/v1/tenants",
             "{\"name\": \"Doomed\", \"kind\": \"customer\", \"parent_id\": \"" MSP_A "\"}");
    assert_int_equal(r->status, 201);
    json_t *t = json_loads(r->res_body.data, 0, NULL);
    char *id = cc_strdup(json_string_value(json_object_get(t, "id")));
    json_decref(t);
    cc_req_free(r);
    char *path = cc_aprintf("/api/v1/tenants/%s?confirm=Doomed", id);
    r = call(A_ADMIN, MSP_A, MSP_A, "DELETE", path, NULL);
    assert_int_equal(r->status, 202);
    cc_req_free(r);

    /* not due yet: nothing happens */
    cc_pool_t *pool = cc_pool_new();
    int purged = -1;
    assert_int_equal(tenants_purge_due(db, pool, &purged), 0);
    assert_int_equal(purged, 0);
    /* the window ends */
    char *sql = cc_aprintf("UPDATE tenants.tenants SET purge_at = now() - interval '1 second'"
                           " WHERE id = '%s'",
                           id);
    cc_stmt_t st = {.name = "t_due", .sql = sql, .nparams = 0};
    const cc_scope_t system = {.system = true};
    assert_int_equal(cc_db_begin(db, &system), 0);
    assert_int_equal(cc_db_query(db, pool, &st, NULL, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);
    assert_int_equal(tenants_purge_due(db, pool, &purged), 0);
    assert_int_equal(purged, 1);

    char *q = cc_aprintf("SELECT count(*) FROM tenants.tenants WHERE id = '%s'", id);
    assert_int_equal(count_sql(&system, q), 0);
    free(q);
    q = cc_aprintf("SELECT count(*) FROM tenants.outbox WHERE type = 'tenant.purged'"
                   " AND aggregate_id = '%s'",
                   id);
    assert_int_equal(count_sql(&system, q), 1);
    free(q);
    q = cc_aprintf("SELECT count(*) FROM tenants.audit_events WHERE action = 'tenant.purged'"
                   " AND target_id = '%s' AND actor_kind = 'system'",
                   id);
    assert_int_equal(count_sql(&system, q), 1);
    free(q);

    /* restore after purge: gone */
    char *restore = cc_aprintf("/api/v1/tenants/%s/restore", id);
    r = call(A_ADMIN, MSP_A, MSP_A, "POST", restore, NULL);
    assert_int_equal(r->status, 404);
    cc_req_free(r);
    free(restore);
    free(sql);
    free(path);
    free(id);
    cc_pool_free(pool);
}

static void test_changes_are_audited_in_the_same_transaction(void **state)
{
    (void)state;
    const cc_scope_t system = {.system = true};
    long before = count_sql(&system, "SELECT count(*) FROM tenants.audit_events");
    /* a refused change writes nothing */
    cc_req_t *r = call(A_ADMIN, MSP_A, MSP_A, "PATCH", "/api/v1/tenants/" CUST_A1,
                       "{\"name\": \"顧客会社B\"}");
    assert_int_equal(r->status, 409);
    cc_req_free(r);
    assert_int_equal(count_sql(&system, "SELECT count(*) FROM tenants.audit_events"), before);
    r = call(A_ADMIN, MSP_A, MSP_A, "PATCH", "/api/v1/tenants/" CUST_A1,
             "{\"name\": \"顧客会社Z\"}");
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    assert_int_equal(count_sql(&system, "SELECT count(*) FROM tenants.audit_events"
                                        " WHERE action = 'tenant.renamed' AND actor_id = '" A_ADMIN
                                        "' AND details->>'to' = '顧客会社Z'"),
                     1);
    assert_int_equal(count_sql(&system, "SELECT count(*) FROM tenants.outbox"
                                        " WHERE type = 'tenant.renamed'"),
                     1);
}

/* After every lifecycle step of the tests above (creates, suspends, deletes, purges),
 * the counters the lists read agree with a real count. */
static void test_child_counters_agree_with_a_count(void **state)
{
    (void)state;
    const cc_scope_t system = {.system = true};
    /* leave one customer suspended and one in the recycle bin */
    cc_req_t *r = call(A_ADMIN, MSP_A, MSP_A, "POST", "/api/v1/tenants/" CUST_A2 "/suspend", NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    r = call(A_ADMIN, MSP_A, MSP_A, "POST", "/api/v1/tenants",
             "{\"name\": \"Binned\", \"kind\": \"customer\", \"parent_id\": \"" MSP_A "\"}");
    assert_int_equal(r->status, 201);
    json_t *t = json_loads(r->res_body.data, 0, NULL);
    char *path = cc_aprintf("/api/v1/tenants/%s?confirm=Binned",
                            json_string_value(json_object_get(t, "id")));
    json_decref(t);
    cc_req_free(r);
    r = call(A_ADMIN, MSP_A, MSP_A, "DELETE", path, NULL);
    assert_int_equal(r->status, 202);
    cc_req_free(r);
    free(path);
    assert_int_equal(count_sql(&system, "SELECT children_active * 100 + children_suspended * 10"
                                        " + children_deleted FROM tenants.tenants"
                                        " WHERE id = '" MSP_A "'"),
                     111);
    assert_int_equal(count_sql(&system,
                               "SELECT count(*) FROM tenants.tenants p WHERE"
                               " children_active <> (SELECT count(*) FROM tenants.tenants c"
                               "   WHERE c.parent_id = p.id AND c.status = 'active')"
                               " OR children_suspended <> (SELECT count(*) FROM tenants.tenants c"
                               "   WHERE c.parent_id = p.id AND c.status = 'suspended')"
                               " OR children_deleted <> (SELECT count(*) FROM tenants.tenants c"
                               "   WHERE c.parent_id = p.id AND c.status = 'deleted')"),
                     0);
}

/* A cached caller sees a suspension at once: the status trigger NOTIFYs console_authz
 * and the listener clears the cache (the cache would otherwise hold for a minute). */
static void test_notify_clears_the_authorization_cache(void **state)
{
    (void)state;
    cc_authz_set_cache_ms(60000);
    assert_int_equal(cc_authz_listen_start(url), 0);
    cc_pool_t *pool = cc_pool_new();
    assert_string_equal(authz_of(pool, A1_ADMIN, CUST_A1, MSP_A)->home_status, "active");
    /* give the listener its LISTEN before the change (it clears the cache when it starts) */
    for (int i = 0; i < 50; i++) {
        usleep(20000);
        assert_string_equal(authz_of(pool, A1_ADMIN, CUST_A1, MSP_A)->home_status, "active");
    }
    static const cc_stmt_t suspend =
        CC_STMT("t_suspend_a1",
                "UPDATE tenants.tenants SET status = 'suspended' WHERE id = '" CUST_A1 "'", 0);
    static const cc_stmt_t resume = CC_STMT(
        "t_resume_a1", "UPDATE tenants.tenants SET status = 'active' WHERE id = '" CUST_A1 "'", 0);
    const cc_scope_t system = {.system = true};
    assert_int_equal(cc_db_begin(db, &system), 0);
    assert_int_equal(cc_db_query(db, pool, &suspend, NULL, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);
    const char *seen = "active";
    for (int i = 0; i < 500 && strcmp(seen, "active") == 0; i++) { /* up to 10 s */
        usleep(20000);
        seen = authz_of(pool, A1_ADMIN, CUST_A1, MSP_A)->home_status;
    }
    assert_string_equal(seen, "suspended");
    assert_int_equal(cc_db_begin(db, &system), 0);
    assert_int_equal(cc_db_query(db, pool, &resume, NULL, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);
    cc_authz_listen_stop();
    cc_authz_set_cache_ms(0);
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unscoped_select_sees_only_the_callers_tree),
        cmocka_unit_test(test_authz_permissions),
        cmocka_unit_test(test_suspended_home_refuses_every_request),
        cmocka_unit_test(test_purge_ends_the_recycle_bin),
        cmocka_unit_test(test_changes_are_audited_in_the_same_transaction),
        cmocka_unit_test(test_child_counters_agree_with_a_count),
        cmocka_unit_test(test_notify_clears_the_authorization_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
