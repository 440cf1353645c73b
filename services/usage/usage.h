/*
 * The usage service's internal interfaces: ingestion (ingest.c), reports (reports.c),
 * billing plans and exports (billing.c) and the partition keeper (main.c). Only this
 * service and its tests include this header.
 */
#ifndef USAGE_H
#define USAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "console/http.h"
#include "console/outbox.h"
#include "console/service.h"

#define USAGE_BATCH_MAX 10000
/* a sample may be at most this far ahead of the server's clock (agents' clocks drift) */
#define USAGE_FUTURE_LEEWAY_S 300
/* a closed period is frozen this many days after its end (late samples settle first) */
#define USAGE_SETTLE_DAYS 2

/** Parses a strict RFC 3339 timestamp into seconds since the epoch (fraction dropped). */
bool usage_time_parse(const char *s, int64_t *out);

/* ---- tenants as the caller sees them (tenants.tenant_tree, RLS-scoped) ---- */
typedef struct usage_tenant {
    const char *id, *name, *kind, *path, *msp_id, *status, *parent_id;
} usage_tenant_t;
/** Reads one tenant in the caller's scope: 0, CC_ENOENT or a db error. */
int usage_tenant_get(cc_req_t *req, const char *id, usage_tenant_t *out);

/** Reads ?format=csv|json (default_format when absent) and ?bom=true|false; answers 400
 * and returns -1 when malformed. */
int usage_format_query(cc_req_t *req, const char *default_format, bool *csv, bool *bom);
/** Reads ?parent_id= (default: the caller's account): visible (else 404) and holding perm
 * (else 403). Answers and returns -1 otherwise. */
int usage_parent_query(cc_req_t *req, const char *perm, usage_tenant_t *parent);

/* ---- handlers ---- */
extern const cc_route_t usage_routes[];
extern const size_t usage_nroutes;

void usage_handle_samples(cc_req_t *req);
void usage_handle_job_events(cc_req_t *req);
void usage_handle_report(cc_req_t *req);
void usage_handle_plan_get(cc_req_t *req);
void usage_handle_plan_put(cc_req_t *req);
void usage_handle_billing_export(cc_req_t *req);

/** tenants.outbox consumer: tenant.purged deletes the account's usage and plan. */
int usage_on_tenant_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

/** Creates this month's samples/job_events partitions and the next ones. */
int usage_partitions_ensure(cc_db_t *db);
/** The hourly partition keeper (a thread with its own connection). */
int usage_keeper_start(const cc_env_t *env);
void usage_keeper_stop(void);

#endif
