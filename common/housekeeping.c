/*
 * The housekeeping thread (console/housekeeping.h): a loop of short transactions, one
 * per table, each a bounded DELETE, then an hour's sleep that a stop interrupts.
 */
#include "console/housekeeping.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "console/db.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/str.h"

static const cc_stmt_t q_audit =
    CC_STMT("cc_housekeeping_audit",
            "DELETE FROM audit_events WHERE at < now() - make_interval(days => $1::int)", 1);
static const cc_stmt_t q_outbox =
    CC_STMT("cc_housekeeping_outbox",
            "DELETE FROM outbox WHERE created_at < now() - make_interval(days => $1::int)", 1);
static const cc_stmt_t q_idempotency =
    CC_STMT("cc_housekeeping_idempotency",
            "DELETE FROM idempotency_keys WHERE created_at < now() - interval '25 hours'", 0);

static struct {
    pthread_t thread;
    bool running;
    _Atomic bool stop;
    int wake[2];
    char *conninfo, *search_path;
    cc_housekeeping_t settings;
} hk = {.wake = {-1, -1}};

/* One DELETE in its own transaction; logs how many rows went. */
static void prune(cc_db_t *db, const cc_stmt_t *stmt, const char *param, const char *what)
{
    static const cc_scope_t system = {.system = true};
    cc_pool_t *pool = cc_pool_new();
    PGresult *res = NULL;
    int rc = cc_db_begin(db, &system);
    if (rc == 0)
        rc = cc_db_query(db, pool, stmt, param ? (const char *[]){param} : NULL, &res);
    if (rc == 0)
        rc = cc_db_commit(db);
    if (rc != 0) {
        cc_db_rollback(db);
        cc_log_warn("housekeeping: pruning %s failed: %s", what, cc_strerror(rc));
    } else if (res != NULL && atoi(PQcmdTuples(res)) > 0) {
        cc_log_info("housekeeping: %s old %s removed", PQcmdTuples(res), what);
    }
    cc_pool_free(pool);
}

static void *housekeeping_main(void *arg)
{
    (void)arg;
    cc_db_t *db = NULL;
    cc_db_open(hk.conninfo, "housekeeping", hk.search_path, &db);
    if (db == NULL)
        return NULL;
    char audit_days[16], outbox_days[16];
    snprintf(audit_days, sizeof(audit_days), "%d", hk.settings.audit_days);
    snprintf(outbox_days, sizeof(outbox_days), "%d", hk.settings.outbox_days);
    while (!atomic_load(&hk.stop)) {
        prune(db, &q_audit, audit_days, "audit record(s)");
        prune(db, &q_outbox, outbox_days, "outbox event(s)");
        prune(db, &q_idempotency, NULL, "idempotency key(s)");
        struct pollfd w = {.fd = hk.wake[0], .events = POLLIN};
        poll(&w, 1, 3600 * 1000);
    }
    cc_db_close(db);
    return NULL;
}

int cc_housekeeping_start(const char *conninfo, const char *search_path,
                          const cc_housekeeping_t *settings)
{
    if (hk.running)
        return 0;
    if (pipe(hk.wake) != 0)
        return CC_EIO;
    hk.conninfo = cc_strdup(conninfo);
    hk.search_path = cc_strdup(search_path);
    hk.settings = *settings;
    atomic_store(&hk.stop, false);
    if (pthread_create(&hk.thread, NULL, housekeeping_main, NULL) != 0) {
        close(hk.wake[0]);
        close(hk.wake[1]);
        free(hk.conninfo);
        free(hk.search_path);
        return CC_EIO;
    }
    hk.running = true;
    return 0;
}

void cc_housekeeping_stop(void)
{
    if (!hk.running)
        return;
    atomic_store(&hk.stop, true);
    ssize_t w = write(hk.wake[1], "x", 1);
    (void)w;
    pthread_join(hk.thread, NULL);
    close(hk.wake[0]);
    close(hk.wake[1]);
    free(hk.conninfo);
    free(hk.search_path);
    hk.running = false;
}
