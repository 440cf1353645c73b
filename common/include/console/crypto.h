/*
 * Crypto helpers on OpenSSL and libargon2: CSPRNG ids and tokens, hashing, argon2id
 * password hashes, AES-256-GCM sealing of secrets at rest under a master key, and
 * constant-time comparison. All functions are thread-safe.
 */
#ifndef CONSOLE_CRYPTO_H
#define CONSOLE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Fills buf with n bytes from the CSPRNG (RAND_bytes). Returns 0 or CC_ECRYPTO. */
int cc_random_bytes(void *buf, size_t n);

/** A new UUIDv7 (time-ordered, RFC 9562) in canonical lower-case form. */
void cc_uuid_new(char out[37]);

/**
 * A new request id in UUIDv7 form, from a per-thread xoshiro256** generator seeded by the
 * CSPRNG: unique and cheap (no system call), but predictable to an observer of many —
 * use it for identifiers that are not secrets (request ids), never for tokens or keys.
 */
void cc_request_id_new(char out[37]);

/** A new random token: nbytes of CSPRNG output, base64url without padding. Caller frees. */
char *cc_token_new(size_t nbytes);

/** base64url (RFC 4648 §5) without padding; caller frees. */
char *cc_base64url_encode(const void *data, size_t n);
/** Decodes base64url (padding optional); caller frees *out. Returns 0 or CC_EINVAL. */
int cc_base64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);
/**
 * Decodes base64url as JWS and cursors need it: no padding, only the url-safe alphabet,
 * zero unused trailing bits (one accepted encoding per value). *out is NUL-terminated
 * (not counted in *outlen); caller frees. Returns 0 or CC_EINVAL.
 */
int cc_base64url_decode_strict(const char *s, size_t n, uint8_t **out, size_t *outlen);
/** Standard base64 with padding; caller frees. */
char *cc_base64_encode(const void *data, size_t n);
/** Lower-case hex; caller frees. */
char *cc_hex_encode(const void *data, size_t n);

/** SHA-256 of data. */
void cc_sha256(const void *data, size_t n, uint8_t out[32]);
/** SHA-256 as lower-case hex (64 chars + NUL). */
void cc_sha256_hex(const void *data, size_t n, char out[65]);
/** HMAC-SHA256. */
void cc_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n, uint8_t out[32]);

/** Constant-time equality of two buffers of the same length. */
bool cc_ct_equal(const void *a, const void *b, size_t n);
/** Constant-time equality of two strings (length may leak, content does not). */
bool cc_ct_streq(const char *a, const char *b);

/**
 * argon2id password hash in the PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
 * Parameters: m = 19 MiB, t = 2, p = 1 (OWASP 2023 minimum). Caller frees *encoded.
 */
int cc_password_hash(const char *password, char **encoded);
/**
 * cc_password_hash with explicit argon2id costs (passes, memory in KiB, lanes), for callers
 * that tune them; the PHC string records them, so cc_password_verify needs no parameters.
 */
int cc_password_hash_with(const char *password, uint32_t t_cost, uint32_t m_kib,
                          uint32_t parallelism, char **encoded);
/** 0 when password matches encoded, CC_EAUTH when not, CC_EINVAL when encoded is malformed. */
int cc_password_verify(const char *encoded, const char *password);

/** The 256-bit master key that seals secrets at rest. */
typedef struct cc_master_key {
    uint8_t key[32];
    char id[17]; /* first 8 bytes of SHA-256(key) in hex: names the key in sealed blobs */
} cc_master_key_t;

/**
 * Loads the master key: from env_value (64 hex chars or base64url of 32 bytes) when not
 * NULL/empty; otherwise, when allow_generate (development), from
 * <data_dir>/secrets/master.key, generating it (mode 0600, directory 0700) on first use.
 * Returns 0, CC_EINVAL (malformed value) or CC_EIO.
 */
int cc_master_key_load(const char *env_value, const char *data_dir, bool allow_generate,
                       cc_master_key_t *out);

/**
 * Seals plaintext with AES-256-GCM under the master key; aad (may be NULL) binds the
 * blob to its context (e.g. "identity.signing_keys:<kid>"). The result is a string
 * "v1.<key id>.<base64url(nonce|ciphertext|tag)>"; caller frees *out.
 */
int cc_seal(const cc_master_key_t *key, const void *plaintext, size_t n, const char *aad,
            char **out);
/**
 * Opens a blob made by cc_seal with the same key and aad. *out is NUL-terminated for
 * convenience (not counted in *outlen); caller frees it (and should wipe it). Returns 0,
 * CC_EINVAL (malformed), CC_EKEY (sealed under another key) or CC_ECRYPTO (tampered).
 */
int cc_unseal(const cc_master_key_t *key, const char *blob, const char *aad, uint8_t **out,
              size_t *outlen);

/** Overwrites n bytes with zeros in a way the compiler keeps. */
void cc_wipe(void *p, size_t n);

#endif
