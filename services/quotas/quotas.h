/*
 * The quotas service's internal interfaces: the API (handlers.c) and the alert logic and
 * event consumers (alerts.c). Only this service and its tests include this header.
 */
#ifndef QUOTAS_H
#define QUOTAS_H

#include <stdbool.h>

#include "console/http.h"
#include "console/outbox.h"
#include "console/service.h"

typedef struct quotas_app {
    cc_service_t *svc; /* mail configuration */
    cc_outbox_consumer_t *usage_events, *mailer, *tenant_events;
} quotas_app_t;

extern const cc_route_t quotas_routes[];
extern const size_t quotas_nroutes;

void quotas_handle_list(cc_req_t *req);
void quotas_handle_put(cc_req_t *req);

/**
 * Inside an open transaction: compares the tenant's current usage of resource (the usage
 * service's current_usage view) with its quota, moves the alert state, and when usage
 * crossed a threshold upward (one not alerted since usage was last below it) writes the
 * audit record and the quota.threshold_crossed event. req is the caller for the audit
 * record, or NULL for background work. *crossed (may be NULL) gets the threshold
 * crossed, 0 when none. Returns 0 or a db error; no quota row is not an error.
 */
int quotas_evaluate(cc_db_t *db, cc_pool_t *pool, cc_req_t *req, const char *tenant_id,
                    const char *resource, int *crossed);

/** usage.outbox consumer: usage.changed -> quotas_evaluate. */
int quotas_on_usage_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);
/** quotas.outbox consumer: quota.threshold_crossed -> mail to the root account's admins. */
int quotas_on_own_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

/** tenants.outbox consumer: tenant.purged deletes the account's quotas. */
int quotas_on_tenant_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

#endif
