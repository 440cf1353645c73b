/*
 * JSON on jansson: strict body parsing, field-by-field validation that collects every
 * error (RFC 9457 `errors: [{field, code, message}]`), unknown-field rejection, and
 * opaque pagination cursors.
 */
#ifndef CONSOLE_JSON_H
#define CONSOLE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "console/errors.h"
#include "console/mem.h"
#include "console/str.h"

/**
 * Parses a request body: at most limit bytes, strict UTF-8, one JSON value, duplicate
 * keys refused, no NUL. On success *out is a new reference registered on pool (the pool
 * decrefs it) and 0 is returned. On failure returns the API error id (CC_ERR_MALFORMED_JSON,
 * CC_ERR_INVALID_UTF8, CC_ERR_PAYLOAD_TOO_LARGE) and a detail sentence in pool memory.
 */
int cc_json_parse_body(cc_pool_t *pool, const char *body, size_t len, size_t limit, json_t **out,
                       const char **detail);

/** Registers json_decref(v) on the pool and returns v (borrowed from then on). */
json_t *cc_json_on_pool(cc_pool_t *pool, json_t *v);

/** Collects validation errors. */
typedef struct cc_validator {
    cc_pool_t *pool;
    json_t *errors;            /* array of {field, code, message}; registered on pool */
    const char *unknown_field; /* first unknown field seen, or NULL */
} cc_validator_t;

void cc_v_init(cc_validator_t *v, cc_pool_t *pool);
/** Adds one error. code: "required", "type", "too_short", "too_long", "range", "format", "enum", …
 */
void cc_v_add(cc_validator_t *v, const char *field, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** True when no error and no unknown field was recorded. */
bool cc_v_ok(const cc_validator_t *v);

/** Requires obj to be an object; records unknown_field for any key not in allowed (NULL-ended). */
bool cc_v_object(cc_validator_t *v, json_t *obj, const char *const *allowed);

/**
 * A string field: NULL when absent/null (error when required) or invalid. Length is
 * counted in Unicode code points, min..max; control characters are refused; the value is
 * trimmed of ASCII and U+3000 spaces when trim is true (result in pool memory).
 */
const char *cc_v_string(cc_validator_t *v, json_t *obj, const char *field, bool required,
                        size_t min, size_t max, bool trim);
/** An integer field in min..max; *present tells whether it was given. */
int64_t cc_v_int(cc_validator_t *v, json_t *obj, const char *field, bool required, int64_t min,
                 int64_t max, bool *present);
/** A boolean field; def when absent. */
bool cc_v_bool(cc_validator_t *v, json_t *obj, const char *field, bool required, bool def);
/** A string that must be one of values (NULL-ended). */
const char *cc_v_enum(cc_validator_t *v, json_t *obj, const char *field, bool required,
                      const char *const *values);
/** A canonical lower-case UUID string. */
const char *cc_v_uuid(cc_validator_t *v, json_t *obj, const char *field, bool required);

/** Number of Unicode code points in valid UTF-8 s[0..n). */
size_t cc_utf8_length(const char *s, size_t n);

/**
 * Cursors: base64url of a compact JSON array of the last item's sort keys. Decoding
 * checks it is an array of at most 8 strings/numbers/nulls; *keys is registered on pool.
 * A cursor is at most CC_CURSOR_MAX_LEN characters: encoding returns NULL when keys is
 * not 1..8 scalars or would exceed it (about 760 bytes of JSON), decoding refuses a
 * longer one with CC_EINVAL. keys is borrowed by the encoder.
 */
#define CC_CURSOR_MAX_LEN 1024
char *cc_cursor_encode(cc_pool_t *pool, json_t *keys);
int cc_cursor_decode(cc_pool_t *pool, const char *cursor, json_t **keys);

/*
 * Writing JSON straight into a buffer, for large answers (lists, exports): no tree of
 * json_t nodes, two orders of magnitude fewer allocations. The caller writes the
 * punctuation; these write values. Strings must be valid UTF-8 (they come from the
 * database or validated input); they are escaped per RFC 8259 (quote, backslash and
 * control characters), everything else is copied as is.
 */
/** Appends "s" escaped, or null when s is NULL. */
void cc_jw_str(cc_buf_t *b, const char *s);
/** Appends ,"key": (the comma unless first). */
void cc_jw_key(cc_buf_t *b, const char *key, bool first);
/** Appends ,"key":"value" (value NULL: null). */
void cc_jw_kv_str(cc_buf_t *b, const char *key, const char *value, bool first);
/** Appends ,"key":n. */
void cc_jw_kv_int(cc_buf_t *b, const char *key, long long n, bool first);
/** Appends ,"key":true|false. */
void cc_jw_kv_bool(cc_buf_t *b, const char *key, bool v, bool first);

#endif
