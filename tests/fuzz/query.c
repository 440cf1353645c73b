/* libFuzzer driver: query strings, pagination cursors and request paths. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "console/json.h"
#include "console/router.h"
#include "console/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void noop(cc_req_t *req)
{
    (void)req;
}

static const cc_route_t routes[] = {
    {"GET", "/api/v1/tenants", noop, 0, 0},
    {"GET", "/api/v1/tenants/summary", noop, 0, 0},
    {"GET", "/api/v1/tenants/{id}", noop, 0, 0},
    {"PATCH", "/api/v1/tenants/{id}", noop, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/quotas/{resource}", noop, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cc_router_t *router;
    if (router == NULL)
        router = cc_router_new(routes, sizeof(routes) / sizeof(routes[0]));
    cc_pool_t *pool = cc_pool_new();
    char *s = cc_pool_strndup(pool, (const char *)data, size);
    const char *v = NULL, *bad = NULL;
    (void)cc_query_get(pool, s, "cursor", &v);
    if (v != NULL) {
        json_t *keys = NULL;
        (void)cc_cursor_decode(pool, v, &keys);
    }
    (void)cc_query_check(pool, s, (const char *const[]){"limit", "cursor", "q", NULL}, &bad);
    cc_route_match_t m;
    (void)cc_router_match(router, "GET", s, pool, &m);
    cc_pool_free(pool);
    return 0;
}
