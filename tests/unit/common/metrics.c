/*
 * Unit tests for common/metrics.c: request counts by route and status, the latency
 * histogram (bucket boundaries, cumulative buckets, +Inf equal to the count, the sum),
 * errors by API code, label escaping, the unmatched slot, gauges, concurrent counting,
 * and a render that reads as Prometheus text format 0.0.4.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>

#include "console/errors.h"
#include "console/mem.h"
#include "console/metrics.h"
#include "console/str.h"

#define MS 1000000ull

/* ---- reading the exposition text ---- */

static char *render(cc_metrics_t *m)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_metrics_render(m, &b);
    return cc_buf_steal(&b, NULL);
}

/*
 * The value of the sample whose name and label set are exactly `series` (e.g.
 * `x_total{a="b"}`), or NAN when there is no such line. Fails on a duplicate series.
 */
static double sample(const char *text, const char *series)
{
    double found = NAN;
    size_t n = strlen(series);
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (len > n && strncmp(line, series, n) == 0 && line[n] == ' ') {
            if (!isnan(found))
                fail_msg("series %s appears twice", series);
            found = strtod(line + n + 1, NULL);
        }
        line += len + (eol != NULL);
    }
    return found;
}

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
           (!first && c >= '0' && c <= '9');
}

/* Parses `name` at *p; returns its length (0 when none). */
static size_t parse_name(const char *p)
{
    size_t n = 0;
    while (is_name_char(p[n], n == 0))
        n++;
    return n;
}

/*
 * Checks every line is a HELP/TYPE comment or a sample `name{l="v",...} value` with
 * properly escaped label values, that each sample's family was declared by a TYPE line
 * before it, that a family's samples are contiguous, and that the text ends with a
 * newline. Returns the number of samples.
 */
static size_t check_exposition(const char *text)
{
    char types[32][96];
    size_t ntypes = 0, nsamples = 0;
    char last_family[96] = "";
    char done[32][96];
    size_t ndone = 0;
    size_t tlen = strlen(text);
    assert_true(tlen > 0);
    assert_int_equal(text[tlen - 1], '\n');

    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        assert_non_null(eol);
        char l[4096];
        size_t len = (size_t)(eol - line);
        assert_true(len < sizeof(l));
        memcpy(l, line, len);
        l[len] = '\0';
        line = eol + 1;

        if (strncmp(l, "# HELP ", 7) == 0) {
            size_t nl = parse_name(l + 7);
            assert_true(nl > 0);
            assert_int_equal(l[7 + nl], ' ');
            continue;
        }
        if (strncmp(l, "# TYPE ", 7) == 0) {
            size_t nl = parse_name(l + 7);
            assert_true(nl > 0 && nl < 96);
            const char *kind = l + 7 + nl;
            if (strcmp(kind, " counter") != 0 && strcmp(kind, " gauge") != 0 &&
                strcmp(kind, " histogram") != 0)
                fail_msg("bad TYPE line: %s", l);
            assert_true(ntypes < 32);
            snprintf(types[ntypes++], 96, "%.*s", (int)nl, l + 7);
            continue;
        }
        if (l[0] == '#')
            fail_msg("unexpected comment: %s", l);

        /* a sample */
        size_t nl = parse_name(l);
        if (nl == 0)
            fail_msg("no metric name: %s", l);
        const char *p = l + nl;
        if (*p == '{') {
            p++;
            for (;;) {
                size_t ln = parse_name(p);
                if (ln == 0 || p[ln] != '=' || p[ln + 1] != '"')
                    fail_msg("bad label in: %s", l);
                p += ln + 2;
                while (*p != '"') {
                    if (*p == '\0')
                        fail_msg("unterminated label value: %s", l);
                    if (*p == '\\') {
                        if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                            fail_msg("bad escape in: %s", l);
                        p++;
                    }
                    p++;
                }
                p++;
                if (*p == ',') {
                    p++;
                    continue;
                }
                if (*p != '}')
                    fail_msg("bad label list: %s", l);
                p++;
                break;
            }
        }
        if (*p != ' ')
            fail_msg("no value: %s", l);
        char *end = NULL;
        double v = strtod(p + 1, &end);
        if (end == p + 1 || *end != '\0' || isnan(v))
            fail_msg("bad value: %s", l);

        /* its family: the name, or the name without a histogram suffix */
        char family[96];
        snprintf(family, sizeof(family), "%.*s", (int)nl, l);
        bool declared = false;
        for (size_t i = 0; i < ntypes && !declared; i++)
            declared = strcmp(types[i], family) == 0;
        static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
        for (size_t s = 0; s < 3 && !declared; s++) {
            size_t sl = strlen(suffixes[s]), fl = strlen(family);
            if (fl > sl && strcmp(family + fl - sl, suffixes[s]) == 0) {
                family[fl - sl] = '\0';
                for (size_t i = 0; i < ntypes && !declared; i++)
                    declared = strcmp(types[i], family) == 0;
                if (!declared)
                    family[fl - sl] = suffixes[s][0]; /* restore for the message */
            }
        }
        if (!declared)
            fail_msg("sample of an undeclared family: %s", l);
        if (strcmp(family, last_family) != 0) {
            for (size_t i = 0; i < ndone; i++)
                if (strcmp(done[i], family) == 0)
                    fail_msg("family %s is not contiguous", family);
            if (last_family[0] != '\0') {
                assert_true(ndone < 32);
                snprintf(done[ndone++], 96, "%s", last_family);
            }
            snprintf(last_family, sizeof(last_family), "%s", family);
        }
        nsamples++;
    }
    return nsamples;
}

/* ---- fixtures ---- */

static const char *const labels[] = {"GET /api/v1/tenants", "POST /api/v1/tenants/{id}/suspend"};

static int setup(void **state)
{
    *state = cc_metrics_new("tenants", labels, CC_ARRAY_SIZE(labels));
    return 0;
}

static int teardown(void **state)
{
    cc_metrics_free(*state);
    return 0;
}

#define REQ(route, status)                                                                         \
    "console_http_requests_total{service=\"tenants\",route=\"" route "\",status=\"" #status "\"}"
#define BUCKET(route, le)                                                                          \
    "console_http_request_duration_seconds_bucket{service=\"tenants\",route=\"" route              \
    "\",le=\"" le "\"}"
#define HSUM(route)                                                                                \
    "console_http_request_duration_seconds_sum{service=\"tenants\",route=\"" route "\"}"
#define HCOUNT(route)                                                                              \
    "console_http_request_duration_seconds_count{service=\"tenants\",route=\"" route "\"}"

/* ---- tests ---- */

static void test_empty_render(void **state)
{
    char *text = render(*state);
    check_exposition(text);
    /* no request yet: no request or histogram series, gauges at zero */
    assert_null(strstr(text, "console_http_requests_total{"));
    assert_null(strstr(text, "_bucket{"));
    assert_null(strstr(text, "console_http_errors_total{"));
    assert_true(sample(text, "console_worker_queue_depth{service=\"tenants\"}") == 0);
    assert_true(sample(text, "console_workers_busy{service=\"tenants\"}") == 0);
    assert_true(sample(text, "console_database_up{service=\"tenants\"}") == 0);
    free(text);
}

static void test_counts_by_route_and_status(void **state)
{
    cc_metrics_t *m = *state;
    for (int i = 0; i < 3; i++)
        cc_metrics_observe(m, 0, 200, 1 * MS);
    cc_metrics_observe(m, 0, 404, 1 * MS);
    cc_metrics_observe(m, 1, 202, 1 * MS);
    cc_metrics_observe(m, 1, 500, 1 * MS);
    cc_metrics_observe(m, 1, 500, 1 * MS);
    cc_metrics_observe(m, 1, 599, 1 * MS);
    cc_metrics_observe(m, 0, 100, 1 * MS);

    char *text = render(m);
    check_exposition(text);
    assert_true(sample(text, REQ("GET /api/v1/tenants", 200)) == 3);
    assert_true(sample(text, REQ("GET /api/v1/tenants", 404)) == 1);
    assert_true(sample(text, REQ("GET /api/v1/tenants", 100)) == 1);
    assert_true(isnan(sample(text, REQ("GET /api/v1/tenants", 500))));
    assert_true(sample(text, REQ("POST /api/v1/tenants/{id}/suspend", 202)) == 1);
    assert_true(sample(text, REQ("POST /api/v1/tenants/{id}/suspend", 500)) == 2);
    assert_true(sample(text, REQ("POST /api/v1/tenants/{id}/suspend", 599)) == 1);
    assert_true(isnan(sample(text, REQ("POST /api/v1/tenants/{id}/suspend", 200))));
    assert_true(sample(text, HCOUNT("GET /api/v1/tenants")) == 5);
    assert_true(sample(text, HCOUNT("POST /api/v1/tenants/{id}/suspend")) == 4);
    /* nothing for the unmatched slot yet */
    assert_null(strstr(text, "route=\"unmatched\""));
    free(text);
}

/* Statuses outside 100..599 are not given a series of their own (and do not crash). */
static void test_status_out_of_range(void **state)
{
    cc_metrics_t *m = *state;
    static const int odd[] = {0, 99, 600, 1000, -1, 65536};
    for (size_t i = 0; i < CC_ARRAY_SIZE(odd); i++)
        cc_metrics_observe(m, 0, odd[i], 1 * MS);
    char *text = render(m);
    check_exposition(text);
    assert_null(strstr(text, "console_http_requests_total{"));
    assert_true(sample(text, HCOUNT("GET /api/v1/tenants")) == CC_ARRAY_SIZE(odd));
    free(text);
}

/* Each duration lands in the first bucket whose upper bound (inclusive) holds it. */
static void test_histogram_buckets(void **state)
{
    static const char *const le[] = {"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005",
                                     "0.01",   "0.025",   "0.05",   "0.1",   "0.25",   "0.5",
                                     "1",      "2.5",     "5",      "10",    "+Inf"};
    enum { NLE = CC_ARRAY_SIZE(le) };
    static const struct {
        uint64_t ns;
        size_t bucket; /* index into le */
    } cases[] = {
        {0, 0},
        {1, 0},
        {100000, 0}, /* exactly 0.0001 s: le is inclusive */
        {100001, 1},
        {250000, 1},
        {250001, 2},
        {999999, 3},
        {1000000, 3},
        {1000001, 4},
        {7 * MS, 6},
        {100 * MS, 9},
        {100 * MS + 1, 10},
        {1000 * MS, 12},
        {2500 * MS, 13},
        {10000 * MS, 15},
        {10000 * MS + 1, 16},
        {3600000 * MS, 16},
    };
    for (size_t c = 0; c < CC_ARRAY_SIZE(cases); c++) {
        cc_metrics_t *m = cc_metrics_new("tenants", labels, 1);
        cc_metrics_observe(m, 0, 200, cases[c].ns);
        char *text = render(m);
        check_exposition(text);
        for (size_t b = 0; b < NLE; b++) {
            char series[256];
            snprintf(series, sizeof(series),
                     "console_http_request_duration_seconds_bucket{service=\"tenants\","
                     "route=\"GET /api/v1/tenants\",le=\"%s\"}",
                     le[b]);
            double v = sample(text, series);
            double want = b >= cases[c].bucket ? 1 : 0;
            if (v != want)
                fail_msg("%llu ns: bucket le=%s is %g, expected %g",
                         (unsigned long long)cases[c].ns, le[b], v, want);
        }
        free(text);
        cc_metrics_free(m);
    }
}

static void test_histogram_cumulative_and_sum(void **state)
{
    cc_metrics_t *m = *state;
    static const uint64_t durations[] = {50000,   300000,   300000,    2 * MS,    40 * MS,
                                         40 * MS, 700 * MS, 3000 * MS, 20000 * MS};
    uint64_t total = 0;
    for (size_t i = 0; i < CC_ARRAY_SIZE(durations); i++) {
        cc_metrics_observe(m, 1, 200, durations[i]);
        total += durations[i];
    }
    char *text = render(m);
    check_exposition(text);

    /* walk the route's bucket lines in order: non-decreasing, ending with +Inf */
    const char *prefix = "console_http_request_duration_seconds_bucket{service=\"tenants\","
                         "route=\"POST /api/v1/tenants/{id}/suspend\",le=\"";
    double prev = 0, last = -1;
    size_t nb = 0;
    bool saw_inf = false;
    for (const char *p = strstr(text, prefix); p; p = strstr(p + 1, prefix)) {
        const char *q = p + strlen(prefix);
        assert_false(saw_inf); /* +Inf is the last bucket */
        saw_inf = strncmp(q, "+Inf\"}", 6) == 0;
        const char *sp = strchr(q, ' ');
        last = strtod(sp + 1, NULL);
        assert_true(last >= prev);
        prev = last;
        nb++;
    }
    assert_true(saw_inf);
    assert_int_equal(nb, 17);
    assert_true(last == CC_ARRAY_SIZE(durations));
    assert_true(sample(text, HCOUNT("POST /api/v1/tenants/{id}/suspend")) == last);
    assert_true(sample(text, BUCKET("POST /api/v1/tenants/{id}/suspend", "0.0005")) == 3);
    assert_true(sample(text, BUCKET("POST /api/v1/tenants/{id}/suspend", "0.05")) == 6);
    assert_true(sample(text, BUCKET("POST /api/v1/tenants/{id}/suspend", "5")) == 8);
    assert_true(sample(text, BUCKET("POST /api/v1/tenants/{id}/suspend", "10")) == 8);
    double sum = sample(text, HSUM("POST /api/v1/tenants/{id}/suspend"));
    assert_true(fabs(sum - (double)total / 1e9) < 1e-6);
    /* the other route has no histogram */
    assert_null(strstr(text, "route=\"GET /api/v1/tenants\""));
    free(text);
}

static void test_errors_by_code(void **state)
{
    cc_metrics_t *m = *state;
    cc_metrics_error(m, CC_ERR_NOT_FOUND);
    cc_metrics_error(m, CC_ERR_NOT_FOUND);
    cc_metrics_error(m, CC_ERR_VALIDATION_FAILED);
    cc_metrics_error(m, CC_ERR__COUNT - 1);
    /* out of the catalogue: ignored */
    cc_metrics_error(m, -1);
    cc_metrics_error(m, CC_ERR__COUNT);
    cc_metrics_error(m, 1 << 30);
    char *text = render(m);
    check_exposition(text);
    assert_true(sample(text, "console_http_errors_total{service=\"tenants\",code=\"not_found\"}") ==
                2);
    assert_true(sample(text, "console_http_errors_total{service=\"tenants\","
                             "code=\"validation_failed\"}") == 1);
    char series[160];
    snprintf(series, sizeof(series), "console_http_errors_total{service=\"tenants\",code=\"%s\"}",
             cc_error_defs[CC_ERR__COUNT - 1].code);
    assert_true(sample(text, series) == 1);
    /* exactly three error series */
    size_t n = 0;
    for (const char *p = strstr(text, "console_http_errors_total{"); p;
         p = strstr(p + 1, "console_http_errors_total{"))
        n++;
    assert_int_equal(n, 3);
    free(text);
}

/* Label values escape quote, backslash and newline; the service label too. */
static void test_labels_escaped(void **state)
{
    static const char *const odd[] = {"GET /a\"b", "GET /c\\d", "GET /e\nf", "GET /\"\\\n"};
    cc_metrics_t *m = cc_metrics_new("svc\"\\\n", odd, CC_ARRAY_SIZE(odd));
    for (size_t i = 0; i < CC_ARRAY_SIZE(odd); i++) {
        cc_metrics_observe(m, i, 200, 1 * MS);
        cc_metrics_error(m, CC_ERR_CONFLICT);
    }
    char *text = render(m);
    /* a raw newline inside a label would break a line in two: the parser would catch it */
    size_t nsamples = check_exposition(text);
    assert_true(nsamples > 0);
#define SVC "service=\"svc\\\"\\\\\\n\""
    assert_true(sample(text, "console_http_requests_total{" SVC ",route=\"GET /a\\\"b\",status="
                             "\"200\"}") == 1);
    assert_true(sample(text, "console_http_requests_total{" SVC ",route=\"GET /c\\\\d\",status="
                             "\"200\"}") == 1);
    assert_true(sample(text, "console_http_requests_total{" SVC ",route=\"GET /e\\nf\",status="
                             "\"200\"}") == 1);
    assert_true(sample(text, "console_http_requests_total{" SVC ",route=\"GET /\\\"\\\\\\n\","
                             "status=\"200\"}") == 1);
    assert_true(sample(text, "console_http_request_duration_seconds_count{" SVC
                             ",route=\"GET /e\\nf\"}") == 1);
    assert_true(sample(text, "console_http_errors_total{" SVC ",code=\"conflict\"}") == 4);
    assert_true(sample(text, "console_workers_busy{" SVC "}") == 0);
#undef SVC
    free(text);
    cc_metrics_free(m);
}

/* route (size_t)-1 and any index past the table count in the "unmatched" slot. */
static void test_unmatched_slot(void **state)
{
    cc_metrics_t *m = *state;
    cc_metrics_observe(m, (size_t)-1, 404, 1 * MS);
    cc_metrics_observe(m, CC_ARRAY_SIZE(labels), 404, 1 * MS);
    cc_metrics_observe(m, 1000, 405, 1 * MS);
    char *text = render(m);
    check_exposition(text);
    assert_true(sample(text, REQ("unmatched", 404)) == 2);
    assert_true(sample(text, REQ("unmatched", 405)) == 1);
    assert_true(sample(text, HCOUNT("unmatched")) == 3);
    assert_true(sample(text, BUCKET("unmatched", "+Inf")) == 3);
    assert_null(strstr(text, "route=\"GET /api/v1/tenants\""));
    free(text);

    /* a server with no routes of its own still has the slot */
    cc_metrics_t *empty = cc_metrics_new("x", NULL, 0);
    cc_metrics_observe(empty, 0, 404, 1);
    text = render(empty);
    check_exposition(text);
    assert_true(sample(text, "console_http_requests_total{service=\"x\",route=\"unmatched\","
                             "status=\"404\"}") == 1);
    free(text);
    cc_metrics_free(empty);
}

static void test_gauges(void **state)
{
    cc_metrics_t *m = *state;
    cc_metrics_gauge(m, CC_GAUGE_QUEUE_DEPTH, 17);
    cc_metrics_gauge(m, CC_GAUGE_WORKERS_BUSY, 3);
    cc_metrics_gauge(m, CC_GAUGE_WORKERS_BUSY, 2); /* set, not added */
    cc_metrics_gauge(m, CC_GAUGE_DB_UP, 1);
    cc_metrics_gauge(m, CC_GAUGE__COUNT, 99); /* ignored */
    cc_metrics_gauge(m, -1, 99);
    char *text = render(m);
    check_exposition(text);
    assert_true(sample(text, "console_worker_queue_depth{service=\"tenants\"}") == 17);
    assert_true(sample(text, "console_workers_busy{service=\"tenants\"}") == 2);
    assert_true(sample(text, "console_database_up{service=\"tenants\"}") == 1);
    assert_non_null(strstr(text, "# TYPE console_workers_busy gauge\n"));
    free(text);
    cc_metrics_gauge(m, CC_GAUGE_QUEUE_DEPTH, -5);
    text = render(m);
    assert_true(sample(text, "console_worker_queue_depth{service=\"tenants\"}") == -5);
    free(text);
}

static void test_type_lines(void **state)
{
    cc_metrics_t *m = *state;
    cc_metrics_observe(m, 0, 200, 1);
    cc_metrics_error(m, CC_ERR_FORBIDDEN);
    char *text = render(m);
    check_exposition(text);
    assert_non_null(strstr(text, "# TYPE console_http_requests_total counter\n"));
    assert_non_null(strstr(text, "# TYPE console_http_request_duration_seconds histogram\n"));
    assert_non_null(strstr(text, "# TYPE console_http_errors_total counter\n"));
    /* counters end in _total; the TYPE comes before the first sample of its family */
    assert_true(strstr(text, "# TYPE console_http_requests_total") <
                strstr(text, "console_http_requests_total{"));
    assert_true(strstr(text, "# TYPE console_http_errors_total") <
                strstr(text, "console_http_errors_total{"));
    free(text);
}

/* ---- relaxed atomics: observe from many threads, nothing lost ---- */

#define THREADS 4
#define PER_THREAD 20000

static void *observe_many(void *p)
{
    cc_metrics_t *m = p;
    for (int i = 0; i < PER_THREAD; i++) {
        cc_metrics_observe(m, (size_t)(i % 2), i % 3 == 0 ? 500 : 200, (uint64_t)(i % 7) * MS);
        cc_metrics_error(m, CC_ERR_NOT_FOUND);
    }
    return NULL;
}

static void test_concurrent_observe(void **state)
{
    cc_metrics_t *m = *state;
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observe_many, m), 0);
    /* render concurrently too: it must not crash or tear lines */
    for (int i = 0; i < 20; i++) {
        char *text = render(m);
        check_exposition(text);
        free(text);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = render(m);
    check_exposition(text);
    double c0 = sample(text, HCOUNT("GET /api/v1/tenants"));
    double c1 = sample(text, HCOUNT("POST /api/v1/tenants/{id}/suspend"));
    assert_true(c0 + c1 == THREADS * PER_THREAD);
    assert_true(c0 == THREADS * PER_THREAD / 2);
    double s200 = sample(text, REQ("GET /api/v1/tenants", 200)) +
                  sample(text, REQ("POST /api/v1/tenants/{id}/suspend", 200));
    double s500 = sample(text, REQ("GET /api/v1/tenants", 500)) +
                  sample(text, REQ("POST /api/v1/tenants/{id}/suspend", 500));
    assert_true(s200 + s500 == THREADS * PER_THREAD);
    assert_true(s500 == THREADS * ((PER_THREAD + 2) / 3));
    assert_true(sample(text, "console_http_errors_total{service=\"tenants\",code=\"not_found\"}") ==
                THREADS * PER_THREAD);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_render, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_by_route_and_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_out_of_range, setup, teardown),
        cmocka_unit_test(test_histogram_buckets),
        cmocka_unit_test_setup_teardown(test_histogram_cumulative_and_sum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_by_code, setup, teardown),
        cmocka_unit_test(test_labels_escaped),
        cmocka_unit_test_setup_teardown(test_unmatched_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_observe, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
