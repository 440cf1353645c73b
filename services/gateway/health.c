/*
 * Upstream health: a thread asks every service's /readyz in parallel (libcurl multi,
 * 2 s timeout) once per interval and keeps the latest answers. The gateway's /readyz
 * serves that snapshot without waiting, and the edge answers 503 at once for an
 * upstream that refused connections at the last look, instead of letting a request hang.
 */
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "console/log.h"
#include "console/str.h"
#include "gateway.h"

typedef struct probe {
    CURL *easy;
    cc_buf_t body;
    char *url;
} probe_t;

struct gw_health {
    gw_upstream_t *ups;
    int n;
    int interval_ms;
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    json_t *services; /* name -> {status, …} */
    bool all_ready;
    probe_t probes[GW_NUPSTREAMS];
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    cc_buf_t *b = arg;
    if (b->len + size * n > 64 * 1024)
        return 0;
    cc_buf_append(b, p, size * n);
    return size * n;
}

static void poll_once(gw_health_t *h, CURLM *multi)
{
    for (int i = 0; i < h->n; i++) {
        probe_t *p = &h->probes[i];
        cc_buf_free(&p->body);
        curl_easy_reset(p->easy);
        curl_easy_setopt(p->easy, CURLOPT_URL, p->url);
        curl_easy_setopt(p->easy, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(p->easy, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
        curl_easy_setopt(p->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(p->easy, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(p->easy, CURLOPT_WRITEDATA, &p->body);
        curl_multi_add_handle(multi, p->easy);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 200, NULL);
    }
    json_t *services = json_object();
    bool all = true;
    for (int i = 0; i < h->n; i++) {
        probe_t *p = &h->probes[i];
        long status = 0;
        curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(multi, p->easy);
        long os_errno = 0;
        curl_easy_getinfo(p->easy, CURLINFO_OS_ERRNO, &os_errno);
        json_t *doc = p->body.len ? json_loadb(p->body.data, p->body.len, 0, NULL) : NULL;
        json_t *entry;
        if (status == 200) {
            entry = json_pack("{s:s, s:O?}", "status", "ready", "checks",
                              doc ? json_object_get(doc, "checks") : NULL);
            atomic_store(&h->ups[i].state, 1);
        } else if (status != 0) {
            entry = json_pack("{s:s, s:I, s:O?}", "status", "not_ready", "http_status",
                              (json_int_t)status, "checks",
                              doc ? json_object_get(doc, "checks") : NULL);
            atomic_store(&h->ups[i].state, 1); /* it answers: requests may still be served */
            all = false;
        } else {
            /* refused: requests fail fast through the proxy anyway (and succeed as soon as
             * the service is back); no answer at all: fail them at the edge, don't hang */
            bool refused = os_errno == ECONNREFUSED;
            entry = json_pack("{s:s, s:s}", "status", "unreachable", "reason",
                              refused ? "connection refused" : "no answer");
            atomic_store(&h->ups[i].state, refused ? 2 : 0);
            all = false;
        }
        json_decref(doc);
        json_object_set_new(services, h->ups[i].name, entry);
    }
    pthread_mutex_lock(&h->lock);
    json_decref(h->services);
    h->services = services;
    h->all_ready = all;
    pthread_mutex_unlock(&h->lock);
}

static void *health_main(void *arg)
{
    gw_health_t *h = arg;
    CURLM *multi = curl_multi_init();
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (;;) {
        poll_once(h, multi);
        pthread_mutex_lock(&h->lock);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += h->interval_ms / 1000;
        ts.tv_nsec += (long)(h->interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!h->stop && pthread_cond_timedwait(&h->cond, &h->lock, &ts) == 0)
            ;
        bool stop = h->stop;
        pthread_mutex_unlock(&h->lock);
        if (stop)
            break;
    }
    curl_multi_cleanup(multi);
    return NULL;
}

gw_health_t *gw_health_start(gw_upstream_t *ups, int n, int interval_ms)
{
    gw_health_t *h = cc_calloc(1, sizeof(*h));
    h->ups = ups;
    h->n = n;
    h->interval_ms = interval_ms;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    for (int i = 0; i < n; i++) {
        h->probes[i].easy = curl_easy_init();
        h->probes[i].url = cc_aprintf("%s/readyz", ups[i].url);
        atomic_store(&ups[i].state, -1);
    }
    pthread_create(&h->tid, NULL, health_main, h);
    return h;
}

void gw_health_stop(gw_health_t *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_signal(&h->cond);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->tid, NULL);
    for (int i = 0; i < h->n; i++) {
        curl_easy_cleanup(h->probes[i].easy);
        cc_buf_free(&h->probes[i].body);
        free(h->probes[i].url);
    }
    json_decref(h->services);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    free(h);
}

char *gw_health_snapshot(gw_health_t *h, bool *all_ready)
{
    pthread_mutex_lock(&h->lock);
    json_t *services = h->services ? json_deep_copy(h->services) : json_object();
    bool all = h->services != NULL && h->all_ready;
    pthread_mutex_unlock(&h->lock);
    *all_ready = all;
    json_t *doc = json_pack("{s:s, s:s, s:o}", "status", all ? "ready" : "not_ready", "service",
                            "gateway", "services", services);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}
