/*
 * console-licensing: orders, activations (online and offline), license pools, product
 * keys, trials and grace periods (DOMAIN.md §6, the licensing FAQ).
 *
 * The routes of this service live in routes.c (one line per endpoint); the
 * framework (common/service.c) adds /healthz, /readyz and /metrics, applies the
 * migrations of schemas/licensing/ at start, and runs handlers on database-owning workers.
 */
#include "console/log.h"
#include "console/outbox.h"
#include "licensing.h"

static lic_app_t app;

static int on_start(cc_service_t *svc)
{
    app.svc = svc;
    svc->app = &app;
    cc_db_t *db = NULL;
    int rc = cc_service_db_connect(&svc->env, "licensing-keys", "licensing, public", &db);
    app.key_policy = (lic_key_policy_t){.rotation_days = (int)svc->env.license_key_rotation_days,
                                        .overlap_days = (int)svc->env.license_key_overlap_days};
    if (rc == 0)
        rc = lic_app_keys_start(&app, db);
    cc_db_close(db);
    if (rc != 0) {
        cc_log_error("licensing: the signing key could not be loaded (%s)", cc_strerror(rc));
        return rc;
    }
    return cc_outbox_consumer_start(svc->env.database_url, "licensing, public", "tenants",
                                    "licensing.tenants", 10000, lic_on_tenants_event, &app,
                                    &app.tenants_events);
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    if (app.tenants_events != NULL)
        cc_outbox_consumer_stop(app.tenants_events);
    lic_app_keys_stop(&app);
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "licensing",
        .schema = "licensing",
        .routes = lic_routes,
        .nroutes = lic_nroutes,
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
