/*
 * Strings: a growable byte buffer, UTF-8 validation, JSON string escaping,
 * percent-decoding and query-string access.
 */
#ifndef CONSOLE_STR_H
#define CONSOLE_STR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "console/mem.h"

/** A growable, always NUL-terminated byte buffer on the heap. Zero-initialize, or cc_buf_init. */
typedef struct cc_buf {
    char *data;
    size_t len, cap;
} cc_buf_t;

void cc_buf_init(cc_buf_t *b);
void cc_buf_free(cc_buf_t *b);
void cc_buf_reserve(cc_buf_t *b, size_t extra);
void cc_buf_append(cc_buf_t *b, const void *p, size_t n);
void cc_buf_puts(cc_buf_t *b, const char *s);
void cc_buf_putc(cc_buf_t *b, char c);
void cc_buf_printf(cc_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends s (NULL: nothing) escaped for HTML text and attribute values (< > & " '). */
void cc_buf_html(cc_buf_t *b, const char *s);
/** Appends s as the body of a JSON string (no quotes), escaping as RFC 8259 requires. */
void cc_buf_json_escape(cc_buf_t *b, const char *s, size_t n);
/** Detaches the data (caller frees it) and resets the buffer. */
char *cc_buf_steal(cc_buf_t *b, size_t *len);

/** True when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool cc_utf8_valid(const char *s, size_t n);

/** True when s[0..n) contains a C0 control character or DEL (tab and newline included). */
bool cc_has_control(const char *s, size_t n);

/**
 * Percent-decodes s[0..n) into pool memory ('+' becomes a space when form is true).
 * Returns NULL for a malformed escape, an embedded NUL or invalid UTF-8.
 */
char *cc_percent_decode(cc_pool_t *pool, const char *s, size_t n, bool form);

/** Appends s percent-encoded for a URL query component (RFC 3986 unreserved kept). */
void cc_buf_percent_encode(cc_buf_t *b, const char *s);

/**
 * Looks up name in a raw query string ("a=1&b=2"). Returns 1 and a decoded copy in *value
 * when present once, 0 when absent, CC_EINVAL when repeated or malformed.
 */
int cc_query_get(cc_pool_t *pool, const char *query, const char *name, const char **value);

/**
 * Checks every parameter name of a raw query string is in allowed (NULL-terminated).
 * On failure returns CC_EINVAL and the offending (decoded) name in *bad.
 */
int cc_query_check(cc_pool_t *pool, const char *query, const char *const *allowed,
                   const char **bad);

/** The value of a hex digit (either case), or -1. */
int cc_hex_value(char c);

/** True when s is a canonical lower-case UUID (8-4-4-4-12 hex). */
bool cc_is_uuid(const char *s);

/**
 * True when s is an e-mail address as the product accepts one: an ASCII dot-atom local
 * part (at most 64) @ a domain of DNS labels with an alphabetic (or xn--) top-level label.
 */
bool cc_email_valid(const char *s);

/** Case-insensitive ASCII comparison of a[0..n) with the NUL-terminated b. */
bool cc_strieq_n(const char *a, size_t n, const char *b);

/** True when s is a phone number: optional +, 7..15 digits, single spaces, dashes, dots or
 * parentheses between them, at most 32 characters. */
bool cc_phone_valid(const char *s);

/** True when s is an E.164 number as SMS providers take it: '+', a country code that does
 * not start with 0, 8 to 15 digits in all, nothing else. */
bool cc_phone_e164_valid(const char *s);

#endif
