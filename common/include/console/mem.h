/*
 * Memory: allocation wrappers that abort on out-of-memory, and request pools.
 *
 * A pool (arena) owns every allocation made from it and a LIFO list of dispose
 * callbacks; cc_pool_free() runs the callbacks, then releases the memory. Each HTTP
 * request owns one pool, so libpq results, jansson values and JWT objects tied to a
 * request are registered with cc_pool_defer() and never leak on an error path.
 * A pool is not thread-safe: it belongs to whichever thread is serving the request.
 */
#ifndef CONSOLE_MEM_H
#define CONSOLE_MEM_H

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h> /* free() pairs with the cc_ allocators */

#define CC_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/** malloc() that aborts on out-of-memory; never returns NULL. */
void *cc_malloc(size_t size);
/** calloc() that aborts on out-of-memory. */
void *cc_calloc(size_t n, size_t size);
/** realloc() that aborts on out-of-memory. */
void *cc_realloc(void *p, size_t size);
/** strdup() that aborts on out-of-memory; NULL in gives NULL out. */
char *cc_strdup(const char *s);
/** strndup() that aborts on out-of-memory. */
char *cc_strndup(const char *s, size_t n);
/** Heap printf; the caller frees the result. */
char *cc_aprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct cc_pool cc_pool_t;

/** A new empty pool. */
cc_pool_t *cc_pool_new(void);
/** Runs the dispose callbacks (last registered first), then frees all memory. NULL is ok. */
void cc_pool_free(cc_pool_t *pool);
/** size bytes from the pool, aligned for any type, zeroed. */
void *cc_pool_alloc(cc_pool_t *pool, size_t size);
/** A copy of s (NULL gives NULL) owned by the pool. */
char *cc_pool_strdup(cc_pool_t *pool, const char *s);
/** A NUL-terminated copy of the first n bytes of s owned by the pool. */
char *cc_pool_strndup(cc_pool_t *pool, const char *s, size_t n);
/** printf into pool memory. */
char *cc_pool_printf(cc_pool_t *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *cc_pool_vprintf(cc_pool_t *pool, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/** Registers dispose(p) to run when the pool is freed. */
void cc_pool_defer(cc_pool_t *pool, void (*dispose)(void *), void *p);

#endif
