/*
 * CBOR (RFC 8949) reading helpers over libcbor and COSE_Key public keys (RFC 9052/9053)
 * as WebAuthn uses them: ES256 (P-256), RS256 (RSASSA-PKCS1-v1_5 with SHA-256) and EdDSA
 * (Ed25519), turned into OpenSSL keys, and signature verification with them.
 * Thread-safe; no global state.
 */
#ifndef CONSOLE_COSE_H
#define CONSOLE_COSE_H

#include <cbor.h>
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

/* COSE algorithm identifiers (IANA "COSE Algorithms") */
#define CC_COSE_ES256 (-7)
#define CC_COSE_EDDSA (-8)
#define CC_COSE_RS256 (-257)

/**
 * Decodes one CBOR data item from the start of data; *used gets its length in bytes (the
 * caller decides whether trailing bytes are allowed). Indefinite-length strings, maps
 * with duplicate keys and nesting deeper than 16 levels are refused. Returns a new item
 * (cbor_decref it) or NULL when the bytes are not one well-formed item.
 */
cbor_item_t *cc_cbor_load(const uint8_t *data, size_t len, size_t *used);
/** The value of integer key in a map (borrowed), or NULL. */
cbor_item_t *cc_cbor_map_int(const cbor_item_t *map, int64_t key);
/** The value of text key in a map (borrowed), or NULL. */
cbor_item_t *cc_cbor_map_str(const cbor_item_t *map, const char *key);
/** An integer item (unsigned or negative) as int64; 0, or CC_EINVAL when not one/too large. */
int cc_cbor_int(const cbor_item_t *item, int64_t *out);

/** A COSE public key: its algorithm and the OpenSSL key. */
typedef struct cc_cose_key {
    int64_t alg;   /* CC_COSE_* */
    EVP_PKEY *key; /* owned */
} cc_cose_key_t;

/**
 * Parses a COSE_Key (a CBOR map) at the start of data: kty/alg/crv and the coordinates
 * must agree (EC2 P-256 with 32-byte x and y on the curve for ES256; RSA n of 2048-4096
 * bits and e for RS256; OKP Ed25519 with a 32-byte x for EdDSA). *used gets its length.
 * Returns 0, CC_EINVAL (malformed or inconsistent) or CC_ENOENT (an algorithm not supported).
 */
int cc_cose_key_parse(const uint8_t *data, size_t len, size_t *used, cc_cose_key_t *out);
/** Frees the OpenSSL key. */
void cc_cose_key_dispose(cc_cose_key_t *k);

/**
 * Verifies sig over msg with key under alg (ES256: a DER ECDSA signature over SHA-256;
 * RS256: PKCS#1 v1.5 SHA-256; EdDSA: Ed25519 over msg itself). The key's type must match
 * alg. Returns 0, CC_EAUTH (wrong signature or key/alg mismatch) or CC_EINVAL.
 */
int cc_cose_verify(EVP_PKEY *key, int64_t alg, const uint8_t *msg, size_t msglen,
                   const uint8_t *sig, size_t siglen);

#endif
