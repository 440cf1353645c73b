/* Integration tests for common/db.c against a throwaway PostgreSQL database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "console/db.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/mem.h"
#include "testdb.h"

static char *url;
static cc_db_t *admin; /* a second connection: terminates the first, sees its commits */

static const cc_stmt_t echo_stmt = CC_STMT("t_echo", "SELECT $1::text, $2::int + 1", 2);
static const cc_stmt_t is_null_stmt = CC_STMT("t_is_null", "SELECT $1::text IS NULL, $1::text", 1);
static const cc_stmt_t note_insert_stmt =
    CC_STMT("t_note_insert", "INSERT INTO notes (body) VALUES ($1)", 1);
static const cc_stmt_t note_get_stmt =
    CC_STMT("t_note_get", "SELECT body FROM notes WHERE body = $1", 1);
static const cc_stmt_t note_count_stmt = CC_STMT("t_note_count", "SELECT count(*) FROM notes", 0);
static const cc_stmt_t key_insert_stmt = CC_STMT("t_key_insert", "INSERT INTO keys VALUES ($1)", 1);
static const cc_stmt_t setting_stmt = CC_STMT("t_setting",
                                              "SELECT current_setting('console.tenant_id', true), "
                                              "current_setting('console.msp_id', true), "
                                              "current_setting('console.principal_id', true), "
                                              "current_setting('console.system', true)",
                                              0);
static const cc_stmt_t terminate_stmt =
    CC_STMT("t_terminate", "SELECT pg_terminate_backend($1::int, 5000)", 1);
static const cc_stmt_t pid_stmt = CC_STMT("t_pid", "SELECT pg_backend_pid()", 0);
static const cc_stmt_t doc_insert_stmt =
    CC_STMT("t_doc_insert", "INSERT INTO docs (tenant_id, body) VALUES ($1, $2)", 2);
static const cc_stmt_t doc_list_stmt =
    CC_STMT("t_doc_list", "SELECT tenant_id, body FROM docs ORDER BY body", 0);
static const cc_stmt_t prepared_stmt =
    CC_STMT("t_prepared", "SELECT count(*) FROM pg_prepared_statements WHERE name = $1", 1);
static const cc_stmt_t sleep_stmt = CC_STMT("t_sleep", "SELECT pg_sleep(2)", 0);
static const cc_stmt_t wrong_count_stmt = CC_STMT("t_wrong_count", "SELECT $1::int + $2::int", 1);
static const cc_stmt_t bench_stmt = CC_STMT("t_bench", "SELECT $1::int", 1);
static const cc_stmt_t pair_insert_stmt =
    CC_STMT("t_pair_insert", "INSERT INTO pairs VALUES ($1)", 1);

static cc_db_t *open_db(void)
{
    cc_db_t *db = NULL;
    assert_int_equal(cc_db_open(url, "test-db", "public", &db), 0);
    assert_non_null(db);
    return db;
}

static int backend_pid(cc_db_t *db)
{
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    assert_int_equal(cc_db_query(db, pool, &pid_stmt, NULL, &r), 0);
    int pid = atoi(cc_db_get(r, 0, 0));
    cc_pool_free(pool);
    return pid;
}

/* Kills db's backend from the admin connection and waits until it has exited. */
static void terminate(cc_db_t *db)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", PQbackendPID(cc_db_conn(db)));
    const char *p[1] = {pid};
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    assert_int_equal(cc_db_query(admin, pool, &terminate_stmt, p, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), "t");
    cc_pool_free(pool);
}

static long count_notes(cc_db_t *db)
{
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    assert_int_equal(cc_db_query(db, pool, &note_count_stmt, NULL, &r), 0);
    long n = atol(cc_db_get(r, 0, 0));
    cc_pool_free(pool);
    return n;
}

static int setup(void **state)
{
    (void)state;
    cc_log_init("test-db", CC_LOG_WARN);
    url = testdb_create("db");
    admin = NULL;
    if (cc_db_open(url, "test-db-admin", "public", &admin) != 0)
        return -1;
    const char *ddl = "CREATE TABLE notes (id serial PRIMARY KEY, body text);"
                      "CREATE TABLE keys (k text PRIMARY KEY);"
                      "CREATE TABLE pairs (k text UNIQUE DEFERRABLE INITIALLY DEFERRED);"
                      "CREATE TABLE docs (tenant_id text NOT NULL, body text NOT NULL);"
                      "ALTER TABLE docs ENABLE ROW LEVEL SECURITY;"
                      "ALTER TABLE docs FORCE ROW LEVEL SECURITY;"
                      "CREATE POLICY docs_tenant ON docs "
                      "USING (tenant_id = current_setting('console.tenant_id', true))";
    return cc_db_exec(admin, ddl) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cc_db_close(admin);
    testdb_drop(url);
    free(url);
    return 0;
}

static void test_query_with_params(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    const char *p[2] = {"héllo", "41"};
    assert_int_equal(cc_db_query(db, pool, &echo_stmt, p, &r), 0);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(cc_db_get(r, 0, 0), "héllo");
    assert_string_equal(cc_db_get(r, 0, 1), "42");
    assert_null(cc_db_get(r, 1, 0));             /* out of range */
    assert_string_equal(cc_db_sqlstate(db), ""); /* no failure yet */
    /* the same statement again: already prepared on this connection */
    p[1] = "1";
    assert_int_equal(cc_db_query(db, pool, &echo_stmt, p, NULL), 0);
    assert_false(cc_db_in_tx(db));
    cc_pool_free(pool);
    cc_db_close(db);
}

static void test_metacharacters_are_data(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    static const char *values[] = {"'; DROP TABLE notes; --", "\\x00 \\' \" $1 $$ E'\\n'",
                                   "Robert'); DELETE FROM notes; --", "顧客 🏢 ' \" ;"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(values); i++) {
        const char *p[1] = {values[i]};
        assert_int_equal(cc_db_query(db, pool, &note_insert_stmt, p, NULL), 0);
        PGresult *r = NULL;
        assert_int_equal(cc_db_query(db, pool, &note_get_stmt, p, &r), 0);
        assert_int_equal(PQntuples(r), 1);
        assert_string_equal(cc_db_get(r, 0, 0), values[i]);
    }
    assert_true(count_notes(db) >= (long)CC_ARRAY_SIZE(values)); /* the table still exists */
    cc_pool_free(pool);
    cc_db_close(db);
}

static void test_null_params(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    const char *p[1] = {NULL};
    assert_int_equal(cc_db_query(db, pool, &is_null_stmt, p, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), "t");
    assert_null(cc_db_get(r, 0, 1));
    p[0] = "";
    assert_int_equal(cc_db_query(db, pool, &is_null_stmt, p, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), "f");
    assert_string_equal(cc_db_get(r, 0, 1), "");
    cc_pool_free(pool);
    cc_db_close(db);
}

static void test_unique_violation(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    const char *p[1] = {"dup"};
    assert_int_equal(cc_db_query(db, NULL, &key_insert_stmt, p, NULL), 0);
    PGresult *r = (PGresult *)1;
    assert_int_equal(cc_db_query(db, NULL, &key_insert_stmt, p, &r), CC_EDB);
    assert_null(r);
    assert_string_equal(cc_db_sqlstate(db), "23505");
    assert_true(strlen(cc_db_errmsg(db)) > 0);
    /* the connection is still usable; the last failure stays readable */
    p[0] = "other";
    assert_int_equal(cc_db_query(db, NULL, &key_insert_stmt, p, NULL), 0);
    assert_string_equal(cc_db_sqlstate(db), "23505");
    /* inside a transaction the failure aborts it: commit reports it */
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_db_query(db, NULL, &key_insert_stmt, p, NULL), CC_EDB);
    assert_true(cc_db_in_tx(db));
    assert_int_equal(cc_db_commit(db), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "23505");
    assert_false(cc_db_in_tx(db));
    assert_true(cc_db_ping(db));
    cc_db_close(db);
}

static void test_commit_and_rollback_visibility(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    long before = count_notes(admin);
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_true(cc_db_in_tx(db));
    const char *p[1] = {"in tx"};
    assert_int_equal(cc_db_query(db, NULL, &note_insert_stmt, p, NULL), 0);
    assert_int_equal(count_notes(db), before + 1);
    assert_int_equal(count_notes(admin), before); /* not yet committed */
    assert_int_equal(cc_db_commit(db), 0);
    assert_false(cc_db_in_tx(db));
    assert_int_equal(count_notes(admin), before + 1);

    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_db_query(db, NULL, &note_insert_stmt, p, NULL), 0);
    cc_db_rollback(db);
    assert_false(cc_db_in_tx(db));
    assert_int_equal(count_notes(admin), before + 1);
    assert_int_equal(count_notes(db), before + 1);
    cc_db_rollback(db); /* safe without a transaction */
    assert_int_equal(cc_db_commit(db), CC_EINVAL);
    /* begin inside a transaction is refused */
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_db_begin(db, NULL), CC_EINVAL);
    cc_db_rollback(db);
    cc_db_close(db);
}

static void test_deferred_constraint_fails_at_commit(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    const char *p[1] = {"same"};
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_db_query(db, NULL, &pair_insert_stmt, p, NULL), 0);
    assert_int_equal(cc_db_query(db, NULL, &pair_insert_stmt, p, NULL), 0); /* deferred */
    assert_int_equal(cc_db_commit(db), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "23505");
    assert_false(cc_db_in_tx(db));
    assert_int_equal(PQtransactionStatus(cc_db_conn(db)), PQTRANS_IDLE);
    assert_true(cc_db_ping(db));
    cc_db_close(db);
}

static void test_scope_settings(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    cc_scope_t scope = {.tenant_id = "0190a4f2-0000-7000-8000-000000000001",
                        .msp_id = "0190a4f2-0000-7000-8000-000000000002",
                        .principal_id = "user-1",
                        .system = false};
    assert_int_equal(cc_db_begin(db, &scope), 0);
    assert_int_equal(cc_db_query(db, pool, &setting_stmt, NULL, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), scope.tenant_id);
    assert_string_equal(cc_db_get(r, 0, 1), scope.msp_id);
    assert_string_equal(cc_db_get(r, 0, 2), "user-1");
    assert_string_equal(cc_db_get(r, 0, 3), "off");
    assert_int_equal(cc_db_commit(db), 0);

    /* transaction-local: gone after the commit */
    assert_int_equal(cc_db_query(db, pool, &setting_stmt, NULL, &r), 0);
    for (int c = 0; c < 4; c++) {
        const char *v = cc_db_get(r, 0, c);
        assert_true(v == NULL || *v == '\0');
    }

    cc_scope_t sys = {.system = true};
    assert_int_equal(cc_db_begin(db, &sys), 0);
    assert_int_equal(cc_db_query(db, pool, &setting_stmt, NULL, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), "");
    assert_string_equal(cc_db_get(r, 0, 3), "on");
    cc_db_rollback(db);
    assert_int_equal(cc_db_query(db, pool, &setting_stmt, NULL, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 3), "");

    /* a scope the server refuses (invalid UTF-8): no transaction is left open */
    cc_scope_t bad = {.tenant_id = "\xff\xfe"};
    assert_int_equal(cc_db_begin(db, &bad), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "22021");
    assert_false(cc_db_in_tx(db));
    assert_int_equal(PQtransactionStatus(cc_db_conn(db)), PQTRANS_IDLE);
    assert_int_equal(cc_db_begin(db, &scope), 0);
    assert_int_equal(cc_db_commit(db), 0);
    cc_pool_free(pool);
    cc_db_close(db);
}

/* The role is not a superuser and the table FORCEs RLS: the scope decides what is seen. */
static void test_row_level_security(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    cc_scope_t a = {.tenant_id = "tenant-a"}, b = {.tenant_id = "tenant-b"};

    assert_int_equal(cc_db_begin(db, &a), 0);
    const char *pa1[2] = {"tenant-a", "a1"}, *pa2[2] = {"tenant-a", "a2"};
    assert_int_equal(cc_db_query(db, NULL, &doc_insert_stmt, pa1, NULL), 0);
    assert_int_equal(cc_db_query(db, NULL, &doc_insert_stmt, pa2, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);

    assert_int_equal(cc_db_begin(db, &b), 0);
    const char *pb1[2] = {"tenant-b", "b1"};
    assert_int_equal(cc_db_query(db, NULL, &doc_insert_stmt, pb1, NULL), 0);
    /* writing a row of another tenant is refused by the policy */
    assert_int_equal(cc_db_query(db, NULL, &doc_insert_stmt, pa1, NULL), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "42501");
    cc_db_rollback(db);
    assert_int_equal(cc_db_begin(db, &b), 0);
    assert_int_equal(cc_db_query(db, NULL, &doc_insert_stmt, pb1, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);

    assert_int_equal(cc_db_begin(db, &a), 0);
    assert_int_equal(cc_db_query(db, pool, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(cc_db_get(r, 0, 1), "a1");
    assert_string_equal(cc_db_get(r, 1, 1), "a2");
    assert_int_equal(cc_db_commit(db), 0);

    assert_int_equal(cc_db_begin(db, &b), 0);
    assert_int_equal(cc_db_query(db, pool, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 1);
    assert_string_equal(cc_db_get(r, 0, 1), "b1");
    assert_int_equal(cc_db_commit(db), 0);

    /* without a scope (no transaction settings): nothing */
    assert_int_equal(cc_db_query(db, pool, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 0);
    cc_pool_free(pool);
    cc_db_close(db);
}

/* cc_db_read: the scoped read in one round trip sees what cc_db_begin + query would. */
static void test_read_in_one_round_trip(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    cc_scope_t a = {.tenant_id = "tenant-a"}, b = {.tenant_id = "tenant-b"};
    /* rows written by test_row_level_security: a1, a2 for tenant-a, b1 for tenant-b */
    assert_int_equal(cc_db_read(db, pool, &a, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 2);
    assert_string_equal(cc_db_get(r, 0, 1), "a1");
    assert_int_equal(cc_db_read(db, pool, &b, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 1);
    assert_false(cc_db_in_tx(db));

    /* parameters, metacharacters as data */
    const char *p[2] = {"'; DROP TABLE docs; --", "41"};
    assert_int_equal(cc_db_read(db, pool, NULL, &echo_stmt, p, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), p[0]);
    assert_string_equal(cc_db_get(r, 0, 1), "42");

    /* read only: a write is refused and leaves no transaction behind */
    const char *w[2] = {"tenant-a", "a3"};
    assert_int_equal(cc_db_read(db, pool, &a, &doc_insert_stmt, w, &r), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "25006"); /* read_only_sql_transaction */
    assert_null(r);
    assert_false(cc_db_in_tx(db));
    assert_int_equal(cc_db_read(db, pool, &a, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 2);

    /* a statement error leaves the session usable */
    const char *bad[2] = {"x", "not a number"};
    assert_int_equal(cc_db_read(db, pool, NULL, &echo_stmt, bad, &r), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "22P02");
    assert_false(cc_db_in_tx(db));

    /* refused inside a transaction */
    assert_int_equal(cc_db_begin(db, &a), 0);
    assert_int_equal(cc_db_read(db, pool, &a, &doc_list_stmt, NULL, &r), CC_EINVAL);
    cc_db_rollback(db);

    /* a lost session: reconnected and retried */
    terminate(db);
    assert_int_equal(cc_db_read(db, pool, &b, &doc_list_stmt, NULL, &r), 0);
    assert_int_equal(PQntuples(r), 1);
    cc_pool_free(pool);
    cc_db_close(db);
}

static void test_reconnect_outside_tx(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    const char *p[2] = {"x", "1"};
    assert_int_equal(cc_db_query(db, pool, &echo_stmt, p, NULL), 0);
    int pid = backend_pid(db);
    terminate(db);
    /* the same (prepared) statement succeeds on a new session, prepared again there */
    assert_int_equal(cc_db_query(db, pool, &echo_stmt, p, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 1), "2");
    int pid2 = backend_pid(db);
    assert_int_not_equal(pid, pid2);
    const char *name[1] = {"t_echo"};
    assert_int_equal(cc_db_query(db, pool, &prepared_stmt, name, &r), 0);
    assert_string_equal(cc_db_get(r, 0, 0), "1");
    /* the session settings were applied again */
    assert_string_equal(PQparameterStatus(cc_db_conn(db), "application_name"), "test-db");
    /* a transaction can start right after a loss */
    terminate(db);
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_db_commit(db), 0);
    cc_pool_free(pool);
    cc_db_close(db);
}

static void test_reconnect_inside_tx(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    long before = count_notes(admin);
    assert_int_equal(cc_db_begin(db, NULL), 0);
    const char *p[1] = {"lost"};
    assert_int_equal(cc_db_query(db, NULL, &note_insert_stmt, p, NULL), 0);
    terminate(db);
    assert_int_equal(cc_db_query(db, NULL, &note_insert_stmt, p, NULL), CC_EDBDOWN);
    assert_true(cc_db_in_tx(db));
    /* still refused: nothing of this transaction may run in autocommit */
    assert_int_equal(cc_db_query(db, NULL, &note_insert_stmt, p, NULL), CC_EDBDOWN);
    assert_int_equal(cc_db_commit(db), CC_EDBDOWN);
    assert_false(cc_db_in_tx(db));
    assert_int_equal(count_notes(db), before); /* reconnected; the insert is gone */

    /* the usual path: the caller rolls back after CC_EDBDOWN */
    assert_int_equal(cc_db_begin(db, NULL), 0);
    terminate(db);
    assert_int_equal(cc_db_query(db, NULL, &note_count_stmt, NULL, NULL), CC_EDBDOWN);
    cc_db_rollback(db);
    assert_false(cc_db_in_tx(db));
    assert_int_equal(count_notes(db), before);
    cc_db_close(db);
}

static void test_ping(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    assert_true(cc_db_ping(db));
    terminate(db);
    assert_true(cc_db_ping(db)); /* reconnects */
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_true(cc_db_ping(db));
    terminate(db);
    assert_false(cc_db_ping(db)); /* the transaction's session is gone */
    cc_db_rollback(db);
    assert_true(cc_db_ping(db));
    cc_db_close(db);

    /* unreachable: the object exists, calls fail fast with CC_EDBDOWN */
    cc_db_t *down = NULL;
    assert_int_equal(
        cc_db_open("postgresql:///nodb?host=/nonexistent-dir&port=5432", "test", NULL, &down),
        CC_EDBDOWN);
    assert_non_null(down);
    assert_false(cc_db_ping(down));
    assert_int_equal(cc_db_exec(down, "SELECT 1"), CC_EDBDOWN);
    assert_int_equal(cc_db_begin(down, NULL), CC_EDBDOWN);
    assert_false(cc_db_in_tx(down));
    assert_true(strlen(cc_db_errmsg(down)) > 0);
    cc_db_close(down);
    cc_db_close(NULL);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    cc_db_t *db = NULL;
    assert_int_equal(cc_db_open(url, "x", "public; DROP TABLE notes", &db), CC_EINVAL);
    assert_null(db);
    assert_int_equal(cc_db_open(url, "x", "Public", &db), CC_EINVAL);
    assert_int_equal(cc_db_open(url, "x", "a,,b", &db), CC_EINVAL);
    assert_int_equal(cc_db_open(url, "x", "", &db), CC_EINVAL);
    assert_int_equal(cc_db_open("postgresql://[bad", "x", NULL, &db), CC_EINVAL);
    assert_int_equal(cc_db_open(url, "x", "tenants, public", &db), 0);
    assert_int_equal(cc_db_query(db, NULL, &wrong_count_stmt, (const char *[]){"1"}, NULL),
                     CC_EINVAL);
    /* refused again without a round trip, and the connection is fine */
    assert_int_equal(cc_db_query(db, NULL, &wrong_count_stmt, (const char *[]){"1"}, NULL),
                     CC_EINVAL);
    cc_stmt_t same_name = CC_STMT("t_echo", "SELECT 1", 0);
    assert_int_equal(cc_db_query(db, NULL, &echo_stmt, (const char *[]){"a", "1"}, NULL), 0);
    assert_int_equal(cc_db_query(db, NULL, &same_name, NULL, NULL), CC_EINVAL);
    assert_int_equal(cc_db_exec(db, "SELEC 1"), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "42601");
    assert_true(cc_db_ping(db));
    cc_db_close(db);
}

static void test_statement_timeout(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    assert_int_equal(cc_db_set_statement_timeout_ms(db, 50), 0);
    assert_int_equal(cc_db_query(db, NULL, &sleep_stmt, NULL, NULL), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "57014");
    /* kept across a reconnect */
    terminate(db);
    assert_int_equal(cc_db_query(db, NULL, &sleep_stmt, NULL, NULL), CC_EDB);
    assert_string_equal(cc_db_sqlstate(db), "57014");
    assert_int_equal(cc_db_set_statement_timeout_ms(db, -1), CC_EINVAL);
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_db_set_statement_timeout_ms(db, 0), CC_EINVAL);
    cc_db_rollback(db);
    assert_int_equal(cc_db_set_statement_timeout_ms(db, 30000), 0);
    assert_string_equal(PQparameterStatus(cc_db_conn(db), "application_name"), "test-db");
    cc_db_close(db);
}

static int count_listen(PGconn *conn, void *arg)
{
    (*(int *)arg)++;
    PGresult *r = PQexec(conn, "LISTEN t_channel");
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(r);
    return rc;
}

static void test_on_connect_hook(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    int calls = 0;
    assert_int_equal(cc_db_set_on_connect(db, count_listen, &calls), 0);
    assert_int_equal(calls, 1);
    terminate(db);
    assert_true(cc_db_ping(db));
    assert_int_equal(calls, 2);
    /* LISTEN is active on the new session */
    assert_int_equal(cc_db_exec(admin, "NOTIFY t_channel, 'hi'"), 0);
    PGnotify *n = NULL;
    for (int i = 0; i < 500 && n == NULL; i++) {
        assert_true(cc_db_ping(db));
        n = PQnotifies(cc_db_conn(db));
        if (n == NULL)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    assert_non_null(n);
    assert_string_equal(n->extra, "hi");
    PQfreemem(n);
    cc_db_close(db);
}

static double elapsed_us(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

/* Not an assertion: prints the cost of a prepared round trip and of a short transaction. */
static void test_round_trip_figures(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    const int n = 2000;
    const char *p[1] = {"7"};
    assert_int_equal(cc_db_query(db, NULL, &bench_stmt, p, NULL), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        assert_int_equal(cc_db_query(db, NULL, &bench_stmt, p, NULL), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double q = elapsed_us(&t0, &t1) / n;
    cc_scope_t scope = {.tenant_id = "t", .msp_id = "m", .principal_id = "p"};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(cc_db_begin(db, &scope), 0);
        assert_int_equal(cc_db_query(db, NULL, &bench_stmt, p, NULL), 0);
        assert_int_equal(cc_db_commit(db), 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("# prepared query round trip: %.1f us; begin+scope+query+commit: %.1f us\n", q,
           elapsed_us(&t0, &t1) / n);
    cc_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_with_params),
        cmocka_unit_test(test_metacharacters_are_data),
        cmocka_unit_test(test_null_params),
        cmocka_unit_test(test_unique_violation),
        cmocka_unit_test(test_commit_and_rollback_visibility),
        cmocka_unit_test(test_deferred_constraint_fails_at_commit),
        cmocka_unit_test(test_scope_settings),
        cmocka_unit_test(test_row_level_security),
        cmocka_unit_test(test_read_in_one_round_trip),
        cmocka_unit_test(test_reconnect_outside_tx),
        cmocka_unit_test(test_reconnect_inside_tx),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_statement_timeout),
        cmocka_unit_test(test_on_connect_hook),
        cmocka_unit_test(test_round_trip_figures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
