/*
 * console-quotas: storage quotas and alerts.
 *
 * The routes live in handlers.c; the framework (common/service.c) adds /healthz, /readyz
 * and /metrics, applies the migrations of schemas/quotas/ at start, and runs handlers on
 * database-owning workers. Three outbox consumers: usage.outbox (usage changes move the
 * alert state), quotas.outbox (threshold alerts are mailed after their commit) and
 * tenants.outbox (a purged account's quotas go).
 */
#include "console/log.h"
#include "quotas.h"

static quotas_app_t app;

static int on_start(cc_service_t *svc)
{
    app.svc = svc;
    svc->app = &app;
    int rc =
        cc_outbox_consumer_start(svc->env.database_url, "quotas, public", "usage", "quotas-usage",
                                 1000, quotas_on_usage_event, &app, &app.usage_events);
    if (rc == 0)
        rc =
            cc_outbox_consumer_start(svc->env.database_url, "quotas, public", "quotas",
                                     "quotas-mailer", 1000, quotas_on_own_event, &app, &app.mailer);
    return rc;
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    if (app.tenant_events != NULL)
        cc_outbox_consumer_stop(app.tenant_events);
    if (app.mailer != NULL)
        cc_outbox_consumer_stop(app.mailer);
    if (app.usage_events != NULL)
        cc_outbox_consumer_stop(app.usage_events);
    app.mailer = app.usage_events = app.tenant_events = NULL;
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "quotas",
        .schema = "quotas",
        .routes = quotas_routes,
        .nroutes = quotas_nroutes,
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
