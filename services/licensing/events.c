/*
 * What licensing does when the tenant tree changes (the tenants service's outbox): a
 * purged account loses its orders with their lines, pools, activations, links and keys;
 * pools an MSP had allocated to a purged customer go back to the account that owns the
 * order (its licenses are the MSP's, not the customer's). Idempotent: a replayed event
 * finds nothing left to do.
 */
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/log.h"
#include "console/outbox.h"
#include "licensing.h"

static const cc_stmt_t q_pools_home =
    CC_STMT("lic_ev_pools_home",
            "UPDATE pools p SET tenant_id = o.tenant_id, tenant_path = o.tenant_path,"
            " updated_at = licensing_now(), version = p.version + 1 FROM orders o"
            " WHERE o.id = p.order_id AND p.tenant_id = $1::uuid AND o.tenant_id <> $1::uuid",
            1);
static const cc_stmt_t q_orders_delete = CC_STMT(
    "lic_ev_orders_delete", "DELETE FROM orders WHERE tenant_id = $1::uuid RETURNING id", 1);

int lic_on_tenants_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->type, "tenant.purged") != 0 || ev->aggregate_id == NULL ||
        !cc_is_uuid(ev->aggregate_id))
        return 0;
    const char *p[] = {ev->aggregate_id};
    PGresult *moved, *deleted;
    int rc = cc_db_query(db, pool, &q_pools_home, p, &moved);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_orders_delete, p, &deleted);
    if (rc != 0)
        return -1;
    int npools = atoi(PQcmdTuples(moved)), norders = PQntuples(deleted);
    if (npools == 0 && norders == 0)
        return 0;
    const char *msp = json_string_value(json_object_get(ev->payload, "msp_id"));
    cc_audit_t a = {
        .action = "licensing.tenant_purged",
        .target_type = "tenant",
        .target_id = ev->aggregate_id,
        .tenant_id = ev->aggregate_id,
        .msp_id = msp && cc_is_uuid(msp) ? msp : NULL,
        .details = json_pack("{s:i, s:i}", "orders_deleted", norders, "pools_returned", npools)};
    rc = cc_audit_write_system(db, pool, "licensing.tenant_purged", &a);
    json_decref(a.details);
    cc_log_info("tenant %s purged: %d order(s) deleted, %d pool(s) returned to their order's "
                "account",
                ev->aggregate_id, norders, npools);
    return rc == 0 ? 0 : -1;
}
