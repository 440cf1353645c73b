/* Unit tests for common/json.c: body parsing, the validator and pagination cursors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/errors.h"
#include "console/json.h"
#include "console/mem.h"
#include "console/str.h"

static int setup_pool(void **state)
{
    *state = cc_pool_new();
    return 0;
}

static int teardown_pool(void **state)
{
    cc_pool_free(*state);
    return 0;
}

/* ---- parsing ---- */

#define OK 0
#define BIG CC_ERR_PAYLOAD_TOO_LARGE
#define BAD CC_ERR_MALFORMED_JSON
#define UTF CC_ERR_INVALID_UTF8

static const struct {
    const char *body;
    size_t len; /* 0: strlen */
    int rc;
    const char *detail; /* substring expected in the detail, or NULL */
} parse_cases[] = {
    {"{\"a\":1}", 0, OK, NULL},
    {"  {\"name\": \"顧客会社A\", \"n\": [1, 2.5, null, true]}\n", 0, OK, NULL},
    {"[1,2]", 0, OK, NULL},
    {"\"just a string\"", 0, OK, NULL},
    {"42", 0, OK, NULL},
    {"{\"big\":9223372036854775807,\"small\":-9223372036854775808}", 0, OK, NULL},
    {"{\"e\":\"\\ud83d\\ude00\"}", 0, OK, NULL},
    {"", 0, BAD, "the body is empty"},
    {" \r\n\t ", 0, BAD, "the body is empty"},
    {"{\"a\":1} x", 0, BAD, "unexpected data follows"},
    {"{\"a\":1}{}", 0, BAD, "unexpected data follows"},
    {"[1] [2]", 0, BAD, "unexpected data follows"},
    {"{\"a\":1,\"a\":2}", 0, BAD, "same key twice"},
    {"{\"a\":{\"b\":1,\"b\":1}}", 0, BAD, "same key twice"},
    {"{\"a\":\"\xff\"}", 0, UTF, "UTF-8"},
    {"{\"a\":\"\xc0\x80\"}", 0, UTF, "UTF-8"},
    {"{\"a\":\"\xed\xa0\x80\"}", 0, UTF, "UTF-8"},
    {"{\"a\":\"\xe3\x80\"}", 0, UTF, "UTF-8"},
    {"{\"\xff\":1}", 0, UTF, "UTF-8"},
    {"{\"a\":\"\\u0000\"}", 0, BAD, "\\u0000"},
    {"{\"a\\u0000b\":1}", 0, BAD, "\\u0000"},
    {"{\"a\":\"x\0\"}", 10, BAD, NULL},
    {"{\"a\":1}\0", 8, BAD, NULL},
    {"{\"a\":\"\\ud800\"}", 0, BAD, NULL},
    {"{\"n\":123456789012345678901234567890}", 0, BAD, "out of range"},
    {"{\"n\":9223372036854775808}", 0, BAD, "out of range"},
    {"{\"n\":-9223372036854775809}", 0, BAD, "out of range"},
    {"{\"n\":1e400}", 0, BAD, "out of range"},
    {"{\"a\":1", 0, BAD, "line 1"},
    {"{\"a\":1,}", 0, BAD, NULL},
    {"[1,]", 0, BAD, NULL},
    {"{'a':1}", 0, BAD, NULL},
    {"{\"a\":NaN}", 0, BAD, NULL},
    {"{\"a\":01}", 0, BAD, NULL},
    {"// comment\n{}", 0, BAD, NULL},
    {"{\"a\":\"tab\there\"}", 0, BAD, NULL},
    {"{\n\"a\":\n tru\n}", 0, BAD, "line 3"},
};

static void test_parse_table(void **state)
{
    cc_pool_t *pool = *state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(parse_cases); i++) {
        size_t len = parse_cases[i].len ? parse_cases[i].len : strlen(parse_cases[i].body);
        json_t *out = (json_t *)&out;
        const char *detail = "unset";
        int rc = cc_json_parse_body(pool, parse_cases[i].body, len, 1 << 20, &out, &detail);
        if (rc != parse_cases[i].rc)
            fail_msg("parse case %zu: rc %d, want %d (%s)", i, rc, parse_cases[i].rc,
                     detail ? detail : "no detail");
        if (rc == OK) {
            assert_non_null(out);
            assert_null(detail);
        } else {
            assert_null(out);
            assert_non_null(detail);
            if (parse_cases[i].detail != NULL && strstr(detail, parse_cases[i].detail) == NULL)
                fail_msg("parse case %zu: detail \"%s\" lacks \"%s\"", i, detail,
                         parse_cases[i].detail);
        }
    }
}

static void test_parse_values(void **state)
{
    cc_pool_t *pool = *state;
    const char *body = "{\"name\":\"顧客会社A\",\"n\":-5,\"big\":9223372036854775807}";
    json_t *out = NULL;
    assert_int_equal(cc_json_parse_body(pool, body, strlen(body), 1000, &out, NULL), 0);
    assert_string_equal(json_string_value(json_object_get(out, "name")), "顧客会社A");
    assert_true(json_integer_value(json_object_get(out, "n")) == -5);
    assert_true(json_integer_value(json_object_get(out, "big")) == INT64_MAX);
    /* the pool owns the value: ASan reports a leak if it is not released with the pool */
    assert_int_equal(out->refcount, 1);
}

static void test_parse_size_limit(void **state)
{
    cc_pool_t *pool = *state;
    const char *body = "{\"name\":\"abc\"}";
    size_t n = strlen(body);
    json_t *out = NULL;
    const char *detail = NULL;
    assert_int_equal(cc_json_parse_body(pool, body, n, n, &out, &detail), 0);
    assert_non_null(out);
    assert_int_equal(cc_json_parse_body(pool, body, n, n - 1, &out, &detail), BIG);
    assert_null(out);
    assert_non_null(detail);
    assert_non_null(strstr(detail, "13 bytes"));
    /* the limit comes first: even a bad body is only "too large" */
    assert_int_equal(cc_json_parse_body(pool, "\xff\xff\xff", 3, 2, &out, &detail), BIG);
    assert_int_equal(cc_json_parse_body(pool, "", 0, 0, &out, &detail), BAD);
}

static void test_parse_detail_never_echoes_body(void **state)
{
    cc_pool_t *pool = *state;
    static const char *const bodies[] = {
        "{\"password\": hunter2}",
        "{\"password\": \"hunter2\", \"password\": \"hunter2\"}",
        "{\"password\": \"hunter2\"} hunter2",
        "{\"password\": \"hunter2\\u0000\"}",
        "[hunter2",
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(bodies); i++) {
        json_t *out;
        const char *detail = NULL;
        assert_int_equal(
            cc_json_parse_body(pool, bodies[i], strlen(bodies[i]), 1000, &out, &detail), BAD);
        if (strstr(detail, "hunter2") != NULL || strstr(detail, "password") != NULL)
            fail_msg("detail echoes the body: %s", detail);
        assert_non_null(strstr(detail, "line 1, column"));
    }
}

static void test_parse_deep_nesting(void **state)
{
    cc_pool_t *pool = *state;
    enum { DEPTH = 10000 };
    char *open = cc_malloc(2 * DEPTH + 1);
    memset(open, '[', DEPTH);
    memset(open + DEPTH, ']', DEPTH);
    open[2 * DEPTH] = '\0';
    static const size_t lens[] = {DEPTH, 2 * DEPTH};
    for (size_t i = 0; i < CC_ARRAY_SIZE(lens); i++) {
        json_t *out = NULL;
        const char *detail = NULL;
        assert_int_equal(cc_json_parse_body(pool, open, lens[i], 1 << 20, &out, &detail), BAD);
        assert_non_null(strstr(detail, "nested too deeply"));
    }
    /* moderate nesting is fine */
    json_t *out = NULL;
    char *ok = cc_malloc(201);
    memset(ok, '[', 100);
    memset(ok + 100, ']', 100);
    assert_int_equal(cc_json_parse_body(pool, ok, 200, 1 << 20, &out, NULL), 0);
    free(ok);
    free(open);
}

static void test_on_pool(void **state)
{
    cc_pool_t *pool = *state;
    assert_null(cc_json_on_pool(pool, NULL));
    json_t *v = json_pack("{s:s}", "a", "b");
    assert_ptr_equal(cc_json_on_pool(pool, v), v); /* released with the pool (ASan checks) */
}

/* ---- validator ---- */

/* Parses a literal for the tests; the pool owns it. */
static json_t *js(cc_pool_t *pool, const char *text)
{
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        fail_msg("bad test JSON: %s", text);
    return cc_json_on_pool(pool, v);
}

/* Asserts the validator holds exactly one error, with this field and code. */
static void expect_one_error(const cc_validator_t *v, const char *field, const char *code)
{
    if (json_array_size(v->errors) != 1) {
        char *dump = json_dumps(v->errors, JSON_COMPACT);
        fail_msg("want one %s error on \"%s\", got %s", code, field, dump);
    }
    json_t *e = json_array_get(v->errors, 0);
    assert_int_equal(json_object_size(e), 3);
    assert_string_equal(json_string_value(json_object_get(e, "field")), field);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    const char *msg = json_string_value(json_object_get(e, "message"));
    assert_non_null(msg);
    assert_true(strlen(msg) > 0);
}

static void expect_no_error(const cc_validator_t *v)
{
    if (json_array_size(v->errors) != 0) {
        char *dump = json_dumps(v->errors, JSON_COMPACT);
        fail_msg("want no error, got %s", dump);
    }
}

static void test_v_object(void **state)
{
    cc_pool_t *pool = *state;
    static const char *const allowed[] = {"name", "kind", "parent_id", NULL};
    static const struct {
        const char *body;
        bool ok;
        const char *unknown;
        bool type_error;
    } cases[] = {
        {"{}", true, NULL, false},
        {"{\"name\":\"a\",\"kind\":\"msp\"}", true, NULL, false},
        {"{\"name\":\"a\",\"zzz\":1,\"aaa\":2}", false, "zzz", false},
        {"{\"Name\":\"a\"}", false, "Name", false},
        {"{\"name \":\"a\"}", false, "name ", false},
        {"[]", false, NULL, true},
        {"\"name\"", false, NULL, true},
        {"null", false, NULL, true},
        {"1", false, NULL, true},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_validator_t v;
        cc_v_init(&v, pool);
        assert_true(cc_v_ok(&v));
        bool ok = cc_v_object(&v, js(pool, cases[i].body), allowed);
        if (ok != cases[i].ok)
            fail_msg("object case %zu: %s", i, cases[i].body);
        if (cases[i].unknown)
            assert_string_equal(v.unknown_field, cases[i].unknown);
        else
            assert_null(v.unknown_field);
        if (cases[i].type_error)
            expect_one_error(&v, "", "type");
        else
            expect_no_error(&v);
        assert_int_equal(cc_v_ok(&v), cases[i].ok);
    }
    /* no allowed list: every key is unknown */
    cc_validator_t v;
    cc_v_init(&v, pool);
    assert_false(cc_v_object(&v, js(pool, "{\"a\":1}"), NULL));
    assert_string_equal(v.unknown_field, "a");
    /* a NULL value (absent body) is not an object */
    cc_v_init(&v, pool);
    assert_false(cc_v_object(&v, NULL, allowed));
    expect_one_error(&v, "", "type");
}

static const struct {
    const char *body; /* the value of field "s" */
    bool required;
    size_t min, max;
    bool trim;
    const char *want;  /* NULL: no value */
    const char *error; /* NULL: no error */
} string_cases[] = {
    {"{\"s\":\"Acme\"}", true, 1, 10, false, "Acme", NULL},
    {"{\"s\":\"\"}", false, 0, 10, false, "", NULL},
    {"{\"s\":\"\"}", true, 1, 10, false, NULL, "too_short"},
    {"{}", true, 1, 10, false, NULL, "required"},
    {"{}", false, 1, 10, false, NULL, NULL},
    {"{\"s\":null}", true, 1, 10, false, NULL, "required"},
    {"{\"s\":null}", false, 1, 10, false, NULL, NULL},
    {"{\"s\":5}", true, 1, 10, false, NULL, "type"},
    {"{\"s\":true}", false, 1, 10, false, NULL, "type"},
    {"{\"s\":{}}", false, 1, 10, false, NULL, "type"},
    {"{\"s\":[\"a\"]}", false, 1, 10, false, NULL, "type"},
    {"{\"s\":\"顧客会社A\"}", true, 5, 5, false, "顧客会社A", NULL},
    {"{\"s\":\"顧客会社A\"}", true, 1, 4, false, NULL, "too_long"},
    {"{\"s\":\"顧客会社A\"}", true, 6, 10, false, NULL, "too_short"},
    {"{\"s\":\"😀😀\"}", true, 2, 2, false, "😀😀", NULL},
    {"{\"s\":\"abcdefghijk\"}", true, 1, 10, false, NULL, "too_long"},
    {"{\"s\":\"  Acme  \"}", true, 1, 4, true, "Acme", NULL},
    {"{\"s\":\"  Acme  \"}", true, 1, 8, false, "  Acme  ", NULL},
    {"{\"s\":\"  Acme  \"}", true, 1, 4, false, NULL, "too_long"},
    {"{\"s\":\"\u3000顧客\u3000 \"}", true, 2, 2, true, "顧客", NULL},
    {"{\"s\":\"\\u3000顧\\u3000客\\u3000\"}", true, 1, 10, true, "顧\u3000客", NULL},
    {"{\"s\":\"\u3000\u3000 \"}", true, 1, 10, true, NULL, "too_short"},
    {"{\"s\":\"   \"}", false, 0, 10, true, "", NULL},
    {"{\"s\":\"a\\tb\"}", true, 1, 10, true, NULL, "control_characters"},
    {"{\"s\":\"a\\nb\"}", true, 1, 10, false, NULL, "control_characters"},
    {"{\"s\":\"a\\u001fb\"}", true, 1, 10, false, NULL, "control_characters"},
    {"{\"s\":\"a\\u007f\"}", true, 1, 10, false, NULL, "control_characters"},
    {"{\"s\":\"a\\u0085\"}", true, 1, 10, false, NULL, "control_characters"},
    {"{\"s\":\"Acme\\n\"}", true, 1, 10, false, NULL, "control_characters"},
    {"{\"s\":\"Acme\\r\\n\"}", true, 1, 10, true, "Acme", NULL},
    {"{\"s\":\"Ac\\u00e9\"}", true, 1, 3, false, "Acé", NULL},
};

static void test_v_string(void **state)
{
    cc_pool_t *pool = *state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(string_cases); i++) {
        cc_validator_t v;
        cc_v_init(&v, pool);
        const char *got =
            cc_v_string(&v, js(pool, string_cases[i].body), "s", string_cases[i].required,
                        string_cases[i].min, string_cases[i].max, string_cases[i].trim);
        if (string_cases[i].want == NULL) {
            if (got != NULL)
                fail_msg("string case %zu: want no value, got \"%s\"", i, got);
        } else if (got == NULL || strcmp(got, string_cases[i].want) != 0) {
            fail_msg("string case %zu: want \"%s\", got \"%s\"", i, string_cases[i].want,
                     got ? got : "NULL");
        }
        if (string_cases[i].error)
            expect_one_error(&v, "s", string_cases[i].error);
        else
            expect_no_error(&v);
        assert_int_equal(cc_v_ok(&v), string_cases[i].error == NULL);
    }
}

static void test_v_string_messages(void **state)
{
    cc_pool_t *pool = *state;
    cc_validator_t v;
    cc_v_init(&v, pool);
    json_t *o = js(pool, "{\"name\":\"顧客会社A\"}");
    cc_v_string(&v, o, "name", true, 1, 3, true);
    json_t *e = json_array_get(v.errors, 0);
    assert_string_equal(json_string_value(json_object_get(e, "message")),
                        "name must be at most 3 characters long");
}

static const struct {
    const char *body;
    bool required;
    int64_t min, max;
    int64_t want;
    bool present;
    const char *error;
} int_cases[] = {
    {"{\"n\":5}", true, 1, 10, 5, true, NULL},
    {"{\"n\":1}", true, 1, 10, 1, true, NULL},
    {"{\"n\":10}", true, 1, 10, 10, true, NULL},
    {"{\"n\":0}", true, 1, 10, 0, true, "range"},
    {"{\"n\":11}", true, 1, 10, 0, true, "range"},
    {"{\"n\":-1}", false, 0, 500, 0, true, "range"},
    {"{\"n\":1.0}", true, 1, 10, 0, true, "type"},
    {"{\"n\":1e2}", true, 1, 1000, 0, true, "type"},
    {"{\"n\":\"5\"}", true, 1, 10, 0, true, "type"},
    {"{\"n\":true}", true, 1, 10, 0, true, "type"},
    {"{\"n\":[5]}", true, 1, 10, 0, true, "type"},
    {"{\"n\":null}", false, 1, 10, 0, false, NULL},
    {"{\"n\":null}", true, 1, 10, 0, false, "required"},
    {"{}", true, 1, 10, 0, false, "required"},
    {"{}", false, 1, 10, 0, false, NULL},
    {"{\"n\":9223372036854775807}", true, INT64_MIN, INT64_MAX, INT64_MAX, true, NULL},
    {"{\"n\":-9223372036854775808}", true, INT64_MIN, INT64_MAX, INT64_MIN, true, NULL},
    {"{\"n\":9223372036854775807}", true, 0, 1000, 0, true, "range"},
};

static void test_v_int(void **state)
{
    cc_pool_t *pool = *state;
    for (size_t i = 0; i < CC_ARRAY_SIZE(int_cases); i++) {
        cc_validator_t v;
        cc_v_init(&v, pool);
        bool present = !int_cases[i].present;
        int64_t got = cc_v_int(&v, js(pool, int_cases[i].body), "n", int_cases[i].required,
                               int_cases[i].min, int_cases[i].max, &present);
        if (got != int_cases[i].want || present != int_cases[i].present)
            fail_msg("int case %zu: got %lld present %d", i, (long long)got, present);
        if (int_cases[i].error)
            expect_one_error(&v, "n", int_cases[i].error);
        else
            expect_no_error(&v);
    }
    /* present may be NULL */
    cc_validator_t v;
    cc_v_init(&v, pool);
    assert_int_equal(cc_v_int(&v, js(pool, "{\"n\":3}"), "n", true, 0, 5, NULL), 3);
    cc_v_int(&v, js(pool, "{\"n\":30}"), "n", true, 0, 5, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(v.errors, 0), "message")),
                        "n must be between 0 and 5");
}

static void test_v_bool(void **state)
{
    cc_pool_t *pool = *state;
    static const struct {
        const char *body;
        bool required, def, want;
        const char *error;
    } cases[] = {
        {"{\"b\":true}", true, false, true, NULL},
        {"{\"b\":false}", true, true, false, NULL},
        {"{}", false, true, true, NULL},
        {"{}", false, false, false, NULL},
        {"{}", true, false, false, "required"},
        {"{\"b\":null}", false, true, true, NULL},
        {"{\"b\":null}", true, true, true, "required"},
        {"{\"b\":\"true\"}", true, false, false, "type"},
        {"{\"b\":1}", true, false, false, "type"},
        {"{\"b\":0}", false, true, true, "type"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_validator_t v;
        cc_v_init(&v, pool);
        bool got = cc_v_bool(&v, js(pool, cases[i].body), "b", cases[i].required, cases[i].def);
        if (got != cases[i].want)
            fail_msg("bool case %zu", i);
        if (cases[i].error)
            expect_one_error(&v, "b", cases[i].error);
        else
            expect_no_error(&v);
    }
}

static void test_v_enum(void **state)
{
    cc_pool_t *pool = *state;
    static const char *const kinds[] = {"msp", "customer", "direct", NULL};
    static const struct {
        const char *body;
        bool required;
        int want; /* index into kinds, -1: NULL */
        const char *error;
    } cases[] = {
        {"{\"kind\":\"msp\"}", true, 0, NULL},
        {"{\"kind\":\"direct\"}", true, 2, NULL},
        {"{\"kind\":\"MSP\"}", true, -1, "enum"},
        {"{\"kind\":\"ms\"}", true, -1, "enum"},
        {"{\"kind\":\"msp \"}", true, -1, "enum"},
        {"{\"kind\":\"\"}", false, -1, "enum"},
        {"{\"kind\":1}", true, -1, "type"},
        {"{}", true, -1, "required"},
        {"{}", false, -1, NULL},
        {"{\"kind\":null}", false, -1, NULL},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_validator_t v;
        cc_v_init(&v, pool);
        const char *got = cc_v_enum(&v, js(pool, cases[i].body), "kind", cases[i].required, kinds);
        if (cases[i].want < 0)
            assert_null(got);
        else
            assert_ptr_equal(got, kinds[cases[i].want]);
        if (cases[i].error)
            expect_one_error(&v, "kind", cases[i].error);
        else
            expect_no_error(&v);
        if (cases[i].error && strcmp(cases[i].error, "enum") == 0)
            assert_string_equal(
                json_string_value(json_object_get(json_array_get(v.errors, 0), "message")),
                "kind must be one of: msp, customer, direct");
    }
}

static void test_v_uuid(void **state)
{
    cc_pool_t *pool = *state;
    static const struct {
        const char *body;
        bool required;
        const char *want, *error;
    } cases[] = {
        {"{\"id\":\"123e4567-e89b-12d3-a456-426614174000\"}", true,
         "123e4567-e89b-12d3-a456-426614174000", NULL},
        {"{\"id\":\"123E4567-E89B-12D3-A456-426614174000\"}", true, NULL, "format"},
        {"{\"id\":\"123e4567e89b12d3a456426614174000\"}", true, NULL, "format"},
        {"{\"id\":\"not-a-uuid\"}", true, NULL, "format"},
        {"{\"id\":\"\"}", false, NULL, "format"},
        {"{\"id\":42}", true, NULL, "type"},
        {"{}", true, NULL, "required"},
        {"{\"id\":null}", false, NULL, NULL},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_validator_t v;
        cc_v_init(&v, pool);
        const char *got = cc_v_uuid(&v, js(pool, cases[i].body), "id", cases[i].required);
        if (cases[i].want)
            assert_string_equal(got, cases[i].want);
        else
            assert_null(got);
        if (cases[i].error)
            expect_one_error(&v, "id", cases[i].error);
        else
            expect_no_error(&v);
    }
    /* an embedded NUL after a valid UUID is not a UUID */
    cc_validator_t v;
    cc_v_init(&v, pool);
    json_t *o = cc_json_on_pool(pool, json_object());
    json_object_set_new(o, "id", json_stringn("123e4567-e89b-12d3-a456-426614174000\0x", 38));
    assert_null(cc_v_uuid(&v, o, "id", true));
    expect_one_error(&v, "id", "format");
}

/* Errors accumulate in call order; cc_v_add formats messages. */
static void test_v_collects_every_error(void **state)
{
    cc_pool_t *pool = *state;
    static const char *const allowed[] = {"name", "limit", "kind", NULL};
    static const char *const kinds[] = {"a", "b", NULL};
    json_t *body = js(pool, "{\"name\":\"\",\"limit\":\"x\",\"kind\":\"c\",\"extra\":1}");
    cc_validator_t v;
    cc_v_init(&v, pool);
    cc_v_object(&v, body, allowed);
    cc_v_string(&v, body, "name", true, 1, 100, true);
    cc_v_int(&v, body, "limit", false, 1, 500, NULL);
    cc_v_enum(&v, body, "kind", true, kinds);
    cc_v_uuid(&v, body, "parent_id", true);
    cc_v_add(&v, "custom", "format", "custom %s %d", "message", 7);
    assert_false(cc_v_ok(&v));
    assert_string_equal(v.unknown_field, "extra");
    static const char *const want[][2] = {{"name", "too_short"},
                                          {"limit", "type"},
                                          {"kind", "enum"},
                                          {"parent_id", "required"},
                                          {"custom", "format"}};
    assert_int_equal(json_array_size(v.errors), CC_ARRAY_SIZE(want));
    for (size_t i = 0; i < CC_ARRAY_SIZE(want); i++) {
        json_t *e = json_array_get(v.errors, i);
        assert_string_equal(json_string_value(json_object_get(e, "field")), want[i][0]);
        assert_string_equal(json_string_value(json_object_get(e, "code")), want[i][1]);
    }
    assert_string_equal(json_string_value(json_object_get(json_array_get(v.errors, 4), "message")),
                        "custom message 7");
    /* a message that is not UTF-8 still yields a valid error */
    cc_validator_t w;
    cc_v_init(&w, pool);
    cc_v_add(&w, "f", "format", "%s", "\xff");
    expect_one_error(&w, "f", "format");
}

static void test_utf8_length(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t want;
    } cases[] = {
        {"", 0},  {"abc", 3},    {"顧客会社A", 5},      {"é", 1},
        {"😀", 1}, {"\u3000", 1}, {"a\u00e9\u3000😀", 4},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++)
        assert_int_equal(cc_utf8_length(cases[i].s, strlen(cases[i].s)), cases[i].want);
    assert_int_equal(cc_utf8_length("顧客", 3), 1);
}

/* ---- cursors ---- */

/* The test's own base64url encoder (no padding), independent of the one under test. */
static char *b64(cc_pool_t *pool, const char *in, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = cc_pool_alloc(pool, n / 3 * 4 + 5);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            x |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            x |= (unsigned char)in[i + 2];
        out[o++] = a[x >> 18 & 63];
        out[o++] = a[x >> 12 & 63];
        if (i + 1 < n)
            out[o++] = a[x >> 6 & 63];
        if (i + 2 < n)
            out[o++] = a[x & 63];
    }
    out[o] = '\0';
    return out;
}

static void test_cursor_round_trip(void **state)
{
    cc_pool_t *pool = *state;
    static const char *const keys[] = {
        "[\"a\"]",
        "[\"Acme\",\"123e4567-e89b-12d3-a456-426614174000\"]",
        "[\"顧客会社A\",42]",
        "[null,-1,1.5,\"x\"]",
        "[9223372036854775807,-9223372036854775808]",
        "[\"quote\\\" and \\\\ and /\",\"\\u0001\"]",
        "[1,2,3,4,5,6,7,8]",
        "[0]",
        "[\"ab\"]",
        "[\"abc\"]",
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(keys); i++) {
        json_t *k = js(pool, keys[i]);
        char *c = cc_cursor_encode(pool, k);
        if (c == NULL)
            fail_msg("cursor %zu not encoded", i);
        assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_"),
                         strlen(c));
        json_t *back = (json_t *)&back;
        assert_int_equal(cc_cursor_decode(pool, c, &back), 0);
        if (!json_equal(k, back))
            fail_msg("cursor %zu did not round-trip", i);
        /* the compact JSON of the keys is what is encoded */
        char *text = json_dumps(k, JSON_COMPACT);
        assert_string_equal(c, b64(pool, text, strlen(text)));
        free(text);
    }
    assert_string_equal(cc_cursor_encode(pool, js(pool, "[\"a\"]")), "WyJhIl0");
}

static void test_cursor_encode_refuses(void **state)
{
    cc_pool_t *pool = *state;
    static const char *const bad[] = {
        "[]", "{\"a\":1}", "\"a\"", "[[1]]", "[{\"a\":1}]", "[true]", "[1,2,3,4,5,6,7,8,9]",
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(bad); i++)
        if (cc_cursor_encode(pool, js(pool, bad[i])) != NULL)
            fail_msg("cursor keys %s encoded", bad[i]);
    assert_null(cc_cursor_encode(pool, NULL));
}

/* 768 bytes of JSON make exactly 1024 characters: the longest cursor accepted. */
static void test_cursor_length_limit(void **state)
{
    cc_pool_t *pool = *state;
    char s[800];
    memset(s, 'x', sizeof(s));
    for (size_t n = 762; n <= 766; n++) {
        json_t *k = cc_json_on_pool(pool, json_pack("[s#]", s, (int)n));
        char *c = cc_cursor_encode(pool, k);
        size_t json_len = n + 4;
        if (json_len <= 768) {
            assert_non_null(c);
            assert_true(strlen(c) <= CC_CURSOR_MAX_LEN);
            json_t *back = NULL;
            assert_int_equal(cc_cursor_decode(pool, c, &back), 0);
        } else {
            assert_null(c);
            char *text = json_dumps(k, JSON_COMPACT);
            char *long_c = b64(pool, text, strlen(text));
            free(text);
            assert_true(strlen(long_c) > CC_CURSOR_MAX_LEN);
            json_t *back = (json_t *)&back;
            assert_int_equal(cc_cursor_decode(pool, long_c, &back), CC_EINVAL);
            assert_null(back);
        }
    }
    /* a huge cursor is refused without decoding it */
    char *huge = cc_pool_alloc(pool, 1 << 20);
    memset(huge, 'A', (1 << 20) - 1);
    json_t *back = NULL;
    assert_int_equal(cc_cursor_decode(pool, huge, &back), CC_EINVAL);
}

static void test_cursor_hostile(void **state)
{
    cc_pool_t *pool = *state;
    static const struct {
        const char *cursor; /* literal base64url, or NULL to use json */
        const char *json;
    } cases[] = {
        {"", NULL},
        {"!!!!", NULL},
        {"WyJhIl0=", NULL}, /* padding */
        {"WyJhIl0 ", NULL}, /* space */
        {"WyJh Il0", NULL},
        {"WyJhIl0\n", NULL},
        {"WyJhIl1", NULL}, /* non-zero unused bits */
        {"WyJhI+0", NULL}, /* standard alphabet */
        {"WyJhI/0", NULL},
        {"W", NULL},        /* impossible length */
        {"WyJhIl0W", NULL}, /* one character too many: truncated JSON */
        {"aGVsbG8", NULL},  /* "hello" */
        {NULL, "hello"},
        {NULL, "{\"a\":1}"},
        {NULL, "[]"},
        {NULL, "[1,2,3,4,5,6,7,8,9]"},
        {NULL, "[[1]]"},
        {NULL, "[1,[2]]"},
        {NULL, "[{\"a\":1}]"},
        {NULL, "[true]"},
        {NULL, "[false,1]"},
        {NULL, "[1] x"},
        {NULL, "[1]\n[2]"},
        {NULL, "\"a\""},
        {NULL, "42"},
        {NULL, "null"},
        {NULL, "[\"\xff\"]"},
        {NULL, "[\"\xed\xa0\x80\"]"},
        {NULL, "[\"\\u0000\"]"},
        {NULL, "[123456789012345678901234567890]"},
        {NULL, "[1e999]"},
        {NULL, "[\"a\""},
        {NULL, ""},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        const char *c = cases[i].cursor;
        if (c == NULL)
            c = b64(pool, cases[i].json, strlen(cases[i].json));
        json_t *back = (json_t *)&back;
        if (cc_cursor_decode(pool, c, &back) != CC_EINVAL)
            fail_msg("hostile cursor %zu (%s) accepted", i, cases[i].json ? cases[i].json : c);
        assert_null(back);
    }
    json_t *back = (json_t *)&back;
    assert_int_equal(cc_cursor_decode(pool, NULL, &back), CC_EINVAL);
    assert_null(back);
    /* 8 keys is the most, and all scalar kinds are accepted */
    const char *ok = "[\"s\",1,-2.5,null,\"t\",0,1e10,\"u\"]";
    assert_int_equal(cc_cursor_decode(pool, b64(pool, ok, strlen(ok)), &back), 0);
    assert_int_equal(json_array_size(back), 8);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

/* The buffer writer's strings read back, through jansson, as exactly what was written. */
static void test_writer_round_trip(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "plain",
        "quote \" and \\ backslash",
        "顧客会社A",
        "tab\tnl\ncr\r",
        "\x01\x1f",
        "emoji \xf0\x9f\x98\x80",
        "</script>",
        "\x7f del",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cc_buf_t b;
        cc_buf_init(&b);
        cc_buf_putc(&b, '{');
        cc_jw_kv_str(&b, "s", cases[i], true);
        cc_jw_kv_int(&b, "n", -42, false);
        cc_jw_kv_bool(&b, "t", true, false);
        cc_jw_kv_str(&b, "z", NULL, false);
        cc_buf_putc(&b, '}');
        json_error_t err;
        json_t *v = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &err);
        assert_non_null(v);
        assert_string_equal(json_string_value(json_object_get(v, "s")), cases[i]);
        assert_int_equal(json_integer_value(json_object_get(v, "n")), -42);
        assert_true(json_is_true(json_object_get(v, "t")));
        assert_true(json_is_null(json_object_get(v, "z")));
        for (size_t k = 0; k < b.len; k++) /* no raw control character on the wire */
            assert_true((unsigned char)b.data[k] >= 0x20);
        json_decref(v);
        cc_buf_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_writer_round_trip),
        T(test_parse_table),
        T(test_parse_values),
        T(test_parse_size_limit),
        T(test_parse_detail_never_echoes_body),
        T(test_parse_deep_nesting),
        T(test_on_pool),
        T(test_v_object),
        T(test_v_string),
        T(test_v_string_messages),
        T(test_v_int),
        T(test_v_bool),
        T(test_v_enum),
        T(test_v_uuid),
        T(test_v_collects_every_error),
        T(test_utf8_length),
        T(test_cursor_round_trip),
        T(test_cursor_encode_refuses),
        T(test_cursor_length_limit),
        T(test_cursor_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
