/*
 * Prometheus metrics: request counts by route and status, a latency histogram per route,
 * and errors by API error code. Counters are relaxed atomics: observe from any thread.
 */
#ifndef CONSOLE_METRICS_H
#define CONSOLE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "console/str.h"

typedef struct cc_metrics cc_metrics_t;

/**
 * Metrics for nroutes labelled routes (labels copied, e.g. "GET /api/v1/tenants/{id}");
 * an extra slot nroutes counts requests no route matched (label "unmatched").
 */
cc_metrics_t *cc_metrics_new(const char *service, const char *const *labels, size_t nroutes);
void cc_metrics_free(cc_metrics_t *m);

/** Counts one finished request; route may be (size_t)-1 for unmatched. */
void cc_metrics_observe(cc_metrics_t *m, size_t route, int status, uint64_t duration_ns);
/** Counts one problem response with API error id (cc_error_id_t). */
void cc_metrics_error(cc_metrics_t *m, int error_id);
/** Sets a gauge-like value reported as console_<name> (e.g. "worker_queue_depth"). */
void cc_metrics_gauge(cc_metrics_t *m, int which, int64_t value);
enum { CC_GAUGE_QUEUE_DEPTH, CC_GAUGE_WORKERS_BUSY, CC_GAUGE_DB_UP, CC_GAUGE__COUNT };

/** Appends the exposition text (format 0.0.4) to out. */
void cc_metrics_render(cc_metrics_t *m, cc_buf_t *out);

#endif
