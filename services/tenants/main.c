/*
 * console-tenants: the MSP → customer tree and its lifecycle.
 *
 * The routes of this service live in the table below (one line per endpoint); the
 * framework (common/service.c) adds /healthz, /readyz and /metrics, applies the
 * migrations of schemas/tenants/ at start, and runs handlers on database-owning workers.
 */
#include "console/service.h"

static const cc_route_t routes[] = {
    /* endpoints arrive with the tenants issue */
    {0},
};

static const cc_service_def_t service = {
    .name = "tenants",
    .schema = "tenants",
    .routes = routes,
    .nroutes = 0,
};

int main(int argc, char **argv)
{
    return cc_service_main(&service, argc, argv);
}
