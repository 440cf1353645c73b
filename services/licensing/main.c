/*
 * console-licensing: orders, activations (online and offline), license pools, product
 * keys, trials and grace periods (DOMAIN.md §6, the licensing FAQ).
 *
 * The routes of this service live in the table below (one line per endpoint); the
 * framework (common/service.c) adds /healthz, /readyz and /metrics, applies the
 * migrations of schemas/licensing/ at start, and runs handlers on database-owning workers.
 * Routes flagged public are the product's (order + fulfillment number or activation
 * secret as proof) and the mailed links'.
 */
#include "console/log.h"
#include "licensing.h"

#define PUB CC_ROUTE_PUBLIC
static const cc_route_t routes[] = {
    {"POST", "/api/v1/licensing/activations", lic_handle_activate, PUB, 64 * 1024},
    {"GET", "/api/v1/licensing/activations", lic_handle_activation_list, 0, 0},
    {"POST", "/api/v1/licensing/activations/{id}/check-in", lic_handle_check_in, PUB, 4096},
    {"DELETE", "/api/v1/licensing/activations/{id}", lic_handle_deactivate, PUB, 4096},
    {"POST", "/api/v1/licensing/activations/{id}/email", lic_handle_email_change, PUB, 4096},
    {"POST", "/api/v1/licensing/offline-requests", lic_handle_offline_request, 0, 64 * 1024},
    {"POST", "/api/v1/licensing/approvals/{token}", lic_handle_approval, PUB, 4096},
    {"POST", "/api/v1/licensing/orders", lic_handle_order_create, 0, 256 * 1024},
    {"GET", "/api/v1/licensing/orders", lic_handle_order_list, 0, 0},
    {"GET", "/api/v1/licensing/orders/{id}", lic_handle_order_get, 0, 0},
    {"GET", "/api/v1/licensing/pools", lic_handle_pool_list, 0, 0},
    {"POST", "/api/v1/licensing/pools", lic_handle_pool_create, 0, 16 * 1024},
    {"PATCH", "/api/v1/licensing/pools/{id}", lic_handle_pool_patch, 0, 16 * 1024},
    {"POST", "/api/v1/licensing/pools/{id}/release", lic_handle_pool_release, 0, 4096},
    {"POST", "/api/v1/licensing/keys", lic_handle_keys_create, 0, 16 * 1024},
    {"GET", "/api/v1/licensing/keys", lic_handle_keys_list, 0, 0},
    {"POST", "/api/v1/licensing/keys/verify", lic_handle_keys_verify, 0, 4096},
    {"GET", "/api/v1/licensing/public-key", lic_handle_public_key, PUB, 0},
    {"POST", "/api/v1/licensing/trials", lic_handle_trial, PUB, 4096},
    {"GET", "/licensing/confirm", lic_handle_confirm, PUB, 0},
};

static lic_app_t app;

static int on_start(cc_service_t *svc)
{
    app.svc = svc;
    svc->app = &app;
    cc_db_t *db = NULL;
    int rc = cc_service_db_connect(&svc->env, "licensing-keys", "licensing, public", &db);
    if (rc == 0)
        rc = lic_keys_init(&app.keys, &svc->master_key, db);
    cc_db_close(db);
    if (rc != 0)
        cc_log_error("licensing: the signing key could not be loaded (%s)", cc_strerror(rc));
    return rc;
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    lic_keys_dispose(&app.keys);
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "licensing",
        .schema = "licensing",
        .routes = routes,
        .nroutes = CC_ARRAY_SIZE(routes),
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
