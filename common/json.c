/*
 * JSON on jansson: strict request-body parsing, a validator that collects every field
 * error, and opaque pagination cursors.
 *
 * Parsing decisions (see cc_json_parse_body):
 * - the size limit is checked before anything else, so an oversized body costs nothing;
 * - the body is checked as strict UTF-8 by cc_utf8_valid before jansson sees it, so the
 *   client gets invalid_utf8 rather than a generic malformed_json;
 * - jansson runs with JSON_REJECT_DUPLICATES and JSON_DECODE_ANY, without
 *   JSON_DISABLE_EOF_CHECK (trailing data after the value is refused) and without
 *   JSON_ALLOW_NUL ("\u0000" is refused);
 * - an integer beyond int64 makes jansson fail ("too big integer"): that is answered as
 *   malformed_json, never silently turned into a real; a real beyond double fails the same
 *   way. Nesting deeper than JSON_PARSER_MAX_DEPTH (2048) is malformed_json too;
 * - the detail sentence gives the reason, line and column but never echoes the body
 *   (jansson's own text quotes the offending token, so it is not used).
 */
#include "console/json.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/crypto.h"
#include "console/str.h"

/* Longest cursor accepted (base64url characters); a longer one is refused unread. */
#define CURSOR_MAX_LEN CC_CURSOR_MAX_LEN
/* Most sort keys a cursor may carry. */
#define CURSOR_MAX_KEYS 8

static void decref_cb(void *p)
{
    json_decref((json_t *)p);
}

json_t *cc_json_on_pool(cc_pool_t *pool, json_t *v)
{
    if (v != NULL)
        cc_pool_defer(pool, decref_cb, v);
    return v;
}

/* A sentence for a jansson error code; never quotes input. */
static const char *parse_reason(const json_error_t *e)
{
    switch (json_error_code(e)) {
    case json_error_stack_overflow:
        return "the JSON value is nested too deeply";
    case json_error_invalid_utf8:
        return "the body is not valid UTF-8";
    case json_error_premature_end_of_input:
        return "the JSON value is incomplete";
    case json_error_end_of_input_expected:
        return "unexpected data follows the JSON value";
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return "the escape \\u0000 is not allowed";
    case json_error_duplicate_key:
        return "an object has the same key twice";
    case json_error_numeric_overflow:
        return "a number is out of range";
    case json_error_out_of_memory:
        return "the JSON value is too large";
    default:
        return "the JSON syntax is invalid";
    }
}

static bool all_space(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return false;
    return true;
}

int cc_json_parse_body(cc_pool_t *pool, const char *body, size_t len, size_t limit, json_t **out,
                       const char **detail)
{
    const char *msg = NULL;
    int rc = 0;
    json_error_t jerr;

    *out = NULL;
    if (len > limit) {
        rc = CC_ERR_PAYLOAD_TOO_LARGE;
        msg = cc_pool_printf(pool, "the body exceeds the limit of %zu bytes", limit);
        goto Exit;
    }
    if (body == NULL || len == 0 || all_space(body, len)) {
        rc = CC_ERR_MALFORMED_JSON;
        msg = "the body is empty";
        goto Exit;
    }
    if (!cc_utf8_valid(body, len)) {
        rc = CC_ERR_INVALID_UTF8;
        msg = "the body is not valid UTF-8";
        goto Exit;
    }
    json_t *v = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (v == NULL) {
        rc = json_error_code(&jerr) == json_error_invalid_utf8 ? CC_ERR_INVALID_UTF8
                                                               : CC_ERR_MALFORMED_JSON;
        msg = cc_pool_printf(pool, "%s (line %d, column %d)", parse_reason(&jerr), jerr.line,
                             jerr.column);
        goto Exit;
    }
    *out = cc_json_on_pool(pool, v);

Exit:
    if (detail != NULL)
        *detail = msg;
    return rc;
}

/* ---- validator ---- */

void cc_v_init(cc_validator_t *v, cc_pool_t *pool)
{
    v->pool = pool;
    v->errors = cc_json_on_pool(pool, json_array());
    v->unknown_field = NULL;
}

void cc_v_add(cc_validator_t *v, const char *field, const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = cc_pool_vprintf(v->pool, fmt, ap);
    va_end(ap);
    json_t *m = json_string(msg); /* NULL when the message is not UTF-8 */
    json_t *e = json_pack("{s:s, s:s, s:o}", "field", field ? field : "", "code", code, "message",
                          m ? m : json_string("invalid value"));
    if (e == NULL) /* field or code not UTF-8: a programming error, keep the code at least */
        e = json_pack("{s:s, s:s, s:s}", "field", "", "code", "invalid", "message",
                      "invalid value");
    json_array_append_new(v->errors, e);
}

bool cc_v_ok(const cc_validator_t *v)
{
    return json_array_size(v->errors) == 0 && v->unknown_field == NULL;
}

bool cc_v_object(cc_validator_t *v, json_t *obj, const char *const *allowed)
{
    if (!json_is_object(obj)) {
        cc_v_add(v, "", "type", "the body must be a JSON object");
        return false;
    }
    const char *key;
    json_t *val;
    bool ok = true;
    json_object_foreach(obj, key, val)
    {
        bool known = false;
        for (const char *const *a = allowed; a != NULL && *a != NULL; a++) {
            if (strcmp(*a, key) == 0) {
                known = true;
                break;
            }
        }
        if (!known) {
            ok = false;
            if (v->unknown_field == NULL)
                v->unknown_field = cc_pool_strdup(v->pool, key);
        }
    }
    return ok;
}

/*
 * Looks field up: returns the value, or NULL when absent or JSON null (adding "required"
 * when required). A non-object obj reads as empty (cc_v_object reports it).
 */
static json_t *field_get(cc_validator_t *v, json_t *obj, const char *field, bool required)
{
    json_t *val = json_is_object(obj) ? json_object_get(obj, field) : NULL;
    if (val == NULL || json_is_null(val)) {
        if (required)
            cc_v_add(v, field, "required", "%s is required", field);
        return NULL;
    }
    return val;
}

size_t cc_utf8_length(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            count++;
    return count;
}

/* True for C0 controls, DEL and the C1 controls U+0080..U+009F (C2 80..C2 9F). */
static bool has_control(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    if (cc_has_control(str, n))
        return true;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == 0xc2 && s[i + 1] >= 0x80 && s[i + 1] <= 0x9f)
            return true;
    return false;
}

/* Length of the space at s[0..n) if it starts with one (ASCII or U+3000), else 0. */
static size_t space_at_start(const char *s, size_t n)
{
    if (n >= 1 && (s[0] == ' ' || s[0] == '\t' || s[0] == '\n' || s[0] == '\r' || s[0] == '\v' ||
                   s[0] == '\f'))
        return 1;
    if (n >= 3 && memcmp(s, "\xe3\x80\x80", 3) == 0)
        return 3;
    return 0;
}

static size_t space_at_end(const char *s, size_t n)
{
    if (n >= 1 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r' ||
                   s[n - 1] == '\v' || s[n - 1] == '\f'))
        return 1;
    if (n >= 3 && memcmp(s + n - 3, "\xe3\x80\x80", 3) == 0)
        return 3;
    return 0;
}

/*
 * Trimming happens before the control-character check, so a trailing newline pasted
 * into a name is dropped rather than refused, while one inside the value is refused.
 */
const char *cc_v_string(cc_validator_t *v, json_t *obj, const char *field, bool required,
                        size_t min, size_t max, bool trim)
{
    json_t *val = field_get(v, obj, field, required);
    if (val == NULL)
        return NULL;
    if (!json_is_string(val)) {
        cc_v_add(v, field, "type", "%s must be a string", field);
        return NULL;
    }
    const char *s = json_string_value(val);
    size_t n = json_string_length(val);
    if (trim) {
        size_t k;
        while ((k = space_at_start(s, n)) > 0)
            s += k, n -= k;
        while ((k = space_at_end(s, n)) > 0)
            n -= k;
    }
    if (!cc_utf8_valid(s, n)) {
        cc_v_add(v, field, "format", "%s must be valid UTF-8", field);
        return NULL;
    }
    if (has_control(s, n)) {
        cc_v_add(v, field, "control_characters", "%s must not contain control characters", field);
        return NULL;
    }
    size_t len = cc_utf8_length(s, n);
    if (len < min) {
        cc_v_add(v, field, "too_short", "%s must be at least %zu characters long", field, min);
        return NULL;
    }
    if (len > max) {
        cc_v_add(v, field, "too_long", "%s must be at most %zu characters long", field, max);
        return NULL;
    }
    return cc_pool_strndup(v->pool, s, n);
}

int64_t cc_v_int(cc_validator_t *v, json_t *obj, const char *field, bool required, int64_t min,
                 int64_t max, bool *present)
{
    if (present != NULL)
        *present = false;
    json_t *val = field_get(v, obj, field, required);
    if (val == NULL)
        return 0;
    if (present != NULL)
        *present = true;
    if (!json_is_integer(val)) {
        cc_v_add(v, field, "type", "%s must be an integer", field);
        return 0;
    }
    int64_t x = (int64_t)json_integer_value(val);
    if (x < min || x > max) {
        cc_v_add(v, field, "range", "%s must be between %" PRId64 " and %" PRId64, field, min, max);
        return 0;
    }
    return x;
}

bool cc_v_bool(cc_validator_t *v, json_t *obj, const char *field, bool required, bool def)
{
    json_t *val = field_get(v, obj, field, required);
    if (val == NULL)
        return def;
    if (!json_is_boolean(val)) {
        cc_v_add(v, field, "type", "%s must be true or false", field);
        return def;
    }
    return json_is_true(val);
}

/* Returns the matching entry of values (static storage), so callers may compare pointers. */
const char *cc_v_enum(cc_validator_t *v, json_t *obj, const char *field, bool required,
                      const char *const *values)
{
    json_t *val = field_get(v, obj, field, required);
    if (val == NULL)
        return NULL;
    if (json_is_string(val)) {
        const char *s = json_string_value(val);
        size_t n = json_string_length(val);
        for (const char *const *e = values; e != NULL && *e != NULL; e++)
            if (strlen(*e) == n && memcmp(*e, s, n) == 0)
                return *e;
    }
    cc_buf_t list = {0};
    for (const char *const *e = values; e != NULL && *e != NULL; e++) {
        if (list.len > 0)
            cc_buf_puts(&list, ", ");
        cc_buf_puts(&list, *e);
    }
    cc_v_add(v, field, json_is_string(val) ? "enum" : "type", "%s must be one of: %s", field,
             list.data ? list.data : "");
    cc_buf_free(&list);
    return NULL;
}

const char *cc_v_uuid(cc_validator_t *v, json_t *obj, const char *field, bool required)
{
    json_t *val = field_get(v, obj, field, required);
    if (val == NULL)
        return NULL;
    if (!json_is_string(val)) {
        cc_v_add(v, field, "type", "%s must be a string", field);
        return NULL;
    }
    const char *s = json_string_value(val);
    if (strlen(s) != json_string_length(val) || !cc_is_uuid(s)) {
        cc_v_add(v, field, "format", "%s must be a lower-case UUID", field);
        return NULL;
    }
    return cc_pool_strdup(v->pool, s);
}

/* ---- cursors: base64url (RFC 4648 §5, no padding) of compact JSON ---- */

/* True when keys is an array of 1..CURSOR_MAX_KEYS strings, integers, reals or nulls. */
static bool cursor_keys_ok(json_t *keys)
{
    if (!json_is_array(keys) || json_array_size(keys) == 0 ||
        json_array_size(keys) > CURSOR_MAX_KEYS)
        return false;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        if (!json_is_string(k) && !json_is_integer(k) && !json_is_real(k) && !json_is_null(k))
            return false;
    }
    return true;
}

/*
 * NULL when keys is not an array of 1..8 scalars, or when the cursor would exceed the
 * 1024 characters cc_cursor_decode accepts (about 760 bytes of compact JSON: keep string
 * sort keys short, e.g. a name truncated by the caller plus the id).
 */
char *cc_cursor_encode(cc_pool_t *pool, json_t *keys)
{
    if (!cursor_keys_ok(keys))
        return NULL;
    char *text = json_dumps(keys, JSON_COMPACT);
    if (text == NULL)
        return NULL;
    size_t n = strlen(text);
    char *out = NULL;
    if ((n + 2) / 3 * 4 <= CURSOR_MAX_LEN) {
        char *enc = cc_base64url_encode(text, n);
        out = cc_pool_strdup(pool, enc);
        free(enc);
    }
    free(text);
    return out;
}

int cc_cursor_decode(cc_pool_t *pool, const char *cursor, json_t **keys)
{
    int rc = CC_EINVAL;
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    json_t *v = NULL;

    *keys = NULL;
    if (cursor == NULL)
        goto Exit;
    size_t n = strnlen(cursor, CURSOR_MAX_LEN + 1);
    if (n == 0 || n > CURSOR_MAX_LEN)
        goto Exit;
    if (cc_base64url_decode_strict(cursor, n, &raw, &rawlen) != 0)
        goto Exit;
    if (!cc_utf8_valid((const char *)raw, rawlen))
        goto Exit;
    v = json_loadb((const char *)raw, rawlen, JSON_REJECT_DUPLICATES, NULL);
    if (!cursor_keys_ok(v))
        goto Exit;
    *keys = cc_json_on_pool(pool, v);
    v = NULL;
    rc = 0;

Exit:
    free(raw);
    json_decref(v);
    return rc;
}

/* ---- writing JSON into a buffer ---- */

void cc_jw_str(cc_buf_t *b, const char *s)
{
    if (s == NULL) {
        cc_buf_append(b, "null", 4);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    cc_buf_putc(b, '"');
    const char *run = s;
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20)
            continue;
        cc_buf_append(b, run, (size_t)(p - run));
        if (c == '\0')
            break;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            cc_buf_append(b, e, 2);
        } else if (c == '\n') {
            cc_buf_append(b, "\\n", 2);
        } else if (c == '\r') {
            cc_buf_append(b, "\\r", 2);
        } else if (c == '\t') {
            cc_buf_append(b, "\\t", 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            cc_buf_append(b, e, 6);
        }
        run = p + 1;
    }
    cc_buf_putc(b, '"');
}

void cc_jw_key(cc_buf_t *b, const char *key, bool first)
{
    if (!first)
        cc_buf_putc(b, ',');
    cc_jw_str(b, key);
    cc_buf_putc(b, ':');
}

void cc_jw_kv_str(cc_buf_t *b, const char *key, const char *value, bool first)
{
    cc_jw_key(b, key, first);
    cc_jw_str(b, value);
}

void cc_jw_kv_int(cc_buf_t *b, const char *key, long long n, bool first)
{
    cc_jw_key(b, key, first);
    cc_buf_printf(b, "%lld", n);
}

void cc_jw_kv_bool(cc_buf_t *b, const char *key, bool v, bool first)
{
    cc_jw_key(b, key, first);
    cc_buf_puts(b, v ? "true" : "false");
}
