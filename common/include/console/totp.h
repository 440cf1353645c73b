/*
 * One-time passwords: base32 (RFC 4648, the alphabet authenticator apps use), HOTP
 * (RFC 4226) and TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps). Pure functions,
 * thread-safe.
 */
#ifndef CONSOLE_TOTP_H
#define CONSOLE_TOTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CC_TOTP_STEP_S 30
#define CC_TOTP_DIGITS 6

/** Base32 without padding (upper case). Caller frees. */
char *cc_base32_encode(const void *data, size_t n);
/**
 * Decodes base32 (case-insensitive; spaces and '=' padding ignored). Caller frees *out.
 * Returns 0 or CC_EINVAL.
 */
int cc_base32_decode(const char *s, uint8_t **out, size_t *outlen);

/** The HOTP value of counter (RFC 4226) with digits (6..8) digits. */
uint32_t cc_hotp(const void *key, size_t keylen, uint64_t counter, int digits);

/**
 * Checks a 6-digit TOTP code for unix time now within ±window steps. Steps at or below
 * last_step (the last one accepted; -1 when none) are refused, so each code is accepted
 * once. On a match returns true and the matching step in *step. The comparison runs over
 * every step of the window in constant time.
 */
bool cc_totp_check(const void *key, size_t keylen, const char *code, int64_t now, int window,
                   int64_t last_step, int64_t *step);

#endif
