#include "console/router.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "console/log.h"
#include "console/str.h"

typedef struct segment {
    const char *text; /* literal text, or the parameter name */
    size_t len;
    bool param;
} segment_t;

typedef struct compiled {
    segment_t segs[CC_ROUTE_MAX_SEGMENTS];
    size_t nsegs;
    const char *method;
} compiled_t;

struct cc_router {
    const cc_route_t *routes;
    size_t n;
    compiled_t *compiled;
};

static bool compile(const cc_route_t *route, compiled_t *c)
{
    const char *p = route->pattern;
    if (p == NULL || p[0] != '/')
        return false;
    c->nsegs = 0;
    c->method = route->method;
    p++;
    while (*p) {
        if (c->nsegs == CC_ROUTE_MAX_SEGMENTS)
            return false;
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0)
            return false;
        segment_t *s = &c->segs[c->nsegs++];
        if (p[0] == '{') {
            if (len < 3 || p[len - 1] != '}')
                return false;
            s->param = true;
            s->text = p + 1;
            s->len = len - 2;
        } else {
            s->param = false;
            s->text = p;
            s->len = len;
        }
        p += len;
        if (*p == '/') {
            p++;
            /* a trailing slash would otherwise be dropped silently: "/a/" compiled as "/a"
             * matches "/a" and never "/a/" */
            if (*p == '\0')
                return false;
        }
    }
    size_t nparams = 0;
    for (size_t i = 0; i < c->nsegs; i++)
        nparams += c->segs[i].param;
    return nparams <= CC_ROUTE_MAX_PARAMS;
}

cc_router_t *cc_router_new(const cc_route_t *routes, size_t n)
{
    cc_router_t *r = cc_calloc(1, sizeof(*r));
    r->routes = routes;
    r->n = n;
    r->compiled = cc_calloc(n ? n : 1, sizeof(compiled_t));
    for (size_t i = 0; i < n; i++) {
        if (!compile(&routes[i], &r->compiled[i]) || routes[i].handler == NULL ||
            routes[i].method == NULL) {
            cc_log_error("bad route %s %s", routes[i].method ? routes[i].method : "?",
                         routes[i].pattern ? routes[i].pattern : "?");
            cc_router_free(r);
            return NULL;
        }
    }
    return r;
}

void cc_router_free(cc_router_t *r)
{
    if (r == NULL)
        return;
    free(r->compiled);
    free(r);
}

static bool method_matches(const char *route_method, const char *method)
{
    if (strcmp(route_method, method) == 0)
        return true;
    return strcmp(method, "HEAD") == 0 && strcmp(route_method, "GET") == 0;
}

int cc_router_match(const cc_router_t *r, const char *method, const char *path, cc_pool_t *pool,
                    cc_route_match_t *m)
{
    /* split the raw path into segments */
    const char *segs[CC_ROUTE_MAX_SEGMENTS];
    size_t lens[CC_ROUTE_MAX_SEGMENTS], nsegs = 0;
    memset(m, 0, sizeof(*m));
    m->index = -1;
    if (path == NULL || path[0] != '/')
        return CC_ROUTER_BAD_PATH;
    const char *p = path + 1;
    if (*p != '\0') {
        for (;;) {
            if (nsegs == CC_ROUTE_MAX_SEGMENTS)
                return CC_ROUTER_NOT_FOUND;
            const char *end = strchr(p, '/');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            segs[nsegs] = p;
            lens[nsegs++] = len;
            if (end == NULL)
                break;
            p = end + 1;
        }
    }

    int best = -1;
    uint32_t best_score = 0;
    bool path_matched = false;
    char allow[128] = "";
    for (size_t i = 0; i < r->n; i++) {
        const compiled_t *c = &r->compiled[i];
        if (c->nsegs != nsegs)
            continue;
        uint32_t score = 0;
        bool ok = true;
        for (size_t s = 0; s < nsegs && ok; s++) {
            if (c->segs[s].param) {
                ok = lens[s] > 0;
            } else {
                ok = lens[s] == c->segs[s].len && memcmp(segs[s], c->segs[s].text, lens[s]) == 0;
                score |= 1u << (CC_ROUTE_MAX_SEGMENTS - 1 - s);
            }
        }
        if (!ok)
            continue;
        path_matched = true;
        if (method_matches(c->method, method)) {
            if (best < 0 || score > best_score) {
                best = (int)i;
                best_score = score;
            }
        }
    }
    if (best < 0) {
        if (!path_matched)
            return CC_ROUTER_NOT_FOUND;
        /* Allow lists the methods of the most specific matching pattern(s) */
        uint32_t top = 0;
        for (size_t pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < r->n; i++) {
                const compiled_t *c = &r->compiled[i];
                if (c->nsegs != nsegs)
                    continue;
                uint32_t score = 0;
                bool ok = true;
                for (size_t s = 0; s < nsegs && ok; s++) {
                    if (c->segs[s].param) {
                        ok = lens[s] > 0;
                    } else {
                        ok = lens[s] == c->segs[s].len &&
                             memcmp(segs[s], c->segs[s].text, lens[s]) == 0;
                        score |= 1u << (CC_ROUTE_MAX_SEGMENTS - 1 - s);
                    }
                }
                if (!ok)
                    continue;
                if (pass == 0) {
                    if (score > top)
                        top = score;
                } else if (score == top && strstr(allow, c->method) == NULL) {
                    size_t l = strlen(allow);
                    snprintf(allow + l, sizeof(allow) - l, "%s%s", l ? ", " : "", c->method);
                    if (strcmp(c->method, "GET") == 0) {
                        l = strlen(allow);
                        snprintf(allow + l, sizeof(allow) - l, ", HEAD");
                    }
                }
            }
        }
        m->allow = cc_pool_strdup(pool, allow);
        return CC_ROUTER_METHOD;
    }

    const compiled_t *c = &r->compiled[best];
    for (size_t s = 0; s < nsegs; s++) {
        if (!c->segs[s].param)
            continue;
        char *v = cc_percent_decode(pool, segs[s], lens[s], false);
        if (v == NULL) {
            /* no half-filled match: the parameters decoded so far belong to no route */
            memset(m, 0, sizeof(*m));
            m->index = -1;
            return CC_ROUTER_BAD_PATH;
        }
        m->names[m->nparams] = cc_pool_strndup(pool, c->segs[s].text, c->segs[s].len);
        m->values[m->nparams++] = v;
    }
    m->index = best;
    return best;
}
