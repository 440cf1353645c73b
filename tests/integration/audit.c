/* Audit records: written in the caller's transaction, attributed to the real actor,
 * visible only within the actor's tree; and the housekeeping that prunes old rows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "console/audit.h"
#include "console/housekeeping.h"
#include "console/migrate.h"
#include "testdb.h"

static char *url;
static cc_db_t *db;

#define MSP_A "0190f000-0000-7000-8000-00000000000a"
#define MSP_B "0190f000-0000-7000-8000-00000000000b"

static const cc_stmt_t q_count = CC_STMT("t_audit_count", "SELECT count(*) FROM audit_events", 0);
static const cc_stmt_t q_row =
    CC_STMT("t_audit_row",
            "SELECT actor_id, actor_kind, acting_as, action, target_id, request_id,"
            " details->>'name' FROM audit_events WHERE target_id = $1",
            1);

static int setup(void **state)
{
    url = testdb_create("audit");
    assert_int_equal(cc_db_open(url, "test", "tenants, public", &db), 0);
    int applied = 0;
    assert_int_equal(cc_migrate_apply(db, cc_migrations_embedded, "tenants", "tenants", &applied),
                     0);
    return 0;
}

static int teardown(void **state)
{
    cc_db_close(db);
    testdb_drop(url);
    free(url);
    return 0;
}

static cc_req_t *fake_req(cc_pool_t *pool, cc_principal_t *p)
{
    cc_req_t *req = cc_pool_alloc(pool, sizeof(*req));
    req->pool = pool;
    req->db = db;
    req->principal = p;
    req->request_id = "req-audit-1";
    return req;
}

static long count_as(const cc_scope_t *scope)
{
    cc_pool_t *pool = cc_pool_new();
    PGresult *res;
    assert_int_equal(cc_db_begin(db, scope), 0);
    assert_int_equal(cc_db_query(db, pool, &q_count, NULL, &res), 0);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    cc_db_rollback(db);
    cc_pool_free(pool);
    return n;
}

static void test_commit_and_attribution(void **state)
{
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t p = {
        .kind = CC_PRINCIPAL_USER, .sub = "tenant-admin-1", .act_sub = "msp-user-7"};
    cc_req_t *req = fake_req(pool, &p);
    json_t *details = json_pack("{s:s}", "name", "顧客会社A");
    cc_audit_t a = {.action = "tenant.renamed",
                    .target_type = "tenant",
                    .target_id = "t-1",
                    .tenant_id = MSP_A,
                    .msp_id = MSP_A,
                    .details = details};
    cc_scope_t scope = {.msp_id = MSP_A, .tenant_id = MSP_A};
    assert_int_equal(cc_audit_write(req, &a), CC_EINVAL); /* no transaction */
    assert_int_equal(cc_db_begin(db, &scope), 0);
    assert_int_equal(cc_audit_write(req, &a), 0);
    assert_int_equal(cc_db_commit(db), 0);
    json_decref(details);

    PGresult *res;
    const char *params[] = {"t-1"};
    cc_scope_t system = {.system = true};
    assert_int_equal(cc_db_begin(db, &system), 0);
    assert_int_equal(cc_db_query(db, pool, &q_row, params, &res), 0);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "msp-user-7"); /* the real actor */
    assert_string_equal(PQgetvalue(res, 0, 1), "user");
    assert_string_equal(PQgetvalue(res, 0, 2), "tenant-admin-1"); /* acting as */
    assert_string_equal(PQgetvalue(res, 0, 3), "tenant.renamed");
    assert_string_equal(PQgetvalue(res, 0, 5), "req-audit-1");
    assert_string_equal(PQgetvalue(res, 0, 6), "顧客会社A");
    cc_db_rollback(db);
    cc_pool_free(pool);
}

static void test_rollback_leaves_nothing(void **state)
{
    cc_scope_t system = {.system = true};
    long before = count_as(&system);
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t p = {.kind = CC_PRINCIPAL_API_CLIENT, .sub = "client-1"};
    cc_req_t *req = fake_req(pool, &p);
    cc_audit_t a = {.action = "tenant.created", .target_id = "t-2", .msp_id = MSP_A};
    cc_scope_t scope = {.msp_id = MSP_A};
    assert_int_equal(cc_db_begin(db, &scope), 0);
    assert_int_equal(cc_audit_write(req, &a), 0);
    cc_db_rollback(db);
    assert_int_equal(count_as(&system), before);
    cc_pool_free(pool);
}

static void test_other_tree_cannot_read_or_forge(void **state)
{
    cc_scope_t a = {.msp_id = MSP_A}, b = {.msp_id = MSP_B}, system = {.system = true};
    cc_scope_t platform = {.msp_id = MSP_B, .platform = true};
    long all = count_as(&system);
    assert_true(all >= 1);
    assert_int_equal(count_as(&platform), all);
    assert_int_equal(count_as(&a), all);
    assert_int_equal(count_as(&b), 0);

    /* a caller of tree B cannot write a record into tree A */
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t p = {.kind = CC_PRINCIPAL_USER, .sub = "user-b"};
    cc_req_t *req = fake_req(pool, &p);
    cc_audit_t forged = {.action = "tenant.deleted", .target_id = "t-3", .msp_id = MSP_A};
    assert_int_equal(cc_db_begin(db, &b), 0);
    assert_int_equal(cc_audit_write(req, &forged), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "42501"); /* insufficient_privilege: RLS */
    cc_db_rollback(db);
    cc_pool_free(pool);
}

/*
 * Housekeeping: audit records older than their retention, outbox events older than
 * theirs and idempotency keys past 24 hours are removed by the service's job; newer
 * rows stay.
 */
static void test_housekeeping_removes_old_rows(void **state)
{
    (void)state;
    static const cc_stmt_t q_old[] = {
        CC_STMT("t_hk_old_audit",
                "INSERT INTO audit_events (id, at, action, msp_id, tenant_id) VALUES"
                " (gen_random_uuid(), now() - interval '500 days', 'test.ancient', '" MSP_A
                "', '" MSP_A "'),"
                " (gen_random_uuid(), now() - interval '10 days', 'test.recent', '" MSP_A
                "', '" MSP_A "')",
                0),
        CC_STMT("t_hk_old_outbox",
                "INSERT INTO outbox (type, payload, created_at) VALUES"
                " ('test.ancient', '{}', now() - interval '8 days'),"
                " ('test.recent', '{}', now() - interval '6 days')",
                0),
        CC_STMT("t_hk_old_idem",
                "INSERT INTO idempotency_keys (principal_id, key, request_hash, status, body,"
                " created_at) VALUES ('p', 'ancient', 'h', 201, '{}', now() - interval '26 hours'),"
                " ('p', 'recent', 'h', 201, '{}', now() - interval '23 hours')",
                0),
    };
    static const cc_stmt_t q_left =
        CC_STMT("t_hk_left",
                "SELECT (SELECT count(*) FROM audit_events WHERE action = 'test.ancient')"
                " + (SELECT count(*) FROM outbox WHERE type = 'test.ancient')"
                " + (SELECT count(*) FROM idempotency_keys WHERE key = 'ancient'),"
                " (SELECT count(*) FROM audit_events WHERE action = 'test.recent')"
                " + (SELECT count(*) FROM outbox WHERE type = 'test.recent')"
                " + (SELECT count(*) FROM idempotency_keys WHERE key = 'recent')",
                0);
    const cc_scope_t system = {.system = true};
    cc_pool_t *pool = cc_pool_new();
    assert_int_equal(cc_db_begin(db, &system), 0);
    for (size_t i = 0; i < sizeof(q_old) / sizeof(q_old[0]); i++)
        assert_int_equal(cc_db_query(db, pool, &q_old[i], NULL, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);
    const cc_housekeeping_t settings = {.audit_days = 400, .outbox_days = 7};
    assert_int_equal(cc_housekeeping_start(url, "tenants, public", &settings), 0);
    long ancient = 3, recent = 0;
    for (int i = 0; i < 500 && ancient != 0; i++) { /* up to 10 s */
        usleep(20000);
        PGresult *res;
        assert_int_equal(cc_db_read(db, pool, &system, &q_left, NULL, &res), 0);
        ancient = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        recent = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    }
    cc_housekeeping_stop();
    assert_int_equal(ancient, 0);
    assert_int_equal(recent, 3);
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_housekeeping_removes_old_rows),
        cmocka_unit_test(test_commit_and_attribution),
        cmocka_unit_test(test_rollback_leaves_nothing),
        cmocka_unit_test(test_other_tree_cannot_read_or_forge),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
