/*
 * The relying-party side of federation: discovery, the token exchange, the ID token and
 * userinfo of a tenant's upstream OpenID Provider.
 *
 * liboauth2 carries the HTTP calls (its curl client: timeouts, TLS verification, the
 * form post with client_secret_basic or client_secret_post, the bearer call to userinfo).
 * Its OIDC relying party is not used for the ID token: it accepted a token with a wrong
 * iss, a wrong aud and no nonce (LIBS.md), has no discovery, and keeps its sessions in one
 * host's shared memory. So the signature is checked here with cjose against the upstream's
 * JWKS, with an asymmetric algorithm pinned by the key type (never "none" or HMAC: no
 * algorithm confusion), and every claim is checked by fed_check_id_claims.
 */
#include <cjose/cjose.h>
#include <oauth2/http.h>
#include <oauth2/log.h>
#include <oauth2/mem.h>
#include <oauth2/util.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "console/crypto.h"
#include "console/json.h"
#include "console/log.h"
#include "console/str.h"
#include "federation.h"

#define HTTP_TIMEOUT_S 10
#define SUB_MAX 255

/* The upstreams' key sets are cached per jwks_uri: reused for JWKS_TTL_S, kept up to
 * JWKS_STALE_S when the upstream cannot answer, and fetched again at once when a token
 * names a kid the cached set lacks (a rotation), at most every JWKS_FORCE_MIN_S per
 * upstream so that forged kids cannot turn the console against the upstream. */
#define JWKS_TTL_S 600
#define JWKS_STALE_S 86400
#define JWKS_FORCE_MIN_S 30
#define JWKS_CACHE_MAX 64

typedef struct jwks_entry {
    char *uri, *json;
    int64_t fetched, forced; /* the last fetch; the last fetch for an unknown kid */
} jwks_entry_t;

static pthread_mutex_t jwks_lock = PTHREAD_MUTEX_INITIALIZER;
static jwks_entry_t jwks_cache[JWKS_CACHE_MAX];

static const char no_matching_key[] =
    "no key of the upstream's key set matches the ID token (kid, alg)";

static oauth2_log_t *rp_log;

static void on_oauth2_log(oauth2_log_sink_t *sink, const char *filename, unsigned long line,
                          const char *function, oauth2_log_level_t level, const char *msg)
{
    (void)sink;
    (void)filename;
    (void)line;
    (void)function;
    (void)level;
    /* errors only (the sink's level): URLs and curl's reasons, never a body or a secret */
    cc_log_warn("liboauth2: %s", msg);
}

int fed_rp_init(void)
{
    oauth2_log_sink_t *sink = oauth2_log_sink_create(OAUTH2_LOG_ERROR, on_oauth2_log, NULL);
    rp_log = oauth2_init(OAUTH2_LOG_ERROR, sink);
    return rp_log ? 0 : CC_EINVAL;
}

void fed_rp_shutdown(void)
{
    pthread_mutex_lock(&jwks_lock);
    for (int i = 0; i < JWKS_CACHE_MAX; i++) {
        free(jwks_cache[i].uri);
        free(jwks_cache[i].json);
        jwks_cache[i] = (jwks_entry_t){0};
    }
    pthread_mutex_unlock(&jwks_lock);
    if (rp_log)
        oauth2_shutdown(rp_log);
    rp_log = NULL;
}

static bool host_is_loopback(const char *host, size_t n)
{
    return cc_strieq_n(host, n, "127.0.0.1") || cc_strieq_n(host, n, "localhost") ||
           cc_strieq_n(host, n, "[::1]");
}

bool fed_url_acceptable(const char *url)
{
    if (url == NULL || strlen(url) > 2048 || cc_has_control(url, strlen(url)) ||
        strpbrk(url, " \"<>\\^`{|}#") != NULL)
        return false;
    const char *rest;
    bool https = strncasecmp(url, "https://", 8) == 0;
    if (https)
        rest = url + 8;
    else if (strncasecmp(url, "http://", 7) == 0)
        rest = url + 7;
    else
        return false;
    size_t auth = strcspn(rest, "/?");
    if (auth == 0 || memchr(rest, '@', auth) != NULL)
        return false;
    size_t host = auth;
    if (rest[0] == '[') {
        const char *close = memchr(rest, ']', auth);
        if (close == NULL)
            return false;
        host = (size_t)(close - rest) + 1;
    } else {
        const char *colon = memchr(rest, ':', auth);
        if (colon)
            host = (size_t)(colon - rest);
    }
    if (host == 0)
        return false;
    return https || host_is_loopback(rest, host);
}

/* ---- HTTP through liboauth2 ---- */

/* GET url (bearer optional): the body (pool) and status, or NULL when unreachable. */
static const char *http_get(cc_pool_t *pool, const char *url, const char *bearer, unsigned *status)
{
    oauth2_http_call_ctx_t *ctx = oauth2_http_call_ctx_init(rp_log);
    oauth2_http_call_ctx_timeout_set(rp_log, ctx, HTTP_TIMEOUT_S);
    oauth2_http_call_ctx_ssl_verify_set(rp_log, ctx, true);
    if (bearer)
        oauth2_http_call_ctx_bearer_token_set(rp_log, ctx, (char *)bearer);
    char *body = NULL;
    oauth2_http_status_code_t code = 0;
    bool ok = oauth2_http_get(rp_log, url, NULL, ctx, &body, &code);
    oauth2_http_call_ctx_free(rp_log, ctx);
    *status = (unsigned)code;
    const char *out = ok && body ? cc_pool_strdup(pool, body) : NULL;
    if (body)
        oauth2_mem_free(body);
    return out;
}

static json_t *json_object_from(cc_pool_t *pool, const char *text)
{
    if (text == NULL)
        return NULL;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v ? cc_json_on_pool(pool, v) : NULL;
}

static const char *str_member(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), s) == 0) return true;
    return false;
}

/* The key types an algorithm may be verified with: RSA for RS and PS, EC for ES. */
static bool alg_allowed(const char *alg, cjose_jwk_kty_t *kty)
{
    static const char *const rsa[] = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"};
    static const char *const ec[] = {"ES256", "ES384", "ES512"};
    for (size_t i = 0; alg && i < CC_ARRAY_SIZE(rsa); i++)
        if (strcmp(alg, rsa[i]) == 0) {
            *kty = CJOSE_JWK_KTY_RSA;
            return true;
        }
    for (size_t i = 0; alg && i < CC_ARRAY_SIZE(ec); i++)
        if (strcmp(alg, ec[i]) == 0) {
            *kty = CJOSE_JWK_KTY_EC;
            return true;
        }
    return false;
}

/* Whether a JWKS (parsed) has at least one key usable for verifying signatures. */
static bool jwks_has_signing_key(json_t *set)
{
    json_t *keys = json_object_get(set, "keys");
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *kty = str_member(k, "kty"), *use = str_member(k, "use");
        if (kty && (strcmp(kty, "RSA") == 0 || strcmp(kty, "EC") == 0) &&
            (use == NULL || strcmp(use, "sig") == 0))
            return true;
    }
    return false;
}

int fed_discover(cc_pool_t *pool, const char *issuer, fed_metadata_t *md, const char **detail)
{
    memset(md, 0, sizeof(*md));
    size_t n = strlen(issuer);
    const char *url = cc_pool_printf(pool, "%.*s/.well-known/openid-configuration",
                                     (int)(n && issuer[n - 1] == '/' ? n - 1 : n), issuer);
    unsigned status = 0;
    const char *body = http_get(pool, url, NULL, &status);
    json_t *doc = status == 200 ? json_object_from(pool, body) : NULL;
    if (doc == NULL) {
        *detail = body == NULL ? cc_pool_printf(pool, "%s could not be reached.", url)
                  : status != 200
                      ? cc_pool_printf(pool, "%s answered HTTP %u, not the discovery document.",
                                       url, status)
                      : cc_pool_printf(pool, "%s is not a JSON object.", url);
        return CC_ERR_IDP_UNREACHABLE;
    }
    const char *iss = str_member(doc, "issuer");
    if (iss == NULL || strcmp(iss, issuer) != 0) {
        *detail = cc_pool_printf(pool,
                                 "The discovery document names the issuer \"%s\", not the "
                                 "configured one; use exactly the upstream's issuer.",
                                 iss ? iss : "(none)");
        return CC_ERR_IDP_ISSUER_MISMATCH;
    }
    md->authorization_endpoint = str_member(doc, "authorization_endpoint");
    md->token_endpoint = str_member(doc, "token_endpoint");
    md->userinfo_endpoint = str_member(doc, "userinfo_endpoint");
    json_t *rt = json_object_get(doc, "response_types_supported");
    json_t *ccm = json_object_get(doc, "code_challenge_methods_supported");
    if (!fed_url_acceptable(md->authorization_endpoint) ||
        !fed_url_acceptable(md->token_endpoint) || !json_is_array(rt) || !array_has(rt, "code") ||
        (json_is_array(ccm) && !array_has(ccm, "S256"))) {
        *detail = "The upstream does not offer the authorization code flow with S256 PKCE "
                  "(authorization_endpoint, token_endpoint, response type code).";
        return CC_ERR_IDP_NO_CODE_FLOW;
    }
    if (md->userinfo_endpoint && !fed_url_acceptable(md->userinfo_endpoint))
        md->userinfo_endpoint = NULL;
    json_t *am = json_object_get(doc, "token_endpoint_auth_methods_supported");
    if (!json_is_array(am) || array_has(am, "client_secret_basic"))
        md->token_auth_method = "client_secret_basic";
    else if (array_has(am, "client_secret_post"))
        md->token_auth_method = "client_secret_post";
    else {
        *detail = "The upstream's token endpoint accepts neither client_secret_basic nor "
                  "client_secret_post.";
        return CC_ERR_IDP_NO_CODE_FLOW;
    }
    md->jwks_uri = str_member(doc, "jwks_uri");
    if (!fed_url_acceptable(md->jwks_uri)) {
        *detail = "The discovery document has no usable jwks_uri.";
        return CC_ERR_IDP_NO_JWKS;
    }
    const char *jwks = http_get(pool, md->jwks_uri, NULL, &status);
    json_t *set = status == 200 ? json_object_from(pool, jwks) : NULL;
    if (set == NULL || !jwks_has_signing_key(set)) {
        *detail = cc_pool_printf(pool, "The key set at %s %s.", md->jwks_uri,
                                 set == NULL ? "could not be fetched as JSON"
                                             : "has no RSA or EC signing key");
        return CC_ERR_IDP_NO_JWKS;
    }
    return 0;
}

/* ---- the ID token ---- */

/* Three base64url parts (no padding), within 16 KiB: cjose's decoder asserts (aborts the
 * process) on some malformed input, found by tests/fuzz/idtoken.c, so nothing else reaches
 * it. */
static bool compact_jws_shape(const char *t)
{
    size_t n = strlen(t), dots = 0;
    if (n == 0 || n > 16384)
        return false;
    for (const char *c = t; *c; c++) {
        if (*c == '.')
            dots++;
        else if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') ||
                   (*c >= '0' && *c <= '9') || *c == '-' || *c == '_'))
            return false;
    }
    return dots == 2 && t[0] != '.' && strstr(t, "..") == NULL;
}

static bool b64url_ok(json_t *v)
{
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (s == NULL || *s == '\0' || strlen(s) > 2048)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return false;
    return true;
}

/* Only the public members of an RSA or EC key, checked (cjose asserts on malformed
 * base64 in them too): a new object, or NULL for anything else. */
static json_t *public_jwk(json_t *k)
{
    const char *kty = str_member(k, "kty"), *crv = str_member(k, "crv");
    if (kty && strcmp(kty, "RSA") == 0 && b64url_ok(json_object_get(k, "n")) &&
        b64url_ok(json_object_get(k, "e")))
        return json_pack("{s:s, s:O, s:O}", "kty", "RSA", "n", json_object_get(k, "n"), "e",
                         json_object_get(k, "e"));
    if (kty && strcmp(kty, "EC") == 0 && crv &&
        (strcmp(crv, "P-256") == 0 || strcmp(crv, "P-384") == 0 || strcmp(crv, "P-521") == 0) &&
        b64url_ok(json_object_get(k, "x")) && b64url_ok(json_object_get(k, "y")))
        return json_pack("{s:s, s:s, s:O, s:O}", "kty", "EC", "crv", crv, "x",
                         json_object_get(k, "x"), "y", json_object_get(k, "y"));
    return NULL;
}

json_t *fed_verify_jws(const char *compact, const char *jwks_json, const char **why)
{
    cjose_err err;
    json_t *out = NULL, *set = NULL;
    if (!compact_jws_shape(compact)) {
        *why = "the ID token is not a compact JWS";
        return NULL;
    }
    cjose_jws_t *jws = cjose_jws_import(compact, strlen(compact), &err);
    if (jws == NULL) {
        *why = "the ID token is not a compact JWS";
        return NULL;
    }
    cjose_header_t *hdr = cjose_jws_get_protected(jws);
    const char *alg = hdr ? cjose_header_get(hdr, CJOSE_HDR_ALG, &err) : NULL;
    const char *kid = hdr ? cjose_header_get(hdr, CJOSE_HDR_KID, &err) : NULL;
    cjose_jwk_kty_t want;
    if (!alg_allowed(alg, &want)) {
        *why = "the ID token's algorithm is not an asymmetric one (none and HMAC are refused)";
        goto Exit;
    }
    set = json_loads(jwks_json ? jwks_json : "", 0, NULL);
    json_t *keys = json_object_get(set, "keys");
    size_t i;
    json_t *k;
    bool verified = false, candidate = false;
    json_array_foreach(keys, i, k)
    {
        const char *use = str_member(k, "use"), *kkid = str_member(k, "kid");
        const char *kalg = str_member(k, "alg");
        if ((use && strcmp(use, "sig") != 0) || (kid && (!kkid || strcmp(kid, kkid) != 0)) ||
            (kalg && strcmp(kalg, alg) != 0))
            continue;
        json_t *pub = public_jwk(k);
        char *text = pub ? json_dumps(pub, JSON_COMPACT) : NULL;
        json_decref(pub);
        cjose_jwk_t *jwk = text ? cjose_jwk_import(text, strlen(text), &err) : NULL;
        free(text);
        if (jwk == NULL)
            continue;
        if (cjose_jwk_get_kty(jwk, &err) == want) {
            candidate = true;
            verified = cjose_jws_verify(jws, jwk, &err);
        }
        cjose_jwk_release(jwk);
        if (verified)
            break;
    }
    if (!verified) {
        *why = candidate ? "the ID token's signature does not verify with the upstream's key"
                         : no_matching_key;
        goto Exit;
    }
    uint8_t *plain = NULL;
    size_t plen = 0;
    if (!cjose_jws_get_plaintext(jws, &plain, &plen, &err) ||
        (out = json_loadb((const char *)plain, plen, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
        !json_is_object(out)) {
        json_decref(out);
        out = NULL;
        *why = "the ID token's payload is not a JSON object";
    }
Exit:
    json_decref(set);
    cjose_jws_release(jws);
    return out;
}

/* A NumericDate claim (RFC 7519: seconds, possibly fractional) within 0..10^12, so the
 * arithmetic on it cannot overflow. */
static bool int_claim(json_t *c, const char *name, int64_t *v)
{
    json_t *x = json_object_get(c, name);
    double d;
    if (json_is_integer(x))
        d = (double)json_integer_value(x);
    else if (json_is_real(x))
        d = json_real_value(x);
    else
        return false;
    if (!(d >= 0 && d <= 1e12)) /* also refuses NaN */
        return false;
    *v = (int64_t)d;
    return true;
}

const char *fed_check_id_claims(json_t *c, const fed_expect_t *e)
{
    const char *iss = str_member(c, "iss"), *sub = str_member(c, "sub");
    if (iss == NULL || strcmp(iss, e->issuer) != 0)
        return "the ID token's issuer (iss) is not the configured issuer";
    json_t *aud = json_object_get(c, "aud");
    size_t naud = 0;
    bool ours = false;
    if (json_is_string(aud)) {
        naud = 1;
        ours = strcmp(json_string_value(aud), e->client_id) == 0;
    } else if (json_is_array(aud)) {
        naud = json_array_size(aud);
        ours = array_has(aud, e->client_id);
    }
    if (!ours)
        return "the ID token's audience (aud) is not this client";
    json_t *azp = json_object_get(c, "azp");
    if ((naud > 1 || azp != NULL) &&
        (!json_is_string(azp) || strcmp(json_string_value(azp), e->client_id) != 0))
        return "the ID token's authorized party (azp) is not this client";
    int64_t exp = 0, iat = 0;
    if (!int_claim(c, "exp", &exp) || exp + e->leeway_s < e->now)
        return "the ID token has expired (exp)";
    if (!int_claim(c, "iat", &iat) || iat - e->leeway_s > e->now)
        return "the ID token's issue time (iat) is missing or in the future";
    const char *nonce = str_member(c, "nonce");
    if (nonce == NULL || strlen(nonce) != strlen(e->nonce) || !cc_ct_streq(nonce, e->nonce))
        return "the ID token's nonce is not the one of this sign-in";
    if (sub == NULL || *sub == '\0' || strlen(sub) > SUB_MAX || cc_has_control(sub, strlen(sub)))
        return "the ID token has no usable subject (sub)";
    return NULL;
}

/* POST the code to the token endpoint: the parsed answer, or NULL with *why. */
static json_t *token_request(cc_pool_t *pool, const char *code, const fed_expect_t *e,
                             const char **why)
{
    oauth2_nv_list_t *params = oauth2_nv_list_init(rp_log);
    oauth2_nv_list_add(rp_log, params, "grant_type", "authorization_code");
    oauth2_nv_list_add(rp_log, params, "code", code);
    oauth2_nv_list_add(rp_log, params, "redirect_uri", e->redirect_uri);
    oauth2_nv_list_add(rp_log, params, "code_verifier", e->code_verifier);
    oauth2_http_call_ctx_t *ctx = oauth2_http_call_ctx_init(rp_log);
    oauth2_http_call_ctx_timeout_set(rp_log, ctx, HTTP_TIMEOUT_S);
    oauth2_http_call_ctx_ssl_verify_set(rp_log, ctx, true);
    if (strcmp(e->md->token_auth_method, "client_secret_post") == 0) {
        oauth2_nv_list_add(rp_log, params, "client_id", e->client_id);
        oauth2_nv_list_add(rp_log, params, "client_secret", e->client_secret);
    } else {
        oauth2_http_call_ctx_basic_auth_set(rp_log, ctx, e->client_id, e->client_secret, true);
    }
    char *body = NULL;
    oauth2_http_status_code_t status = 0;
    bool ok = oauth2_http_post_form(rp_log, e->md->token_endpoint, params, ctx, &body, &status);
    oauth2_http_call_ctx_free(rp_log, ctx);
    oauth2_nv_list_free(rp_log, params);
    json_t *doc = ok && body ? json_object_from(pool, body) : NULL;
    if (body)
        oauth2_mem_free(body);
    if (!ok) {
        *why = "the upstream's token endpoint could not be reached";
        return NULL;
    }
    if (status != 200 || doc == NULL) {
        const char *err = doc ? str_member(doc, "error") : NULL;
        *why =
            cc_pool_printf(pool, "the upstream's token endpoint refused the code (HTTP %u%s%s)",
                           (unsigned)status, err ? ", " : "", err && strlen(err) < 64 ? err : "");
        return NULL;
    }
    return doc;
}

/* The cache entry of uri (lock held): the existing one, else a free or the oldest slot. */
static jwks_entry_t *jwks_slot(const char *uri)
{
    jwks_entry_t *victim = &jwks_cache[0];
    for (int i = 0; i < JWKS_CACHE_MAX; i++) {
        jwks_entry_t *x = &jwks_cache[i];
        if (x->uri && strcmp(x->uri, uri) == 0)
            return x;
        if (x->uri == NULL ? victim->uri != NULL : victim->uri && x->fetched < victim->fetched)
            victim = x;
    }
    free(victim->uri);
    free(victim->json);
    *victim = (jwks_entry_t){.uri = strdup(uri)};
    return victim->uri ? victim : NULL;
}

/*
 * The key set at uri (pool copy), from the cache while fresh; force asks for a fetch
 * because a token named a kid the cached set lacks (granted once per JWKS_FORCE_MIN_S;
 * *fetched says whether it happened). NULL when there is none to use.
 */
static const char *jwks_get(cc_pool_t *pool, const char *uri, bool force, int64_t now,
                            bool *fetched)
{
    const char *out = NULL;
    *fetched = false;
    pthread_mutex_lock(&jwks_lock);
    jwks_entry_t *x = jwks_slot(uri);
    bool fresh = x && x->json && now - x->fetched < JWKS_TTL_S && now >= x->fetched;
    bool may_force = x && (x->forced == 0 || now - x->forced >= JWKS_FORCE_MIN_S);
    if (x && x->json && (fresh && !(force && may_force)))
        out = cc_pool_strdup(pool, x->json);
    pthread_mutex_unlock(&jwks_lock);
    if (out || x == NULL || (force && !may_force))
        return out; /* the cached set, or a refused forced fetch (the caller keeps its own) */

    /* fetched outside the lock: one slow upstream must not stall the others */
    unsigned status = 0;
    const char *body = http_get(pool, uri, NULL, &status);
    json_t *set = status == 200 ? json_object_from(pool, body) : NULL;
    bool usable = set && json_is_array(json_object_get(set, "keys"));
    pthread_mutex_lock(&jwks_lock);
    x = jwks_slot(uri);
    if (x && usable) {
        char *copy = strdup(body);
        if (copy) {
            free(x->json);
            x->json = copy;
            x->fetched = now;
        }
        if (force)
            x->forced = now;
        out = body;
        *fetched = true;
    } else if (x && x->json && now - x->fetched < JWKS_STALE_S) {
        cc_log_warn("the key set at %s could not be fetched (HTTP %u); using the cached one", uri,
                    status);
        if (force)
            x->forced = now;
        out = cc_pool_strdup(pool, x->json);
    }
    pthread_mutex_unlock(&jwks_lock);
    return out;
}

int fed_sign_in(cc_pool_t *pool, const char *code, const fed_expect_t *e, fed_tokens_t *out,
                const char **why)
{
    memset(out, 0, sizeof(*out));
    json_t *tok = token_request(pool, code, e, why);
    if (tok == NULL)
        return -1;
    const char *id_token = str_member(tok, "id_token");
    out->access_token = str_member(tok, "access_token");
    const char *type = str_member(tok, "token_type");
    if (id_token == NULL) {
        *why = "the upstream's token answer has no ID token";
        return -1;
    }
    unsigned status = 0;
    bool fetched;
    const char *jwks = jwks_get(pool, e->md->jwks_uri, false, e->now, &fetched);
    if (jwks == NULL) {
        *why = "the upstream's key set could not be fetched";
        return -1;
    }
    json_t *claims = fed_verify_jws(id_token, jwks, why);
    if (claims == NULL && *why == no_matching_key && !fetched) {
        /* a kid the cached set lacks: the upstream may have rotated its keys */
        const char *again = jwks_get(pool, e->md->jwks_uri, true, e->now, &fetched);
        if (again && fetched)
            claims = fed_verify_jws(id_token, again, why);
    }
    if (claims == NULL)
        return -1;
    out->id_claims = cc_json_on_pool(pool, claims);
    if ((*why = fed_check_id_claims(claims, e)) != NULL)
        return -1;
    json_t *merged = cc_json_on_pool(pool, json_object());
    if (e->md->userinfo_endpoint && out->access_token &&
        (type == NULL || strcasecmp(type, "bearer") == 0)) {
        const char *body = http_get(pool, e->md->userinfo_endpoint, out->access_token, &status);
        json_t *ui = status == 200 ? json_object_from(pool, body) : NULL;
        if (ui == NULL) {
            *why = "the upstream's userinfo endpoint did not answer a JSON object";
            return -1;
        }
        const char *usub = str_member(ui, "sub");
        if (usub == NULL || strcmp(usub, str_member(claims, "sub")) != 0) {
            *why = "the upstream's userinfo names another subject than the ID token";
            return -1;
        }
        json_object_update(merged, ui);
    }
    json_object_update(merged, claims); /* the signed claims win */
    out->claims = merged;
    return 0;
}
