/*
 * console-usage: usage ingestion, reports and billing exports.
 *
 * The routes of this service live in routes.c (one line per endpoint); the
 * framework (common/service.c) adds /healthz, /readyz and /metrics, applies the
 * migrations of schemas/usage/ at start, and runs handlers on database-owning workers.
 * A keeper thread creates the monthly partitions of samples and job events ahead of time;
 * a consumer of tenants.outbox deletes a purged account's usage (events.c).
 */
#include "usage.h"

static cc_outbox_consumer_t *tenant_events;

static int on_start(cc_service_t *svc)
{
    int rc = usage_keeper_start(&svc->env);
    if (rc == 0)
        rc = cc_outbox_consumer_start(svc->env.database_url, "usage, public", "tenants",
                                      "usage-tenants", 1000, usage_on_tenant_event, NULL,
                                      &tenant_events);
    return rc;
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    if (tenant_events != NULL)
        cc_outbox_consumer_stop(tenant_events);
    tenant_events = NULL;
    usage_keeper_stop();
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "usage",
        .schema = "usage",
        .routes = usage_routes,
        .nroutes = usage_nroutes,
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
