/* Integration tests for common/outbox.c against a throwaway PostgreSQL database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "console/db.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/migrate.h"
#include "console/outbox.h"
#include "testdb.h"

#define MAX_SEEN 1024
#define CONSUMER_PATH "dst, public"

static char *url;
static cc_db_t *admin;

static const cc_stmt_t handled_stmt =
    CC_STMT("t_handled", "INSERT INTO handled (source, event_id) VALUES ($1, $2)", 2);
static const cc_stmt_t count_stmt =
    CC_STMT("t_handled_count", "SELECT count(*) FROM dst.handled WHERE source = $1", 1);
static const cc_stmt_t position_stmt = CC_STMT(
    "t_position",
    "SELECT last_id FROM dst.outbox_positions WHERE consumer = $1 AND source_schema = $2", 2);
static const cc_stmt_t waiting_stmt =
    CC_STMT("t_waiting",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            0);
static const cc_stmt_t kill_stmt = CC_STMT("t_kill",
                                           "SELECT count(pg_terminate_backend(pid, 5000)) "
                                           "FROM pg_stat_activity WHERE application_name = $1",
                                           1);

/* What a test's consumers saw. */
typedef struct seen {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const char *source;
    int count;             /* successful handler calls */
    int calls;             /* all handler calls */
    int64_t ids[MAX_SEEN]; /* in the order handled */
    int ns[MAX_SEEN];      /* payload "n" */
    char types[MAX_SEEN][16];
    int fail_n, fail_times; /* refuse payload n == fail_n that many times */
    bool bad_created_at;
} seen_t;

static void seen_init(seen_t *s, const char *source)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->source = source;
    s->fail_n = -1;
}

static void seen_destroy(seen_t *s)
{
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

static int on_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    seen_t *s = arg;
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)ev->id);
    const char *p[2] = {s->source, id};
    /* the handler's own write, in the consumer's transaction */
    int rc = cc_db_query(db, pool, &handled_stmt, p, NULL);
    json_t *n = json_object_get(ev->payload, "n");
    int nv = json_is_integer(n) ? (int)json_integer_value(n) : -1;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    if (rc == 0 && nv == s->fail_n && s->fail_times > 0) {
        s->fail_times--;
        rc = -1; /* after writing: the write must be rolled back */
    }
    if (rc == 0 && s->count < MAX_SEEN) {
        s->ids[s->count] = ev->id;
        s->ns[s->count] = nv;
        snprintf(s->types[s->count], sizeof(s->types[0]), "%s", ev->type);
        s->count++;
        pthread_cond_broadcast(&s->cv);
    }
    if (ev->created_at == NULL || strchr(ev->created_at, 'T') == NULL)
        s->bad_created_at = true;
    pthread_mutex_unlock(&s->mu);
    return rc == 0 ? 0 : -1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until s->count >= n or ms pass; returns the count. */
static int wait_count(seen_t *s, int n, int ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->count < n && pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == 0)
        ;
    int c = s->count;
    pthread_mutex_unlock(&s->mu);
    return c;
}

/* Reads as trusted background work: outbox tables are visible to the system scope only. */
static long scalar_long(const cc_stmt_t *stmt, const char *const *params)
{
    cc_pool_t *pool = cc_pool_new();
    PGresult *r = NULL;
    cc_scope_t system = {.system = true};
    assert_int_equal(cc_db_begin(admin, &system), 0);
    assert_int_equal(cc_db_query(admin, pool, stmt, params, &r), 0);
    const char *v = cc_db_get(r, 0, 0);
    long n = v ? atol(v) : -1;
    cc_db_rollback(admin);
    cc_pool_free(pool);
    return n;
}

/* A source schema of its own for each test (the common set: outbox tables). */
static cc_db_t *make_source(const char *schema)
{
    int n = 0;
    assert_int_equal(cc_migrate_apply(admin, cc_migrations_embedded, schema, schema, &n), 0);
    char *path = cc_aprintf("%s, public", schema);
    cc_db_t *db = NULL;
    assert_int_equal(cc_db_open(url, "test-outbox-emit", path, &db), 0);
    free(path);
    return db;
}

/* count events of type, payload n = first.., in one transaction; commit or roll back. */
static void emit(cc_db_t *db, const char *type, int first, int count, bool commit)
{
    assert_int_equal(cc_db_begin(db, NULL), 0);
    for (int i = first; i < first + count; i++) {
        json_t *payload = json_pack("{s:i,s:s}", "n", i, "quote", "it's \"quoted\"");
        assert_int_equal(cc_outbox_emit(db, NULL, type, "agg-1", payload), 0);
        json_decref(payload);
    }
    if (commit)
        assert_int_equal(cc_db_commit(db), 0);
    else
        cc_db_rollback(db);
}

static cc_outbox_consumer_t *start(const char *source, const char *name, int poll_ms, seen_t *s)
{
    cc_outbox_consumer_t *c = NULL;
    assert_int_equal(
        cc_outbox_consumer_start(url, CONSUMER_PATH, source, name, poll_ms, on_event, s, &c), 0);
    assert_non_null(c);
    return c;
}

static void assert_in_order(seen_t *s)
{
    assert_false(s->bad_created_at);
    for (int i = 1; i < s->count; i++)
        assert_true(s->ids[i] > s->ids[i - 1]);
}

static int setup(void **state)
{
    (void)state;
    cc_log_init("test-outbox", CC_LOG_WARN);
    url = testdb_create("outbox");
    if (cc_db_open(url, "test-outbox-admin", "public", &admin) != 0)
        return -1;
    int n = 0;
    if (cc_migrate_apply(admin, cc_migrations_embedded, "dst", "dst", &n) != 0)
        return -1;
    return cc_db_exec(admin, "CREATE TABLE dst.handled (source text, event_id bigint, "
                             "PRIMARY KEY (source, event_id))");
}

static int teardown(void **state)
{
    (void)state;
    cc_db_close(admin);
    testdb_drop(url);
    free(url);
    return 0;
}

static void test_rolled_back_event_is_never_seen(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_rb");
    cc_db_t *db = make_source("ob_rb");
    cc_outbox_consumer_t *c = start("ob_rb", "rb", 100, &s);
    emit(db, "rolled.back", 0, 3, false);
    emit(db, "marker", 100, 1, true);
    /* ids are handed out in order: the rolled-back ones would have come first */
    assert_int_equal(wait_count(&s, 1, 10000), 1);
    cc_outbox_consumer_stop(c);
    assert_int_equal(s.count, 1);
    assert_string_equal(s.types[0], "marker");
    assert_int_equal(s.ns[0], 100);
    cc_db_close(db);
    seen_destroy(&s);
}

static void test_all_events_once_in_order(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_many");
    cc_db_t *db = make_source("ob_many");
    cc_outbox_consumer_t *c = start("ob_many", "many", 100, &s);
    emit(db, "bulk", 0, 120, true);
    emit(db, "bulk", 120, 130, true);
    assert_int_equal(wait_count(&s, 250, 30000), 250);
    cc_outbox_consumer_stop(c);
    assert_int_equal(s.count, 250);
    assert_int_equal(s.calls, 250);
    assert_in_order(&s);
    for (int i = 0; i < 250; i++)
        assert_int_equal(s.ns[i], i);
    const char *src[1] = {"ob_many"};
    assert_int_equal(scalar_long(&count_stmt, src), 250);
    const char *key[2] = {"many", "ob_many"};
    assert_int_equal(scalar_long(&position_stmt, key), (long)s.ids[249]);
    cc_db_close(db);
    seen_destroy(&s);
}

static void test_notify_wakes_the_consumer(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_fast");
    cc_db_t *db = make_source("ob_fast");
    cc_outbox_consumer_t *c = start("ob_fast", "fast", 10000, &s); /* polls every 10 s */
    emit(db, "first", 0, 1, true);
    assert_int_equal(wait_count(&s, 1, 15000), 1);
    int64_t t0 = now_ms();
    emit(db, "second", 1, 1, true);
    assert_int_equal(wait_count(&s, 2, 5000), 2);
    int64_t dt = now_ms() - t0;
    printf("# NOTIFY to handler: %lld ms (poll_ms 10000)\n", (long long)dt);
    assert_true(dt < 2000);
    /* stop wakes the sleeping thread at once */
    int64_t t1 = now_ms();
    cc_outbox_consumer_stop(c);
    assert_true(now_ms() - t1 < 2000);
    cc_db_close(db);
    seen_destroy(&s);
}

static void test_restart_resumes_from_position(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_resume");
    cc_db_t *db = make_source("ob_resume");
    cc_outbox_consumer_t *c = start("ob_resume", "resumer", 100, &s);
    emit(db, "e", 0, 10, true);
    assert_int_equal(wait_count(&s, 10, 10000), 10);
    cc_outbox_consumer_stop(c);
    emit(db, "e", 10, 10, true); /* while stopped */
    c = start("ob_resume", "resumer", 100, &s);
    assert_int_equal(wait_count(&s, 20, 10000), 20);
    cc_outbox_consumer_stop(c);
    assert_int_equal(s.count, 20);
    assert_int_equal(s.calls, 20);
    assert_in_order(&s);
    for (int i = 0; i < 20; i++)
        assert_int_equal(s.ns[i], i);
    /* another consumer of the same source starts from the beginning */
    seen_t other;
    seen_init(&other, "ob_resume_other");
    c = start("ob_resume", "another", 100, &other);
    assert_int_equal(wait_count(&other, 20, 10000), 20);
    cc_outbox_consumer_stop(c);
    cc_db_close(db);
    seen_destroy(&s);
    seen_destroy(&other);
}

static void test_failed_handler_gets_the_event_again(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_fail");
    s.fail_n = 1;
    s.fail_times = 1;
    cc_db_t *db = make_source("ob_fail");
    cc_outbox_consumer_t *c = start("ob_fail", "failer", 50, &s);
    emit(db, "e", 0, 3, true);
    assert_int_equal(wait_count(&s, 3, 10000), 3);
    cc_outbox_consumer_stop(c);
    assert_int_equal(s.count, 3);
    assert_int_equal(s.calls, 4); /* n = 1 twice; n = 0 only once (committed before) */
    for (int i = 0; i < 3; i++)
        assert_int_equal(s.ns[i], i);
    assert_in_order(&s);
    /* the refused attempt's write was rolled back: each event recorded once */
    const char *src[1] = {"ob_fail"};
    assert_int_equal(scalar_long(&count_stmt, src), 3);
    cc_db_close(db);
    seen_destroy(&s);
}

typedef struct late_writer {
    cc_db_t *db;
    int rc;
} late_writer_t;

static void *write_late(void *arg)
{
    late_writer_t *w = arg;
    w->rc = cc_db_begin(w->db, NULL);
    json_t *payload = json_pack("{s:i}", "n", 2);
    if (w->rc == 0)
        w->rc = cc_outbox_emit(w->db, NULL, "second", "agg", payload);
    json_decref(payload);
    if (w->rc == 0)
        w->rc = cc_db_commit(w->db);
    return NULL;
}

/*
 * A transaction that took a lower id but commits later must not be skipped: writers of
 * one outbox serialize, so ids become visible in order.
 */
static void test_concurrent_writers_are_not_skipped(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_order");
    cc_db_t *first = make_source("ob_order");
    late_writer_t w = {.db = NULL};
    assert_int_equal(cc_db_open(url, "test-outbox-emit2", "ob_order, public", &w.db), 0);
    cc_outbox_consumer_t *c = start("ob_order", "order", 50, &s);

    assert_int_equal(cc_db_begin(first, NULL), 0);
    json_t *payload = json_pack("{s:i}", "n", 1);
    assert_int_equal(cc_outbox_emit(first, NULL, "first", "agg", payload), 0);
    json_decref(payload);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_late, &w), 0);
    /* the second writer waits for the first one's commit */
    int64_t deadline = now_ms() + 10000;
    while (scalar_long(&waiting_stmt, NULL) < 1 && now_ms() < deadline)
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    assert_int_equal(scalar_long(&waiting_stmt, NULL), 1);
    assert_int_equal(s.count, 0);
    assert_int_equal(cc_db_commit(first), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(wait_count(&s, 2, 10000), 2);
    cc_outbox_consumer_stop(c);
    assert_string_equal(s.types[0], "first");
    assert_string_equal(s.types[1], "second");
    assert_in_order(&s);
    cc_db_close(w.db);
    cc_db_close(first);
    seen_destroy(&s);
}

static void test_replicas_share_the_stream(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_rep");
    cc_db_t *db = make_source("ob_rep");
    cc_outbox_consumer_t *c1 = start("ob_rep", "replicated", 20, &s);
    cc_outbox_consumer_t *c2 = start("ob_rep", "replicated", 20, &s);
    for (int i = 0; i < 3; i++)
        emit(db, "r", i * 100, 100, true);
    assert_int_equal(wait_count(&s, 300, 30000), 300);
    cc_outbox_consumer_stop(c1);
    cc_outbox_consumer_stop(c2);
    assert_int_equal(s.count, 300);
    assert_int_equal(s.calls, 300);
    assert_in_order(&s);
    const char *src[1] = {"ob_rep"};
    assert_int_equal(scalar_long(&count_stmt, src), 300);
    cc_db_close(db);
    seen_destroy(&s);
}

static void test_consumer_survives_connection_loss(void **state)
{
    (void)state;
    seen_t s;
    seen_init(&s, "ob_loss");
    cc_db_t *db = make_source("ob_loss");
    cc_outbox_consumer_t *c = start("ob_loss", "loss", 10000, &s);
    emit(db, "e", 0, 1, true);
    assert_int_equal(wait_count(&s, 1, 15000), 1);
    /* the handler ran; wait for the round's commit before pulling the plug */
    const char *key[2] = {"loss", "ob_loss"};
    int64_t deadline = now_ms() + 10000;
    while (scalar_long(&position_stmt, key) < s.ids[0] && now_ms() < deadline)
        nanosleep(&(struct timespec){0, 5 * 1000 * 1000}, NULL);
    assert_int_equal(scalar_long(&position_stmt, key), (long)s.ids[0]);
    const char *app[1] = {"outbox:loss"};
    assert_int_equal(scalar_long(&kill_stmt, app), 1);
    /* reconnects and LISTENs again: the next event still arrives by NOTIFY */
    int64_t t0 = now_ms();
    emit(db, "e", 1, 1, true);
    assert_int_equal(wait_count(&s, 2, 8000), 2);
    assert_true(now_ms() - t0 < 5000);
    cc_outbox_consumer_stop(c);
    assert_int_equal(s.count, 2);
    const char *src[1] = {"ob_loss"};
    assert_int_equal(scalar_long(&count_stmt, src), 2);
    cc_db_close(db);
    seen_destroy(&s);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    cc_outbox_consumer_t *c = NULL;
    assert_int_equal(
        cc_outbox_consumer_start(url, CONSUMER_PATH, "Bad", "x", 100, on_event, NULL, &c),
        CC_EINVAL);
    assert_int_equal(
        cc_outbox_consumer_start(url, CONSUMER_PATH, "a;b", "x", 100, on_event, NULL, &c),
        CC_EINVAL);
    assert_int_equal(
        cc_outbox_consumer_start(url, CONSUMER_PATH, "ok", "", 100, on_event, NULL, &c), CC_EINVAL);
    assert_int_equal(cc_outbox_consumer_start(url, CONSUMER_PATH, "ok", "x", 0, on_event, NULL, &c),
                     CC_EINVAL);
    assert_int_equal(cc_outbox_consumer_start(url, CONSUMER_PATH, "ok", "x", 100, NULL, NULL, &c),
                     CC_EINVAL);
    assert_null(c);
    cc_outbox_consumer_stop(NULL);
    /* emitting needs the caller's transaction */
    cc_db_t *db = make_source("ob_args");
    json_t *payload = json_object();
    assert_int_equal(cc_outbox_emit(db, NULL, "x", NULL, payload), CC_EINVAL);
    assert_int_equal(cc_db_begin(db, NULL), 0);
    assert_int_equal(cc_outbox_emit(db, NULL, "", NULL, payload), CC_EINVAL);
    assert_int_equal(cc_outbox_emit(db, NULL, "x", NULL, NULL), CC_EINVAL);
    assert_int_equal(cc_outbox_emit(db, NULL, "x", NULL, payload), 0); /* NULL aggregate ok */
    cc_db_rollback(db);
    json_decref(payload);
    cc_db_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rolled_back_event_is_never_seen),
        cmocka_unit_test(test_all_events_once_in_order),
        cmocka_unit_test(test_notify_wakes_the_consumer),
        cmocka_unit_test(test_restart_resumes_from_position),
        cmocka_unit_test(test_failed_handler_gets_the_event_again),
        cmocka_unit_test(test_concurrent_writers_are_not_skipped),
        cmocka_unit_test(test_replicas_share_the_stream),
        cmocka_unit_test(test_consumer_survives_connection_loss),
        cmocka_unit_test(test_invalid_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
