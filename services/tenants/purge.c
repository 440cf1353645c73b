/*
 * The end of the recycle bin. A deleted tenant stays restorable for
 * CONSOLE_TENANT_RETENTION_DAYS; when its purge_at passes, this job removes it: one
 * transaction per tenant writes the tenant.purged event (every service purges its rows
 * for that tenant when it reads it) and the audit record, then deletes the row. Deepest
 * first, and a tenant waits while anything (even deleted) remains under it. Several
 * replicas may run it at once: rows are claimed with FOR UPDATE SKIP LOCKED.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "console/audit.h"
#include "console/log.h"
#include "console/outbox.h"
#include "tenants.h"

static const cc_stmt_t q_due =
    CC_STMT("tenants_purge_due",
            "SELECT t.id, t.msp_id, t.path::text, t.kind, t.name, t.parent_id FROM tenants t"
            " WHERE t.status = 'deleted' AND t.purge_at <= now()"
            " AND NOT EXISTS (SELECT 1 FROM tenants c WHERE c.parent_id = t.id)"
            " ORDER BY nlevel(t.path) DESC, t.purge_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            0);
static const cc_stmt_t q_purge =
    CC_STMT("tenants_purge", "DELETE FROM tenants WHERE id = $1::uuid AND status = 'deleted'", 1);

/* Purges one due tenant; *done is false when none was due. */
static int purge_one(cc_db_t *db, cc_pool_t *pool, bool *done)
{
    static const cc_scope_t system = {.system = true};
    *done = false;
    PGresult *res;
    int rc = cc_db_begin(db, &system);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_due, NULL, &res);
    if (rc != 0 || PQntuples(res) == 0) {
        cc_db_rollback(db);
        return rc;
    }
    const char *id = PQgetvalue(res, 0, 0), *msp = PQgetvalue(res, 0, 1);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "id", id, "msp_id", msp, "path",
                           PQgetvalue(res, 0, 2), "kind", PQgetvalue(res, 0, 3), "name",
                           PQgetvalue(res, 0, 4), "parent_id", cc_db_get(res, 0, 5));
    cc_audit_t a = {.action = "tenant.purged",
                    .target_type = "tenant",
                    .target_id = id,
                    .tenant_id = id,
                    .msp_id = msp,
                    .details = ev};
    rc = cc_outbox_emit(db, pool, "tenant.purged", id, ev);
    if (rc == 0)
        rc = cc_audit_write_system(db, pool, "tenants.purge", &a);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_purge, (const char *[]){id}, NULL);
    json_decref(ev);
    if (rc == 0)
        rc = cc_db_commit(db);
    if (rc != 0) {
        cc_db_rollback(db);
        return rc;
    }
    cc_log_info("purged tenant %s from the recycle bin", id);
    *done = true;
    return 0;
}

int tenants_purge_due(cc_db_t *db, cc_pool_t *pool, int *purged)
{
    *purged = 0;
    for (;;) {
        bool done;
        int rc = purge_one(db, pool, &done);
        if (rc != 0)
            return rc;
        if (!done)
            return 0;
        (*purged)++;
    }
}

/* ---- the background thread ---- */

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool running, stop;
    cc_db_t *db;
    int interval_s;
} purger = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *purger_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&purger.lock);
    while (!purger.stop) {
        pthread_mutex_unlock(&purger.lock);
        cc_pool_t *pool = cc_pool_new();
        int n = 0;
        int rc = tenants_purge_due(purger.db, pool, &n);
        if (rc != 0)
            cc_log_warn("tenant purge: %s; retrying later", cc_strerror(rc));
        cc_pool_free(pool);
        pthread_mutex_lock(&purger.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += purger.interval_s;
        while (!purger.stop && pthread_cond_timedwait(&purger.cond, &purger.lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&purger.lock);
    return NULL;
}

int tenants_purger_start(const cc_env_t *env, int interval_s)
{
    int rc = cc_service_db_connect(env, "tenants-purge", "tenants, public", &purger.db);
    if (rc != 0)
        return rc;
    purger.interval_s = interval_s;
    purger.stop = false;
    pthread_cond_init(&purger.cond, NULL);
    if (pthread_create(&purger.thread, NULL, purger_main, NULL) != 0) {
        cc_db_close(purger.db);
        purger.db = NULL;
        return CC_EIO;
    }
    purger.running = true;
    return 0;
}

void tenants_purger_stop(void)
{
    if (!purger.running)
        return;
    pthread_mutex_lock(&purger.lock);
    purger.stop = true;
    pthread_cond_broadcast(&purger.cond);
    pthread_mutex_unlock(&purger.lock);
    pthread_join(purger.thread, NULL);
    pthread_cond_destroy(&purger.cond);
    cc_db_close(purger.db);
    purger.db = NULL;
    purger.running = false;
}
