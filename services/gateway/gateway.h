/*
 * console-gateway: the only public listener. Internal interfaces of its three parts:
 * the edge (routing, checks, proxying: edge.c), the rate limiter (ratelimit.c) and the
 * upstream health poller (health.c).
 */
#ifndef GATEWAY_H
#define GATEWAY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <h2o.h>

#include "console/service.h"

#define GW_NUPSTREAMS 8

/** How the gateway treats a path. */
enum {
    GW_PUBLIC = 1 << 0, /* no bearer token needed at the edge */
};

typedef struct gw_route {
    const char *method;  /* NULL: any */
    const char *pattern; /* segments; "{}" one segment; a final "**" any rest (or none) */
    int upstream;        /* index into cc_service_names */
    unsigned flags;
    size_t max_body; /* 0: CONSOLE_MAX_BODY */
} gw_route_t;

/** Returns the matching route or NULL. */
const gw_route_t *gw_route_find(const char *method, const char *path, size_t path_len);

typedef struct gw_upstream {
    const char *name;
    char *url;
    h2o_url_t parsed;
    h2o_socketpool_t pool;
    _Atomic int state; /* 1 answers, 2 refuses connections, 0 hangs (fail fast), -1 unknown */
} gw_upstream_t;

/* ---- rate limiting: token buckets per client key, shared by all loop threads ---- */
typedef struct gw_ratelimit gw_ratelimit_t;
gw_ratelimit_t *gw_ratelimit_new(double rate_per_s, double burst);
void gw_ratelimit_free(gw_ratelimit_t *rl);
/** Takes one token for key; returns 0 when allowed, else the seconds to wait (>= 1). */
int gw_ratelimit_take(gw_ratelimit_t *rl, const char *key, size_t keylen, uint64_t now_ns);

/* ---- upstream health: a thread polling every service's /readyz ---- */
typedef struct gw_health gw_health_t;
gw_health_t *gw_health_start(gw_upstream_t *ups, int n, int interval_ms);
void gw_health_stop(gw_health_t *h);
/** The latest readiness document ({status, services: {name: {...}}}) and whether all are ready. */
char *gw_health_snapshot(gw_health_t *h, bool *all_ready);

/* ---- the gateway as a whole ---- */
typedef struct gw_thread gw_thread_t;

typedef struct gateway {
    cc_env_t env;
    gw_upstream_t upstreams[GW_NUPSTREAMS];
    cc_jwks_t *jwks;
    cc_auth_opts_t auth;
    char *issuer;
    gw_ratelimit_t *ratelimit;
    gw_health_t *health;
    cc_metrics_t *metrics; /* routes: one label per upstream, plus "gateway" */
    h2o_globalconf_t h2o;
    SSL_CTX *ssl_ctx;
    bool access_log;
    gw_thread_t *threads;
    int nthreads;
    /* slow-path token checks (unknown kid: fetch the JWKS off the loop) */
    pthread_t auth_tid;
    pthread_mutex_t auth_lock;
    pthread_cond_t auth_cond;
    struct gw_auth_job *auth_head, *auth_tail;
    _Atomic bool stopping;
} gateway_t;

extern gateway_t gw;

/** Registers the edge handler and the access logger on the default host. */
void gw_edge_register(h2o_pathconf_t *pathconf);
/** Per-thread setup of the edge (message receiver for slow-path auth). */
void gw_edge_thread_init(gw_thread_t *t, h2o_context_t *ctx);
void gw_edge_thread_dispose(gw_thread_t *t);
/** The slow-path auth thread. */
void *gw_auth_main(void *arg);

struct gw_thread {
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    _Atomic bool exit;
    h2o_multithread_message_t wake;
};

#endif
