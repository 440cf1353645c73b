/*
 * Authentication: verification of ES256 access tokens against the identity service's
 * JWKS, and signing (for the identity service).
 *
 * libjwt 1.10 validates no claims, is open to algorithm confusion (LIBS.md), refuses any
 * typ but "JWT" (so it cannot verify RFC 9068 "at+jwt" access tokens, nor sign them) and
 * re-parses the key PEM on every call (~0.3 ms). So tokens are parsed here, alg is pinned
 * to ES256 before anything else, a kid is required, the signature is checked with OpenSSL
 * against the parsed key of that kid only, and exp, nbf, iat, iss and aud are checked
 * here. libjwt remains in the tests as the reference that proves the attacks are real.
 */
#ifndef CONSOLE_AUTH_H
#define CONSOLE_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "console/mem.h"

/** Who is calling, from a verified access token. Strings live in the pool given to verify. */
typedef enum cc_principal_kind { CC_PRINCIPAL_USER, CC_PRINCIPAL_API_CLIENT } cc_principal_kind_t;

typedef struct cc_principal {
    cc_principal_kind_t kind; /* from the "typ"-like claim "kind" ("user" | "api_client") */
    const char *sub;          /* user id or API client id */
    const char *tenant_id;    /* "tid": home tenant */
    const char *msp_id;       /* "msp": root of the home tenant's tree */
    const char *scope;        /* space-separated scopes, may be "" */
    const char *client_id;    /* "client_id", the OAuth client the token was issued to */
    const char *jti;
    const char *act_sub; /* "act": {"sub": …} when impersonating, else NULL */
    json_t *amr;         /* borrowed array, may be NULL */
    int64_t exp, iat;
    json_t *claims; /* the whole payload; registered on the pool */
} cc_principal_t;

/** True when the principal's scope list contains scope (exact word match). */
bool cc_principal_has_scope(const cc_principal_t *p, const char *scope);

typedef struct cc_jwks cc_jwks_t;

/**
 * A JWKS cache for keys published at url (may be NULL: keys only via cc_jwks_load).
 * min_refresh_s rate-limits fetches triggered by unknown kids (e.g. 10). Thread-safe.
 */
cc_jwks_t *cc_jwks_new(const char *url, int min_refresh_s);
void cc_jwks_free(cc_jwks_t *jwks);
/**
 * Replaces the key set with the EC P-256 keys of a JWKS document ({"keys": [...]});
 * keys that are not kty=EC/crv=P-256 (or use != sig) are skipped. Returns 0 or CC_EINVAL.
 */
int cc_jwks_load(cc_jwks_t *jwks, const char *json_text);
/** Fetches the url with libcurl (blocking, 5 s timeout) and loads it. 0, CC_EIO, CC_EINVAL. */
int cc_jwks_refresh(cc_jwks_t *jwks);
/** True when a key with this kid is cached. */
bool cc_jwks_has(cc_jwks_t *jwks, const char *kid);
/** Number of cached keys. */
int cc_jwks_count(cc_jwks_t *jwks);

typedef struct cc_auth_opts {
    const char *issuer;   /* required "iss" */
    const char *audience; /* required in "aud" (string or array) */
    int leeway_s;         /* clock skew allowed for exp/nbf/iat, e.g. 30 */
    bool may_fetch;       /* an unknown kid may trigger a (blocking, rate-limited) refresh */
} cc_auth_opts_t;

/**
 * Verifies a compact JWS access token. On success *out (pool memory) is the principal.
 * Returns 0, CC_EINVAL (malformed, wrong alg/typ, bad claims), CC_EKEY (unknown kid and
 * no fetch allowed or it did not help), CC_EAUTH (bad signature, wrong iss/aud),
 * CC_EEXPIRED (exp passed or nbf/iat in the future), CC_EIO (an unknown kid, and the key
 * set could not be fetched: the issuer is down, not the token bad). *why (static string)
 * names the reason for the log; never the token.
 */
int cc_auth_verify(cc_jwks_t *jwks, const cc_auth_opts_t *opts, const char *token, cc_pool_t *pool,
                   cc_principal_t **out, const char **why);

/** Reads the kid from a token's header without verifying anything; caller frees. */
char *cc_jwt_peek_kid(const char *token);

/**
 * Signs claims (borrowed) as an ES256 JWS with header {alg: ES256, typ: "at+jwt"
 * (typ may be NULL for "JWT"), kid}. priv_pem is a PEM EC P-256 private key. Caller
 * frees *out. Returns 0 or CC_ECRYPTO.
 */
int cc_jwt_sign_es256(const char *priv_pem, const char *kid, const char *typ, json_t *claims,
                      char **out);

/**
 * Generates a new EC P-256 key pair: private key PEM (PKCS#8) and the public JWK
 * (new reference: {kty, crv, x, y, kid, use: "sig", alg: "ES256"}). Caller frees *priv_pem.
 */
int cc_es256_generate(const char *kid, char **priv_pem, json_t **public_jwk);

/** The public JWK of a private key PEM (new reference). */
int cc_es256_public_jwk(const char *priv_pem, const char *kid, json_t **public_jwk);

#endif
