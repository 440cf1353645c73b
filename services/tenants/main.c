/*
 * console-tenants: the MSP → customer tree and its lifecycle (create, rename, suspend,
 * resume, delete into a recycle bin, restore, purge), lists, summary and exports.
 *
 * The routes live in handlers.c (one line per endpoint); the framework (common/service.c)
 * adds /healthz, /readyz and /metrics, applies the migrations of schemas/tenants/ at
 * start, authenticates and authorizes callers, and runs handlers on database workers.
 */
#include "console/log.h"
#include "tenants.h"

static tenants_app_t app;

static int on_start(cc_service_t *svc)
{
    app.retention_days = (int)svc->env.tenant_retention_days;
    app.purge_interval_s = (int)svc->env.tenant_purge_interval_s;
    svc->app = &app;
    tenants_store_init();
    return tenants_purger_start(&svc->env, app.purge_interval_s);
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    tenants_purger_stop();
    tenants_store_dispose();
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "tenants",
        .schema = "tenants",
        .routes = tenants_routes,
        .nroutes = tenants_nroutes,
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
