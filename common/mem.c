#include "console/mem.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t size)
{
    fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", size);
    abort();
}

void *cc_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

void *cc_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom(n * size);
    return p;
}

void *cc_realloc(void *old, size_t size)
{
    void *p = realloc(old, size ? size : 1);
    if (p == NULL)
        oom(size);
    return p;
}

char *cc_strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *p = cc_malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *cc_strndup(const char *s, size_t n)
{
    char *p = cc_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *cc_aprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    char *p = cc_malloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

/* Pool: a chain of chunks; large requests get a chunk of their own. */
#define CHUNK_SIZE 8192
#define ALIGN 16

struct chunk {
    struct chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
};

struct deferred {
    struct deferred *next;
    void (*dispose)(void *);
    void *p;
};

struct cc_pool {
    struct chunk *chunks;
    struct deferred *deferred;
};

cc_pool_t *cc_pool_new(void)
{
    return cc_calloc(1, sizeof(cc_pool_t));
}

void cc_pool_free(cc_pool_t *pool)
{
    if (pool == NULL)
        return;
    /* dispose callbacks may use pool memory, so they run before any chunk is freed */
    for (struct deferred *d = pool->deferred; d != NULL; d = d->next)
        d->dispose(d->p);
    struct chunk *c = pool->chunks;
    while (c != NULL) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(pool);
}

void *cc_pool_alloc(cc_pool_t *pool, size_t size)
{
    /* rounding up or adding the chunk header must not wrap around to a small block */
    if (size > SIZE_MAX / 2)
        oom(size);
    size = (size + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (size == 0)
        size = ALIGN;
    struct chunk *c = pool->chunks;
    if (c == NULL || c->size - c->used < size) {
        size_t cap = size > CHUNK_SIZE / 2 ? size : CHUNK_SIZE;
        struct chunk *n = cc_malloc(sizeof(*n) + cap);
        n->used = 0;
        n->size = cap;
        if (size > CHUNK_SIZE / 2 && c != NULL) {
            /* keep the current chunk in front so its free space is still used */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            pool->chunks = n;
        }
        c = n;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *cc_pool_strdup(cc_pool_t *pool, const char *s)
{
    if (s == NULL)
        return NULL;
    return cc_pool_strndup(pool, s, strlen(s));
}

char *cc_pool_strndup(cc_pool_t *pool, const char *s, size_t n)
{
    char *p = cc_pool_alloc(pool, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* mem.h does not mark it; without the attribute clang's -Wformat-nonliteral fires below */
__attribute__((format(printf, 2, 0))) char *cc_pool_vprintf(cc_pool_t *pool, const char *fmt,
                                                            va_list ap);

char *cc_pool_vprintf(cc_pool_t *pool, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return cc_pool_strdup(pool, "");
    }
    char *p = cc_pool_alloc(pool, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

char *cc_pool_printf(cc_pool_t *pool, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = cc_pool_vprintf(pool, fmt, ap);
    va_end(ap);
    return p;
}

void cc_pool_defer(cc_pool_t *pool, void (*dispose)(void *), void *p)
{
    struct deferred *d = cc_pool_alloc(pool, sizeof(*d));
    d->dispose = dispose;
    d->p = p;
    d->next = pool->deferred;
    pool->deferred = d;
}
