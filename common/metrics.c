#include "console/metrics.h"

#include <stdatomic.h>
#include <string.h>

#include "console/errors.h"

/* Latency buckets (seconds), chosen for sub-millisecond API work up to slow exports. */
static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define NBUCKETS (sizeof(bucket_le) / sizeof(bucket_le[0]))
/* Status codes get a slot each in 100..599 */
#define NSTATUS 500

typedef struct route_stats {
    char *label;
    _Atomic uint64_t status[NSTATUS];
    _Atomic uint64_t buckets[NBUCKETS + 1]; /* last: +Inf */
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t count;
} route_stats_t;

struct cc_metrics {
    char *service; /* already escaped as a label value */
    size_t nroutes;
    route_stats_t *routes; /* nroutes + 1 (unmatched) */
    _Atomic uint64_t errors[CC_ERR__COUNT];
    _Atomic int64_t gauges[CC_GAUGE__COUNT];
};

static void put_label(cc_buf_t *out, const char *s);

cc_metrics_t *cc_metrics_new(const char *service, const char *const *labels, size_t nroutes)
{
    cc_metrics_t *m = cc_calloc(1, sizeof(*m));
    /* the service is a label value like the route: escaped once here, since render prints
     * it with %s */
    cc_buf_t esc;
    cc_buf_init(&esc);
    put_label(&esc, service ? service : "");
    m->service = cc_buf_steal(&esc, NULL);
    m->nroutes = nroutes;
    m->routes = cc_calloc(nroutes + 1, sizeof(route_stats_t));
    for (size_t i = 0; i < nroutes; i++)
        m->routes[i].label = cc_strdup(labels[i]);
    m->routes[nroutes].label = cc_strdup("unmatched");
    return m;
}

void cc_metrics_free(cc_metrics_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i <= m->nroutes; i++)
        free(m->routes[i].label);
    free(m->routes);
    free(m->service);
    free(m);
}

void cc_metrics_observe(cc_metrics_t *m, size_t route, int status, uint64_t duration_ns)
{
    if (route >= m->nroutes)
        route = m->nroutes;
    route_stats_t *r = &m->routes[route];
    if (status >= 100 && status < 100 + NSTATUS)
        atomic_fetch_add_explicit(&r->status[status - 100], 1, memory_order_relaxed);
    double s = (double)duration_ns / 1e9;
    size_t b = 0;
    while (b < NBUCKETS && s > bucket_le[b])
        b++;
    atomic_fetch_add_explicit(&r->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->sum_ns, duration_ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->count, 1, memory_order_relaxed);
}

void cc_metrics_error(cc_metrics_t *m, int error_id)
{
    if (error_id >= 0 && error_id < CC_ERR__COUNT)
        atomic_fetch_add_explicit(&m->errors[error_id], 1, memory_order_relaxed);
}

void cc_metrics_gauge(cc_metrics_t *m, int which, int64_t value)
{
    if (which >= 0 && which < CC_GAUGE__COUNT)
        atomic_store_explicit(&m->gauges[which], value, memory_order_relaxed);
}

/* Label values escape backslash, quote and newline (exposition format). */
static void put_label(cc_buf_t *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            cc_buf_putc(out, '\\'), cc_buf_putc(out, *s);
        else if (*s == '\n')
            cc_buf_puts(out, "\\n");
        else
            cc_buf_putc(out, *s);
    }
}

void cc_metrics_render(cc_metrics_t *m, cc_buf_t *out)
{
    cc_buf_puts(out, "# HELP console_http_requests_total HTTP requests by route and status.\n"
                     "# TYPE console_http_requests_total counter\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        route_stats_t *r = &m->routes[i];
        for (int st = 0; st < NSTATUS; st++) {
            uint64_t v = atomic_load_explicit(&r->status[st], memory_order_relaxed);
            if (v == 0)
                continue;
            cc_buf_printf(out, "console_http_requests_total{service=\"%s\",route=\"", m->service);
            put_label(out, r->label);
            cc_buf_printf(out, "\",status=\"%d\"} %llu\n", st + 100, (unsigned long long)v);
        }
    }
    cc_buf_puts(out, "# HELP console_http_request_duration_seconds Request latency by route.\n"
                     "# TYPE console_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        route_stats_t *r = &m->routes[i];
        uint64_t count = atomic_load_explicit(&r->count, memory_order_relaxed);
        if (count == 0)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b <= NBUCKETS; b++) {
            cum += atomic_load_explicit(&r->buckets[b], memory_order_relaxed);
            cc_buf_printf(out,
                          "console_http_request_duration_seconds_bucket{service=\"%s\",route=\"",
                          m->service);
            put_label(out, r->label);
            if (b < NBUCKETS)
                cc_buf_printf(out, "\",le=\"%g\"} %llu\n", bucket_le[b], (unsigned long long)cum);
            else
                cc_buf_printf(out, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        cc_buf_printf(out, "console_http_request_duration_seconds_sum{service=\"%s\",route=\"",
                      m->service);
        put_label(out, r->label);
        cc_buf_printf(out, "\"} %.6f\n",
                      (double)atomic_load_explicit(&r->sum_ns, memory_order_relaxed) / 1e9);
        cc_buf_printf(out, "console_http_request_duration_seconds_count{service=\"%s\",route=\"",
                      m->service);
        put_label(out, r->label);
        cc_buf_printf(out, "\"} %llu\n", (unsigned long long)count);
    }
    cc_buf_puts(out, "# HELP console_http_errors_total Problem responses by error code.\n"
                     "# TYPE console_http_errors_total counter\n");
    for (int e = 0; e < CC_ERR__COUNT; e++) {
        uint64_t v = atomic_load_explicit(&m->errors[e], memory_order_relaxed);
        if (v)
            cc_buf_printf(out, "console_http_errors_total{service=\"%s\",code=\"%s\"} %llu\n",
                          m->service, cc_error_defs[e].code, (unsigned long long)v);
    }
    static const char *gauge_names[CC_GAUGE__COUNT] = {"worker_queue_depth", "workers_busy",
                                                       "database_up"};
    for (int g = 0; g < CC_GAUGE__COUNT; g++) {
        cc_buf_printf(out, "# TYPE console_%s gauge\nconsole_%s{service=\"%s\"} %lld\n",
                      gauge_names[g], gauge_names[g], m->service,
                      (long long)atomic_load_explicit(&m->gauges[g], memory_order_relaxed));
    }
}
