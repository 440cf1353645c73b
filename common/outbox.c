/*
 * Transactional outbox: emitting events and consuming another schema's outbox.
 *
 * A consumer is a thread with its own connection that LISTENs on console_outbox (again
 * after every reconnect, through the cc_db on_connect hook). One round:
 *   BEGIN (system scope); lock its position row FOR UPDATE (created when absent), which
 *   serializes replicas of the same consumer; read up to BATCH events after it; for each,
 *   a savepoint and the handler; advance the position past the handled ones; COMMIT.
 * A handler failure rolls back to that event's savepoint, so the events before it are
 * committed once and the failed one is retried poll_ms later. A full batch is followed
 * at once by the next round; otherwise the thread sleeps in poll() on the connection's
 * socket (a NOTIFY naming the source schema), a self-pipe (stop) and poll_ms.
 */
#include "console/outbox.h"

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "console/errors.h"
#include "console/log.h"

#define BATCH 100
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define CHANNEL "console_outbox"

static const cc_stmt_t emit_stmt =
    CC_STMT("cc_outbox_emit",
            "INSERT INTO outbox (type, aggregate_id, payload) VALUES ($1, $2, $3::jsonb)", 3);
static const cc_stmt_t position_lock_stmt =
    CC_STMT("cc_outbox_position_lock",
            "SELECT last_id FROM outbox_positions WHERE consumer = $1 AND source_schema = $2 "
            "FOR UPDATE",
            2);
static const cc_stmt_t position_insert_stmt =
    CC_STMT("cc_outbox_position_insert",
            "INSERT INTO outbox_positions (consumer, source_schema) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            2);
static const cc_stmt_t position_update_stmt =
    CC_STMT("cc_outbox_position_update",
            "UPDATE outbox_positions SET last_id = $3, updated_at = now() "
            "WHERE consumer = $1 AND source_schema = $2",
            3);

int cc_outbox_emit(cc_db_t *db, cc_pool_t *pool, const char *type, const char *aggregate_id,
                   json_t *payload)
{
    if (type == NULL || *type == '\0' || payload == NULL)
        return CC_EINVAL;
    if (!cc_db_in_tx(db)) {
        cc_log_error("cc_outbox_emit outside a transaction (type %s)", type);
        return CC_EINVAL;
    }
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return CC_EINVAL;
    const char *params[3] = {type, aggregate_id, text};
    int rc = cc_db_query(db, pool, &emit_stmt, params, NULL);
    free(text);
    return rc;
}

struct cc_outbox_consumer {
    pthread_t thread;
    int wake[2]; /* self-pipe: stop writes one byte */
    atomic_bool stop;
    char *conninfo, *search_path, *source, *name, *app_name;
    int poll_ms;
    cc_outbox_handler_cb handler;
    void *arg;
    cc_stmt_t events_stmt; /* reads <source>.outbox: built once from the validated name */
    char *events_sql;
};

/* ^[a-z][a-z0-9_]{0,62}$ */
static bool valid_schema(const char *s)
{
    if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z'))
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return false;
    return n <= 63;
}

static int on_connect_listen(PGconn *conn, void *arg)
{
    (void)arg;
    PGresult *r = PQexec(conn, "LISTEN " CHANNEL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : CC_EDB;
    PQclear(r);
    return rc;
}

static void log_event(cc_log_level_t level, cc_outbox_consumer_t *c, const cc_outbox_event_t *ev,
                      const char *msg)
{
    json_t *f = json_pack("{s:s,s:s}", "consumer", c->name, "source", c->source);
    if (ev != NULL) {
        json_object_set_new(f, "event_id", json_integer(ev->id));
        json_object_set_new(f, "event_type", json_string(ev->type));
    }
    cc_log_write(level, f, "%s", msg);
    json_decref(f);
}

/*
 * One round in one transaction. *fetched is the number of events read; *failed is set
 * when a handler refused one. Returns 0, or a cc_db error.
 */
static int run_batch(cc_outbox_consumer_t *c, cc_db_t *db, int *fetched, bool *failed)
{
    int rc, handled = 0;
    int64_t last_id = 0;
    PGresult *res = NULL;
    cc_pool_t *pool = cc_pool_new();
    *fetched = 0;
    *failed = false;
    cc_scope_t scope = {.system = true};
    if ((rc = cc_db_begin(db, &scope)) != 0)
        goto Exit;
    const char *key[2] = {c->name, c->source};
    if ((rc = cc_db_query(db, pool, &position_lock_stmt, key, &res)) != 0)
        goto Exit;
    if (PQntuples(res) == 0) {
        if ((rc = cc_db_query(db, pool, &position_insert_stmt, key, NULL)) != 0 ||
            (rc = cc_db_query(db, pool, &position_lock_stmt, key, &res)) != 0)
            goto Exit;
    }
    if (PQntuples(res) != 1) {
        rc = CC_EDB;
        goto Exit;
    }
    last_id = strtoll(cc_db_get(res, 0, 0), NULL, 10);
    const char *after[1] = {cc_db_get(res, 0, 0)};
    if ((rc = cc_db_query(db, pool, &c->events_stmt, after, &res)) != 0)
        goto Exit;
    *fetched = PQntuples(res);
    for (int i = 0; i < *fetched && !atomic_load(&c->stop); i++) {
        cc_outbox_event_t ev = {
            .id = strtoll(cc_db_get(res, i, 0), NULL, 10),
            .type = cc_db_get(res, i, 1),
            .aggregate_id = cc_db_get(res, i, 2),
            .created_at = cc_db_get(res, i, 4),
        };
        ev.payload = json_loads(cc_db_get(res, i, 3), JSON_DECODE_ANY, NULL);
        if (ev.payload == NULL) {
            log_event(CC_LOG_ERROR, c, &ev, "outbox event payload does not parse");
            *failed = true;
            break;
        }
        rc =
            cc_db_exec(db, i == 0 ? "SAVEPOINT cc_outbox_event"
                                  : "RELEASE SAVEPOINT cc_outbox_event; SAVEPOINT cc_outbox_event");
        if (rc != 0) {
            json_decref(ev.payload);
            goto Exit;
        }
        int hrc = c->handler(db, pool, &ev, c->arg);
        json_decref(ev.payload);
        if (hrc < 0) {
            log_event(CC_LOG_WARN, c, &ev, "outbox handler failed; will retry the event");
            *failed = true;
            if ((rc = cc_db_exec(db, "ROLLBACK TO SAVEPOINT cc_outbox_event")) != 0)
                goto Exit;
            break;
        }
        last_id = ev.id;
        handled++;
    }
    if (handled > 0) {
        char idbuf[24];
        snprintf(idbuf, sizeof(idbuf), "%" PRId64, last_id);
        const char *upd[3] = {c->name, c->source, idbuf};
        if ((rc = cc_db_query(db, pool, &position_update_stmt, upd, NULL)) != 0)
            goto Exit;
    }
    rc = cc_db_commit(db);
Exit:
    if (cc_db_in_tx(db))
        cc_db_rollback(db);
    cc_pool_free(pool);
    return rc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Drains buffered notifications; true when one names our source schema. */
static bool drain_notifies(cc_outbox_consumer_t *c, PGconn *conn)
{
    bool ours = false;
    PGnotify *n;
    while ((n = PQnotifies(conn)) != NULL) {
        if (strcmp(n->relname, CHANNEL) == 0 && strcmp(n->extra, c->source) == 0)
            ours = true;
        PQfreemem(n);
    }
    return ours;
}

/*
 * Sleeps up to ms: until stop, or (when listen) a notification for our source or the
 * connection failing. Notifications received during the round count: no sleep then.
 */
static void wait_for_work(cc_outbox_consumer_t *c, cc_db_t *db, int ms, bool listen)
{
    PGconn *conn = cc_db_conn(db);
    if (listen) {
        if (PQstatus(conn) != CONNECTION_OK)
            return;
        if (drain_notifies(c, conn))
            return;
    }
    int64_t deadline = now_ms() + ms;
    for (;;) {
        struct pollfd fds[2] = {{.fd = c->wake[0], .events = POLLIN},
                                {.fd = listen ? PQsocket(conn) : -1, .events = POLLIN}};
        int64_t left = deadline - now_ms();
        if (left <= 0 || atomic_load(&c->stop))
            return;
        int n = poll(fds, fds[1].fd >= 0 ? 2 : 1, (int)left);
        if (n <= 0 || (fds[0].revents & POLLIN))
            continue; /* timeout, EINTR, or stop: the checks above decide */
        if (fds[1].revents != 0) {
            if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
                return; /* lost: the next round reconnects */
            if (drain_notifies(c, conn))
                return;
        }
    }
}

static void *consumer_main(void *arg)
{
    cc_outbox_consumer_t *c = arg;
    cc_db_t *db = NULL;
    int rc = cc_db_open(c->conninfo, c->app_name, c->search_path, &db);
    if (db == NULL) {
        cc_log_error("outbox consumer %s cannot open a connection: %s", c->name, cc_strerror(rc));
        return NULL;
    }
    cc_db_set_on_connect(db, on_connect_listen, NULL);
    int backoff = BACKOFF_MIN_MS;
    while (!atomic_load(&c->stop)) {
        int fetched = 0;
        bool failed = false;
        rc = run_batch(c, db, &fetched, &failed);
        if (atomic_load(&c->stop))
            break;
        if (rc == CC_EDBDOWN) {
            wait_for_work(c, db, backoff, false);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        backoff = BACKOFF_MIN_MS;
        if (rc != 0 || failed) {
            if (rc != 0)
                log_event(CC_LOG_WARN, c, NULL, "outbox round failed; will retry");
            wait_for_work(c, db, c->poll_ms, false);
        } else if (fetched < BATCH) {
            wait_for_work(c, db, c->poll_ms, true);
        }
    }
    cc_db_close(db);
    return NULL;
}

static void consumer_free(cc_outbox_consumer_t *c)
{
    if (c->wake[0] >= 0)
        close(c->wake[0]);
    if (c->wake[1] >= 0)
        close(c->wake[1]);
    free(c->conninfo);
    free(c->search_path);
    free(c->source);
    free(c->name);
    free(c->app_name);
    free(c->events_sql);
    free(c);
}

int cc_outbox_consumer_start(const char *conninfo, const char *search_path,
                             const char *source_schema, const char *consumer_name, int poll_ms,
                             cc_outbox_handler_cb handler, void *arg, cc_outbox_consumer_t **out)
{
    *out = NULL;
    if (conninfo == NULL || !valid_schema(source_schema) || consumer_name == NULL ||
        *consumer_name == '\0' || poll_ms <= 0 || handler == NULL)
        return CC_EINVAL;
    cc_outbox_consumer_t *c = cc_calloc(1, sizeof(*c));
    c->wake[0] = c->wake[1] = -1;
    if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        consumer_free(c);
        return CC_EIO;
    }
    c->conninfo = cc_strdup(conninfo);
    c->search_path = cc_strdup(search_path);
    c->source = cc_strdup(source_schema);
    c->name = cc_strdup(consumer_name);
    c->app_name = cc_aprintf("outbox:%.50s", consumer_name);
    c->poll_ms = poll_ms;
    c->handler = handler;
    c->arg = arg;
    /* The source schema is validated: a constant of the program, spliced in once. */
    c->events_sql = cc_aprintf("SELECT id, type, aggregate_id, payload::text, "
                               "to_json(created_at) #>> '{}' FROM %s.outbox "
                               "WHERE id > $1 ORDER BY id LIMIT %d",
                               source_schema, BATCH);
    /* One statement per connection, and every consumer has its own connection. */
    c->events_stmt = (cc_stmt_t)CC_STMT("cc_outbox_events", c->events_sql, 1);
    atomic_init(&c->stop, false);
    if (pthread_create(&c->thread, NULL, consumer_main, c) != 0) {
        consumer_free(c);
        return CC_EIO;
    }
    *out = c;
    return 0;
}

void cc_outbox_consumer_stop(cc_outbox_consumer_t *c)
{
    if (c == NULL)
        return;
    atomic_store(&c->stop, true);
    ssize_t w = write(c->wake[1], "x", 1);
    (void)w;
    pthread_join(c->thread, NULL);
    consumer_free(c);
}
