/* Unit tests for common/str.c: buffers, UTF-8, JSON escaping, percent-decoding, queries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/errors.h"
#include "console/str.h"

/* ---- cc_buf ---- */

static void test_buf_ops(void **state)
{
    (void)state;
    cc_buf_t b;
    cc_buf_init(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);

    cc_buf_puts(&b, "abc");
    cc_buf_putc(&b, '-');
    cc_buf_append(&b, "xyz123", 3);
    cc_buf_printf(&b, "[%d|%s]", 42, "テ");
    assert_string_equal(b.data, "abc-xyz[42|テ]");
    assert_int_equal(b.len, strlen("abc-xyz[42|テ]"));
    assert_true(b.cap > b.len);

    /* growth far past the first capacity keeps content and termination */
    for (int i = 0; i < 10000; i++)
        cc_buf_putc(&b, (char)('a' + i % 26));
    assert_int_equal(b.len, strlen("abc-xyz[42|テ]") + 10000);
    assert_int_equal(strlen(b.data), b.len);
    assert_int_equal(b.data[b.len - 1], 'a' + 9999 % 26);

    /* a long printf */
    cc_buf_printf(&b, "%0*d", 5000, 1);
    assert_int_equal(strlen(b.data), b.len);

    /* binary data with a NUL in it keeps its length */
    cc_buf_free(&b);
    assert_null(b.data);
    cc_buf_append(&b, "a\0b", 3);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);

    size_t len = 0;
    char *s = cc_buf_steal(&b, &len);
    assert_int_equal(len, 3);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(s);

    /* stealing an empty buffer gives an empty string, not NULL */
    s = cc_buf_steal(&b, &len);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    cc_buf_free(&b);
}

/* Every operation leaves a NUL-terminated buffer, even one that appends nothing. */
static void test_buf_terminated_after_empty_ops(void **state)
{
    (void)state;
    cc_buf_t b = {0};
    cc_buf_json_escape(&b, "", 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    cc_buf_free(&b);

    cc_buf_printf(&b, "%s", "");
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    cc_buf_free(&b);

    cc_buf_reserve(&b, 100);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    cc_buf_free(&b);

    cc_buf_puts(&b, "");
    assert_string_equal(b.data, "");
    cc_buf_free(&b);

    cc_buf_percent_encode(&b, "");
    assert_true(b.data == NULL || b.data[0] == '\0');
    cc_buf_free(&b);
}

static const struct {
    const char *in;
    size_t n;
    const char *want;
} escapes[] = {
    {"plain", 5, "plain"},
    {"", 0, ""},
    {"say \"hi\"", 8, "say \\\"hi\\\""},
    {"back\\slash", 10, "back\\\\slash"},
    {"a\nb\rc\td", 7, "a\\nb\\rc\\td"},
    {"\b\f", 2, "\\u0008\\u000c"},
    {"\x01\x1f", 2, "\\u0001\\u001f"},
    {"nul\0x", 5, "nul\\u0000x"},
    {"del\x7f", 4, "del\\u007f"},
    {"/slash", 6, "/slash"},
    {"顧客会社A", 13, "顧客会社A"},
    {"\xe2\x80\xa8", 3, "\xe2\x80\xa8"},
};

static void test_html_escape(void **state)
{
    (void)state;
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_html(&b, "<a href=\"x\" onclick='y'>&顧客</a>");
    assert_string_equal(b.data,
                        "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;顧客&lt;/a&gt;");
    cc_buf_html(&b, NULL);
    assert_int_equal(b.len,
                     strlen("&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;顧客&lt;/a&gt;"));
    cc_buf_free(&b);
}

static void test_json_escape(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(escapes); i++) {
        cc_buf_t b = {0};
        cc_buf_puts(&b, "<");
        cc_buf_json_escape(&b, escapes[i].in, escapes[i].n);
        cc_buf_puts(&b, ">");
        char *want = cc_aprintf("<%s>", escapes[i].want);
        if (strcmp(b.data, want) != 0)
            fail_msg("escape case %zu: got %s, want %s", i, b.data, want);
        free(want);
        cc_buf_free(&b);
    }
}

/* ---- UTF-8 ---- */

static const struct {
    const char *s;
    size_t n; /* 0: strlen */
    bool valid;
    const char *what;
} utf8_cases[] = {
    {"", 0, true, "empty"},
    {"hello, world", 0, true, "ASCII"},
    {"\x7f", 0, true, "DEL is ASCII"},
    {"caf\xc3\xa9", 0, true, "2-byte é"},
    {"\xc2\x80", 0, true, "smallest 2-byte U+0080"},
    {"\xdf\xbf", 0, true, "largest 2-byte U+07FF"},
    {"顧客会社A", 0, true, "Japanese"},
    {"\xe0\xa0\x80", 0, true, "smallest 3-byte U+0800"},
    {"\xef\xbf\xbf", 0, true, "U+FFFF"},
    {"\xe3\x80\x80", 0, true, "ideographic space"},
    {"\xed\x9f\xbf", 0, true, "U+D7FF just below surrogates"},
    {"\xee\x80\x80", 0, true, "U+E000 just above surrogates"},
    {"\xf0\x9f\x98\x80", 0, true, "4-byte emoji"},
    {"\xf0\x90\x80\x80", 0, true, "smallest 4-byte U+10000"},
    {"\xf4\x8f\xbf\xbf", 0, true, "U+10FFFF"},
    {"a\0b", 3, true, "NUL is valid UTF-8"},
    {"\xc0\x80", 0, false, "overlong NUL C0 80"},
    {"\xc1\xbf", 0, false, "overlong C1 BF"},
    {"\xe0\x80\x80", 0, false, "overlong E0 80 80"},
    {"\xe0\x9f\xbf", 0, false, "overlong E0 9F BF"},
    {"\xf0\x80\x80\x80", 0, false, "overlong F0 80 80 80"},
    {"\xf0\x8f\xbf\xbf", 0, false, "overlong F0 8F BF BF"},
    {"\xed\xa0\x80", 0, false, "surrogate U+D800"},
    {"\xed\xbf\xbf", 0, false, "surrogate U+DFFF"},
    {"\xed\xa0\xbd\xed\xb8\x80", 0, false, "CESU-8 surrogate pair"},
    {"\xf4\x90\x80\x80", 0, false, "U+110000"},
    {"\xf5\x80\x80\x80", 0, false, "F5 lead"},
    {"\xf8\x88\x80\x80\x80", 0, false, "5-byte form"},
    {"\xfe", 0, false, "FE"},
    {"\xff", 0, false, "FF"},
    {"\xc3", 0, false, "truncated 2-byte"},
    {"\xe3\x80", 0, false, "truncated 3-byte"},
    {"\xf0\x9f\x98", 0, false, "truncated 4-byte"},
    {"ab\xe3", 0, false, "truncated at end"},
    {"\xe3\x80"
     "a",
     0, false, "ASCII inside a sequence"},
    {"\x80", 0, false, "lone continuation"},
    {"a\xbf"
     "b",
     0, false, "lone continuation in text"},
    {"\xc3\xa9\xa9", 0, false, "extra continuation"},
};

static void test_utf8_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(utf8_cases); i++) {
        size_t n = utf8_cases[i].n ? utf8_cases[i].n : strlen(utf8_cases[i].s);
        if (cc_utf8_valid(utf8_cases[i].s, n) != utf8_cases[i].valid)
            fail_msg("utf8 case %zu (%s): want %s", i, utf8_cases[i].what,
                     utf8_cases[i].valid ? "valid" : "invalid");
    }
    /* n bounds the check: a truncated view of a valid string is invalid */
    assert_true(cc_utf8_valid("顧客", 6));
    assert_false(cc_utf8_valid("顧客", 5));
    assert_true(cc_utf8_valid("\xff", 0));
}

static void test_has_control(void **state)
{
    (void)state;
    assert_false(cc_has_control("plain text 顧客", strlen("plain text 顧客")));
    assert_false(cc_has_control("", 0));
    assert_true(cc_has_control("a\tb", 3));
    assert_true(cc_has_control("a\nb", 3));
    assert_true(cc_has_control("a\x1f", 2));
    assert_true(cc_has_control("a\x7f", 2));
    assert_true(cc_has_control("a\0b", 3));
    assert_false(cc_has_control("a\0b", 1));
}

/* ---- percent-decoding ---- */

static const struct {
    const char *in;
    bool form;
    const char *want; /* NULL: refused */
} pct_cases[] = {
    {"", false, ""},
    {"abc", false, "abc"},
    {"%41", false, "A"},
    {"%4a%4A", false, "JJ"},
    {"a%20b", false, "a b"},
    {"a+b", false, "a+b"},
    {"a+b", true, "a b"},
    {"%2B", true, "+"},
    {"%e9%a1%a7%e5%ae%a2", true, "顧客"},
    {"%E3%80%80", false, "\xe3\x80\x80"},
    {"顧客", false, "顧客"},
    {"%", false, NULL},
    {"a%", false, NULL},
    {"%4", false, NULL},
    {"a%4", false, NULL},
    {"%zz", false, NULL},
    {"%g0", false, NULL},
    {"%0g", false, NULL},
    {"%%41", false, NULL},
    {"%00", false, NULL},
    {"a%00b", true, NULL},
    {"%C3", false, NULL},
    {"%E9", false, NULL},
    {"%C0%80", false, NULL},
    {"%ED%A0%80", false, NULL},
    {"%FF", false, NULL},
    {"\xff", false, NULL},
};

static void test_percent_decode(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    for (size_t i = 0; i < CC_ARRAY_SIZE(pct_cases); i++) {
        const char *got =
            cc_percent_decode(pool, pct_cases[i].in, strlen(pct_cases[i].in), pct_cases[i].form);
        if (pct_cases[i].want == NULL) {
            if (got != NULL)
                fail_msg("percent case %zu (%s): want refused, got \"%s\"", i, pct_cases[i].in,
                         got);
        } else if (got == NULL || strcmp(got, pct_cases[i].want) != 0) {
            fail_msg("percent case %zu (%s): want \"%s\", got %s", i, pct_cases[i].in,
                     pct_cases[i].want, got ? got : "NULL");
        }
    }
    /* n bounds the input: "%41" seen through a 2-byte window is a truncated escape */
    assert_null(cc_percent_decode(pool, "%41", 2, false));
    assert_string_equal(cc_percent_decode(pool, "ab%41", 2, false), "ab");
    cc_pool_free(pool);
}

static void test_percent_encode(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", ""},
        {"AZaz09-._~", "AZaz09-._~"},
        {"a b&c=d/e?f#g+h%", "a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh%25"},
        {"顧", "%E9%A1%A7"},
    };
    cc_pool_t *pool = cc_pool_new();
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_buf_t b = {0};
        cc_buf_puts(&b, "");
        cc_buf_percent_encode(&b, cases[i].in);
        assert_string_equal(b.data, cases[i].want);
        /* and back */
        assert_string_equal(cc_percent_decode(pool, b.data, b.len, false), cases[i].in);
        cc_buf_free(&b);
    }
    cc_pool_free(pool);
}

/* ---- query strings ---- */

static const struct {
    const char *query, *name;
    int rc;
    const char *value;
} query_cases[] = {
    {"a=1&b=2", "a", 1, "1"},
    {"a=1&b=2", "b", 1, "2"},
    {"a=1&b=2", "c", 0, NULL},
    {"", "a", 0, NULL},
    {NULL, "a", 0, NULL},
    {"a=", "a", 1, ""},
    {"a", "a", 1, ""},
    {"a=1&a=2", "a", CC_EINVAL, NULL},
    {"a=1&a=1", "a", CC_EINVAL, NULL},
    {"a=1&%61=2", "a", CC_EINVAL, NULL},
    {"&&a=1&&", "a", 1, "1"},
    {"q=%E9%A1%A7%E5%AE%A2+A", "q", 1, "顧客 A"},
    {"q=a%2Bb", "q", 1, "a+b"},
    {"q=a=b", "q", 1, "a=b"},
    {"q=%zz", "q", CC_EINVAL, NULL},
    {"q=%00", "q", CC_EINVAL, NULL},
    {"q=%FF", "q", CC_EINVAL, NULL},
    {"%zz=1&q=2", "q", CC_EINVAL, NULL},
    {"qq=1&q_=2", "q", 0, NULL},
    {"Q=1", "q", 0, NULL},
    {"sort=-name&limit=50", "sort", 1, "-name"},
};

static void test_query_get(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    for (size_t i = 0; i < CC_ARRAY_SIZE(query_cases); i++) {
        const char *value = "unset";
        int rc = cc_query_get(pool, query_cases[i].query, query_cases[i].name, &value);
        if (rc != query_cases[i].rc)
            fail_msg("query case %zu (%s): rc %d, want %d", i,
                     query_cases[i].query ? query_cases[i].query : "NULL", rc, query_cases[i].rc);
        if (query_cases[i].value == NULL) {
            if (rc != 1 && value != NULL)
                fail_msg("query case %zu: value should be NULL", i);
        } else {
            assert_non_null(value);
            assert_string_equal(value, query_cases[i].value);
        }
    }
    cc_pool_free(pool);
}

static void test_query_check(void **state)
{
    (void)state;
    static const char *const allowed[] = {"limit", "cursor", "q", NULL};
    static const struct {
        const char *query;
        int rc;
        const char *bad;
    } cases[] = {
        {"", 0, NULL},
        {NULL, 0, NULL},
        {"limit=5&cursor=abc", 0, NULL},
        {"q=x&q=y", 0, NULL}, /* repetition is cc_query_get's business */
        {"limit=5&sort=name", CC_EINVAL, "sort"},
        {"%71=1", 0, NULL},
        {"lim%69t=1&x%20y=2", CC_EINVAL, "x y"},
        {"顧客=1", CC_EINVAL, "顧客"},
        {"%zz=1", CC_EINVAL, "%zz"},
        {"LIMIT=1", CC_EINVAL, "LIMIT"},
        {"=1", CC_EINVAL, ""},
    };
    cc_pool_t *pool = cc_pool_new();
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        const char *bad = "unset";
        int rc = cc_query_check(pool, cases[i].query, allowed, &bad);
        if (rc != cases[i].rc)
            fail_msg("check case %zu: rc %d, want %d", i, rc, cases[i].rc);
        if (cases[i].bad == NULL)
            assert_null(bad);
        else
            assert_string_equal(bad, cases[i].bad);
    }
    const char *bad = NULL;
    assert_int_equal(cc_query_check(pool, "a=1", NULL, &bad), CC_EINVAL);
    assert_string_equal(bad, "a");
    cc_pool_free(pool);
}

/* ---- small predicates ---- */

static void test_is_uuid(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"123e4567-e89b-12d3-a456-426614174000", true},
        {"00000000-0000-0000-0000-000000000000", true},
        {"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
        {"123E4567-E89B-12D3-A456-426614174000", false},
        {"123e4567e89b12d3a456426614174000", false},
        {"{123e4567-e89b-12d3-a456-426614174000}", false},
        {"123e4567-e89b-12d3-a456-42661417400", false},
        {"123e4567-e89b-12d3-a456-4266141740000", false},
        {"123e4567-e89b-12d3-a456_426614174000", false},
        {"123e4567-e89b-12d3-a456-42661417400g", false},
        {"123e4567-e89b-12d3-a4564-26614174000", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++)
        if (cc_is_uuid(cases[i].s) != cases[i].ok)
            fail_msg("uuid case %zu: %s", i, cases[i].s ? cases[i].s : "NULL");
}

static void test_strieq_n(void **state)
{
    (void)state;
    static const struct {
        const char *a;
        size_t n;
        const char *b;
        bool eq;
    } cases[] = {
        {"Content-Type", 12, "content-type", true},
        {"content-type", 12, "CONTENT-TYPE", true},
        {"Content-Typex", 12, "content-type", true},
        {"Content-Typ", 11, "content-type", false},
        {"Content-Type", 12, "content-typ", false},
        {"", 0, "", true},
        {"a", 0, "", true},
        {"", 0, "a", false},
        {"Bearer", 6, "bearer", true},
        {"[", 1, "{", false}, /* '[' + 32 is '{': only letters fold */
        {"@", 1, "`", false},
        {"\xc3\x89", 2, "\xc3\xa9", false},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++)
        if (cc_strieq_n(cases[i].a, cases[i].n, cases[i].b) != cases[i].eq)
            fail_msg("strieq case %zu", i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_ops),
        cmocka_unit_test(test_buf_terminated_after_empty_ops),
        cmocka_unit_test(test_html_escape),
        cmocka_unit_test(test_json_escape),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_has_control),
        cmocka_unit_test(test_percent_decode),
        cmocka_unit_test(test_percent_encode),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_query_check),
        cmocka_unit_test(test_is_uuid),
        cmocka_unit_test(test_strieq_n),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
