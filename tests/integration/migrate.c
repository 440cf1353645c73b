/* Integration tests for common/migrate.c against a throwaway PostgreSQL database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "console/db.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/migrate.h"
#include "testdb.h"

static char *url;
#define ADVISORY_LOCKS                                                                             \
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "                    \
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
static PGconn *check; /* plain libpq connection for looking at the results */

#define M(set, name, sql)                                                                          \
    {                                                                                              \
        (set), (name), (sql), sizeof(sql) - 1                                                      \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, NULL, NULL, 0                                                                        \
    }

static const char things_sql[] =
    "CREATE TABLE @schema@.things (id int PRIMARY KEY, owner text NOT NULL DEFAULT '@schema@');\n"
    "CREATE FUNCTION @schema@.whoami() RETURNS text LANGUAGE sql AS $$ SELECT '@schema@'::text $$;";
static const char things_changed_sql[] =
    "CREATE TABLE @schema@.things (id bigint PRIMARY KEY, owner text NOT NULL DEFAULT '@schema@');"
    "\nCREATE FUNCTION @schema@.whoami() RETURNS text LANGUAGE sql AS $$ SELECT '@schema@'::text "
    "$$;";
/* unqualified: the migration runs with search_path = <schema>, public */
static const char widgets_sql[] = "CREATE TABLE widgets (id int PRIMARY KEY);";
static const char fill_sql[] = "INSERT INTO widgets VALUES (1), (2);";
static const char bad_sql[] =
    "CREATE TABLE partial_t (id int); INSERT INTO partial_t VALUES (1); SELECT 1/0;";
static const char good_sql[] = "CREATE TABLE partial_t (id int);";
static const char slow_sql[] = "CREATE TABLE slow_t (id int); SELECT pg_sleep(0.3);";

static const cc_migration_t base[] = {
    M("common", "0001_things", things_sql),
    M("svc", "0001_widgets", widgets_sql),
    M("svc", "0002_fill", fill_sql),
    M("other", "0001_ignored", bad_sql), /* another set: never applied here */
    END,
};

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL), 1);
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The single value of sql (with up to one text parameter) or NULL; caller frees. */
static char *scalar(const char *sql, const char *p1)
{
    const char *p[1] = {p1};
    PGresult *r = PQexecParams(check, sql, p1 ? 1 : 0, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(check));
        fail();
    }
    char *v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

static void assert_scalar(const char *sql, const char *p1, const char *want)
{
    char *v = scalar(sql, p1);
    if (want == NULL)
        assert_null(v);
    else
        assert_string_equal(v, want);
    free(v);
}

static cc_db_t *open_db(void)
{
    cc_db_t *db = NULL;
    assert_int_equal(cc_db_open(url, "test-migrate", NULL, &db), 0);
    return db;
}

static int setup(void **state)
{
    (void)state;
    cc_log_init("test-migrate", CC_LOG_WARN);
    url = testdb_create("migrate");
    check = PQconnectdb(url);
    return PQstatus(check) == CONNECTION_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    PQfinish(check);
    testdb_drop(url);
    free(url);
    return 0;
}

static void test_apply_twice(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    int n = -1;
    assert_int_equal(cc_migrate_apply(db, base, "mig_a", "svc", &n), 0);
    assert_int_equal(n, 3);
    assert_scalar("SELECT mig_a.whoami()", NULL, "mig_a");
    assert_scalar(
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_schema = 'mig_a' AND table_name = 'things' AND column_name = 'owner'",
        NULL, "'mig_a'::text");
    assert_scalar("SELECT count(*) FROM mig_a.widgets", NULL, "2");
    assert_scalar("SELECT string_agg(version || ' ' || name, ',' ORDER BY version) "
                  "FROM public.console_migrations WHERE schema_name = $1",
                  "mig_a",
                  "common/0001_things 0001_things,svc/0001_widgets 0001_widgets,"
                  "svc/0002_fill 0002_fill");
    assert_scalar("SELECT count(*) FROM public.console_migrations WHERE applied_at IS NULL", NULL,
                  "0");

    /* checksums: SHA-256 of the SQL after @schema@ substitution */
    char want[65];
    char *subst = cc_strdup(things_sql);
    for (char *p; (p = strstr(subst, "@schema@")) != NULL;) {
        char *next = cc_aprintf("%.*smig_a%s", (int)(p - subst), subst, p + 8);
        free(subst);
        subst = next;
    }
    sha256_hex(subst, want);
    free(subst);
    assert_scalar("SELECT checksum FROM public.console_migrations "
                  "WHERE schema_name = 'mig_a' AND version = $1",
                  "common/0001_things", want);
    sha256_hex(widgets_sql, want);
    assert_scalar("SELECT checksum FROM public.console_migrations "
                  "WHERE schema_name = 'mig_a' AND version = $1",
                  "svc/0001_widgets", want);

    /* second run: nothing to do */
    n = -1;
    assert_int_equal(cc_migrate_apply(db, base, "mig_a", "svc", &n), 0);
    assert_int_equal(n, 0);
    assert_scalar("SELECT count(*) FROM mig_a.widgets", NULL, "2");

    /* another schema gets its own copy of the common set */
    assert_int_equal(cc_migrate_apply(db, base, "mig_b", "svc", &n), 0);
    assert_int_equal(n, 3);
    assert_scalar("SELECT mig_b.whoami()", NULL, "mig_b");
    /* the "common" set alone */
    assert_int_equal(cc_migrate_apply(db, base, "mig_common", "common", &n), 0);
    assert_int_equal(n, 1);
    assert_scalar("SELECT to_regclass('mig_common.widgets')::text", NULL, NULL);
    /* the advisory lock is released */
    assert_scalar(ADVISORY_LOCKS, NULL, "0");
    cc_db_close(db);
}

static void test_checksum_change_is_refused(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    const cc_migration_t first[] = {M("common", "0001_things", things_sql),
                                    M("svc", "0001_widgets", widgets_sql), END};
    int n = -1;
    assert_int_equal(cc_migrate_apply(db, first, "mig_sum", "svc", &n), 0);
    assert_int_equal(n, 2);
    const cc_migration_t changed[] = {M("common", "0001_things", things_changed_sql),
                                      M("svc", "0001_widgets", widgets_sql),
                                      M("svc", "0002_fill", fill_sql), END};
    assert_int_equal(cc_migrate_apply(db, changed, "mig_sum", "svc", &n), CC_ECONFLICT);
    assert_int_equal(n, 0);
    assert_scalar("SELECT count(*) FROM public.console_migrations WHERE schema_name = $1",
                  "mig_sum", "2");
    const cc_migration_t changed_svc[] = {M("common", "0001_things", things_sql),
                                          M("svc", "0001_widgets", fill_sql), END};
    assert_int_equal(cc_migrate_apply(db, changed_svc, "mig_sum", "svc", &n), CC_ECONFLICT);
    assert_scalar(ADVISORY_LOCKS, NULL, "0");
    cc_db_close(db);
}

static void test_failing_migration_rolls_back(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    const cc_migration_t bad[] = {M("common", "0001_things", things_sql),
                                  M("svc", "0001_widgets", widgets_sql),
                                  M("svc", "0002_partial", bad_sql), END};
    int n = -1;
    assert_int_equal(cc_migrate_apply(db, bad, "mig_f", "svc", &n), CC_EDB);
    assert_int_equal(n, 2);
    assert_string_equal(cc_db_sqlstate(db), "22012"); /* division_by_zero */
    assert_false(cc_db_in_tx(db));
    assert_scalar("SELECT to_regclass('mig_f.partial_t')::text", NULL, NULL);
    assert_scalar("SELECT count(*) FROM public.console_migrations WHERE schema_name = $1", "mig_f",
                  "2");
    assert_scalar(ADVISORY_LOCKS, NULL, "0");
    /* fixed by the next binary: applies */
    const cc_migration_t good[] = {M("common", "0001_things", things_sql),
                                   M("svc", "0001_widgets", widgets_sql),
                                   M("svc", "0002_partial", good_sql), END};
    assert_int_equal(cc_migrate_apply(db, good, "mig_f", "svc", &n), 0);
    assert_int_equal(n, 1);
    assert_scalar("SELECT to_regclass('mig_f.partial_t')::text", NULL, "mig_f.partial_t");
    cc_db_close(db);
}

static void test_unknown_applied_version_warns(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    int n = -1;
    assert_int_equal(cc_migrate_apply(db, base, "mig_u", "svc", &n), 0);
    assert_int_equal(n, 3);
    /* an older binary knows only the first two */
    const cc_migration_t older[] = {M("common", "0001_things", things_sql),
                                    M("svc", "0001_widgets", widgets_sql), END};
    FILE *log = tmpfile();
    assert_non_null(log);
    cc_log_set_fd(fileno(log));
    int rc = cc_migrate_apply(db, older, "mig_u", "svc", &n);
    cc_log_set_fd(-1);
    assert_int_equal(rc, 0);
    assert_int_equal(n, 0);
    char buf[4096] = {0};
    rewind(log);
    size_t len = fread(buf, 1, sizeof(buf) - 1, log);
    fclose(log);
    buf[len] = '\0';
    assert_non_null(strstr(buf, "\"level\":\"warn\""));
    assert_non_null(strstr(buf, "\"migration\":\"svc/0002_fill\""));
    assert_null(strstr(buf, "svc/0001_widgets"));
    cc_db_close(db);
}

static void test_invalid_names(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    int n = -1;
    static const char *bad[] = {
        "Bad",       "1abc",
        "a-b",       "",
        "a b",       "x;drop",
        "pg_temp_x", "a234567890123456789012345678901234567890123456789012345678901234",
        "select",    "user"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cc_migrate_apply(db, base, bad[i], "svc", &n), CC_EINVAL);
    assert_int_equal(cc_migrate_apply(db, base, NULL, "svc", &n), CC_EINVAL);
    assert_int_equal(cc_migrate_apply(db, base, "ok", "Svc", &n), CC_EINVAL);
    assert_int_equal(cc_migrate_apply(db, base, "ok", NULL, &n), CC_EINVAL);
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_migrate_apply(db, base, "ok", "svc", &n), CC_EINVAL);
    cc_db_rollback(db);
    assert_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'ok'", NULL, "0");
    cc_db_close(db);
}

typedef struct racer {
    pthread_barrier_t *start;
    int rc, applied;
} racer_t;

static const cc_migration_t slow_set[] = {M("common", "0001_things", things_sql),
                                          M("race", "0001_slow", slow_sql),
                                          M("race", "0002_widgets", widgets_sql), END};

static void *race(void *arg)
{
    racer_t *r = arg;
    cc_db_t *db = NULL;
    r->rc = cc_db_open(url, "test-migrate-race", NULL, &db);
    pthread_barrier_wait(r->start);
    if (r->rc == 0)
        r->rc = cc_migrate_apply(db, slow_set, "mig_race", "race", &r->applied);
    cc_db_close(db);
    return NULL;
}

static void test_concurrent_apply_serializes(void **state)
{
    (void)state;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    racer_t r[2] = {{.start = &start, .applied = -1}, {.start = &start, .applied = -1}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    assert_int_equal(r[0].rc, 0);
    assert_int_equal(r[1].rc, 0);
    assert_int_equal(r[0].applied + r[1].applied, 3);
    assert_true(r[0].applied == 0 || r[1].applied == 0);
    assert_scalar("SELECT count(*) FROM public.console_migrations WHERE schema_name = $1",
                  "mig_race", "3");
}

static void test_embedded_set(void **state)
{
    (void)state;
    cc_db_t *db = open_db();
    int n = -1;
    assert_int_equal(cc_migrate_apply(db, cc_migrations_embedded, "tenants", "tenants", &n), 0);
    assert_true(n >= 1);
    assert_scalar("SELECT to_regclass('tenants.outbox')::text", NULL, "tenants.outbox");
    assert_scalar("SELECT to_regclass('tenants.outbox_positions')::text", NULL,
                  "tenants.outbox_positions");
    assert_scalar("SELECT to_regclass('tenants.audit_events')::text", NULL, "tenants.audit_events");
    assert_scalar("SELECT to_regclass('tenants.audit_events_tenant_at')::text", NULL,
                  "tenants.audit_events_tenant_at");
    assert_scalar("SELECT count(*) FROM public.console_migrations "
                  "WHERE schema_name = 'tenants' AND version = $1",
                  "common/0001_outbox", "1");
    assert_int_equal(cc_migrate_apply(db, cc_migrations_embedded, "tenants", "tenants", &n), 0);
    assert_int_equal(n, 0);
    cc_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_twice),
        cmocka_unit_test(test_checksum_change_is_refused),
        cmocka_unit_test(test_failing_migration_rolls_back),
        cmocka_unit_test(test_unknown_applied_version_warns),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_concurrent_apply_serializes),
        cmocka_unit_test(test_embedded_set),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
