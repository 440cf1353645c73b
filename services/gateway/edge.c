/*
 * The edge: every request passes here first. In order: the gateway's own endpoints,
 * request id and trace context, rate limit, routing, body limit, upstream health, the
 * bearer token (for /api/v1 except the public exceptions), then the reverse proxy
 * (h2o_reprocess_request with the upstream's socket pool). A per-request prefilter
 * turns h2o's own proxy errors (upstream down or silent) into problem JSON, and a
 * logger writes one JSON access-log line per request and feeds the metrics.
 */
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "console/crypto.h"
#include "console/log.h"
#include "gateway.h"

/* ------------------------------------------------------------------------------------ */
/* routing: the first match wins, so specific patterns come first                        */

enum { ID, TEN, USR, ROL, QUO, USA, BRA, LIC };

static const gw_route_t routes[] = {
    {NULL, "/.well-known/**", ID, GW_PUBLIC, 0},
    {NULL, "/oauth2/**", ID, GW_PUBLIC, 64 * 1024},
    {NULL, "/login/**", ID, GW_PUBLIC, 64 * 1024},
    {NULL, "/activate/**", ID, GW_PUBLIC, 64 * 1024},
    {NULL, "/mfa/**", ID, GW_PUBLIC, 64 * 1024},
    {NULL, "/password/**", ID, GW_PUBLIC, 64 * 1024},
    {NULL, "/api/v1/authn/**", ID, GW_PUBLIC, 64 * 1024},
    {NULL, "/api/v1/me/**", ID, 0, 0},
    {NULL, "/api/v1/api-clients/**", ID, 0, 0},
    {NULL, "/api/v1/tenants/{}/identity-provider", ID, 0, 0},
    {NULL, "/api/v1/tenants/{}/mfa-policy", ID, 0, 0},
    {NULL, "/api/v1/tenants/{}/mfa-enrollment", ID, 0, 0},
    {NULL, "/api/v1/tenants/{}/impersonate", ID, 0, 0},
    {NULL, "/api/v1/tenants/{}/quotas/**", QUO, 0, 0},
    {NULL, "/api/v1/tenants/{}/branding/**", BRA, 0, 1024 * 1024},
    {NULL, "/api/v1/tenants/{}/billing-plan", USA, 0, 0},
    /* account admins are grants: the roles service owns them */
    {NULL, "/api/v1/tenants/{}/account-admins/**", ROL, 0, 0},
    {NULL, "/api/v1/tenants/**", TEN, 0, 0},
    {NULL, "/api/v1/users/{}/grants", ROL, 0, 0},
    {"POST", "/api/v1/users/{}/unlock", ID, 0, 0},
    {"POST", "/api/v1/users/{}/factors/reset", ID, 0, 0},
    {NULL, "/api/v1/users/**", USR, 0, 0},
    {NULL, "/api/v1/audit-events/**", USR, 0, 0},
    {NULL, "/api/v1/roles/**", ROL, 0, 0},
    {NULL, "/api/v1/permissions/**", ROL, 0, 0},
    {NULL, "/api/v1/usage/**", USA, 0, 8 * 1024 * 1024},
    {NULL, "/api/v1/reports/**", USA, 0, 0},
    {NULL, "/api/v1/billing/**", USA, 0, 0},
    {"GET", "/api/v1/branding/effective", BRA, GW_PUBLIC, 0},
    {NULL, "/api/v1/branding/**", BRA, 0, 0},
    /* products activate with the order id + fulfillment number as proof, and check in or
     * deactivate with their activation secret (API.md, Licensing) */
    {"POST", "/api/v1/licensing/activations", LIC, GW_PUBLIC, 0},
    {"POST", "/api/v1/licensing/activations/{}/check-in", LIC, GW_PUBLIC, 0},
    {"DELETE", "/api/v1/licensing/activations/{}", LIC, GW_PUBLIC, 0},
    {"POST", "/api/v1/licensing/approvals/{}", LIC, GW_PUBLIC, 0},
    /* the product's e-mail change (secret), trials (first sight of a fingerprint) and the
     * public key products verify licenses with */
    {"POST", "/api/v1/licensing/activations/{}/email", LIC, GW_PUBLIC, 0},
    {"POST", "/api/v1/licensing/trials", LIC, GW_PUBLIC, 0},
    {"GET", "/api/v1/licensing/public-key", LIC, GW_PUBLIC, 0},
    {NULL, "/api/v1/licensing/**", LIC, 0, 0},
    {NULL, "/licensing/**", LIC, GW_PUBLIC, 0},
    {NULL, "/branding/assets/**", BRA, GW_PUBLIC, 0},
};

/* Matches one pattern against the path (no query). */
static bool pattern_match(const char *pat, const char *path, size_t len)
{
    const char *p = pat, *s = path, *end = path + len;
    for (;;) {
        if (*p == '\0')
            return s == end;
        if (*p != '/' || s == end || *s != '/')
            return false;
        p++;
        s++;
        if (strcmp(p, "**") == 0)
            return true;
        const char *pe = strchr(p, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        const char *se = memchr(s, '/', (size_t)(end - s));
        size_t sl = se ? (size_t)(se - s) : (size_t)(end - s);
        if (pl == 2 && p[0] == '{' && p[1] == '}') {
            if (sl == 0)
                return false;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return false;
        }
        p += pl;
        s += sl;
        // a trailing "/**" also matches the bare prefix
        if (*p == '/' && strcmp(p, "/**") == 0 && s == end)
            return true;
    }
}

const gw_route_t *gw_route_find(const char *method, const char *path, size_t len)
{
    for (size_t i = 0; i < CC_ARRAY_SIZE(routes); i++) {
        const gw_route_t *r = &routes[i];
        if (r->method != NULL && strcmp(r->method, method) != 0)
            continue;
        if (pattern_match(r->pattern, path, len))
            return r;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* responses made at the edge                                                            */

static h2o_iovec_t pool_str(h2o_req_t *req, const char *s)
{
    return h2o_strdup(&req->pool, s, strlen(s));
}

static void add_header(h2o_req_t *req, h2o_headers_t *headers, const char *name, const char *value)
{
    h2o_iovec_t n = pool_str(req, name), v = pool_str(req, value);
    h2o_add_header_by_str(&req->pool, headers, n.base, n.len, 1, NULL, v.base, v.len);
}

static const char *request_id_of(h2o_req_t *req)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i < 0)
        return "";
    h2o_iovec_t v = req->headers.entries[i].value;
    return h2o_strdup(&req->pool, v.base, v.len).base;
}

static void send_problem(h2o_req_t *req, cc_error_id_t id, json_t *extra, const char *detail,
                         const char *retry_after)
{
    char *body = cc_problem_json(id, detail, request_id_of(req), extra);
    json_decref(extra);
    req->res.status = cc_error_defs[id].status;
    req->res.reason = cc_http_reason(req->res.status);
    add_header(req, &req->res.headers, "content-type", "application/problem+json");
    add_header(req, &req->res.headers, "x-request-id", request_id_of(req));
    add_header(req, &req->res.headers, "cache-control", "no-store");
    if (req->res.status == 401)
        add_header(req, &req->res.headers, "www-authenticate", "Bearer error=\"invalid_token\"");
    if (retry_after)
        add_header(req, &req->res.headers, "retry-after", retry_after);
    req->res.content_length = strlen(body);
    h2o_send_inline(req, body, strlen(body));
    free(body);
    cc_metrics_error(gw.metrics, id);
}

static void send_json(h2o_req_t *req, int status, const char *ctype, const char *body)
{
    req->res.status = status;
    req->res.reason = cc_http_reason(status);
    add_header(req, &req->res.headers, "content-type", ctype);
    add_header(req, &req->res.headers, "x-request-id", request_id_of(req));
    add_header(req, &req->res.headers, "cache-control", "no-store");
    req->res.content_length = strlen(body);
    h2o_send_inline(req, body, strlen(body));
}

/* ------------------------------------------------------------------------------------ */
/* prefilter: problem JSON for h2o's own proxy errors; common response headers           */

typedef struct replace_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
} replace_ostream_t;

static void replace_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t n,
                            h2o_send_state_t state)
{
    replace_ostream_t *os = (replace_ostream_t *)self;
    if (!os->sent) {
        os->sent = true;
        h2o_ostream_send_next(self, req, &os->body, 1, state);
    } else {
        h2o_ostream_send_next(self, req, NULL, 0, state);
    }
}

/* The gateway's per-request state rides on its response prefilter. */
typedef struct gw_prefilter {
    h2o_req_prefilter_t super;
    int upstream; /* index of the service the request was proxied to, -1 for none */
} gw_prefilter_t;

static void on_prefilter(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot);

static gw_prefilter_t *prefilter_of(h2o_req_t *req)
{
    for (h2o_req_prefilter_t *p = req->prefilters; p != NULL; p = p->next)
        if (p->on_setup_ostream == on_prefilter)
            return (gw_prefilter_t *)p;
    return NULL;
}

/* Microseconds since the request began. */
static int64_t elapsed_us(h2o_req_t *req)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    struct timeval *begin = &req->timestamps.request_begin_at;
    int64_t us = (int64_t)(now.tv_sec - begin->tv_sec) * 1000000 + (now.tv_usec - begin->tv_usec);
    return us < 0 ? 0 : us;
}

static void on_prefilter(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    bool from_upstream =
        h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1) >= 0;
    if (!from_upstream && req->res.status >= 502 && req->res.status <= 504) {
        cc_error_id_t id =
            req->res.status == 504 ? CC_ERR_UPSTREAM_TIMEOUT : CC_ERR_UPSTREAM_UNAVAILABLE;
        const gw_route_t *r = gw_route_find(
            "GET", req->path.base, req->query_at != SIZE_MAX ? req->query_at : req->path.len);
        char detail[160];
        snprintf(detail, sizeof(detail), "The %s service did not answer; retry shortly.",
                 r ? cc_service_names[r->upstream] : "upstream");
        char *body = cc_problem_json(id, detail, request_id_of(req), NULL);
        req->res.status = cc_error_defs[id].status;
        req->res.reason = cc_http_reason(req->res.status);
        req->res.headers = (h2o_headers_t){NULL, 0, 0};
        add_header(req, &req->res.headers, "content-type", "application/problem+json");
        add_header(req, &req->res.headers, "x-request-id", request_id_of(req));
        add_header(req, &req->res.headers, "retry-after", "1");
        replace_ostream_t *os = (replace_ostream_t *)h2o_add_ostream(req, sizeof(*os), slot);
        os->body = h2o_strdup(&req->pool, body, strlen(body));
        os->sent = false;
        os->super.do_send = replace_do_send;
        req->res.content_length = os->body.len;
        slot = &os->super.next;
        free(body);
        cc_metrics_error(gw.metrics, id);
    }
    if (h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-content-type-options"), -1) < 0)
        add_header(req, &req->res.headers, "x-content-type-options", "nosniff");
    /* counted when the answer starts (latency = time to the response head), so that a
     * client that has seen the answer also sees it in /metrics; h2o runs loggers only
     * when it disposes of the request, which may come after the client's next request */
    int upstream = ((gw_prefilter_t *)self)->upstream;
    cc_metrics_observe(gw.metrics, upstream >= 0 ? (size_t)upstream : GW_NUPSTREAMS,
                       req->res.status, (uint64_t)elapsed_us(req) * 1000u);
    h2o_setup_next_prefilter(self, req, slot);
}

/* ------------------------------------------------------------------------------------ */
/* proxying                                                                              */

static void proxy_to(h2o_req_t *req, gw_upstream_t *up)
{
    gw_prefilter_t *pf = prefilter_of(req);
    if (pf != NULL)
        pf->upstream = (int)(up - gw.upstreams);
    h2o_req_overrides_t *ov = h2o_mem_alloc_pool(&req->pool, sizeof(*ov));
    memset(ov, 0, sizeof(*ov));
    ov->socketpool = &up->pool;
    ov->location_rewrite.match = &up->parsed;
    ov->location_rewrite.path_prefix = h2o_iovec_init(H2O_STRLIT("/"));
    h2o_reprocess_request(req, req->method, up->parsed.scheme, up->parsed.authority, req->path, ov,
                          0);
}

/* ------------------------------------------------------------------------------------ */
/* tokens: a per-thread cache of verified tokens, and the slow path for unknown kids     */

#define TOKEN_CACHE 1024
typedef struct token_cache_entry {
    uint8_t digest[32];
    int64_t valid_until;
} token_cache_entry_t;
static _Thread_local token_cache_entry_t token_cache[TOKEN_CACHE];

typedef struct gw_auth_job {
    h2o_multithread_message_t msg;
    struct gw_auth_job *next;
    h2o_req_t *req; /* NULL once the client went away */
    struct auth_link *link;
    gw_thread_t *thread;
    char *token;
    int upstream;
    int rc;
    int64_t exp;
} gw_auth_job_t;

typedef struct auth_link {
    gw_auth_job_t *job;
} auth_link_t;

static bool token_cached(const uint8_t digest[32], int64_t now)
{
    token_cache_entry_t *e = &token_cache[(digest[0] | digest[1] << 8) % TOKEN_CACHE];
    return e->valid_until > now && memcmp(e->digest, digest, 32) == 0;
}

static void token_remember(const uint8_t digest[32], int64_t exp, int64_t now)
{
    token_cache_entry_t *e = &token_cache[(digest[0] | digest[1] << 8) % TOKEN_CACHE];
    memcpy(e->digest, digest, 32);
    e->valid_until = exp < now + 300 ? exp : now + 300;
}

/* 0: valid; CC_EKEY: unknown kid (try the slow path); other: invalid */
static int verify_fast(const char *token, size_t len, int64_t *exp)
{
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    const char *why = NULL;
    cc_auth_opts_t opts = gw.auth;
    opts.may_fetch = false;
    char *t = cc_pool_strndup(pool, token, len);
    int rc = cc_auth_verify(gw.jwks, &opts, t, pool, &p, &why);
    if (rc == 0)
        *exp = p->exp;
    else if (rc != CC_EKEY)
        cc_log_info("token refused at the edge: %s", why ? why : cc_strerror(rc));
    cc_pool_free(pool);
    return rc;
}

static void on_auth_link_dispose(void *p)
{
    auth_link_t *link = p;
    if (link->job != NULL) {
        link->job->req = NULL;
        link->job->link = NULL;
    }
}

void *gw_auth_main(void *arg)
{
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        pthread_mutex_lock(&gw.auth_lock);
        while (gw.auth_head == NULL && !atomic_load(&gw.stopping))
            pthread_cond_wait(&gw.auth_cond, &gw.auth_lock);
        gw_auth_job_t *job = gw.auth_head;
        if (job == NULL) {
            pthread_mutex_unlock(&gw.auth_lock);
            break;
        }
        gw.auth_head = job->next;
        if (gw.auth_head == NULL)
            gw.auth_tail = NULL;
        pthread_mutex_unlock(&gw.auth_lock);

        cc_pool_t *pool = cc_pool_new();
        cc_principal_t *p = NULL;
        const char *why = NULL;
        cc_auth_opts_t opts = gw.auth;
        opts.may_fetch = true; /* blocking JWKS fetch, rate-limited, here off the loops */
        job->rc = cc_auth_verify(gw.jwks, &opts, job->token, pool, &p, &why);
        if (job->rc == 0)
            job->exp = p->exp;
        else
            cc_log_info("token refused at the edge: %s", why ? why : cc_strerror(job->rc));
        cc_pool_free(pool);
        h2o_multithread_send_message(&job->thread->receiver, &job->msg);
    }
    return NULL;
}

static void on_thread_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        gw_thread_t *t = H2O_STRUCT_FROM_MEMBER(gw_thread_t, receiver, receiver);
        if (m == &t->wake) {
            if (atomic_load(&t->exit) && t->listener != NULL) {
                h2o_socket_read_stop(t->listener);
                h2o_socket_close(t->listener);
                t->listener = NULL;
            }
            continue;
        }
        gw_auth_job_t *job = (gw_auth_job_t *)m;
        if (job->req != NULL) {
            if (job->link)
                job->link->job = NULL;
            if (job->rc == 0) {
                uint8_t digest[32];
                cc_sha256(job->token, strlen(job->token), digest);
                token_remember(digest, job->exp, (int64_t)time(NULL));
                proxy_to(job->req, &gw.upstreams[job->upstream]);
            } else if (job->rc == CC_EIO) {
                send_problem(job->req, CC_ERR_UPSTREAM_UNAVAILABLE, NULL,
                             "The identity service's signing keys are unreachable; retry.", "1");
            } else {
                send_problem(job->req, CC_ERR_UNAUTHORIZED, NULL,
                             "A valid bearer access token is required.", NULL);
            }
        }
        free(job->token);
        free(job);
    }
}

void gw_edge_thread_init(gw_thread_t *t, h2o_context_t *ctx)
{
    t->queue = h2o_multithread_create_queue(ctx->loop);
    h2o_multithread_register_receiver(t->queue, &t->receiver, on_thread_message);
}

void gw_edge_thread_dispose(gw_thread_t *t)
{
    h2o_multithread_unregister_receiver(t->queue, &t->receiver);
    h2o_multithread_destroy_queue(t->queue);
}

/* ------------------------------------------------------------------------------------ */
/* the edge handler                                                                      */

typedef struct edge_handler {
    h2o_handler_t super;
} edge_handler_t;

static bool header_value(h2o_req_t *req, const char *name, size_t nl, h2o_iovec_t *out)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, nl, -1);
    if (i < 0)
        return false;
    *out = req->headers.entries[i].value;
    return true;
}

static void delete_headers(h2o_req_t *req, const char *name, size_t nl)
{
    ssize_t i;
    while ((i = h2o_find_header_by_str(&req->headers, name, nl, -1)) >= 0)
        h2o_delete_header(&req->headers, i);
}

/* W3C trace context: 00-<32 hex>-<16 hex>-<2 hex> */
static bool traceparent_valid(h2o_iovec_t v)
{
    if (v.len != 55 || v.base[2] != '-' || v.base[35] != '-' || v.base[52] != '-')
        return false;
    for (size_t i = 0; i < v.len; i++) {
        char c = v.base[i];
        if (i == 2 || i == 35 || i == 52)
            continue;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

static void client_key(h2o_req_t *req, char *buf, size_t cap, size_t *len)
{
    h2o_iovec_t xff;
    if (gw.env.trust_forwarded && header_value(req, H2O_STRLIT("x-forwarded-for"), &xff)) {
        size_t n = 0;
        while (n < xff.len && xff.base[n] != ',' && n < cap - 1)
            n++;
        memcpy(buf, xff.base, n);
        *len = n;
        return;
    }
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    size_t n = sl ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, buf) : SIZE_MAX;
    *len = n == SIZE_MAX ? 0 : n;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char method[16] = "";
    if (req->method.len < sizeof(method))
        memcpy(method, req->method.base, req->method.len);

    /* request id: keep a valid incoming one, otherwise make one */
    h2o_iovec_t rid;
    bool have_rid = header_value(req, H2O_STRLIT("x-request-id"), &rid);
    char ridbuf[80];
    if (have_rid)
        snprintf(ridbuf, sizeof(ridbuf), "%.*s", (int)(rid.len < 79 ? rid.len : 79), rid.base);
    if (!have_rid || rid.len > 64 || !cc_request_id_valid(ridbuf)) {
        delete_headers(req, H2O_STRLIT("x-request-id"));
        char id[37];
        cc_request_id_new(id);
        add_header(req, &req->headers, "x-request-id", id);
    }
    h2o_iovec_t tp;
    if (header_value(req, H2O_STRLIT("traceparent"), &tp) && !traceparent_valid(tp))
        delete_headers(req, H2O_STRLIT("traceparent"));
    if (!gw.env.trust_forwarded) {
        delete_headers(req, H2O_STRLIT("x-forwarded-for"));
        delete_headers(req, H2O_STRLIT("x-forwarded-proto"));
        delete_headers(req, H2O_STRLIT("x-forwarded-host"));
        delete_headers(req, H2O_STRLIT("forwarded"));
    }
    /* the proxy rewrites Host to the upstream's: pass the client's on, so that identity's
     * pages and the branding service find the brand of a login domain */
    h2o_iovec_t fwd_host;
    if (!header_value(req, H2O_STRLIT("x-forwarded-host"), &fwd_host) && req->authority.len > 0 &&
        req->authority.len < 256)
        h2o_add_header_by_str(&req->pool, &req->headers, H2O_STRLIT("x-forwarded-host"), 0, NULL,
                              req->authority.base, req->authority.len);
    gw_prefilter_t *pf = (gw_prefilter_t *)h2o_add_prefilter(req, sizeof(*pf));
    pf->super.on_setup_ostream = on_prefilter;
    pf->upstream = -1;

    /* the gateway's own endpoints */
    if (h2o_memis(req->path.base, plen, H2O_STRLIT("/healthz"))) {
        send_json(req, 200, "application/json",
                  "{\"status\":\"ok\",\"service\":\"gateway\",\"version\":\"" CONSOLE_VERSION
                  "\"}");
        return 0;
    }
    if (h2o_memis(req->path.base, plen, H2O_STRLIT("/readyz"))) {
        bool ok = false;
        char *doc = gw_health_snapshot(gw.health, &ok);
        if (ok) {
            send_json(req, 200, "application/json", doc);
        } else {
            json_t *extra = json_loads(doc, 0, NULL);
            send_problem(req, CC_ERR_NOT_READY, extra, "Some services are not ready; see services.",
                         "1");
        }
        free(doc);
        return 0;
    }
    if (h2o_memis(req->path.base, plen, H2O_STRLIT("/metrics"))) {
        cc_buf_t out;
        cc_buf_init(&out);
        cc_metrics_render(gw.metrics, &out);
        send_json(req, 200, "text/plain; version=0.0.4", out.data ? out.data : "");
        cc_buf_free(&out);
        return 0;
    }

    char key[64];
    size_t keylen = 0;
    client_key(req, key, sizeof(key), &keylen);
    int wait = gw_ratelimit_take(gw.ratelimit, key, keylen, cc_now_ns());
    if (wait > 0) {
        char ra[16];
        snprintf(ra, sizeof(ra), "%d", wait);
        send_problem(req, CC_ERR_RATE_LIMITED, NULL, "Too many requests from this client.", ra);
        return 0;
    }

    const gw_route_t *route = gw_route_find(method, req->path.base, plen);
    if (route == NULL) {
        send_problem(req, CC_ERR_ROUTE_NOT_FOUND, NULL, "No endpoint exists at this path.", NULL);
        return 0;
    }
    size_t limit = route->max_body ? route->max_body : (size_t)gw.env.max_body;
    if (req->entity.base != NULL && req->entity.len > limit) {
        char detail[96];
        snprintf(detail, sizeof(detail), "The body is %zu bytes; the limit is %zu.",
                 req->entity.len, limit);
        send_problem(req, CC_ERR_PAYLOAD_TOO_LARGE, NULL, detail, NULL);
        return 0;
    }
    gw_upstream_t *up = &gw.upstreams[route->upstream];
    if (atomic_load(&up->state) == 0) {
        char detail[128];
        snprintf(detail, sizeof(detail), "The %s service does not answer; retry shortly.",
                 up->name);
        send_problem(req, CC_ERR_UPSTREAM_UNAVAILABLE, NULL, detail, "1");
        return 0;
    }

    if (!(route->flags & GW_PUBLIC)) {
        h2o_iovec_t authz;
        if (!header_value(req, H2O_STRLIT("authorization"), &authz) || authz.len < 8 ||
            !cc_strieq_n(authz.base, 7, "bearer ")) {
            send_problem(req, CC_ERR_UNAUTHORIZED, NULL, "A valid bearer access token is required.",
                         NULL);
            return 0;
        }
        const char *token = authz.base + 7;
        size_t tlen = authz.len - 7;
        while (tlen > 0 && *token == ' ')
            token++, tlen--;
        uint8_t digest[32];
        cc_sha256(token, tlen, digest);
        int64_t now = (int64_t)time(NULL), exp = 0;
        if (!token_cached(digest, now)) {
            int rc = verify_fast(token, tlen, &exp);
            if (rc == CC_EKEY) {
                /* unknown signing key: fetch the JWKS on the auth thread, then resume */
                gw_thread_t *t = H2O_STRUCT_FROM_MEMBER(gw_thread_t, ctx, req->conn->ctx);
                gw_auth_job_t *job = cc_calloc(1, sizeof(*job));
                job->req = req;
                job->thread = t;
                job->token = cc_strndup(token, tlen);
                job->upstream = route->upstream;
                auth_link_t *link =
                    h2o_mem_alloc_shared(&req->pool, sizeof(*link), on_auth_link_dispose);
                link->job = job;
                job->link = link;
                pthread_mutex_lock(&gw.auth_lock);
                if (gw.auth_tail)
                    gw.auth_tail->next = job;
                else
                    gw.auth_head = job;
                gw.auth_tail = job;
                pthread_cond_signal(&gw.auth_cond);
                pthread_mutex_unlock(&gw.auth_lock);
                return 0;
            }
            if (rc != 0) {
                send_problem(req, CC_ERR_UNAUTHORIZED, NULL,
                             "A valid bearer access token is required.", NULL);
                return 0;
            }
            token_remember(digest, exp, now);
        }
    }
    proxy_to(req, up);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* access log and metrics                                                                */

static void on_log_access(h2o_logger_t *self, h2o_req_t *req)
{
    if (!gw.access_log)
        return;
    int64_t us = elapsed_us(req);
    struct timeval now;
    gettimeofday(&now, NULL);
    gw_prefilter_t *pf = prefilter_of(req);
    int upstream = pf != NULL ? pf->upstream : -1;
    size_t plen = req->input.query_at != SIZE_MAX ? req->input.query_at : req->input.path.len;
    char method[16] = "";
    if (req->input.method.len < sizeof(method))
        memcpy(method, req->input.method.base, req->input.method.len);
    /* the path without its query: a query may carry a session token */
    cc_buf_t b;
    cc_buf_init(&b);
    char ts[40];
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", (long)(now.tv_usec / 1000));
    cc_buf_printf(&b,
                  "{\"ts\":\"%s\",\"level\":\"info\",\"service\":\"gateway\",\"msg\":\"access\""
                  ",\"request_id\":\"",
                  ts);
    const char *rid = request_id_of(req);
    cc_buf_json_escape(&b, rid, strlen(rid));
    cc_buf_puts(&b, "\",\"method\":\"");
    cc_buf_json_escape(&b, method, strlen(method));
    cc_buf_puts(&b, "\",\"path\":\"");
    cc_buf_json_escape(&b, req->input.path.base, plen < 512 ? plen : 512);
    char client[NI_MAXHOST] = "";
    struct sockaddr_storage ss;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    size_t cl = sl ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, client) : SIZE_MAX;
    cc_buf_printf(&b,
                  "\",\"status\":%d,\"bytes\":%llu,\"duration_ms\":%.3f,\"upstream\":\"%s\","
                  "\"client\":\"%.*s\"}\n",
                  req->res.status, (unsigned long long)req->bytes_sent, (double)us / 1000.0,
                  upstream >= 0 ? cc_service_names[upstream] : "gateway",
                  cl == SIZE_MAX ? 0 : (int)cl, client);
    ssize_t w = write(1, b.data, b.len);
    (void)w;
    cc_buf_free(&b);
}

void gw_edge_register(h2o_pathconf_t *pathconf)
{
    edge_handler_t *h = (edge_handler_t *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h2o_logger_t *logger = h2o_create_logger(pathconf, sizeof(*logger));
    logger->log_access = on_log_access;
}
