/*
 * HTTP server: h2o event loops in front, a worker pool behind.
 *
 * Life of a request: an event-loop thread parses it (h2o), copies what the handler
 * needs into a cc_req_t with its own pool, routes it, and either runs an inline handler
 * right there or queues a job for the workers. A worker authenticates, runs the handler
 * with its own database connection and posts the job back to the loop that owns the
 * connection (h2o_multithread message), which writes the response. If the client went
 * away meanwhile, a dispose hook on the h2o request has cut the link and the answer is
 * dropped. Streams (exports) queue chunks that the loop sends as h2o asks for more.
 */
#include "console/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <h2o.h>

#include "console/crypto.h"
#include "console/csv.h"
#include "console/json.h"
#include "console/log.h"

/* requests or answers at least this large give their memory back once answered */
#define TRIM_AFTER_BODY (1024 * 1024)
#define STREAM_HIGH_WATER (256 * 1024)

enum { MSG_JOB_DONE, MSG_STREAM_KICK, MSG_WAKE };

typedef struct msg {
    h2o_multithread_message_t super;
    int type;
    void *p;
} msg_t;

typedef struct loop_thread loop_thread_t;

typedef struct job {
    msg_t done;
    struct job *next;
    cc_req_t *req;
    loop_thread_t *loop;
    h2o_req_t *hreq; /* NULL once the client went away */
    struct job_link *link;
    bool streamed;
} job_t;

typedef struct job_link {
    job_t *job;
} job_link_t;

struct loop_thread {
    cc_server_t *s;
    pthread_t tid;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t receiver;
    int listen_fd;      /* handed to the thread, which makes the listener socket of it */
    _Atomic bool ready; /* the thread has built its loop */
    _Atomic bool exit;
    msg_t wake;
};

typedef struct server_handler {
    h2o_handler_t super;
    cc_server_t *s;
} server_handler_t;

typedef struct worker {
    cc_server_t *s;
    pthread_t tid;
    cc_db_t *db;
} worker_t;

struct cc_server {
    cc_server_config_t conf;
    cc_route_t *routes;
    size_t nroutes;
    cc_router_t *router;
    cc_metrics_t *metrics;
    int listen_fd;
    int port;
    size_t h2o_body_limit;
    h2o_globalconf_t h2o_conf;
    loop_thread_t *loops;
    int nloops;
    worker_t *workers;
    int nworkers;
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    job_t *qhead, *qtail;
    size_t qlen;
    bool trim_wanted; /* under qlock: a large request was freed; a worker trims the heap */
    _Atomic int busy;
    _Atomic int inflight; /* jobs queued or running, and streams still being sent */
    _Atomic bool stopping;
    _Atomic bool quit;       /* grace over: streams stop waiting for slow clients */
    _Atomic bool loops_done; /* the workers are gone: the loops may exit */
    bool started;
};

/* ------------------------------------------------------------------------------------ */
/* small helpers                                                                         */

uint64_t cc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

bool cc_request_id_valid(const char *s)
{
    size_t n = 0;
    if (s == NULL)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
        if (n >= 64)
            return false;
    }
    return n > 0;
}

const char *cc_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 428:
        return "Precondition Required";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* ------------------------------------------------------------------------------------ */
/* request accessors                                                                     */

const char *cc_req_header(const cc_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (strcmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *cc_req_param(const cc_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->match.nparams; i++)
        if (strcmp(req->match.names[i], name) == 0)
            return req->match.values[i];
    return NULL;
}

static bool is_json_type(const char *ct)
{
    if (ct == NULL)
        return false;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && ct[n - 1] == ' ')
        n--;
    if (cc_strieq_n(ct, n, "application/json"))
        return true;
    return n > 5 && cc_strieq_n(ct + n - 5, 5, "+json");
}

int cc_req_json(cc_req_t *req, json_t **out)
{
    size_t limit =
        req->route && req->route->max_body ? req->route->max_body : req->server->conf.max_body;
    *out = NULL;
    if (req->body_len > limit) {
        cc_res_problem(req, CC_ERR_PAYLOAD_TOO_LARGE, "The body is %zu bytes; the limit is %zu.",
                       req->body_len, limit);
        return -1;
    }
    if (!is_json_type(cc_req_header(req, "content-type"))) {
        cc_res_problem(req, CC_ERR_UNSUPPORTED_MEDIA_TYPE, "Send the body as application/json.");
        return -1;
    }
    const char *detail = NULL;
    int err = cc_json_parse_body(req->pool, req->body, req->body_len, limit, out, &detail);
    if (err != 0) {
        cc_res_problem(req, (cc_error_id_t)err, "%s", detail ? detail : "The body is invalid.");
        return -1;
    }
    return 0;
}

int cc_req_query_allowed(cc_req_t *req, const char *const *allowed)
{
    const char *bad = NULL;
    if (cc_query_check(req->pool, req->query, allowed, &bad) != 0) {
        json_t *errors = json_pack("[{s:s, s:s, s:s}]", "field", bad ? bad : "", "code", "unknown",
                                   "message", "This endpoint does not accept this parameter.");
        cc_res_problem_ext(req, CC_ERR_INVALID_PARAMETER, json_pack("{s:o}", "errors", errors),
                           "Unknown or malformed query parameter.");
        return -1;
    }
    return 0;
}

const char *cc_req_query(cc_req_t *req, const char *name, bool *failed)
{
    const char *v = NULL;
    int rc = cc_query_get(req->pool, req->query, name, &v);
    if (rc < 0) {
        if (failed)
            *failed = true;
        json_t *errors = json_pack("[{s:s, s:s, s:s}]", "field", name, "code", "format", "message",
                                   "The parameter is repeated or not valid UTF-8.");
        cc_res_problem_ext(req, CC_ERR_INVALID_PARAMETER, json_pack("{s:o}", "errors", errors),
                           "The query parameter %s is malformed.", name);
        return NULL;
    }
    return v;
}

bool cc_req_if_match(cc_req_t *req, int version)
{
    const char *h = cc_req_header(req, "if-match");
    if (h == NULL)
        return true;
    char etag[32];
    snprintf(etag, sizeof(etag), "\"%d\"", version);
    size_t n = strlen(etag);
    for (const char *p = h; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return true;
        while (*p && *p != ',')
            p++;
    }
    return false;
}

int cc_req_page(cc_req_t *req, int *limit, json_t **cursor_keys)
{
    bool failed = false;
    *limit = 50;
    *cursor_keys = NULL;
    const char *l = cc_req_query(req, "limit", &failed);
    if (failed)
        return -1;
    if (l != NULL) {
        char *end = NULL;
        errno = 0;
        /* digits only: strtol alone would also take " 5", "+5" and "0x5"-like prefixes */
        long v = l[0] >= '0' && l[0] <= '9' ? strtol(l, &end, 10) : 0;
        if (errno || end == l || end == NULL || *end != '\0' || v < 1 || v > 500) {
            json_t *errors = json_pack("[{s:s, s:s, s:s}]", "field", "limit", "code", "range",
                                       "message", "limit must be an integer from 1 to 500.");
            cc_res_problem_ext(req, CC_ERR_INVALID_PARAMETER, json_pack("{s:o}", "errors", errors),
                               "limit must be an integer from 1 to 500.");
            return -1;
        }
        *limit = (int)v;
    }
    const char *c = cc_req_query(req, "cursor", &failed);
    if (failed)
        return -1;
    if (c != NULL && cc_cursor_decode(req->pool, c, cursor_keys) != 0) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return -1;
    }
    return 0;
}

int cc_req_export(cc_req_t *req, cc_export_t *out)
{
    bool failed = false;
    const char *format = cc_req_query(req, "format", &failed);
    const char *bom = failed ? NULL : cc_req_query(req, "bom", &failed);
    if (failed)
        return -1;
    if (format != NULL && strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "format must be csv or json.");
        return -1;
    }
    if (bom != NULL && strcmp(bom, "true") != 0 && strcmp(bom, "false") != 0) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "bom must be true or false.");
        return -1;
    }
    out->csv = format == NULL || strcmp(format, "csv") == 0;
    out->bom = bom != NULL && strcmp(bom, "true") == 0;
    return 0;
}

int cc_res_export_start(cc_req_t *req, const cc_export_t *e, const char *base,
                        const char *const *columns, cc_buf_t *b)
{
    char disposition[160];
    snprintf(disposition, sizeof(disposition), "attachment; filename=\"%s.%s\"", base,
             e->csv ? "csv" : "json");
    cc_res_header(req, "content-disposition", disposition);
    cc_res_header(req, "cache-control", "no-store");
    int rc = cc_res_stream_start(req, 200, e->csv ? "text/csv; charset=utf-8" : "application/json");
    if (rc != 0)
        return rc;
    if (!e->csv) {
        cc_buf_putc(b, '[');
        return 0;
    }
    if (e->bom)
        cc_buf_puts(b, CC_CSV_BOM);
    for (int i = 0; columns[i]; i++)
        cc_csv_raw(b, columns[i], i == 0);
    cc_csv_end(b);
    return 0;
}

void cc_res_export_end(cc_req_t *req, const cc_export_t *e, cc_buf_t *b, bool complete)
{
    if (!complete) { /* a cut CSV must not look like a whole one */
        b->len = 0;
        cc_res_stream_abort(req);
        return;
    }
    if (!e->csv)
        cc_buf_puts(b, "]\n");
    if (b->len > 0)
        cc_res_stream_write(req, b->data, b->len);
    b->len = 0;
    cc_res_stream_end(req);
}

/* ------------------------------------------------------------------------------------ */
/* responses                                                                             */

void cc_res_header(cc_req_t *req, const char *name, const char *value)
{
    if (req->nres_headers == CC_MAX_RES_HEADERS) {
        cc_log_error("too many response headers; %s dropped", name);
        return;
    }
    cc_header_t *h = &req->res_headers[req->nres_headers++];
    h->name = cc_pool_strdup(req->pool, name);
    h->value = cc_pool_strdup(req->pool, value);
}

static bool begin_response(cc_req_t *req)
{
    if (req->responded) {
        cc_log_error("handler answered twice (route %s)",
                     req->route ? req->route->pattern : "none");
        return false;
    }
    req->responded = true;
    return true;
}

void cc_res_text(cc_req_t *req, int status, const char *content_type, const char *data, size_t n)
{
    if (!begin_response(req))
        return;
    req->status = status;
    if (content_type)
        cc_res_header(req, "content-type", content_type);
    cc_buf_free(&req->res_body);
    cc_buf_append(&req->res_body, data ? data : "", n);
}

void cc_res_json(cc_req_t *req, int status, json_t *body)
{
    if (body == NULL) {
        cc_res_text(req, status, NULL, "", 0);
        return;
    }
    char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(body);
    if (s == NULL) {
        req->responded = false;
        cc_res_problem(req, CC_ERR_INTERNAL_ERROR, "The response could not be encoded.");
        return;
    }
    cc_res_text(req, status, "application/json", s, strlen(s));
    free(s);
}

char *cc_problem_json(cc_error_id_t id, const char *detail, const char *request_id, json_t *extra)
{
    if (id < 0 || id >= CC_ERR__COUNT)
        id = CC_ERR_INTERNAL_ERROR;
    const cc_error_def_t *d = &cc_error_defs[id];
    char type[96];
    snprintf(type, sizeof(type), "urn:console:error:%s", d->code);
    json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s}", "type", type, "title", d->title,
                          "status", d->status, "detail", detail ? detail : "", "code", d->code,
                          "request_id", request_id ? request_id : "");
    if (extra != NULL)
        json_object_update_missing(o, extra);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s ? s : cc_strdup("{}");
}

static void problem_v(cc_req_t *req, cc_error_id_t id, json_t *extra, const cc_problem_opts_t *opts,
                      const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void problem_v(cc_req_t *req, cc_error_id_t id, json_t *extra, const cc_problem_opts_t *opts,
                      const char *fmt, va_list ap)
{
    if (id < 0 || id >= CC_ERR__COUNT)
        id = CC_ERR_INTERNAL_ERROR;
    char detail[512];
    vsnprintf(detail, sizeof(detail), fmt, ap);
    char *s = cc_problem_json(id, detail, req->request_id, extra);
    json_decref(extra);
    if (!begin_response(req)) {
        free(s);
        return;
    }
    req->status = cc_error_defs[id].status;
    req->error_id = id;
    cc_res_header(req, "content-type",
                  opts && opts->content_type ? opts->content_type : "application/problem+json");
    if (req->status == 401)
        cc_res_header(req, "www-authenticate",
                      opts && opts->www_authenticate ? opts->www_authenticate
                                                     : "Bearer error=\"invalid_token\"");
    cc_buf_free(&req->res_body);
    cc_buf_puts(&req->res_body, s);
    free(s);
    if (req->server && req->server->metrics)
        cc_metrics_error(req->server->metrics, id);
}

void cc_res_problem(cc_req_t *req, cc_error_id_t id, const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    problem_v(req, id, NULL, NULL, detail_fmt, ap);
    va_end(ap);
}

void cc_res_problem_ext(cc_req_t *req, cc_error_id_t id, json_t *extra, const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    problem_v(req, id, extra, NULL, detail_fmt, ap);
    va_end(ap);
}

void cc_res_problem_opts(cc_req_t *req, cc_error_id_t id, json_t *extra,
                         const cc_problem_opts_t *opts, const char *detail_fmt, ...)
{
    va_list ap;
    va_start(ap, detail_fmt);
    problem_v(req, id, extra, opts, detail_fmt, ap);
    va_end(ap);
}

void cc_res_invalid(cc_req_t *req, const cc_validator_t *v)
{
    if (v->unknown_field != NULL) {
        json_t *errors = json_pack("[{s:s, s:s, s:s}]", "field", v->unknown_field, "code",
                                   "unknown_field", "message", "This field is not accepted here.");
        cc_res_problem_ext(req, CC_ERR_UNKNOWN_FIELD, json_pack("{s:o}", "errors", errors),
                           "The field \"%s\" is not accepted here.", v->unknown_field);
        return;
    }
    cc_res_problem_ext(req, CC_ERR_VALIDATION_FAILED,
                       json_pack("{s:O}", "errors", v->errors ? v->errors : json_array()),
                       "The request has invalid fields; see errors.");
}

void cc_res_db_error(cc_req_t *req, int err)
{
    if (req->db)
        cc_log_error("database error: %s (sqlstate %s)", cc_strerror(err), cc_db_sqlstate(req->db));
    if (err == CC_EDBDOWN)
        cc_res_problem(req, CC_ERR_DATABASE_UNAVAILABLE, "The database is unreachable; retry.");
    else
        cc_res_problem(req, CC_ERR_INTERNAL_ERROR, "The request failed; see request_id in logs.");
}

/* ------------------------------------------------------------------------------------ */
/* streams                                                                               */

typedef struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
} chunk_t;

struct cc_stream {
    h2o_generator_t gen;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic int refs;
    job_t *job; /* valid until the first kick is processed */
    loop_thread_t *loop;
    h2o_req_t *hreq;      /* loop thread only */
    chunk_t *head, *tail; /* queued by the worker */
    chunk_t *sending;     /* handed to h2o, freed at proceed */
    size_t pending;
    int status;
    cc_header_t *headers;
    size_t nheaders;
    bool kick_pending, start_sent, finished, closed, in_flight, final_sent;
    bool discard; /* HEAD: the head is the whole answer; writes tell the handler to stop */
    bool failed;  /* cc_res_stream_abort: end without the terminating chunk */
};

static void free_chunks(chunk_t *c)
{
    while (c) {
        chunk_t *n = c->next;
        free(c);
        c = n;
    }
}

static void stream_release(cc_stream_t *st)
{
    if (atomic_fetch_sub(&st->refs, 1) != 1)
        return;
    free_chunks(st->head);
    free_chunks(st->sending);
    for (size_t i = 0; i < st->nheaders; i++) {
        free((char *)st->headers[i].name);
        free((char *)st->headers[i].value);
    }
    free(st->headers);
    pthread_mutex_destroy(&st->lock);
    pthread_cond_destroy(&st->cond);
    free(st);
}

static void stream_release_cb(void *p)
{
    stream_release(p);
}

/* lock held */
static void stream_kick(cc_stream_t *st)
{
    if (st->kick_pending)
        return;
    st->kick_pending = true;
    atomic_fetch_add(&st->refs, 1);
    msg_t *m = cc_calloc(1, sizeof(*m));
    m->type = MSG_STREAM_KICK;
    m->p = st;
    h2o_multithread_send_message(&st->loop->receiver, &m->super);
}

/* loop thread; called without the lock */
static void stream_try_send(cc_stream_t *st)
{
    pthread_mutex_lock(&st->lock);
    if (st->in_flight || st->final_sent || st->hreq == NULL || st->closed) {
        pthread_mutex_unlock(&st->lock);
        return;
    }
    size_t n = 0;
    for (chunk_t *c = st->head; c; c = c->next)
        n++;
    bool final = st->finished;
    if (n == 0 && !final) {
        pthread_mutex_unlock(&st->lock);
        return;
    }
    h2o_req_t *hreq = st->hreq;
    h2o_iovec_t *bufs = h2o_mem_alloc_pool(&hreq->pool, sizeof(h2o_iovec_t) * (n ? n : 1));
    size_t i = 0;
    for (chunk_t *c = st->head; c; c = c->next)
        bufs[i++] = h2o_iovec_init(c->data, c->len);
    st->sending = st->head;
    st->head = st->tail = NULL;
    st->in_flight = true;
    if (final)
        st->final_sent = true;
    pthread_mutex_unlock(&st->lock);
    h2o_send(hreq, bufs, n,
             !final       ? H2O_SEND_STATE_IN_PROGRESS
             : st->failed ? H2O_SEND_STATE_ERROR
                          : H2O_SEND_STATE_FINAL);
}

static void on_stream_proceed(h2o_generator_t *gen, h2o_req_t *hreq)
{
    cc_stream_t *st = (cc_stream_t *)gen;
    pthread_mutex_lock(&st->lock);
    for (chunk_t *c = st->sending; c; c = c->next)
        st->pending -= c->len;
    free_chunks(st->sending);
    st->sending = NULL;
    st->in_flight = false;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    stream_try_send(st);
}

static void on_stream_stop(h2o_generator_t *gen, h2o_req_t *hreq)
{
    cc_stream_t *st = (cc_stream_t *)gen;
    pthread_mutex_lock(&st->lock);
    st->closed = true;
    st->hreq = NULL;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
}

typedef struct stream_hold {
    cc_stream_t *st;
} stream_hold_t;

static void on_stream_req_dispose(void *p)
{
    stream_hold_t *h = p;
    cc_stream_t *st = h->st;
    cc_server_t *s = st->loop->s;
    pthread_mutex_lock(&st->lock);
    st->closed = true;
    st->hreq = NULL;
    pthread_cond_broadcast(&st->cond);
    pthread_mutex_unlock(&st->lock);
    stream_release(st);
    /* a streamed job counts as in flight until h2o has sent (or dropped) the last byte,
     * not only until the worker returns (see MSG_JOB_DONE) */
    atomic_fetch_sub(&s->inflight, 1);
}

static void add_h2o_header(h2o_req_t *hreq, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    char *n = h2o_mem_alloc_pool(&hreq->pool, nl + 1);
    memcpy(n, name, nl + 1);
    char *v = h2o_mem_alloc_pool(&hreq->pool, vl + 1);
    memcpy(v, value, vl + 1);
    h2o_add_header_by_str(&hreq->pool, &hreq->res.headers, n, nl, 1, NULL, v, vl);
}

static void stream_on_kick(cc_stream_t *st)
{
    pthread_mutex_lock(&st->lock);
    st->kick_pending = false;
    bool start = !st->start_sent;
    pthread_mutex_unlock(&st->lock);
    if (start) {
        job_t *job = st->job;
        h2o_req_t *hreq = job->hreq;
        pthread_mutex_lock(&st->lock);
        st->start_sent = true;
        if (hreq == NULL) {
            st->closed = true;
            pthread_cond_broadcast(&st->cond);
            pthread_mutex_unlock(&st->lock);
            stream_release(st); /* the loop's base reference: h2o never saw the stream */
            goto Exit;
        }
        st->hreq = hreq;
        pthread_mutex_unlock(&st->lock);
        job->streamed = true;
        if (job->link)
            job->link->job = NULL;
        job->link = NULL;
        hreq->res.status = st->status;
        hreq->res.reason = cc_http_reason(st->status);
        for (size_t i = 0; i < st->nheaders; i++)
            add_h2o_header(hreq, st->headers[i].name, st->headers[i].value);
        stream_hold_t *hold =
            h2o_mem_alloc_shared(&hreq->pool, sizeof(*hold), on_stream_req_dispose);
        hold->st = st;
        h2o_start_response(hreq, &st->gen);
    }
    stream_try_send(st);
Exit:
    stream_release(st); /* the kick's reference */
}

/* Attaches a new stream to the job's connection and asks the loop to start it. */
static void stream_attach(cc_stream_t *st, job_t *job)
{
    st->job = job;
    st->loop = job->loop;
    atomic_store(&st->refs, 2); /* worker + loop */
    pthread_mutex_lock(&st->lock);
    stream_kick(st);
    pthread_mutex_unlock(&st->lock);
}

int cc_res_stream_start(cc_req_t *req, int status, const char *content_type)
{
    if (!begin_response(req))
        return CC_EINVAL;
    cc_stream_t *st = cc_calloc(1, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
    pthread_cond_init(&st->cond, NULL);
    st->gen.proceed = on_stream_proceed;
    st->gen.stop = on_stream_stop;
    st->status = status;
    req->status = status;
    cc_res_header(req, "content-type", content_type);
    /* the stream's own copy of the headers, plus the request id that send_response adds
     * to every other answer (a stream does not pass through send_response) */
    st->nheaders = req->nres_headers + 1;
    st->headers = cc_calloc(st->nheaders, sizeof(cc_header_t));
    for (size_t i = 0; i < req->nres_headers; i++) {
        st->headers[i].name = cc_strdup(req->res_headers[i].name);
        st->headers[i].value = cc_strdup(req->res_headers[i].value);
    }
    st->headers[req->nres_headers].name = cc_strdup("x-request-id");
    st->headers[req->nres_headers].value = cc_strdup(req->request_id ? req->request_id : "");
    req->stream = st;
    if (strcmp(req->method, "HEAD") == 0) {
        /* answered like any other response (send_response), without a body; the worker
         * releases the stream after the handler, or the pool does for inline routes */
        st->discard = true;
        atomic_store(&st->refs, 1);
        if (req->internal == NULL)
            cc_pool_defer(req->pool, stream_release_cb, st);
    } else if (req->internal != NULL) {
        stream_attach(st, req->internal);
    } else {
        /* no connection (cc_server_dispatch, an inline route): writes collect into the body
         * and the request's pool owns the stream; nothing else would free it */
        atomic_store(&st->refs, 1);
        cc_pool_defer(req->pool, stream_release_cb, st);
    }
    return 0;
}
int cc_res_stream_write(cc_req_t *req, const void *data, size_t n)
{
    cc_stream_t *st = req->stream;
    if (st == NULL)
        return CC_EINVAL;
    if (st->discard)
        return CC_ECLOSED;
    if (st->loop == NULL) {
        /* not attached to a connection (in-process dispatch): collect into the body */
        cc_buf_append(&req->res_body, data, n);
        return 0;
    }
    if (n == 0)
        return 0;
    chunk_t *c = cc_malloc(sizeof(*c) + n);
    c->next = NULL;
    c->len = n;
    memcpy(c->data, data, n);
    cc_server_t *s = st->loop->s;
    pthread_mutex_lock(&st->lock);
    /* timed: cc_server_stop cannot reach every stream to wake it, so a writer waiting for
     * a slow client checks the server's quit flag now and then */
    while (st->pending > STREAM_HIGH_WATER && !st->closed && !atomic_load(&s->quit)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&st->cond, &st->lock, &ts);
    }
    if (st->closed || atomic_load(&s->quit)) {
        pthread_mutex_unlock(&st->lock);
        free(c);
        return CC_ECLOSED;
    }
    if (st->tail)
        st->tail->next = c;
    else
        st->head = c;
    st->tail = c;
    st->pending += n;
    stream_kick(st);
    pthread_mutex_unlock(&st->lock);
    return 0;
}

static int stream_finish(cc_req_t *req, bool failed)
{
    cc_stream_t *st = req->stream;
    if (st == NULL)
        return CC_EINVAL;
    if (st->loop == NULL) {
        req->stream_failed = req->stream_failed || failed;
        return 0;
    }
    pthread_mutex_lock(&st->lock);
    st->failed = st->failed || (failed && !st->finished);
    bool was = st->finished;
    st->finished = true;
    if (!was)
        stream_kick(st);
    bool closed = st->closed;
    pthread_mutex_unlock(&st->lock);
    return closed ? CC_ECLOSED : 0;
}

int cc_res_stream_end(cc_req_t *req)
{
    return stream_finish(req, false);
}

int cc_res_stream_abort(cc_req_t *req)
{
    return stream_finish(req, true);
}

/* ------------------------------------------------------------------------------------ */
/* dispatch: routing, authentication, the handler, metrics                               */

static cc_req_t *req_new(cc_server_t *s)
{
    cc_pool_t *pool = cc_pool_new();
    cc_req_t *req = cc_pool_alloc(pool, sizeof(*req));
    req->pool = pool;
    req->server = s;
    req->app = s ? s->conf.app : NULL;
    req->query = "";
    req->route_index = -1;
    req->error_id = -1;
    req->started_ns = cc_now_ns();
    cc_buf_init(&req->res_body);
    return req;
}

void cc_req_free(cc_req_t *req)
{
    if (req == NULL)
        return;
    cc_buf_free(&req->res_body);
    cc_pool_free(req->pool);
}

static void set_request_id(cc_req_t *req)
{
    const char *in = cc_req_header(req, "x-request-id");
    if (cc_request_id_valid(in)) {
        req->request_id = in;
    } else {
        char id[37];
        cc_request_id_new(id);
        req->request_id = cc_pool_strdup(req->pool, id);
    }
}

/* Routes req; returns true when a handler should run, false when req holds the answer. */
static bool route_req(cc_server_t *s, cc_req_t *req)
{
    int idx = cc_router_match(s->router, req->method, req->path, req->pool, &req->match);
    if (idx >= 0) {
        req->route_index = idx;
        req->route = &s->routes[idx];
        return true;
    }
    if (idx == CC_ROUTER_METHOD) {
        cc_res_header(req, "allow", req->match.allow);
        cc_res_problem(req, CC_ERR_METHOD_NOT_ALLOWED, "%s is not allowed here; use %s.",
                       req->method, req->match.allow);
    } else if (idx == CC_ROUTER_BAD_PATH) {
        cc_res_problem(req, CC_ERR_INVALID_UTF8, "The path is not valid percent-encoded UTF-8.");
    } else {
        cc_res_problem(req, CC_ERR_ROUTE_NOT_FOUND, "No endpoint exists at this path.");
    }
    return false;
}

static bool authenticate(cc_server_t *s, cc_req_t *req)
{
    const char *authz = cc_req_header(req, "authorization");
    const char *why = "no bearer token";
    if (authz != NULL && strlen(authz) > 7 && cc_strieq_n(authz, 7, "bearer ")) {
        const char *token = authz + 7;
        while (*token == ' ')
            token++;
        if (s->conf.jwks == NULL) {
            why = "no key set configured";
        } else {
            cc_auth_opts_t opts = s->conf.auth;
            opts.may_fetch = true;
            int rc = cc_auth_verify(s->conf.jwks, &opts, token, req->pool, &req->principal, &why);
            if (rc == 0)
                return true;
            req->principal = NULL;
            if (rc == CC_EIO) {
                /* the token may be fine: the issuer's keys are out of reach */
                cc_log_warn("authentication impossible: %s", why ? why : "key set unreachable");
                cc_res_header(req, "retry-after", "1");
                cc_res_problem(req, CC_ERR_UPSTREAM_UNAVAILABLE,
                               "The identity service's signing keys are unreachable; retry.");
                return false;
            }
        }
    }
    cc_log_info("authentication failed: %s", why ? why : "invalid token");
    cc_res_problem(req, CC_ERR_UNAUTHORIZED, "A valid bearer access token is required.");
    return false;
}

static void finish_metrics(cc_server_t *s, cc_req_t *req)
{
    if (s && s->metrics)
        cc_metrics_observe(s->metrics, req->route_index < 0 ? (size_t)-1 : (size_t)req->route_index,
                           req->status, cc_now_ns() - req->started_ns);
}

static void run_handler(cc_server_t *s, cc_req_t *req)
{
    cc_log_set_context(req->request_id, NULL);
    if (!(req->route->flags & CC_ROUTE_PUBLIC)) {
        if (!authenticate(s, req))
            goto Exit;
        cc_log_set_context(req->request_id, req->principal->tenant_id);
        if (s->conf.authorize != NULL && req->db != NULL && !s->conf.authorize(req))
            goto Exit;
    }
    req->route->handler(req);
    if (!req->responded) {
        cc_log_error("handler for %s %s did not answer", req->route->method, req->route->pattern);
        cc_res_problem(req, CC_ERR_INTERNAL_ERROR, "The request failed; see request_id in logs.");
    }
    if (req->db != NULL && cc_db_in_tx(req->db)) {
        cc_log_error("handler for %s %s left a transaction open; rolled back", req->route->method,
                     req->route->pattern);
        cc_db_rollback(req->db);
    }
Exit:
    if (req->status >= 500)
        cc_log_warn("%s %s answered %d", req->method, req->path, req->status);
    cc_log_set_context(NULL, NULL);
}

bool cc_req_authenticate(cc_req_t *req)
{
    cc_server_t *s = req->server;
    if (req->principal != NULL)
        return true;
    if (!authenticate(s, req))
        return false;
    cc_log_set_context(req->request_id, req->principal->tenant_id);
    return s->conf.authorize == NULL || req->db == NULL || s->conf.authorize(req);
}

cc_req_t *cc_server_dispatch(cc_server_t *s, cc_db_t *db, const char *method, const char *path,
                             const cc_header_t *headers, size_t nheaders, const char *body,
                             size_t body_len)
{
    cc_req_t *req = req_new(s);
    req->method = cc_pool_strdup(req->pool, method);
    const char *q = strchr(path, '?');
    req->path =
        q ? cc_pool_strndup(req->pool, path, (size_t)(q - path)) : cc_pool_strdup(req->pool, path);
    req->query = q ? cc_pool_strdup(req->pool, q + 1) : "";
    req->headers = cc_pool_alloc(req->pool, sizeof(cc_header_t) * (nheaders ? nheaders : 1));
    for (size_t i = 0; i < nheaders; i++) {
        req->headers[i].name = cc_pool_strdup(req->pool, headers[i].name);
        req->headers[i].value = cc_pool_strdup(req->pool, headers[i].value);
    }
    req->nheaders = nheaders;
    req->body = body ? cc_pool_strndup(req->pool, body, body_len) : NULL;
    req->body_len = body ? body_len : 0;
    req->client_addr = "in-process";
    set_request_id(req);
    if (route_req(s, req)) {
        req->db = db;
        run_handler(s, req);
        req->db = NULL;
    }
    finish_metrics(s, req);
    return req;
}

/* ------------------------------------------------------------------------------------ */
/* built-in routes                                                                       */

static void handle_healthz(cc_req_t *req)
{
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:s}", "status", "ok", "service", req->server->conf.service,
                          "version", req->server->conf.version ? req->server->conf.version : ""));
}

static void handle_metrics(cc_req_t *req)
{
    cc_server_t *s = req->server;
    cc_buf_t out;
    cc_buf_init(&out);
    pthread_mutex_lock(&s->qlock); /* workers change qlen under the lock */
    size_t qlen = s->qlen;
    pthread_mutex_unlock(&s->qlock);
    cc_metrics_gauge(s->metrics, CC_GAUGE_QUEUE_DEPTH, (int64_t)qlen);
    cc_metrics_gauge(s->metrics, CC_GAUGE_WORKERS_BUSY, atomic_load(&s->busy));
    cc_metrics_render(s->metrics, &out);
    cc_res_text(req, 200, "text/plain; version=0.0.4", out.data ? out.data : "", out.len);
    cc_buf_free(&out);
}

static void handle_readyz(cc_req_t *req)
{
    cc_server_t *s = req->server;
    json_t *checks = json_object();
    bool ok = true;
    if (s->conf.db_conninfo != NULL) {
        bool up = req->db != NULL && cc_db_ping(req->db);
        cc_metrics_gauge(s->metrics, CC_GAUGE_DB_UP, up);
        json_object_set_new(checks, "database", json_string(up ? "ok" : "unreachable"));
        ok = ok && up;
    }
    if (s->conf.ready != NULL)
        ok = s->conf.ready(req, checks) && ok;
    if (ok) {
        cc_res_json(req, 200,
                    json_pack("{s:s, s:s, s:o}", "status", "ready", "service", s->conf.service,
                              "checks", checks));
    } else {
        cc_res_problem_ext(req, CC_ERR_NOT_READY,
                           json_pack("{s:s, s:o}", "service", s->conf.service, "checks", checks),
                           "A dependency of %s is not ready.", s->conf.service);
    }
}

static const cc_route_t builtin_routes[] = {
    {"GET", "/healthz", handle_healthz, CC_ROUTE_PUBLIC | CC_ROUTE_INLINE, 0},
    {"GET", "/metrics", handle_metrics, CC_ROUTE_PUBLIC | CC_ROUTE_INLINE, 0},
    {"GET", "/readyz", handle_readyz, CC_ROUTE_PUBLIC, 0},
};

/* ------------------------------------------------------------------------------------ */
/* event loops                                                                           */

static void send_response(h2o_req_t *hreq, cc_req_t *req)
{
    hreq->res.status = req->status ? req->status : 500;
    hreq->res.reason = cc_http_reason(hreq->res.status);
    for (size_t i = 0; i < req->nres_headers; i++)
        add_h2o_header(hreq, req->res_headers[i].name, req->res_headers[i].value);
    add_h2o_header(hreq, "x-request-id", req->request_id ? req->request_id : "");
    /* HEAD of a streamed resource has no body to measure: no Content-Length then */
    bool head_of_stream = req->res_body.len == 0 && strcmp(req->method, "HEAD") == 0;
    if (hreq->res.status != 204 && hreq->res.status != 304 && !head_of_stream)
        hreq->res.content_length = req->res_body.len;
    h2o_send_inline(hreq, req->res_body.data ? req->res_body.data : "", req->res_body.len);
}

static void on_link_dispose(void *p)
{
    job_link_t *link = p;
    if (link->job != NULL) {
        link->job->hreq = NULL;
        link->job->link = NULL;
    }
}

static bool enqueue(cc_server_t *s, job_t *job)
{
    size_t max = s->conf.queue_max ? s->conf.queue_max : 4096;
    pthread_mutex_lock(&s->qlock);
    if (s->qlen >= max || atomic_load(&s->stopping) || s->nworkers == 0) {
        pthread_mutex_unlock(&s->qlock);
        return false;
    }
    if (s->qtail)
        s->qtail->next = job;
    else
        s->qhead = job;
    s->qtail = job;
    s->qlen++;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    return true;
}

static int on_req(h2o_handler_t *self, h2o_req_t *hreq)
{
    cc_server_t *s = ((server_handler_t *)self)->s;
    loop_thread_t *lt = H2O_STRUCT_FROM_MEMBER(loop_thread_t, ctx, hreq->conn->ctx);
    cc_req_t *req = req_new(s);

    req->method = cc_pool_strndup(req->pool, hreq->method.base, hreq->method.len);
    size_t plen = hreq->query_at != SIZE_MAX ? hreq->query_at : hreq->path.len;
    req->path = cc_pool_strndup(req->pool, hreq->path.base, plen);
    if (hreq->query_at != SIZE_MAX)
        req->query =
            cc_pool_strndup(req->pool, hreq->path.base + plen + 1, hreq->path.len - plen - 1);
    req->nheaders = hreq->headers.size;
    req->headers = cc_pool_alloc(req->pool, sizeof(cc_header_t) * (req->nheaders + 1));
    for (size_t i = 0; i < hreq->headers.size; i++) {
        h2o_header_t *h = &hreq->headers.entries[i];
        req->headers[i].name = cc_pool_strndup(req->pool, h->name->base, h->name->len);
        req->headers[i].value = cc_pool_strndup(req->pool, h->value.base, h->value.len);
    }
    if (hreq->entity.base != NULL) {
        req->body = cc_pool_strndup(req->pool, hreq->entity.base, hreq->entity.len);
        req->body_len = hreq->entity.len;
    }
    struct sockaddr_storage ss;
    socklen_t sl = hreq->conn->callbacks->get_peername(hreq->conn, (struct sockaddr *)&ss);
    char addr[NI_MAXHOST];
    size_t al = sl ? h2o_socket_getnumerichost((struct sockaddr *)&ss, sl, addr) : SIZE_MAX;
    req->client_addr = al != SIZE_MAX ? cc_pool_strndup(req->pool, addr, al) : "unknown";
    set_request_id(req);

    if (!route_req(s, req))
        goto Respond;
    if (req->route->flags & CC_ROUTE_INLINE) {
        run_handler(s, req);
        goto Respond;
    }

    job_t *job = cc_calloc(1, sizeof(*job));
    job->done.type = MSG_JOB_DONE;
    job->done.p = job;
    job->req = req;
    job->loop = lt;
    job->hreq = hreq;
    req->internal = job;
    if (!enqueue(s, job)) {
        free(job);
        req->internal = NULL;
        cc_res_problem(req, CC_ERR_NOT_READY, "The service is overloaded or stopping; retry.");
        cc_res_header(req, "retry-after", "1");
        goto Respond;
    }
    job_link_t *link = h2o_mem_alloc_shared(&hreq->pool, sizeof(*link), on_link_dispose);
    link->job = job;
    job->link = link;
    atomic_fetch_add(&s->inflight, 1);
    return 0;

Respond:
    finish_metrics(s, req);
    send_response(hreq, req);
    cc_req_free(req);
    return 0;
}

static void on_message(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        msg_t *mm = (msg_t *)m;
        switch (mm->type) {
        case MSG_JOB_DONE: {
            job_t *job = mm->p;
            cc_server_t *s = job->req->server;
            if (!job->streamed && job->hreq != NULL) {
                if (job->link)
                    job->link->job = NULL;
                send_response(job->hreq, job->req);
            }
            bool streamed = job->streamed; /* then on_stream_req_dispose counts it down */
            bool big =
                job->req->body_len >= TRIM_AFTER_BODY || job->req->res_body.len >= TRIM_AFTER_BODY;
            cc_req_free(job->req);
            free(job);
            /* a large body's parse tree (a usage batch of 10 000 items: tens of MiB of
             * small JSON nodes) would otherwise stay in the worker's malloc arena, and the
             * process's RSS with it; a worker gives it back, never this loop */
            if (big) {
                pthread_mutex_lock(&s->qlock);
                s->trim_wanted = true;
                pthread_cond_signal(&s->qcond);
                pthread_mutex_unlock(&s->qlock);
            }
            if (!streamed)
                atomic_fetch_sub(&s->inflight, 1);
            break;
        }
        case MSG_STREAM_KICK: {
            cc_stream_t *st = mm->p;
            free(mm);
            stream_on_kick(st);
            break;
        }
        case MSG_WAKE: {
            loop_thread_t *lt = mm->p;
            if (atomic_load(&lt->exit) && lt->listener != NULL) {
                h2o_socket_read_stop(lt->listener);
                h2o_socket_close(lt->listener);
                lt->listener = NULL;
            }
            break;
        }
        }
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    loop_thread_t *lt = listener->data;
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL)
        return;
    int one = 1;
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    h2o_accept(&lt->accept_ctx, sock);
}

static void block_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *loop_main(void *arg)
{
    loop_thread_t *lt = arg;
    cc_server_t *s = lt->s;
    /* Everything of this loop is created here, on its own thread: h2o 2.2 ties each socket
     * to the buffer-recycling list (thread-local) of the thread that creates it, and the
     * queue's pipe socket reads into such buffers. Created on the starting thread, the
     * sockets of every loop shared that thread's list without a lock, and two loops were
     * seen reading into the same buffer. */
    h2o_context_init(&lt->ctx, h2o_evloop_create(), &s->h2o_conf);
    lt->accept_ctx.ctx = &lt->ctx;
    lt->accept_ctx.hosts = s->h2o_conf.hosts;
    lt->queue = h2o_multithread_create_queue(lt->ctx.loop);
    h2o_multithread_register_receiver(lt->queue, &lt->receiver, on_message);
    lt->listener = h2o_evloop_socket_create(lt->ctx.loop, lt->listen_fd, H2O_SOCKET_FLAG_DONT_READ);
    lt->listener->data = lt;
    h2o_socket_read_start(lt->listener, on_accept);
    atomic_store(&lt->ready, true);

    /* after the listener closes, keep running until cc_server_stop says the workers are
     * gone: the answers of requests in flight still have to be written */
    while (!atomic_load(&lt->exit) || lt->listener != NULL || !atomic_load(&lt->s->loops_done))
        h2o_evloop_run(lt->ctx.loop, 100);
    /* drain what workers posted last */
    h2o_evloop_run(lt->ctx.loop, 0);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* workers                                                                               */

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    cc_server_t *s = w->s;
    if (s->conf.db_conninfo != NULL) {
        int rc = cc_db_open(s->conf.db_conninfo, s->conf.service, s->conf.db_search_path, &w->db);
        if (rc != 0)
            cc_log_warn("worker starts without a database connection (%s); will retry",
                        cc_strerror(rc));
    }
    for (;;) {
        pthread_mutex_lock(&s->qlock);
        while (s->qhead == NULL && !s->trim_wanted && !atomic_load(&s->stopping))
            pthread_cond_wait(&s->qcond, &s->qlock);
        if (s->trim_wanted) { /* off the event loop: a trim walks every arena */
            s->trim_wanted = false;
            pthread_mutex_unlock(&s->qlock);
            malloc_trim(0);
            continue;
        }
        job_t *job = s->qhead;
        if (job == NULL) {
            pthread_mutex_unlock(&s->qlock);
            break;
        }
        s->qhead = job->next;
        if (s->qhead == NULL)
            s->qtail = NULL;
        s->qlen--;
        pthread_mutex_unlock(&s->qlock);

        atomic_fetch_add(&s->busy, 1);
        cc_req_t *req = job->req;
        req->db = w->db;
        run_handler(s, req);
        req->db = NULL;
        if (req->stream != NULL) {
            cc_res_stream_end(req);
            cc_stream_t *st = req->stream;
            req->stream = NULL;
            stream_release(st); /* the worker's reference */
        }
        finish_metrics(s, req);
        atomic_fetch_sub(&s->busy, 1);
        h2o_multithread_send_message(&job->loop->receiver, &job->done.super);
    }
    cc_db_close(w->db);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* life cycle                                                                            */

int cc_http_listen(const char *host, int port, int *out_fd, int *out_port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        cc_log_error("listen address %s is not an IPv4 address", host);
        return CC_EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return CC_EIO;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 1024) != 0) {
        cc_log_error("cannot listen on %s:%d: %s", host, port, strerror(errno));
        close(fd);
        return CC_EIO;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *out_fd = fd;
    *out_port = ntohs(sa.sin_port);
    return 0;
}

static pthread_mutex_t retired_lock = PTHREAD_MUTEX_INITIALIZER;
static cc_server_t **retired;
static size_t nretired;

int cc_server_new(const cc_server_config_t *conf, cc_server_t **out)
{
    cc_server_t *s = cc_calloc(1, sizeof(*s));
    s->conf = *conf;
    s->listen_fd = -1;
    if (s->conf.max_body == 0)
        s->conf.max_body = 1024 * 1024;
    s->nroutes = conf->nroutes + CC_ARRAY_SIZE(builtin_routes);
    s->routes = cc_calloc(s->nroutes, sizeof(cc_route_t));
    memcpy(s->routes, conf->routes, conf->nroutes * sizeof(cc_route_t));
    memcpy(s->routes + conf->nroutes, builtin_routes, sizeof(builtin_routes));
    s->router = cc_router_new(s->routes, s->nroutes);
    if (s->router == NULL)
        goto Error;
    size_t biggest = s->conf.max_body;
    const char **labels = cc_calloc(s->nroutes, sizeof(char *));
    for (size_t i = 0; i < s->nroutes; i++) {
        labels[i] = cc_aprintf("%s %s", s->routes[i].method, s->routes[i].pattern);
        if (s->routes[i].max_body > biggest)
            biggest = s->routes[i].max_body;
        if (!(s->routes[i].flags & CC_ROUTE_PUBLIC) && s->conf.jwks == NULL) {
            cc_log_error("route %s needs a token but no JWKS is configured", labels[i]);
        }
    }
    s->metrics = cc_metrics_new(conf->service, labels, s->nroutes);
    for (size_t i = 0; i < s->nroutes; i++)
        free((char *)labels[i]);
    free(labels);
    /* h2o refuses bodies beyond this with its own 413 and closes; below it, handlers answer
     * problem JSON with the exact limit */
    s->h2o_body_limit = biggest + 64 * 1024;
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    if (cc_http_listen(conf->host ? conf->host : "127.0.0.1", conf->port, &s->listen_fd,
                       &s->port) != 0)
        goto Error;
    *out = s;
    return 0;
Error:
    cc_server_free(s);
    *out = NULL;
    return CC_EINVAL;
}

int cc_server_port(const cc_server_t *s)
{
    return s->port;
}

cc_metrics_t *cc_server_metrics(cc_server_t *s)
{
    return s->metrics;
}

int cc_server_start(cc_server_t *s)
{
    signal(SIGPIPE, SIG_IGN);
    block_signals();
    h2o_config_init(&s->h2o_conf);
    s->h2o_conf.server_name = h2o_iovec_init(H2O_STRLIT("console"));
    s->h2o_conf.max_request_entity_size = s->h2o_body_limit;
    h2o_hostconf_t *host =
        h2o_config_register_host(&s->h2o_conf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    server_handler_t *h = (server_handler_t *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->s = s;

    s->nworkers = s->conf.workers;
    s->workers = cc_calloc(s->nworkers ? (size_t)s->nworkers : 1, sizeof(worker_t));
    for (int i = 0; i < s->nworkers; i++) {
        s->workers[i].s = s;
        pthread_create(&s->workers[i].tid, NULL, worker_main, &s->workers[i]);
    }

    int n = s->conf.threads > 0 ? s->conf.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    s->nloops = n;
    s->loops = cc_calloc((size_t)n, sizeof(loop_thread_t));
    for (int i = 0; i < n; i++) {
        loop_thread_t *lt = &s->loops[i];
        lt->s = s;
        lt->listen_fd = i == 0 ? s->listen_fd : dup(s->listen_fd);
    }
    s->listen_fd = -1; /* owned by the first loop's socket now */
    for (int i = 0; i < n; i++)
        pthread_create(&s->loops[i].tid, NULL, loop_main, &s->loops[i]);
    /* stop sends to the loops' receivers: wait until every loop has built its own */
    for (int i = 0; i < n; i++) {
        while (!atomic_load(&s->loops[i].ready)) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    s->started = true;
    cc_log_info("listening on %s:%d (%d event loops, %d workers)",
                s->conf.host ? s->conf.host : "127.0.0.1", s->port, n, s->nworkers);
    return 0;
}

void cc_server_stop(cc_server_t *s, int grace_ms)
{
    if (!s->started)
        return;
    atomic_store(&s->stopping, true);
    /* 1. stop accepting */
    for (int i = 0; i < s->nloops; i++) {
        loop_thread_t *lt = &s->loops[i];
        atomic_store(&lt->exit, true);
        lt->wake.type = MSG_WAKE;
        lt->wake.p = lt;
        h2o_multithread_send_message(&lt->receiver, &lt->wake.super);
    }
    /* 2. let the requests in flight finish: the loops keep running and write the answers */
    uint64_t deadline = cc_now_ns() + (uint64_t)grace_ms * 1000000u;
    while (atomic_load(&s->inflight) > 0 && cc_now_ns() < deadline) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* 3. the grace is over: streams give up on slow clients, workers drain the queue and exit */
    atomic_store(&s->quit, true);
    pthread_mutex_lock(&s->qlock);
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i].tid, NULL);
    /* 4. loops write the last answers and exit */
    atomic_store(&s->loops_done, true);
    for (int i = 0; i < s->nloops; i++)
        pthread_join(s->loops[i].tid, NULL);
    s->started = false;
}

void cc_server_free(cc_server_t *s)
{
    if (s == NULL)
        return;
    if (s->started)
        cc_server_stop(s, 0);
    if (s->loops != NULL) {
        /* h2o 2.2 asserts when a context with open keep-alive connections is disposed and
         * has no call to close them: the loops are retired, not freed, and stay reachable
         * (the process is ending; tests that start many servers lose a few KiB each). */
        pthread_mutex_lock(&retired_lock);
        retired = cc_realloc(retired, sizeof(*retired) * (nretired + 1));
        retired[nretired++] = s;
        pthread_mutex_unlock(&retired_lock);
    }
    free(s->workers);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    cc_router_free(s->router);
    cc_metrics_free(s->metrics);
    free(s->routes);
    s->router = NULL;
    s->metrics = NULL;
    s->routes = NULL;
    if (s->loops == NULL) {
        pthread_mutex_destroy(&s->qlock);
        pthread_cond_destroy(&s->qcond);
        free(s);
    }
}
