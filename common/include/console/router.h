/*
 * Router: a table of routes (method + path pattern with {param} segments) matched
 * against a request path. The most specific pattern wins (a literal segment beats a
 * parameter at the first position where they differ), so "/tenants/summary" and
 * "/tenants/{id}" may be listed in any order. A path that matches only with another
 * method gives CC_ROUTER_METHOD and the Allow list. Immutable after creation: share it
 * between threads freely.
 */
#ifndef CONSOLE_ROUTER_H
#define CONSOLE_ROUTER_H

#include <stddef.h>

#include "console/mem.h"

#define CC_ROUTE_MAX_PARAMS 8
#define CC_ROUTE_MAX_SEGMENTS 16

typedef struct cc_req cc_req_t;
/** A request handler: reads req, answers with one of the cc_res_* functions. */
typedef void (*cc_handler_cb)(cc_req_t *req);

enum {
    CC_ROUTE_PUBLIC = 1 << 0, /* no bearer token needed */
    CC_ROUTE_INLINE = 1 << 1, /* runs on the event loop: no database, never blocks */
};

typedef struct cc_route {
    const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
    const char *pattern; /* "/api/v1/tenants/{id}" */
    cc_handler_cb handler;
    unsigned flags;
    size_t max_body; /* 0: the server's default limit */
} cc_route_t;

typedef struct cc_route_match {
    int index; /* into the route table */
    size_t nparams;
    const char *names[CC_ROUTE_MAX_PARAMS];
    const char *values[CC_ROUTE_MAX_PARAMS]; /* percent-decoded, pool memory */
    const char *allow;                       /* for CC_ROUTER_METHOD: "GET, HEAD, PATCH" */
} cc_route_match_t;

#define CC_ROUTER_NOT_FOUND (-1)
#define CC_ROUTER_METHOD (-2)
#define CC_ROUTER_BAD_PATH (-3) /* malformed percent-encoding or invalid UTF-8 */

typedef struct cc_router cc_router_t;

/** Compiles routes[0..n); the table must outlive the router. NULL (and logs) on a bad pattern. */
cc_router_t *cc_router_new(const cc_route_t *routes, size_t n);
void cc_router_free(cc_router_t *r);

/**
 * Matches method and path (without the query). Returns the route index (>= 0) and fills m,
 * or CC_ROUTER_NOT_FOUND, CC_ROUTER_METHOD (m->allow set) or CC_ROUTER_BAD_PATH.
 * HEAD matches GET routes.
 */
int cc_router_match(const cc_router_t *r, const char *method, const char *path, cc_pool_t *pool,
                    cc_route_match_t *m);

#endif
