/*
 * console-branding: white-label branding (brands per MSP with customer overrides, the
 * effective brand, logo and favicon assets, previews and test mail).
 *
 * The routes live in handlers.c (one line per endpoint); the framework (common/service.c)
 * adds /healthz, /readyz and /metrics, applies the migrations of schemas/branding/ at
 * start, authenticates and authorizes callers, and runs handlers on database workers.
 */
#include <libxml/parser.h>

#include "branding.h"

static branding_app_t app;
static cc_outbox_consumer_t *tenants_events;

static int on_start(cc_service_t *svc)
{
    xmlInitParser(); /* once, before the worker threads parse SVG uploads */
    app.svc = svc;
    svc->app = &app;
    return cc_outbox_consumer_start(svc->env.database_url, "branding, public", "tenants",
                                    "branding.tenant_purge", 10000, branding_on_tenants_event, NULL,
                                    &tenants_events);
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    cc_outbox_consumer_stop(tenants_events);
    tenants_events = NULL;
    xmlCleanupParser();
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "branding",
        .schema = "branding",
        .routes = branding_routes,
        .nroutes = branding_nroutes,
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
