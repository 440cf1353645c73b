/*
 * Authentication: the JWKS cache and ES256 access-token verification.
 *
 * Why the signature is checked with OpenSSL and not with libjwt's jwt_decode():
 *  - libjwt 1.10.2 rejects every token whose header has a "typ" other than "JWT"
 *    (jwt_verify_head), so it cannot verify the RFC 9068 "at+jwt" access tokens that
 *    the identity service issues (auth.h) — that alone rules it out;
 *  - it picks the algorithm from the token header (alg confusion: HS256 keyed with the
 *    public key PEM, alg=none with a NULL key), which we would have to fence off anyway;
 *  - it re-parses the public key PEM on every call: ~0.3 ms with OpenSSL 3's decoders,
 *    measured at ~6x the whole verification done here with a cached EVP_PKEY (~60 µs).
 * So the header is decoded and pinned here (alg == "ES256", kid required), the key is
 * chosen by kid only, and the JOSE signature (R||S, 64 bytes) is converted to DER and
 * checked with EVP_DigestVerify against the cached P-256 key. libjwt stays the reference
 * the unit tests cross-check against (it signs and verifies the same R||S format).
 *
 * Threads: the key set is an immutable array swapped under a writer-preferring rwlock;
 * a verifier holds the read lock for its one signature check (~50 µs), a reload parses
 * the new document outside the lock and takes the write lock only to swap the array, then
 * frees the old keys (no verifier can still be using them). Fetches are serialized by
 * fetch_mu, which also guards the unknown-kid rate limit.
 */
#include "console/auth.h"

#include "console/crypto.h"

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "console/errors.h"
#include "console/log.h"
#include "console/str.h"

#define TOKEN_MAX 8192       /* longest token accepted, in bytes */
#define KID_MAX 128          /* longest kid accepted */
#define JWKS_MAX_KEYS 64     /* usable keys kept from one document */
#define JWKS_MAX_BODY 262144 /* largest JWKS response accepted */
#define JWKS_TIMEOUT_MS 5000 /* whole-transfer timeout of a fetch */
#define P256_COORD 32        /* bytes in an x or y coordinate, and in r or s */

typedef struct jwk_entry {
    char *kid;
    EVP_PKEY *pkey; /* EC P-256 public key, checked on the curve */
} jwk_entry_t;

struct cc_jwks {
    pthread_rwlock_t lock; /* guards keys and nkeys */
    jwk_entry_t *keys;
    int nkeys;

    char *url; /* NULL: keys only via cc_jwks_load */
    int min_refresh_s;

    pthread_mutex_t fetch_mu;       /* serializes fetches; guards the two fields below */
    bool kid_fetched;               /* a fetch was triggered by an unknown kid ... */
    struct timespec last_kid_fetch; /* ... at this CLOCK_MONOTONIC time */
    bool last_fetch_failed;         /* the key set could not be fetched the last time */

    /* tokens whose signature verified with the current keys: SHA-256 of the token and
     * until when it may be trusted (min(exp, 5 min)); cleared when the keys change */
    pthread_mutex_t verified_mu;
    struct verified {
        uint8_t digest[32];
        int64_t until;
    } * verified;
};

#define VERIFIED_SLOTS 4096
#define VERIFIED_MAX_S 300

static size_t verified_slot(const uint8_t d[32])
{
    return ((size_t)d[0] << 8 | d[1]) % VERIFIED_SLOTS;
}

static bool verified_seen(cc_jwks_t *jwks, const uint8_t d[32], int64_t now)
{
    pthread_mutex_lock(&jwks->verified_mu);
    const struct verified *v = &jwks->verified[verified_slot(d)];
    bool hit = v->until > now && memcmp(v->digest, d, 32) == 0;
    pthread_mutex_unlock(&jwks->verified_mu);
    return hit;
}

static void verified_put(cc_jwks_t *jwks, const uint8_t d[32], int64_t until)
{
    pthread_mutex_lock(&jwks->verified_mu);
    struct verified *v = &jwks->verified[verified_slot(d)];
    memcpy(v->digest, d, 32);
    v->until = until;
    pthread_mutex_unlock(&jwks->verified_mu);
}

/** Decodes a base64url segment holding a JSON object (duplicate keys rejected). */
static json_t *decode_json_object(const char *s, size_t n)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    if (cc_base64url_decode_strict(s, n, &raw, &len) != 0)
        return NULL;
    json_error_t err;
    json_t *j = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, &err);
    free(raw);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* ---- compact JWS splitting ---- */

typedef struct jws_parts {
    const char *head, *body, *sig;
    size_t head_len, body_len, sig_len;
} jws_parts_t;

/** Splits a compact JWS into its three segments; the alphabet is checked when decoding. */
static int jws_split(const char *token, jws_parts_t *p)
{
    if (token == NULL)
        return CC_EINVAL;
    size_t n = strnlen(token, TOKEN_MAX + 1);
    if (n == 0 || n > TOKEN_MAX)
        return CC_EINVAL;
    const char *d1 = memchr(token, '.', n);
    if (d1 == NULL)
        return CC_EINVAL;
    const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token));
    if (d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)) != NULL)
        return CC_EINVAL;
    p->head = token;
    p->head_len = (size_t)(d1 - token);
    p->body = d1 + 1;
    p->body_len = (size_t)(d2 - p->body);
    p->sig = d2 + 1;
    p->sig_len = n - (size_t)(p->sig - token);
    /* an empty signature is let through to be refused with the header's reason
     * (alg=none tokens deserve "alg not allowed" in the log) */
    if (p->head_len == 0 || p->body_len == 0)
        return CC_EINVAL;
    return 0;
}

/* ---- key import ---- */

/** A P-256 public key from its affine coordinates, or NULL when the point is not valid. */
static EVP_PKEY *p256_from_xy(const uint8_t *x, const uint8_t *y)
{
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = NULL, *check = NULL;
    unsigned char point[1 + 2 * P256_COORD];
    char group[] = "prime256v1";

    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, P256_COORD);
    memcpy(point + 1 + P256_COORD, y, P256_COORD);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)),
        OSSL_PARAM_construct_end(),
    };
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
        goto Fail;
    /* fromdata already refuses most off-curve points; the explicit check makes it a rule */
    check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
    if (check == NULL || EVP_PKEY_public_check(check) != 1)
        goto Fail;
    goto Exit;
Fail:
    EVP_PKEY_free(pkey);
    pkey = NULL;
    ERR_clear_error();
Exit:
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    return pkey;
}

/** Reads a base64url coordinate of exactly 32 bytes into out. */
static bool get_coord(json_t *jwk, const char *name, uint8_t out[P256_COORD])
{
    const char *s = json_string_value(json_object_get(jwk, name));
    uint8_t *raw = NULL;
    size_t len = 0;
    if (s == NULL || cc_base64url_decode_strict(s, strlen(s), &raw, &len) != 0)
        return false;
    bool ok = len == P256_COORD;
    if (ok)
        memcpy(out, raw, P256_COORD);
    free(raw);
    return ok;
}

/** True when the optional string member name is absent or equals want. */
static bool absent_or(json_t *obj, const char *name, const char *want)
{
    json_t *v = json_object_get(obj, name);
    return v == NULL || (json_is_string(v) && strcmp(json_string_value(v), want) == 0);
}

/**
 * Imports one JWK if it is a usable ES256 verification key; otherwise returns the reason
 * it was skipped. Only kty=EC, crv=P-256, use absent/"sig", alg absent/"ES256", a kid of
 * 1..128 printable bytes and 32-byte x/y on the curve are accepted; a key carrying the
 * private "d" is refused outright (a JWKS is public: publishing d is an incident).
 */
static const char *import_jwk(json_t *jwk, jwk_entry_t *out)
{
    uint8_t x[P256_COORD], y[P256_COORD];
    if (!json_is_object(jwk))
        return "not an object";
    if (!absent_or(jwk, "kty", "EC") || json_object_get(jwk, "kty") == NULL)
        return "kty is not EC";
    if (!absent_or(jwk, "crv", "P-256") || json_object_get(jwk, "crv") == NULL)
        return "crv is not P-256";
    if (!absent_or(jwk, "use", "sig"))
        return "use is not sig";
    if (!absent_or(jwk, "alg", "ES256"))
        return "alg is not ES256";
    if (json_object_get(jwk, "d") != NULL)
        return "private key in a public set";
    const char *kid = json_string_value(json_object_get(jwk, "kid"));
    size_t kid_len = kid ? strlen(kid) : 0;
    if (kid_len == 0 || kid_len > KID_MAX || cc_has_control(kid, kid_len))
        return "bad kid";
    if (!get_coord(jwk, "x", x) || !get_coord(jwk, "y", y))
        return "bad x or y";
    EVP_PKEY *pkey = p256_from_xy(x, y);
    if (pkey == NULL)
        return "point not on P-256";
    out->kid = cc_strdup(kid);
    out->pkey = pkey;
    return NULL;
}

static void free_keys(jwk_entry_t *keys, int n)
{
    for (int i = 0; i < n; i++) {
        free(keys[i].kid);
        EVP_PKEY_free(keys[i].pkey);
    }
    free(keys);
}

/* ---- the cache ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

cc_jwks_t *cc_jwks_new(const char *url, int min_refresh_s)
{
    cc_jwks_t *jwks = cc_calloc(1, sizeof(*jwks));
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* a reload must not starve behind a steady stream of verifiers */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&jwks->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    pthread_mutex_init(&jwks->fetch_mu, NULL);
    pthread_mutex_init(&jwks->verified_mu, NULL);
    jwks->verified = cc_calloc(VERIFIED_SLOTS, sizeof(*jwks->verified));
    jwks->url = cc_strdup(url);
    /* at least 1 s: an unknown kid must never turn us into a request amplifier */
    jwks->min_refresh_s = min_refresh_s < 1 ? 1 : min_refresh_s;
    if (url != NULL)
        pthread_once(&curl_once, curl_init_once);
    return jwks;
}

void cc_jwks_free(cc_jwks_t *jwks)
{
    if (jwks == NULL)
        return;
    free_keys(jwks->keys, jwks->nkeys);
    pthread_rwlock_destroy(&jwks->lock);
    pthread_mutex_destroy(&jwks->fetch_mu);
    pthread_mutex_destroy(&jwks->verified_mu);
    free(jwks->verified);
    free(jwks->url);
    free(jwks);
}

int cc_jwks_load(cc_jwks_t *jwks, const char *json_text)
{
    int ret = CC_EINVAL;
    json_t *doc = NULL;
    jwk_entry_t *keys = NULL;
    int n = 0;

    if (jwks == NULL || json_text == NULL)
        goto Exit;
    json_error_t err;
    doc = json_loads(json_text, JSON_REJECT_DUPLICATES, &err);
    json_t *arr = json_object_get(doc, "keys");
    if (!json_is_array(arr)) {
        if (doc == NULL)
            cc_log_warn("jwks: not JSON (line %d: %s)", err.line, err.text);
        else
            cc_log_warn("jwks: not a JWKS document (no keys array)");
        goto Exit;
    }
    keys = cc_calloc(JWKS_MAX_KEYS, sizeof(*keys));
    size_t i;
    json_t *jwk;
    json_array_foreach(arr, i, jwk)
    {
        jwk_entry_t e;
        const char *why = import_jwk(jwk, &e);
        if (why == NULL) {
            for (int k = 0; k < n && why == NULL; k++)
                if (strcmp(keys[k].kid, e.kid) == 0)
                    why = "duplicate kid";
            if (why == NULL && n == JWKS_MAX_KEYS)
                why = "too many keys";
            if (why != NULL) {
                free(e.kid);
                EVP_PKEY_free(e.pkey);
            }
        }
        if (why != NULL) {
            cc_log_info("jwks: key %zu skipped: %s", i, why); /* rare: fetches are limited */
            continue;
        }
        keys[n++] = e;
    }
    if (n == 0) {
        /* an empty or unusable set would lock everyone out: keep the old one */
        cc_log_warn("jwks: no usable ES256 key in the document; keeping the current set");
        goto Exit;
    }

    pthread_rwlock_wrlock(&jwks->lock);
    jwk_entry_t *old = jwks->keys;
    int old_n = jwks->nkeys;
    jwks->keys = keys;
    jwks->nkeys = n;
    pthread_rwlock_unlock(&jwks->lock);
    /* a key may have gone: what it verified is no longer trusted */
    pthread_mutex_lock(&jwks->verified_mu);
    memset(jwks->verified, 0, VERIFIED_SLOTS * sizeof(*jwks->verified));
    pthread_mutex_unlock(&jwks->verified_mu);
    keys = old; /* freed below: the write lock waited out every verifier using them */
    n = old_n;
    ret = 0;
Exit:
    free_keys(keys, n);
    json_decref(doc);
    return ret;
}

/** The key of kid, or NULL. Call with the lock held (read or write). */
static EVP_PKEY *find_key(cc_jwks_t *jwks, const char *kid)
{
    for (int i = 0; i < jwks->nkeys; i++)
        if (strcmp(jwks->keys[i].kid, kid) == 0)
            return jwks->keys[i].pkey;
    return NULL;
}

bool cc_jwks_has(cc_jwks_t *jwks, const char *kid)
{
    if (jwks == NULL || kid == NULL)
        return false;
    pthread_rwlock_rdlock(&jwks->lock);
    bool found = find_key(jwks, kid) != NULL;
    pthread_rwlock_unlock(&jwks->lock);
    return found;
}

int cc_jwks_count(cc_jwks_t *jwks)
{
    if (jwks == NULL)
        return 0;
    pthread_rwlock_rdlock(&jwks->lock);
    int n = jwks->nkeys;
    pthread_rwlock_unlock(&jwks->lock);
    return n;
}

/* ---- fetching ---- */

typedef struct fetch_body {
    cc_buf_t buf;
    bool too_big;
} fetch_body_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    fetch_body_t *fb = user;
    size_t n = size * nmemb;
    if (fb->buf.len + n > JWKS_MAX_BODY) {
        fb->too_big = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    cc_buf_append(&fb->buf, data, n);
    return n;
}

/** GETs the url and loads the document. Call with fetch_mu held. */
static int fetch_locked(cc_jwks_t *jwks)
{
    int ret = CC_EIO;
    fetch_body_t fb = {.too_big = false};
    cc_buf_init(&fb.buf);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        goto Exit;
    curl_easy_setopt(curl, CURLOPT_URL, jwks->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)JWKS_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)JWKS_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)JWKS_MAX_BODY);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &fb);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "console-jwks/1");
    CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
        cc_log_warn("jwks: fetch failed: %s",
                    fb.too_big ? "response larger than 256 KiB" : curl_easy_strerror(rc));
        goto Exit;
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        cc_log_warn("jwks: fetch answered HTTP %ld", status);
        goto Exit;
    }
    ret = cc_jwks_load(jwks, fb.buf.data ? fb.buf.data : "");
Exit:
    curl_easy_cleanup(curl);
    cc_buf_free(&fb.buf);
    return ret;
}

int cc_jwks_refresh(cc_jwks_t *jwks)
{
    if (jwks == NULL || jwks->url == NULL)
        return CC_EINVAL;
    pthread_mutex_lock(&jwks->fetch_mu);
    int ret = fetch_locked(jwks);
    pthread_mutex_unlock(&jwks->fetch_mu);
    return ret;
}

/**
 * For a kid not in the cache: waits for a fetch in flight (it may bring the key), then
 * fetches once itself unless a kid-triggered fetch started less than min_refresh_s ago.
 * True when the kid is known afterwards.
 */
/* 1: kid found (after a fetch); 0: not published; -1: the key set is unreachable (this
 * fetch failed, or the last one did and a new one is rate-limited). */
static int fetch_for_kid(cc_jwks_t *jwks, const char *kid)
{
    int found = 0;
    if (jwks->url == NULL)
        return 0;
    pthread_mutex_lock(&jwks->fetch_mu);
    if (cc_jwks_has(jwks, kid)) {
        found = 1;
        goto Exit;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t since_ms = (int64_t)(now.tv_sec - jwks->last_kid_fetch.tv_sec) * 1000 +
                       (now.tv_nsec - jwks->last_kid_fetch.tv_nsec) / 1000000;
    if (jwks->kid_fetched && since_ms < (int64_t)jwks->min_refresh_s * 1000) {
        found = jwks->last_fetch_failed ? -1 : 0; /* rate-limited */
        goto Exit;
    }
    jwks->kid_fetched = true;
    jwks->last_kid_fetch = now; /* counts failed fetches too: a down issuer is not hammered */
    int rc = fetch_locked(jwks);
    jwks->last_fetch_failed = rc == CC_EIO;
    found = rc == CC_EIO ? -1 : rc == 0 && cc_jwks_has(jwks, kid) ? 1 : 0;
Exit:
    pthread_mutex_unlock(&jwks->fetch_mu);
    return found;
}

/* ---- verification ---- */

/** The DER ECDSA-Sig-Value of a JOSE signature (R||S, 32 bytes each); OPENSSL_free it. */
static int rs_to_der(const uint8_t *rs, unsigned char **der)
{
    int der_len = -1;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, P256_COORD, NULL);
    BIGNUM *s = BN_bin2bn(rs + P256_COORD, P256_COORD, NULL);
    if (sig == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
    } else {
        der_len = i2d_ECDSA_SIG(sig, der);
    }
    ECDSA_SIG_free(sig);
    return der_len;
}

/**
 * Checks an ES256 signature (JOSE R||S) over input with the key of kid. 0, CC_EKEY (no
 * such kid) or CC_EAUTH. The read lock is held from the lookup until the digest context
 * (which holds its own reference to the key) is freed, so the last reference to an old
 * key is always dropped by the reload, behind the write lock: every use is ordered before
 * the free by the rwlock, not only by OpenSSL's atomic reference counts, which
 * ThreadSanitizer cannot see inside an uninstrumented libcrypto.
 */
static int jwks_verify(cc_jwks_t *jwks, const char *kid, const char *input, size_t input_len,
                       const uint8_t *rs)
{
    int ret = CC_EAUTH;
    unsigned char *der = NULL;
    int der_len = rs_to_der(rs, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    pthread_rwlock_rdlock(&jwks->lock);
    EVP_PKEY *pkey = find_key(jwks, kid);
    if (pkey == NULL)
        ret = CC_EKEY;
    else if (der_len > 0 && md != NULL &&
             EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)input, input_len) ==
                 1)
        ret = 0;
    EVP_MD_CTX_free(md);
    pthread_rwlock_unlock(&jwks->lock);
    if (ret != 0)
        ERR_clear_error();
    OPENSSL_free(der);
    return ret;
}

/** A typ an access token may carry (RFC 7515 §4.1.9: compared case-insensitively). */
static bool typ_allowed(json_t *typ)
{
    if (typ == NULL)
        return true;
    const char *t = json_string_value(typ);
    return t != NULL && (strcasecmp(t, "at+jwt") == 0 || strcasecmp(t, "application/at+jwt") == 0 ||
                         strcasecmp(t, "JWT") == 0);
}

/** Reads an optional string claim into pool memory; false when present but not a string. */
static bool opt_string(cc_pool_t *pool, json_t *claims, const char *name, const char **out)
{
    json_t *v = json_object_get(claims, name);
    *out = NULL;
    if (v == NULL)
        return true;
    if (!json_is_string(v))
        return false;
    *out = cc_pool_strndup(pool, json_string_value(v), json_string_length(v));
    return true;
}

/** True when the string or array aud names audience. */
static bool aud_contains(json_t *aud, const char *audience)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), audience) == 0;
    size_t i;
    json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), audience) == 0)
            return true;
    }
    return false;
}

static void dispose_json(void *j)
{
    json_decref(j);
}

#define FAIL(code, reason)                                                                         \
    do {                                                                                           \
        ret = (code);                                                                              \
        reason_ = (reason);                                                                        \
        goto Exit;                                                                                 \
    } while (0)

/** Checks the registered claims and fills p (strings in pool memory). */
static int check_claims(json_t *claims, const cc_auth_opts_t *opts, cc_pool_t *pool,
                        cc_principal_t *p, const char **why)
{
    int ret = 0;
    const char *reason_ = NULL;
    int64_t now = (int64_t)time(NULL);
    int64_t leeway = opts->leeway_s > 0 ? opts->leeway_s : 0;

    /* time: subtracting from now (never adding to a claim) keeps hostile values from
     * overflowing */
    json_t *exp = json_object_get(claims, "exp");
    if (exp == NULL)
        FAIL(CC_EINVAL, "missing exp");
    if (!json_is_integer(exp))
        FAIL(CC_EINVAL, "bad exp");
    if (!(now - leeway < (int64_t)json_integer_value(exp)))
        FAIL(CC_EEXPIRED, "expired");
    json_t *nbf = json_object_get(claims, "nbf");
    if (nbf != NULL && !json_is_integer(nbf))
        FAIL(CC_EINVAL, "bad nbf");
    if (nbf != NULL && now + leeway < (int64_t)json_integer_value(nbf))
        FAIL(CC_EEXPIRED, "not yet valid");
    json_t *iat = json_object_get(claims, "iat");
    if (iat != NULL && !json_is_integer(iat))
        FAIL(CC_EINVAL, "bad iat");
    if (iat != NULL && (int64_t)json_integer_value(iat) > now + leeway)
        FAIL(CC_EEXPIRED, "issued in the future");

    json_t *iss = json_object_get(claims, "iss");
    if (iss == NULL)
        FAIL(CC_EINVAL, "missing iss");
    if (!json_is_string(iss))
        FAIL(CC_EINVAL, "bad iss");
    if (strcmp(json_string_value(iss), opts->issuer) != 0)
        FAIL(CC_EAUTH, "wrong issuer");

    json_t *aud = json_object_get(claims, "aud");
    if (aud == NULL)
        FAIL(CC_EINVAL, "missing aud");
    if (!json_is_string(aud) && !json_is_array(aud))
        FAIL(CC_EINVAL, "bad aud");
    if (!aud_contains(aud, opts->audience))
        FAIL(CC_EAUTH, "wrong audience");

    json_t *sub = json_object_get(claims, "sub");
    if (!json_is_string(sub) || json_string_length(sub) == 0)
        FAIL(CC_EINVAL, "missing sub");
    p->sub = cc_pool_strndup(pool, json_string_value(sub), json_string_length(sub));

    const char *kind = NULL;
    if (!opt_string(pool, claims, "kind", &kind))
        FAIL(CC_EINVAL, "bad kind");
    if (kind == NULL || strcmp(kind, "user") == 0)
        p->kind = CC_PRINCIPAL_USER;
    else if (strcmp(kind, "api_client") == 0)
        p->kind = CC_PRINCIPAL_API_CLIENT;
    else
        FAIL(CC_EINVAL, "bad kind");

    if (!opt_string(pool, claims, "jti", &p->jti))
        FAIL(CC_EINVAL, "bad jti");
    if (!opt_string(pool, claims, "tid", &p->tenant_id))
        FAIL(CC_EINVAL, "bad tid");
    if (!opt_string(pool, claims, "msp", &p->msp_id))
        FAIL(CC_EINVAL, "bad msp");
    if (!opt_string(pool, claims, "client_id", &p->client_id))
        FAIL(CC_EINVAL, "bad client_id");
    if (!opt_string(pool, claims, "scope", &p->scope))
        FAIL(CC_EINVAL, "bad scope");
    if (p->scope == NULL)
        p->scope = "";

    json_t *act = json_object_get(claims, "act");
    if (act != NULL) {
        json_t *act_sub = json_object_get(act, "sub");
        if (!json_is_object(act) || !json_is_string(act_sub) || json_string_length(act_sub) == 0)
            FAIL(CC_EINVAL, "bad act");
        p->act_sub = cc_pool_strndup(pool, json_string_value(act_sub), json_string_length(act_sub));
    }
    json_t *amr = json_object_get(claims, "amr");
    if (amr != NULL && !json_is_array(amr))
        FAIL(CC_EINVAL, "bad amr");
    p->amr = amr;
    p->exp = (int64_t)json_integer_value(exp);
    p->iat = iat != NULL ? (int64_t)json_integer_value(iat) : 0;
Exit:
    *why = reason_;
    return ret;
}

int cc_auth_verify(cc_jwks_t *jwks, const cc_auth_opts_t *opts, const char *token, cc_pool_t *pool,
                   cc_principal_t **out, const char **why)
{
    int ret = 0;
    const char *reason_ = NULL;
    json_t *head = NULL, *claims = NULL;
    uint8_t *sig = NULL;
    size_t sig_len = 0;
    jws_parts_t parts;

    if (out != NULL)
        *out = NULL;
    if (jwks == NULL || opts == NULL || opts->issuer == NULL || opts->audience == NULL ||
        pool == NULL || out == NULL)
        FAIL(CC_EINVAL, "verifier not configured");
    if (token == NULL || strnlen(token, TOKEN_MAX + 1) > TOKEN_MAX)
        FAIL(CC_EINVAL, token ? "token too long" : "malformed");
    if (jws_split(token, &parts) != 0)
        FAIL(CC_EINVAL, "malformed");

    /* the header is judged before any key is looked up */
    if ((head = decode_json_object(parts.head, parts.head_len)) == NULL)
        FAIL(CC_EINVAL, "malformed header");
    const char *alg = json_string_value(json_object_get(head, "alg"));
    if (alg == NULL || strcmp(alg, "ES256") != 0)
        FAIL(CC_EINVAL, "alg not allowed");
    if (!typ_allowed(json_object_get(head, "typ")))
        FAIL(CC_EINVAL, "typ not allowed");
    if (json_object_get(head, "crit") != NULL)
        FAIL(CC_EINVAL, "crit not supported"); /* RFC 7515 §4.1.11: we understand none */
    const char *kid = json_string_value(json_object_get(head, "kid"));
    if (kid == NULL || kid[0] == '\0' || strlen(kid) > KID_MAX)
        FAIL(CC_EINVAL, "missing kid");

    /* the signature's shape before the (blocking) key lookup */
    if (cc_base64url_decode_strict(parts.sig, parts.sig_len, &sig, &sig_len) != 0 ||
        sig_len != 2 * P256_COORD)
        FAIL(CC_EINVAL, "malformed signature");
    if (parts.body_len % 4 == 1 ||
        strspn(parts.body, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") <
            parts.body_len)
        FAIL(CC_EINVAL, "malformed payload");

    /* the signing input is header.payload, as sent (RFC 7515 §5.2). The same token string
     * verified before with the current keys needs no second ECDSA check (~60 µs): the
     * claims are still checked below on every call. */
    size_t input_len = (size_t)(parts.sig - 1 - token);
    uint8_t digest[32];
    cc_sha256(token, strlen(token), digest);
    int64_t now = (int64_t)time(NULL);
    bool seen = verified_seen(jwks, digest, now);
    ret = seen ? 0 : jwks_verify(jwks, kid, token, input_len, sig);
    if (ret == CC_EKEY && opts->may_fetch) {
        int fetched = fetch_for_kid(jwks, kid);
        if (fetched < 0)
            FAIL(CC_EIO, "key set unreachable");
        if (fetched > 0)
            ret = jwks_verify(jwks, kid, token, input_len, sig);
    }
    if (ret == CC_EKEY)
        FAIL(CC_EKEY, "unknown kid");
    if (ret != 0)
        FAIL(CC_EAUTH, "bad signature");

    /* only now is the payload worth parsing */
    if ((claims = decode_json_object(parts.body, parts.body_len)) == NULL)
        FAIL(CC_EINVAL, "malformed payload");
    cc_principal_t *p = cc_pool_alloc(pool, sizeof(*p));
    if ((ret = check_claims(claims, opts, pool, p, &reason_)) != 0)
        goto Exit;
    if (!seen)
        verified_put(jwks, digest, p->exp < now + VERIFIED_MAX_S ? p->exp : now + VERIFIED_MAX_S);
    cc_pool_defer(pool, dispose_json, claims);
    p->claims = claims;
    claims = NULL; /* owned by the pool now */
    *out = p;
Exit:
    if (why != NULL)
        *why = reason_;
    free(sig);
    json_decref(claims);
    json_decref(head);
    return ret;
}

char *cc_jwt_peek_kid(const char *token)
{
    jws_parts_t parts;
    char *kid = NULL;
    if (jws_split(token, &parts) != 0)
        return NULL;
    json_t *head = decode_json_object(parts.head, parts.head_len);
    const char *s = json_string_value(json_object_get(head, "kid"));
    if (s != NULL && s[0] != '\0')
        kid = cc_strdup(s);
    json_decref(head);
    return kid;
}

bool cc_principal_has_scope(const cc_principal_t *p, const char *scope)
{
    if (p == NULL || p->scope == NULL || scope == NULL || scope[0] == '\0')
        return false;
    size_t want = strlen(scope);
    const char *s = p->scope;
    while (*s != '\0') {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == want && memcmp(s, scope, n) == 0)
            return true;
        s += n;
    }
    return false;
}
