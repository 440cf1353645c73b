/*
 * console-users: user profiles, staging, activation requests, deactivation.
 *
 * The routes live in handlers.c (one line per endpoint); the framework (common/service.c)
 * adds /healthz, /readyz and /metrics, applies the migrations of schemas/users/ at start,
 * authenticates and authorizes callers, and runs handlers on database workers.
 */
#include "users.h"

static int on_start(cc_service_t *svc)
{
    (void)svc;
    users_store_init();
    return 0;
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    users_store_dispose();
}

int main(int argc, char **argv)
{
    const cc_service_def_t service = {
        .name = "users",
        .schema = "users",
        .routes = users_routes,
        .nroutes = users_nroutes,
        .on_start = on_start,
        .on_stop = on_stop,
    };
    return cc_service_main(&service, argc, argv);
}
