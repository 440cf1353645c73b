/*
 * Unit tests for common/router.c: literal and {param} patterns, the most specific
 * pattern winning whatever the table order, 404 against 405 with the Allow list, HEAD
 * answered by GET routes, percent-decoded parameters, paths that must not match, and
 * patterns cc_router_new must refuse.
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

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "console/log.h"
#include "console/mem.h"
#include "console/router.h"
#include "console/str.h"

/* Handlers are never called by the router; distinct functions only make routes valid. */
static void h_any(cc_req_t *req)
{
    (void)req;
}

/* ---- the table most cases run against ---- */

enum {
    R_LIST,
    R_CREATE,
    R_GET,
    R_PATCH,
    R_SUMMARY,
    R_SUSPEND,
    R_ADMIN_DEL,
    R_QUOTA_PUT,
    R_ROOT,
    R_DEEP_A, /* /x/{a}/c */
    R_DEEP_B, /* /x/b/{b} */
    R_COUNT
};

static const cc_route_t table[] = {
    [R_LIST] = {"GET", "/api/v1/tenants", h_any, 0, 0},
    [R_CREATE] = {"POST", "/api/v1/tenants", h_any, 0, 0},
    [R_GET] = {"GET", "/api/v1/tenants/{id}", h_any, 0, 0},
    [R_PATCH] = {"PATCH", "/api/v1/tenants/{id}", h_any, 0, 0},
    [R_SUMMARY] = {"GET", "/api/v1/tenants/summary", h_any, 0, 0},
    [R_SUSPEND] = {"POST", "/api/v1/tenants/{id}/suspend", h_any, 0, 0},
    [R_ADMIN_DEL] = {"DELETE", "/api/v1/tenants/{id}/account-admins/{user_id}", h_any, 0, 0},
    [R_QUOTA_PUT] = {"PUT", "/api/v1/tenants/{id}/quotas/{resource}", h_any, 0, 0},
    [R_ROOT] = {"GET", "/", h_any, 0, 0},
    [R_DEEP_A] = {"GET", "/x/{a}/c", h_any, 0, 0},
    [R_DEEP_B] = {"GET", "/x/b/{b}", h_any, 0, 0},
};

typedef struct match_case {
    const char *method;
    const char *path;
    int rc;             /* route index or CC_ROUTER_* */
    const char *params; /* "name=value;name=value" expected, in pattern order; NULL: none */
    const char *allow;  /* expected Allow for CC_ROUTER_METHOD */
} match_case_t;

#define NF CC_ROUTER_NOT_FOUND
#define NA CC_ROUTER_METHOD
#define BP CC_ROUTER_BAD_PATH

static const match_case_t match_cases[] = {
    /* literal and parameter patterns */
    {"GET", "/api/v1/tenants", R_LIST, NULL, NULL},
    {"POST", "/api/v1/tenants", R_CREATE, NULL, NULL},
    {"GET", "/api/v1/tenants/abc", R_GET, "id=abc", NULL},
    {"PATCH", "/api/v1/tenants/abc", R_PATCH, "id=abc", NULL},
    {"POST", "/api/v1/tenants/t-1/suspend", R_SUSPEND, "id=t-1", NULL},
    {"DELETE", "/api/v1/tenants/t1/account-admins/u2", R_ADMIN_DEL, "id=t1;user_id=u2", NULL},
    {"PUT", "/api/v1/tenants/t1/quotas/cloud_storage", R_QUOTA_PUT, "id=t1;resource=cloud_storage",
     NULL},
    {"GET", "/", R_ROOT, NULL, NULL},
    /* the most specific pattern wins: a literal beats a parameter at the first difference */
    {"GET", "/api/v1/tenants/summary", R_SUMMARY, NULL, NULL},
    {"GET", "/api/v1/tenants/summaryx", R_GET, "id=summaryx", NULL},
    {"GET", "/x/b/c", R_DEEP_B, "b=c", NULL},
    {"GET", "/x/q/c", R_DEEP_A, "a=q", NULL},
    {"GET", "/x/b/z", R_DEEP_B, "b=z", NULL},
    /* HEAD matches GET routes */
    {"HEAD", "/api/v1/tenants/abc", R_GET, "id=abc", NULL},
    {"HEAD", "/api/v1/tenants/summary", R_SUMMARY, NULL, NULL},
    {"HEAD", "/", R_ROOT, NULL, NULL},
    /* 405: the Allow list names the methods of the most specific matching pattern only */
    {"DELETE", "/api/v1/tenants/abc", NA, NULL, "GET, HEAD, PATCH"},
    {"POST", "/api/v1/tenants/abc", NA, NULL, "GET, HEAD, PATCH"},
    {"PUT", "/api/v1/tenants", NA, NULL, "GET, HEAD, POST"},
    {"POST", "/api/v1/tenants/summary", NA, NULL, "GET, HEAD"},
    {"GET", "/api/v1/tenants/t1/suspend", NA, NULL, "POST"},
    {"HEAD", "/api/v1/tenants/t1/suspend", NA, NULL, "POST"},
    {"GET", "/api/v1/tenants/t1/account-admins/u2", NA, NULL, "DELETE"},
    {"get", "/api/v1/tenants", NA, NULL, "GET, HEAD, POST"}, /* methods are case-sensitive */
    /* 404 */
    {"GET", "/api/v1/tenant", NF, NULL, NULL},
    {"GET", "/api/v1/tenants/abc/unknown", NF, NULL, NULL},
    {"GET", "/API/v1/tenants", NF, NULL, NULL},
    {"GET", "/nothing", NF, NULL, NULL},
    {"DELETE", "/nothing", NF, NULL, NULL},
    /* a trailing slash or an empty segment never matches */
    {"GET", "/api/v1/tenants/", NF, NULL, NULL},
    {"GET", "/api/v1/tenants/abc/", NF, NULL, NULL},
    {"GET", "/api/v1//tenants", NF, NULL, NULL},
    {"GET", "//api/v1/tenants", NF, NULL, NULL},
    {"POST", "/api/v1/tenants//suspend", NF, NULL, NULL},
    {"GET", "//", NF, NULL, NULL},
    /* percent-decoded parameters, UTF-8 included */
    {"GET", "/api/v1/tenants/%E9%A1%A7", R_GET, "id=\xe9\xa1\xa7", NULL},
    {"GET", "/api/v1/tenants/%e9%a1%a7%E5%AE%A2", R_GET, "id=\xe9\xa1\xa7\xe5\xae\xa2", NULL},
    {"GET", "/api/v1/tenants/\xe9\xa1\xa7", R_GET, "id=\xe9\xa1\xa7", NULL},
    {"GET", "/api/v1/tenants/a%20b", R_GET, "id=a b", NULL},
    {"GET", "/api/v1/tenants/a+b", R_GET, "id=a+b", NULL}, /* '+' is not a space in a path */
    {"GET", "/api/v1/tenants/a%2Fb", R_GET, "id=a/b", NULL},
    {"GET", "/api/v1/tenants/%F0%9F%98%80", R_GET, "id=\xf0\x9f\x98\x80", NULL},
    {"GET", "/api/v1/tenants/%25", R_GET, "id=%", NULL},
    {"DELETE", "/api/v1/tenants/%E9%A1%A7/account-admins/%41%62", R_ADMIN_DEL,
     "id=\xe9\xa1\xa7;user_id=Ab", NULL},
    /* malformed escapes, NUL and invalid UTF-8 in a parameter */
    {"GET", "/api/v1/tenants/%", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/%4", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/abc%4", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/%zz", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/%4g", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/%g4", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/%00", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/a%00b", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/%E9%A1", BP, NULL, NULL},       /* truncated sequence */
    {"GET", "/api/v1/tenants/%C0%80", BP, NULL, NULL},       /* overlong NUL */
    {"GET", "/api/v1/tenants/%ED%A0%80", BP, NULL, NULL},    /* surrogate */
    {"GET", "/api/v1/tenants/%F4%90%80%80", BP, NULL, NULL}, /* > U+10FFFF */
    {"GET", "/api/v1/tenants/%FF", BP, NULL, NULL},
    {"GET", "/api/v1/tenants/\xff", BP, NULL, NULL},
    {"DELETE", "/api/v1/tenants/ok/account-admins/%E9", BP, NULL, NULL},
    /* not a path at all */
    {"GET", "", BP, NULL, NULL},
    {"GET", "api/v1/tenants", BP, NULL, NULL},
};

static void check_params(const match_case_t *c, const cc_route_match_t *m)
{
    char buf[512] = "";
    for (size_t i = 0; i < m->nparams; i++) {
        size_t l = strlen(buf);
        snprintf(buf + l, sizeof(buf) - l, "%s%s=%s", i ? ";" : "", m->names[i], m->values[i]);
    }
    if (strcmp(buf, c->params ? c->params : "") != 0)
        fail_msg("%s %s: params \"%s\", expected \"%s\"", c->method, c->path, buf,
                 c->params ? c->params : "");
}

static void run_case(const cc_router_t *r, const match_case_t *c)
{
    cc_pool_t *pool = cc_pool_new();
    cc_route_match_t m;
    int rc = cc_router_match(r, c->method, c->path, pool, &m);
    if (rc != c->rc)
        fail_msg("%s %s: rc %d, expected %d", c->method, c->path, rc, c->rc);
    if (rc >= 0) {
        assert_int_equal(m.index, rc);
        check_params(c, &m);
    } else {
        assert_int_equal(m.nparams, 0);
    }
    if (rc == CC_ROUTER_METHOD) {
        assert_non_null(m.allow);
        if (strcmp(m.allow, c->allow) != 0)
            fail_msg("%s %s: Allow \"%s\", expected \"%s\"", c->method, c->path, m.allow, c->allow);
    }
    cc_pool_free(pool);
}

static void test_match_table(void **state)
{
    cc_router_t *r = cc_router_new(table, R_COUNT);
    assert_non_null(r);
    for (size_t i = 0; i < CC_ARRAY_SIZE(match_cases); i++)
        run_case(r, &match_cases[i]);
    cc_router_free(r);
}

/* ---- specificity does not depend on the order of the table ---- */

static void test_specific_wins_in_both_orders(void **state)
{
    static const cc_route_t param_first[] = {
        {"GET", "/tenants/{id}", h_any, 0, 0},
        {"GET", "/tenants/summary", h_any, 0, 0},
    };
    static const cc_route_t literal_first[] = {
        {"GET", "/tenants/summary", h_any, 0, 0},
        {"GET", "/tenants/{id}", h_any, 0, 0},
    };
    static const struct {
        const cc_route_t *routes;
        int summary, param;
    } orders[] = {{param_first, 1, 0}, {literal_first, 0, 1}};

    for (size_t o = 0; o < CC_ARRAY_SIZE(orders); o++) {
        cc_router_t *r = cc_router_new(orders[o].routes, 2);
        assert_non_null(r);
        cc_pool_t *pool = cc_pool_new();
        cc_route_match_t m;
        assert_int_equal(cc_router_match(r, "GET", "/tenants/summary", pool, &m),
                         orders[o].summary);
        assert_int_equal(m.nparams, 0);
        assert_int_equal(cc_router_match(r, "HEAD", "/tenants/summary", pool, &m),
                         orders[o].summary);
        assert_int_equal(cc_router_match(r, "GET", "/tenants/42", pool, &m), orders[o].param);
        assert_int_equal(m.nparams, 1);
        assert_string_equal(m.names[0], "id");
        assert_string_equal(m.values[0], "42");
        /* a percent-encoded literal is not the literal: it is a parameter value */
        assert_int_equal(cc_router_match(r, "GET", "/tenants/summar%79", pool, &m),
                         orders[o].param);
        assert_string_equal(m.values[0], "summary");
        cc_pool_free(pool);
        cc_router_free(r);
    }
}

/* Deeper: the first differing position decides, whatever comes after. */
static void test_specific_first_difference_decides(void **state)
{
    static const cc_route_t a[] = {
        {"GET", "/{a}/b/c", h_any, 0, 0},
        {"GET", "/a/{b}/{c}", h_any, 0, 0},
        {"GET", "/{a}/{b}/{c}", h_any, 0, 0},
    };
    static const cc_route_t b[] = {
        {"GET", "/{a}/{b}/{c}", h_any, 0, 0},
        {"GET", "/a/{b}/{c}", h_any, 0, 0},
        {"GET", "/{a}/b/c", h_any, 0, 0},
    };
    static const struct {
        const char *path;
        const char *pattern;
    } cases[] = {
        {"/a/b/c", "/a/{b}/{c}"},   {"/z/b/c", "/{a}/b/c"},     {"/a/z/z", "/a/{b}/{c}"},
        {"/z/z/z", "/{a}/{b}/{c}"}, {"/z/b/z", "/{a}/{b}/{c}"},
    };
    const cc_route_t *tables[] = {a, b};
    for (size_t t = 0; t < 2; t++) {
        cc_router_t *r = cc_router_new(tables[t], 3);
        assert_non_null(r);
        for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
            cc_pool_t *pool = cc_pool_new();
            cc_route_match_t m;
            int rc = cc_router_match(r, "GET", cases[i].path, pool, &m);
            assert_true(rc >= 0);
            if (strcmp(tables[t][rc].pattern, cases[i].pattern) != 0)
                fail_msg("table %zu, %s: matched %s, expected %s", t, cases[i].path,
                         tables[t][rc].pattern, cases[i].pattern);
            cc_pool_free(pool);
        }
        cc_router_free(r);
    }
}

/* The Allow list: only the most specific pattern's methods, each once, whatever the order. */
static bool allow_has_exactly(const char *allow, const char *const *methods)
{
    char buf[128];
    size_t n = 0, want = 0;
    snprintf(buf, sizeof(buf), "%s", allow);
    for (const char *const *m = methods; *m; m++)
        want++;
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok;
         tok = strtok_r(NULL, ", ", &save)) {
        bool known = false;
        for (const char *const *m = methods; *m; m++)
            known = known || strcmp(*m, tok) == 0;
        if (!known)
            return false;
        n++;
    }
    return n == want; /* every token known and the count right: no duplicate, none missing */
}

static void test_allow_only_most_specific(void **state)
{
    static const cc_route_t routes[] = {
        {"PATCH", "/t/{id}", h_any, 0, 0},   {"DELETE", "/t/{id}", h_any, 0, 0},
        {"POST", "/t/summary", h_any, 0, 0}, {"GET", "/t/{id}", h_any, 0, 0},
        {"PUT", "/t/summary", h_any, 0, 0},  {"PATCH", "/t/{id}/x", h_any, 0, 0},
    };
    cc_router_t *r = cc_router_new(routes, CC_ARRAY_SIZE(routes));
    assert_non_null(r);
    cc_pool_t *pool = cc_pool_new();
    cc_route_match_t m;

    /* summary exists with POST and PUT only: GET falls to /t/{id} (a match with this method) */
    assert_int_equal(cc_router_match(r, "GET", "/t/summary", pool, &m), 3);
    assert_string_equal(m.values[0], "summary");
    /* OPTIONS matches nothing: Allow names summary's methods, not those of /t/{id} */
    assert_int_equal(cc_router_match(r, "OPTIONS", "/t/summary", pool, &m), CC_ROUTER_METHOD);
    assert_true(allow_has_exactly(m.allow, (const char *const[]){"POST", "PUT", NULL}));
    assert_int_equal(cc_router_match(r, "POST", "/t/other", pool, &m), CC_ROUTER_METHOD);
    if (!allow_has_exactly(m.allow, (const char *const[]){"PATCH", "DELETE", "GET", "HEAD", NULL}))
        fail_msg("Allow \"%s\"", m.allow);
    assert_int_equal(cc_router_match(r, "GET", "/t/other/x", pool, &m), CC_ROUTER_METHOD);
    assert_string_equal(m.allow, "PATCH");
    cc_pool_free(pool);
    cc_router_free(r);
}

/* Two patterns of equal specificity and the same method: the list has each method once. */
static void test_allow_no_duplicates(void **state)
{
    static const cc_route_t routes[] = {
        {"GET", "/a/{x}", h_any, 0, 0},
        {"GET", "/a/{y}", h_any, 0, 0},
        {"POST", "/a/{z}", h_any, 0, 0},
    };
    cc_router_t *r = cc_router_new(routes, CC_ARRAY_SIZE(routes));
    assert_non_null(r);
    cc_pool_t *pool = cc_pool_new();
    cc_route_match_t m;
    assert_int_equal(cc_router_match(r, "DELETE", "/a/1", pool, &m), CC_ROUTER_METHOD);
    assert_string_equal(m.allow, "GET, HEAD, POST");
    /* the first of two equally specific routes wins */
    assert_int_equal(cc_router_match(r, "GET", "/a/1", pool, &m), 0);
    assert_string_equal(m.names[0], "x");
    cc_pool_free(pool);
    cc_router_free(r);
}

/* ---- segment and parameter limits ---- */

static char *path_of(size_t nsegs, const char *seg)
{
    cc_buf_t b;
    cc_buf_init(&b);
    for (size_t i = 0; i < nsegs; i++)
        cc_buf_printf(&b, "/%s", seg);
    return cc_buf_steal(&b, NULL);
}

static void test_segment_limits(void **state)
{
    char *pattern = path_of(CC_ROUTE_MAX_SEGMENTS, "s");
    cc_route_t routes[] = {{"GET", pattern, h_any, 0, 0}};
    cc_router_t *r = cc_router_new(routes, 1);
    assert_non_null(r);
    cc_pool_t *pool = cc_pool_new();
    cc_route_match_t m;

    char *exact = path_of(CC_ROUTE_MAX_SEGMENTS, "s");
    assert_int_equal(cc_router_match(r, "GET", exact, pool, &m), 0);
    char *longer = path_of(CC_ROUTE_MAX_SEGMENTS + 1, "s");
    assert_int_equal(cc_router_match(r, "GET", longer, pool, &m), CC_ROUTER_NOT_FOUND);
    char *huge = path_of(1000, "s");
    assert_int_equal(cc_router_match(r, "GET", huge, pool, &m), CC_ROUTER_NOT_FOUND);
    char *trailing = cc_aprintf("%s/", exact);
    assert_int_equal(cc_router_match(r, "GET", trailing, pool, &m), CC_ROUTER_NOT_FOUND);

    free(exact);
    free(longer);
    free(huge);
    free(trailing);
    cc_pool_free(pool);
    cc_router_free(r);
    free(pattern);
}

static void test_max_params(void **state)
{
    static const cc_route_t routes[] = {
        {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", h_any, 0, 0},
    };
    cc_router_t *r = cc_router_new(routes, 1);
    assert_non_null(r);
    cc_pool_t *pool = cc_pool_new();
    cc_route_match_t m;
    assert_int_equal(cc_router_match(r, "GET", "/1/2/3/4/5/6/7/%38", pool, &m), 0);
    assert_int_equal(m.nparams, CC_ROUTE_MAX_PARAMS);
    for (size_t i = 0; i < CC_ROUTE_MAX_PARAMS; i++) {
        char name[2] = {(char)('a' + i), 0}, value[2] = {(char)('1' + i), 0};
        assert_string_equal(m.names[i], name);
        assert_string_equal(m.values[i], value);
    }
    cc_pool_free(pool);
    cc_router_free(r);
}

/* ---- patterns cc_router_new must refuse ---- */

static void test_bad_patterns(void **state)
{
    int devnull = open("/dev/null", O_WRONLY); /* cc_router_new logs each refusal */
    cc_log_set_fd(devnull);
    static const struct {
        const char *method;
        const char *pattern;
        bool handler;
    } bad[] = {
        {"GET", "/a", false},      /* NULL handler */
        {NULL, "/a", true},        /* NULL method */
        {"GET", NULL, true},       /* NULL pattern */
        {"GET", "", true},         /* empty */
        {"GET", "a/b", true},      /* no leading slash */
        {"GET", "{id}", true},     /* no leading slash */
        {"GET", "/a/{}", true},    /* empty parameter name */
        {"GET", "/a/{}/b", true},  /* empty parameter name */
        {"GET", "/a/{id", true},   /* unclosed */
        {"GET", "/a/{id}x", true}, /* junk after the brace */
        {"GET", "/a//b", true},    /* empty segment */
        {"GET", "//", true},       /* empty segment */
        {"GET", "/a/b/", true},    /* trailing slash: would match "/a/b" */
        {"GET", "/a/{id}/", true}, /* trailing slash */
        {"GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", true},       /* 9 parameters */
        {"GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17", true}, /* 17 segments */
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++) {
        /* the bad route is last, after good ones, so the half-built router is freed too */
        cc_route_t routes[] = {
            {"GET", "/ok", h_any, 0, 0},
            {"POST", "/ok/{id}", h_any, 0, 0},
            {bad[i].method, bad[i].pattern, bad[i].handler ? h_any : NULL, 0, 0},
        };
        cc_router_t *r = cc_router_new(routes, 3);
        if (r != NULL) {
            cc_router_free(r);
            fail_msg("pattern %zu (%s %s) accepted", i, bad[i].method ? bad[i].method : "NULL",
                     bad[i].pattern ? bad[i].pattern : "NULL");
        }
        /* and first */
        cc_route_t first[] = {routes[2], routes[0]};
        r = cc_router_new(first, 2);
        if (r != NULL) {
            cc_router_free(r);
            fail_msg("pattern %zu accepted in first position", i);
        }
    }
    cc_log_set_fd(-1);
    close(devnull);
}

static void test_good_edge_patterns(void **state)
{
    static const cc_route_t routes[] = {
        {"GET", "/", h_any, 0, 0},
        {"GET", "/{x}", h_any, 0, 0},
        {"GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", h_any, 0, 0},
    };
    cc_router_t *r = cc_router_new(routes, CC_ARRAY_SIZE(routes));
    assert_non_null(r);
    cc_pool_t *pool = cc_pool_new();
    cc_route_match_t m;
    assert_int_equal(cc_router_match(r, "GET", "/", pool, &m), 0);
    assert_int_equal(cc_router_match(r, "GET", "/v", pool, &m), 1);
    assert_string_equal(m.values[0], "v");
    assert_int_equal(cc_router_match(r, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", pool, &m),
                     2);
    cc_pool_free(pool);
    cc_router_free(r);

    /* an empty table is valid and matches nothing */
    r = cc_router_new(NULL, 0);
    assert_non_null(r);
    pool = cc_pool_new();
    assert_int_equal(cc_router_match(r, "GET", "/", pool, &m), CC_ROUTER_NOT_FOUND);
    cc_pool_free(pool);
    cc_router_free(r);
    cc_router_free(NULL);
}

/* ---- shared between threads ---- */

typedef struct shared_arg {
    const cc_router_t *r;
    int failures;
} shared_arg_t;

static void *match_many(void *p)
{
    shared_arg_t *a = p;
    for (int i = 0; i < 2000; i++) {
        const match_case_t *c = &match_cases[(size_t)i % CC_ARRAY_SIZE(match_cases)];
        cc_pool_t *pool = cc_pool_new();
        cc_route_match_t m;
        if (cc_router_match(a->r, c->method, c->path, pool, &m) != c->rc)
            a->failures++;
        cc_pool_free(pool);
    }
    return NULL;
}

static void test_concurrent_matching(void **state)
{
    cc_router_t *r = cc_router_new(table, R_COUNT);
    assert_non_null(r);
    pthread_t t[4];
    shared_arg_t args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (shared_arg_t){r, 0};
        assert_int_equal(pthread_create(&t[i], NULL, match_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
    }
    cc_router_free(r);
}

int main(void)
{
    cc_log_init("test", CC_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_specific_wins_in_both_orders),
        cmocka_unit_test(test_specific_first_difference_decides),
        cmocka_unit_test(test_allow_only_most_specific),
        cmocka_unit_test(test_allow_no_duplicates),
        cmocka_unit_test(test_segment_limits),
        cmocka_unit_test(test_max_params),
        cmocka_unit_test(test_bad_patterns),
        cmocka_unit_test(test_good_edge_patterns),
        cmocka_unit_test(test_concurrent_matching),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
