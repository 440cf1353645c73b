/*
 * Events the branding service consumes from tenants.outbox: "tenant.purged" (the end of
 * the recycle bin) removes the tenant's brand and, when the tenant was a root account,
 * the assets it uploaded that no brand uses any more. Idempotent: deleting nothing is
 * fine, so a replay changes nothing. Replaced logos of live accounts are kept: mail
 * already sent still shows them.
 */
#include <string.h>

#include "console/log.h"
#include "branding.h"

static const cc_stmt_t q_purge_brand =
    CC_STMT("branding_ev_purge_brand", "DELETE FROM brands WHERE tenant_id = $1::uuid", 1);
static const cc_stmt_t q_purge_assets =
    CC_STMT("branding_ev_purge_assets",
            "DELETE FROM assets a WHERE a.msp_id = $1::uuid AND NOT EXISTS"
            " (SELECT 1 FROM brands b WHERE b.logo_asset = a.sha256 OR b.favicon_asset = a.sha256)",
            1);

int branding_on_tenants_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->type, "tenant.purged") != 0 || ev->aggregate_id == NULL ||
        !cc_is_uuid(ev->aggregate_id))
        return 0;
    const char *p[] = {ev->aggregate_id};
    int rc = cc_db_query(db, pool, &q_purge_brand, p, NULL);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_purge_assets, p, NULL);
    if (rc == 0)
        cc_log_info("brand of purged tenant %s removed", ev->aggregate_id);
    return rc;
}
