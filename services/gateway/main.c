/*
 * console-gateway: the only public listener. Routes by path to the services behind it
 * with h2o's reverse proxy, checks bearer tokens at the edge, limits rates and bodies,
 * adds request ids, logs every request as JSON and aggregates readiness.
 *
 * HTTP/1.1 only (also over TLS): the HTTP/2 stack of libh2o 2.2.5 lacks the fix for
 * CVE-2023-44487 (Rapid Reset), see docs/architecture.md.
 */
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "console/log.h"
#include "gateway.h"

gateway_t gw;

static void *loop_main(void *arg)
{
    gw_thread_t *t = arg;
    while (!atomic_load(&t->exit) || t->listener != NULL)
        h2o_evloop_run(t->ctx.loop, 100);
    return NULL;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    gw_thread_t *t = listener->data;
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(&t->accept_ctx, sock);
}

static int upstream_init(gw_upstream_t *up, const char *name, char *url)
{
    up->name = name;
    up->url = url;
    if (h2o_url_parse(url, strlen(url), &up->parsed) != 0 ||
        up->parsed.scheme != &H2O_URL_SCHEME_HTTP) {
        cc_log_error("upstream %s: %s is not an http:// URL", name, url);
        return CC_EINVAL;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char host[256], port[8];
    snprintf(host, sizeof(host), "%.*s", (int)up->parsed.host.len, up->parsed.host.base);
    snprintf(port, sizeof(port), "%u", (unsigned)h2o_url_get_port(&up->parsed));
    if (getaddrinfo(host, port, &hints, &ai) == 0 && ai != NULL) {
        h2o_socketpool_init_by_address(&up->pool, ai->ai_addr, ai->ai_addrlen, 0, SIZE_MAX);
        freeaddrinfo(ai);
    } else {
        /* a name that resolves later (e.g. a Kubernetes service): resolve per connection */
        h2o_socketpool_init_by_hostport(&up->pool, up->parsed.host, h2o_url_get_port(&up->parsed),
                                        0, SIZE_MAX);
    }
    return 0;
}

/* Refreshes the JWKS every 5 minutes (and at start, until it has keys). */
static void *jwks_main(void *arg)
{
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    int elapsed_ms = 0, period_ms = 300000;
    while (!atomic_load(&gw.stopping)) {
        if (elapsed_ms >= period_ms || (cc_jwks_count(gw.jwks) == 0 && elapsed_ms >= 1000)) {
            if (cc_jwks_refresh(gw.jwks) != 0)
                cc_log_debug("JWKS not reachable yet");
            elapsed_ms = 0;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        elapsed_ms += 100;
    }
    return NULL;
}

static SSL_CTX *make_ssl_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        cc_log_error("CONSOLE_TLS_CERT/CONSOLE_TLS_KEY: cannot load the certificate pair");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: console-gateway\nRuns the public gateway; see docs/operations.md.\n");
            return 0;
        }
        fprintf(stderr, "console-gateway: unknown argument %s\n", argv[i]);
        return 2;
    }
    char err[256];
    cc_log_init("gateway", CC_LOG_INFO);
    if (cc_env_load(&gw.env, NULL, 0, err, sizeof(err)) != 0) {
        cc_log_error("bad configuration: %s", err);
        return 2;
    }
    cc_log_init("gateway", (cc_log_level_t)cc_log_level_parse(gw.env.log_level));
    const char *al = getenv("CONSOLE_ACCESS_LOG");
    gw.access_log = al == NULL || strcmp(al, "off") != 0;
    signal(SIGPIPE, SIG_IGN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    const char *labels[GW_NUPSTREAMS + 1];
    for (int i = 0; i < GW_NUPSTREAMS; i++) {
        if (upstream_init(&gw.upstreams[i], cc_service_names[i],
                          cc_upstream_url(&gw.env, cc_service_names[i])) != 0)
            return 2;
        labels[i] = cc_service_names[i];
    }
    labels[GW_NUPSTREAMS] = "gateway";
    gw.metrics = cc_metrics_new("gateway", labels, GW_NUPSTREAMS + 1);
    gw.issuer = cc_strdup(gw.env.public_url);
    gw.jwks = cc_jwks_new(gw.env.jwks_url, 10);
    gw.auth = (cc_auth_opts_t){.issuer = gw.issuer, .audience = gw.env.audience, .leeway_s = 30};
    gw.ratelimit = gw_ratelimit_new((double)gw.env.rate_limit_rps, (double)gw.env.rate_limit_burst);
    pthread_mutex_init(&gw.auth_lock, NULL);
    pthread_cond_init(&gw.auth_cond, NULL);
    if (gw.env.tls_cert && gw.env.tls_cert[0]) {
        if ((gw.ssl_ctx = make_ssl_ctx(gw.env.tls_cert, gw.env.tls_key ? gw.env.tls_key : "")) ==
            NULL)
            return 2;
    }

    int fd = -1, port = 0;
    if (cc_http_listen(gw.env.http_host, (int)gw.env.http_port, &fd, &port) != 0)
        return 1;

    h2o_config_init(&gw.h2o);
    gw.h2o.server_name = h2o_iovec_init(H2O_STRLIT("console"));
    gw.h2o.max_request_entity_size = 8 * 1024 * 1024 + 64 * 1024; /* largest route limit */
    gw.h2o.proxy.io_timeout = (uint64_t)gw.env.upstream_timeout_ms;
    gw.h2o.proxy.emit_x_forwarded_headers = 1;
    gw.h2o.proxy.emit_via_header = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&gw.h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    gw_edge_register(h2o_config_register_path(host, "/", 0));

    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    gw.nthreads = gw.env.threads > 0 ? (int)gw.env.threads : (int)(ncpu > 0 ? ncpu : 1);
    gw.threads = cc_calloc((size_t)gw.nthreads, sizeof(gw_thread_t));
    for (int i = 0; i < gw.nthreads; i++) {
        gw_thread_t *t = &gw.threads[i];
        h2o_context_init(&t->ctx, h2o_evloop_create(), &gw.h2o);
        t->accept_ctx.ctx = &t->ctx;
        t->accept_ctx.hosts = gw.h2o.hosts;
        t->accept_ctx.ssl_ctx = gw.ssl_ctx;
        gw_edge_thread_init(t, &t->ctx);
        t->listener =
            h2o_evloop_socket_create(t->ctx.loop, i == 0 ? fd : dup(fd), H2O_SOCKET_FLAG_DONT_READ);
        t->listener->data = t;
        h2o_socket_read_start(t->listener, on_accept);
    }
    for (int i = 0; i < GW_NUPSTREAMS; i++)
        h2o_socketpool_set_timeout(&gw.upstreams[i].pool, gw.threads[0].ctx.loop, 10000);

    gw.health = gw_health_start(gw.upstreams, GW_NUPSTREAMS, 1000);
    pthread_t jwks_tid;
    pthread_create(&jwks_tid, NULL, jwks_main, NULL);
    pthread_create(&gw.auth_tid, NULL, gw_auth_main, NULL);
    for (int i = 0; i < gw.nthreads; i++)
        pthread_create(&gw.threads[i].tid, NULL, loop_main, &gw.threads[i]);
    cc_log_info("gateway listening on %s:%d (%s, %d event loops)", gw.env.http_host, port,
                gw.ssl_ctx ? "https" : "http", gw.nthreads);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0 || sig == SIGHUP)
            continue;
        cc_log_info("signal %d: stopping", sig);
        break;
    }
    atomic_store(&gw.stopping, true);
    for (int i = 0; i < gw.nthreads; i++) {
        atomic_store(&gw.threads[i].exit, true);
        h2o_multithread_send_message(&gw.threads[i].receiver, &gw.threads[i].wake);
    }
    for (int i = 0; i < gw.nthreads; i++)
        pthread_join(gw.threads[i].tid, NULL);
    pthread_mutex_lock(&gw.auth_lock);
    pthread_cond_broadcast(&gw.auth_cond);
    pthread_mutex_unlock(&gw.auth_lock);
    pthread_join(gw.auth_tid, NULL);
    pthread_join(jwks_tid, NULL);
    gw_health_stop(gw.health);
    cc_log_info("stopped");
    /* h2o contexts with keep-alive connections cannot be disposed cleanly; the process ends */
    return 0;
}
