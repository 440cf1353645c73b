/*
 * HTTP server on libh2o (evloop flavour) and the request/response API of handlers.
 *
 * Threads: CONSOLE_THREADS event-loop threads (one per core by default) accept
 * connections and parse HTTP; handlers run on a pool of worker threads, each owning
 * one database connection (db.h), so straight-line handler code may block on
 * PostgreSQL without stalling any event loop. Routes flagged CC_ROUTE_INLINE (health,
 * metrics) run on the loop thread itself. See docs/architecture.md for the measurements
 * behind this choice.
 *
 * A handler gets a cc_req_t whose strings are copies in req->pool (valid for the whole
 * request on whichever thread serves it) and answers exactly once with cc_res_json,
 * cc_res_text, cc_res_problem* or a stream (cc_res_stream_*). Every error leaves
 * through cc_res_problem*, which writes RFC 9457 problem JSON with `code` and
 * `request_id` and counts the code in the metrics.
 */
#ifndef CONSOLE_HTTP_H
#define CONSOLE_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console/auth.h"
#include "console/db.h"
#include "console/errors.h"
#include "console/mem.h"
#include "console/metrics.h"
#include "console/router.h"
#include "console/str.h"
#include "console/str.h"

typedef struct cc_header {
    const char *name; /* lower-case */
    const char *value;
} cc_header_t;

typedef struct cc_server cc_server_t;
typedef struct cc_stream cc_stream_t;

#define CC_MAX_RES_HEADERS 24

struct cc_req {
    cc_pool_t *pool;
    cc_server_t *server;
    void *app; /* the service's context (cc_server_config_t.app) */

    const char *method;
    const char *path;  /* raw path without the query */
    const char *query; /* raw query string without '?', "" when none */
    const char *body;
    size_t body_len;
    cc_header_t *headers; /* request headers, names lower-case */
    size_t nheaders;
    const char *request_id; /* X-Request-Id: kept when valid, generated otherwise */
    const char *client_addr;

    int route_index;
    const cc_route_t *route;
    cc_route_match_t match;

    cc_principal_t *principal; /* verified caller; NULL on public routes without a token */
    struct cc_authz *authz;    /* the caller's grants (console/authz.h); NULL without one */
    cc_db_t *db;               /* the worker's connection; NULL on inline routes */

    /* response, filled by cc_res_* */
    int status;
    cc_header_t res_headers[CC_MAX_RES_HEADERS];
    size_t nres_headers;
    cc_buf_t res_body;
    bool responded;
    int error_id; /* API error of a problem response, -1 otherwise */
    cc_stream_t *stream;
    bool stream_failed; /* in-process dispatch: the stream ended by cc_res_stream_abort */
    uint64_t started_ns;
    void *internal; /* the server's job record; not for handlers */
};

/* ---- request accessors ---- */

/** A request header (name lower-case), or NULL. The first one when repeated. */
const char *cc_req_header(const cc_req_t *req, const char *name);
/** A path parameter by name ("id" of "/tenants/{id}"), or NULL. */
const char *cc_req_param(const cc_req_t *req, const char *name);
/**
 * Parses the body as a JSON object or array per cc_json_parse_body (limit: the route's
 * max_body or the server default); requires Content-Type application/json (or +json).
 * On failure answers the problem itself and returns -1; on success *out is borrowed
 * (owned by the request pool).
 */
int cc_req_json(cc_req_t *req, json_t **out);
/**
 * Checks that the query has only parameters in allowed (NULL-terminated); answers
 * 400 invalid_parameter and returns -1 otherwise.
 */
int cc_req_query_allowed(cc_req_t *req, const char *const *allowed);
/** A decoded query parameter or NULL; answers 400 and sets *failed when repeated/malformed. */
const char *cc_req_query(cc_req_t *req, const char *name, bool *failed);
/**
 * Reads ?limit= (1..500, default 50) and ?cursor= (decoded with cc_cursor_decode, NULL when
 * absent). Answers 400 and returns -1 on a bad value.
 */
int cc_req_page(cc_req_t *req, int *limit, json_t **cursor_keys);

/**
 * If-Match against the version-based ETag the services answer ("\"<version>\""): true
 * when the header is absent, "*", or lists that ETag.
 */
bool cc_req_if_match(cc_req_t *req, int version);

/**
 * On a public route that also accepts a bearer token (a product's own proof, or an
 * administrator's token): verifies the token and loads the caller's grants as on any
 * authenticated route. Returns true with req->principal and req->authz set, or answers
 * (401, 403 tenant_suspended, 503) and returns false.
 */
bool cc_req_authenticate(cc_req_t *req);

/* ---- responses ---- */

/** Adds a response header (both strings copied). */
void cc_res_header(cc_req_t *req, const char *name, const char *value);
/** Answers status with body serialized as JSON (steals body; NULL sends no body). */
void cc_res_json(cc_req_t *req, int status, json_t *body);
/** Answers status with raw bytes of content_type. */
void cc_res_text(cc_req_t *req, int status, const char *content_type, const char *data, size_t n);
/** Answers the catalogue error id with a detail sentence (printf-style). */
void cc_res_problem(cc_req_t *req, cc_error_id_t id, const char *detail_fmt, ...)
    __attribute__((format(printf, 3, 4)));
/**
 * Answers a problem with extra members merged into the object (steals extra; may be NULL),
 * e.g. {"errors": [...]} for validation.
 */
void cc_res_problem_ext(cc_req_t *req, cc_error_id_t id, json_t *extra, const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** What a protocol may need to change in a problem response; NULL fields keep the default. */
typedef struct cc_problem_opts {
    const char *content_type;     /* default "application/problem+json" */
    const char *www_authenticate; /* for 401; default: Bearer error="invalid_token" */
} cc_problem_opts_t;

/**
 * cc_res_problem_ext with options, for protocols with their own error conventions (RFC
 * 6749 token errors are application/json and challenge with Basic). Steals extra.
 */
void cc_res_problem_opts(cc_req_t *req, cc_error_id_t id, json_t *extra,
                         const cc_problem_opts_t *opts, const char *detail_fmt, ...)
    __attribute__((format(printf, 5, 6)));

/** Answers 400 validation_failed with the validator's errors, or unknown_field. */
struct cc_validator;
void cc_res_invalid(cc_req_t *req, const struct cc_validator *v);
/** Answers a problem for a database error code from cc_db_* (503 when down, else 500). */
void cc_res_db_error(cc_req_t *req, int err);

/* ---- streaming (worker routes only) ---- */

/**
 * Starts a streamed response (chunked on HTTP/1.1). Headers added before are sent.
 * Then cc_res_stream_write any number of times, and cc_res_stream_end once.
 */
int cc_res_stream_start(cc_req_t *req, int status, const char *content_type);
/**
 * Queues bytes (copied). Blocks the worker while more than 256 KiB wait for a slow
 * client. Returns 0, or CC_ECLOSED when the client went away (stop producing).
 */
int cc_res_stream_write(cc_req_t *req, const void *data, size_t n);
/** Ends the stream. */
int cc_res_stream_end(cc_req_t *req);
/**
 * Ends the stream as failed, instead of cc_res_stream_end, when the producer cannot
 * finish (a database error half way through an export): the connection is closed
 * without the terminating chunk, so the client sees a truncated transfer rather than a
 * short answer that looks complete. In-process dispatch sets req->stream_failed.
 */
int cc_res_stream_abort(cc_req_t *req);

/* ---- exports (?format=csv|json&bom=true, API.md "Exports") ---- */

typedef struct {
    bool csv; /* format=csv (the default) rather than json */
    bool bom; /* bom=true: a UTF-8 byte order mark before the CSV, for Excel */
} cc_export_t;

/** Reads ?format= and ?bom=; answers 400 invalid_parameter and returns -1 on a bad value. */
int cc_req_export(cc_req_t *req, cc_export_t *out);
/**
 * Starts the streamed export named base (the download's file name, without extension):
 * Content-Disposition, no-store, the content type, then into b the BOM and the header row
 * of columns (NULL-terminated) for CSV, or the opening bracket for JSON. The caller
 * writes rows (JSON rows separated by ",\n") and ends with cc_res_export_end.
 */
int cc_res_export_start(cc_req_t *req, const cc_export_t *e, const char *base,
                        const char *const *columns, cc_buf_t *b);
/**
 * Flushes b, closes the JSON array and ends the stream when complete is true. An
 * incomplete export (a page failed midway) is aborted (cc_res_stream_abort): the client
 * sees a broken transfer, never a cut CSV that looks whole.
 */
void cc_res_export_end(cc_req_t *req, const cc_export_t *e, cc_buf_t *b, bool complete);

/* ---- server ---- */

/** Called on a worker for /readyz beyond the database check; add {name: "ok"|reason}. */
typedef bool (*cc_ready_cb)(cc_req_t *req, json_t *checks);

typedef struct cc_server_config {
    const char *service; /* "tenants" */
    const char *version; /* reported by /healthz */
    const char *host;    /* listen address, e.g. "127.0.0.1" */
    int port;
    int threads;     /* event loops; 0 = one per core */
    int workers;     /* worker threads = database connections; 0 = no database */
    size_t max_body; /* default body limit */
    const char *db_conninfo;
    const char *db_search_path;
    const cc_route_t *routes; /* service routes; /healthz, /readyz, /metrics are added */
    size_t nroutes;
    cc_jwks_t *jwks;     /* verifies bearer tokens; required when any route is not public */
    cc_auth_opts_t auth; /* issuer, audience, leeway (may_fetch is set by the server) */
    cc_ready_cb ready;
    /* run after authentication on authenticated routes that have a database; answers and
     * returns false to refuse (cc_authz_enforce: grants and tenant suspension) */
    bool (*authorize)(cc_req_t *req);
    void *app;
    size_t queue_max; /* waiting requests before 503; 0 = 4096 */
} cc_server_config_t;

/** Creates the server: binds the listener (so the port is taken before start returns). */
int cc_server_new(const cc_server_config_t *conf, cc_server_t **out);
/** Starts the worker threads and the event-loop threads; returns at once. */
int cc_server_start(cc_server_t *s);
/** The bound port (useful with port 0 in tests). */
int cc_server_port(const cc_server_t *s);
/** Stops accepting, lets requests in flight finish (up to grace_ms), joins every thread. */
void cc_server_stop(cc_server_t *s, int grace_ms);
void cc_server_free(cc_server_t *s);
cc_metrics_t *cc_server_metrics(cc_server_t *s);

/**
 * Runs one request through routing, authentication and the handler in the calling
 * thread, without a socket (tests). db may be NULL. The returned request (its own pool)
 * holds the response; free it with cc_req_free.
 */
cc_req_t *cc_server_dispatch(cc_server_t *s, cc_db_t *db, const char *method, const char *path,
                             const cc_header_t *headers, size_t nheaders, const char *body,
                             size_t body_len);
void cc_req_free(cc_req_t *req);

/**
 * The RFC 9457 problem document for catalogue error id (a heap string; caller frees):
 * type, title, status, detail, code, request_id, plus extra's members (borrowed, may be NULL).
 * Every problem response of the product is built here.
 */
char *cc_problem_json(cc_error_id_t id, const char *detail, const char *request_id, json_t *extra);

/** Binds and listens on host:port (IPv4; port 0 = any); *bound_port gets the port. */
int cc_http_listen(const char *host, int port, int *fd, int *bound_port);

/** The standard reason phrase of an HTTP status ("Not Found"), or "Status". */
const char *cc_http_reason(int status);

/** Monotonic nanoseconds. */
uint64_t cc_now_ns(void);

/** True when s is acceptable as an incoming X-Request-Id (1..64 of [A-Za-z0-9._-]). */
bool cc_request_id_valid(const char *s);

#endif
