/*
 * console-users: user profiles, staging and activation.
 *
 * The routes of this service live in the table below (one line per endpoint); the
 * framework (common/service.c) adds /healthz, /readyz and /metrics, applies the
 * migrations of schemas/users/ at start, and runs handlers on database-owning workers.
 */
#include "console/service.h"

static const cc_route_t routes[] = {
    /* endpoints arrive with the users issue */
    {0},
};

static const cc_service_def_t service = {
    .name = "users",
    .schema = "users",
    .routes = routes,
    .nroutes = 0,
};

int main(int argc, char **argv)
{
    return cc_service_main(&service, argc, argv);
}
