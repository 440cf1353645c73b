/* Unit tests for common/mem.c: allocation wrappers and request pools. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "console/mem.h"

static void test_malloc_wrappers(void **state)
{
    (void)state;
    char *p = cc_malloc(0); /* never NULL, even for 0 bytes */
    assert_non_null(p);
    free(p);

    unsigned char *z = cc_calloc(64, 4);
    for (size_t i = 0; i < 256; i++)
        assert_int_equal(z[i], 0);
    free(z);

    char *r = cc_malloc(4);
    memcpy(r, "abc", 4);
    r = cc_realloc(r, 100000);
    assert_string_equal(r, "abc");
    free(r);

    assert_null(cc_strdup(NULL));
    char *d = cc_strdup("顧客会社A");
    assert_string_equal(d, "顧客会社A");
    free(d);

    char *nd = cc_strndup("abcdef", 3);
    assert_string_equal(nd, "abc");
    free(nd);
    nd = cc_strndup("", 0);
    assert_string_equal(nd, "");
    free(nd);

    char *a = cc_aprintf("%s-%d-%05.1f", "x", 42, 3.14159);
    assert_string_equal(a, "x-42-003.1");
    free(a);
    a = cc_aprintf("%s", "");
    assert_string_equal(a, "");
    free(a);
}

/* Sizes around the alignment unit, the half-chunk threshold and the chunk size. */
static const size_t sizes[] = {0,    1,    2,    7,    8,    15,    16,    17,     31,
                               32,   33,   100,  255,  256,  1000,  4095,  4096,   4097,
                               8191, 8192, 8193, 8200, 9000, 16384, 65536, 100000, 1 << 20};

static void test_pool_alignment_and_zeroing(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < CC_ARRAY_SIZE(sizes); i++) {
            unsigned char *p = cc_pool_alloc(pool, sizes[i]);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % _Alignof(max_align_t), 0);
            assert_int_equal((uintptr_t)p % 16, 0);
            for (size_t k = 0; k < sizes[i]; k++) {
                if (p[k] != 0)
                    fail_msg("byte %zu of a %zu-byte block is not zero", k, sizes[i]);
            }
            memset(p, 0xa5, sizes[i]); /* dirty it: a later block must not see this */
        }
    }
    cc_pool_free(pool);
}

static void test_pool_blocks_do_not_overlap(void **state)
{
    (void)state;
    enum { N = 200 };
    cc_pool_t *pool = cc_pool_new();
    unsigned char *blocks[N];
    size_t lens[N];
    for (int i = 0; i < N; i++) {
        lens[i] = sizes[(size_t)i % CC_ARRAY_SIZE(sizes)] % 20000;
        blocks[i] = cc_pool_alloc(pool, lens[i]);
        memset(blocks[i], i & 0xff, lens[i]);
    }
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < lens[i]; k++)
            if (blocks[i][k] != (i & 0xff))
                fail_msg("block %d was overwritten at byte %zu", i, k);
    cc_pool_free(pool);
}

static void test_pool_large_allocations(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    char *small1 = cc_pool_alloc(pool, 16);
    memcpy(small1, "before", 7);
    /* larger than a chunk: gets a chunk of its own */
    size_t big = 3u << 20;
    unsigned char *b = cc_pool_alloc(pool, big);
    for (size_t i = 0; i < big; i += 4096)
        assert_int_equal(b[i], 0);
    memset(b, 0x5a, big);
    assert_int_equal(b[big - 1], 0x5a);
    /* the partly used chunk stays current: the next small block follows small1 */
    char *small2 = cc_pool_alloc(pool, 16);
    assert_ptr_equal(small2, small1 + 16);
    assert_string_equal(small1, "before");
    /* a large block as the very first allocation of a pool */
    cc_pool_t *p2 = cc_pool_new();
    void *first = cc_pool_alloc(p2, 50000);
    assert_non_null(first);
    assert_non_null(cc_pool_alloc(p2, 8));
    cc_pool_free(p2);
    cc_pool_free(pool);
}

/* A size that cannot be allocated must abort, never wrap around to a tiny block. */
static void test_pool_alloc_overflow_aborts(void **state)
{
    (void)state;
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 16};
    for (size_t i = 0; i < CC_ARRAY_SIZE(huge); i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            if (devnull >= 0)
                dup2(devnull, 2);
            cc_pool_t *pool = cc_pool_new();
            unsigned char *p = cc_pool_alloc(pool, huge[i]);
            p[0] = 1;
            _exit(0); /* reached only when the request wrapped around */
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
            fail_msg("cc_pool_alloc(%zu) did not abort (status %d)", huge[i], status);
    }
}

static void test_pool_strings(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    assert_null(cc_pool_strdup(pool, NULL));
    assert_string_equal(cc_pool_strdup(pool, ""), "");
    assert_string_equal(cc_pool_strdup(pool, "顧客会社A"), "顧客会社A");
    assert_string_equal(cc_pool_strndup(pool, "abcdef", 4), "abcd");
    assert_string_equal(cc_pool_strndup(pool, "ab\0cd", 5), "ab");
    char *nd = cc_pool_strndup(pool, "xyz", 0);
    assert_string_equal(nd, "");

    static const struct {
        int i;
        const char *s;
        const char *want;
    } cases[] = {
        {0, "", "[0||   ]"},
        {-7, "テナント", "[-7|テナント|テナント]"},
        {255, "ab", "[255|ab| ab]"},
        {1, "\"q\"", "[1|\"q\"|\"q\"]"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++)
        assert_string_equal(cc_pool_printf(pool, "[%d|%s|%3s]", cases[i].i, cases[i].s, cases[i].s),
                            cases[i].want);

    /* longer than a chunk */
    char *long_s = cc_pool_printf(pool, "%0*d", 20000, 7);
    assert_int_equal(strlen(long_s), 20000);
    assert_int_equal(long_s[0], '0');
    assert_int_equal(long_s[19999], '7');
    cc_pool_free(pool);
}

struct record {
    int order[16];
    int n;
};

struct tag {
    struct record *rec;
    int id;
};

static void on_dispose(void *p)
{
    struct tag *t = p;
    t->rec->order[t->rec->n++] = t->id;
}

static void test_pool_defer_lifo(void **state)
{
    (void)state;
    struct record rec = {{0}, 0};
    cc_pool_t *pool = cc_pool_new();
    for (int i = 0; i < 10; i++) {
        /* the argument lives in the pool itself: callbacks run before memory goes */
        struct tag *t = cc_pool_alloc(pool, sizeof(*t));
        t->rec = &rec;
        t->id = i;
        cc_pool_defer(pool, on_dispose, t);
        cc_pool_alloc(pool, 5000); /* spread the records over chunks */
    }
    assert_int_equal(rec.n, 0); /* nothing runs before the pool is freed */
    cc_pool_free(pool);
    assert_int_equal(rec.n, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(rec.order[i], 9 - i);
}

static void on_free_heap(void *p)
{
    free(p);
}

static void test_pool_defer_frees_heap(void **state)
{
    (void)state;
    /* under ASan a missing callback shows as a leak */
    cc_pool_t *pool = cc_pool_new();
    for (int i = 0; i < 100; i++)
        cc_pool_defer(pool, on_free_heap, cc_malloc(64));
    cc_pool_free(pool);
    cc_pool_free(NULL); /* allowed */
}

static void test_pool_many_allocations(void **state)
{
    (void)state;
    enum { N = 100000 };
    cc_pool_t *pool = cc_pool_new();
    uint32_t **ptrs = cc_calloc(N, sizeof(*ptrs));
    for (uint32_t i = 0; i < N; i++) {
        size_t n = 1 + i % 13;
        ptrs[i] = cc_pool_alloc(pool, n * sizeof(uint32_t));
        for (size_t k = 0; k < n; k++)
            ptrs[i][k] = i * 31 + (uint32_t)k;
    }
    for (uint32_t i = 0; i < N; i++) {
        size_t n = 1 + i % 13;
        for (size_t k = 0; k < n; k++)
            if (ptrs[i][k] != i * 31 + (uint32_t)k)
                fail_msg("allocation %u corrupted", i);
    }
    free(ptrs);
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_wrappers),
        cmocka_unit_test(test_pool_alignment_and_zeroing),
        cmocka_unit_test(test_pool_blocks_do_not_overlap),
        cmocka_unit_test(test_pool_large_allocations),
        cmocka_unit_test(test_pool_alloc_overflow_aborts),
        cmocka_unit_test(test_pool_strings),
        cmocka_unit_test(test_pool_defer_lifo),
        cmocka_unit_test(test_pool_defer_frees_heap),
        cmocka_unit_test(test_pool_many_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
