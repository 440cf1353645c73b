/*
 * Federation: identity as a relying party of a tenant's upstream OpenID Provider
 * (federation.c: the API and the sign-in; federation_rp.c: the upstream protocol).
 * Only the identity service includes this header.
 */
#ifndef IDENTITY_FEDERATION_H
#define IDENTITY_FEDERATION_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "console/errors.h"
#include "console/mem.h"

/** The endpoints of an upstream, from its discovery document (pool strings). */
typedef struct fed_metadata {
    const char *authorization_endpoint, *token_endpoint, *userinfo_endpoint, *jwks_uri;
    const char *token_auth_method; /* client_secret_basic | client_secret_post */
} fed_metadata_t;

/** Starts liboauth2 (curl) once, before any thread; logs its errors through console/log. */
int fed_rp_init(void);
void fed_rp_shutdown(void);

/**
 * True for an absolute http(s) URL without credentials or fragment; http only to a
 * loopback host (127.0.0.1, [::1], localhost), so secrets never cross a network in clear.
 */
bool fed_url_acceptable(const char *url);

/**
 * Fetches <issuer>/.well-known/openid-configuration and checks it: reachable JSON, the
 * same issuer, a jwks_uri whose key set holds a signing key, the code flow (endpoints,
 * response type code, S256 when methods are listed). 0 with *md filled, or the catalogue
 * error (idp_unreachable, idp_issuer_mismatch, idp_no_jwks, idp_no_code_flow) with a
 * sentence in *detail (pool). Blocks (HTTP): call from a worker, outside a transaction.
 */
int fed_discover(cc_pool_t *pool, const char *issuer, fed_metadata_t *md, const char **detail);

/** What the token endpoint and the ID token gave (borrowed into the pool). */
typedef struct fed_tokens {
    json_t *id_claims; /* the verified ID token's payload */
    json_t *claims;    /* userinfo (when offered) merged under the ID token's claims */
    const char *access_token;
} fed_tokens_t;

/** What an upstream sign-in must match. */
typedef struct fed_expect {
    const char *issuer, *client_id, *client_secret, *redirect_uri, *code_verifier, *nonce;
    const fed_metadata_t *md;
    int64_t now, leeway_s;
} fed_expect_t;

/**
 * Exchanges code at the token endpoint (client secret, PKCE verifier), verifies the ID
 * token (signature against the upstream JWKS with an asymmetric algorithm only; iss, aud,
 * azp, exp, iat, nonce, sub) and reads userinfo (its sub must match). 0 with *out, or -1
 * with a reason in *why (pool; for the log and the audit record, never a token).
 */
int fed_sign_in(cc_pool_t *pool, const char *code, const fed_expect_t *e, fed_tokens_t *out,
                const char **why);

/**
 * Checks a decoded ID token payload against e (no signature). NULL when acceptable, else
 * the reason. Exposed for the unit tests.
 */
const char *fed_check_id_claims(json_t *claims, const fed_expect_t *e);

/**
 * Verifies a compact JWS against a JWK set (JSON text): an asymmetric alg only (RS*, PS*,
 * ES*), the key chosen by kid when given. The payload as a new JSON object, or NULL with
 * *why.
 */
json_t *fed_verify_jws(const char *jws, const char *jwks_json, const char **why);

#endif
