/*
 * Events the usage service consumes from tenants.outbox: tenant.purged deletes the
 * account's usage (raw samples, job events, rollups, sources, totals) and its billing
 * plan. Frozen billing lines stay: they are the record of what was billed. Idempotent
 * (deleting nothing is fine), in the consumer's transaction (system scope).
 */
#include <pthread.h>
#include <string.h>

#include "console/log.h"
#include "usage.h"

static const char *const purged_tables[] = {
    "samples",     "job_events", "job_ids",    "source_usage",  "source_daily",  "tenant_usage",
    "daily_usage", "sources",    "daily_jobs", "tenant_totals", "billing_plans", NULL};
static cc_stmt_t purge_stmts[11];

static void purge_stmts_build(void)
{
    for (size_t i = 0; purged_tables[i]; i++) {
        purge_stmts[i].name = cc_aprintf("usage_purge_%zu", i);
        purge_stmts[i].sql =
            cc_aprintf("DELETE FROM %s WHERE tenant_id = $1::uuid", purged_tables[i]);
        purge_stmts[i].nparams = 1;
    }
}

int usage_on_tenant_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    if (strcmp(ev->type, "tenant.purged") != 0)
        return 0;
    json_t *id = json_object_get(ev->payload, "id");
    if (!json_is_string(id) || !cc_is_uuid(json_string_value(id))) {
        cc_log_error("tenants event %lld (tenant.purged) is malformed; skipped", (long long)ev->id);
        return 0;
    }
    pthread_once(&once, purge_stmts_build);
    int rc = 0;
    for (size_t i = 0; rc == 0 && purged_tables[i]; i++)
        rc = cc_db_query(db, pool, &purge_stmts[i], (const char *[]){json_string_value(id)}, NULL);
    return rc;
}
