/*
 * Signing: Ed25519 (OpenSSL EVP_PKEY_ED25519) over compact JWS for license documents, a
 * MAC keyed with the fulfillment number for offline request files, and HMAC-SHA256 with
 * a checksum character for product keys. The private key and the HMAC secret are sealed
 * at rest with the master key, as identity seals its ES256 keys.
 */
#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "licensing.h"

static const cc_stmt_t q_lock =
    CC_STMT("lic_keys_lock", "SELECT pg_advisory_xact_lock(hashtext('licensing.signing_keys'))", 0);
/* the published keys, the active one first: kid, sealed private key, sealed HMAC secret,
 * public key, retired, due for rotation ($1 rotation days, 0 = never; $2 overlap days) */
#define PUBLISHED                                                                                  \
    " FROM signing_keys WHERE retired_at IS NULL"                                                  \
    " OR retired_at > licensing_now() - make_interval(days => $2::int)"
#define NEWEST_FIRST "(retired_at IS NULL) DESC, created_at DESC, kid"
static const cc_stmt_t q_list = CC_STMT(
    "lic_keys_list",
    "SELECT kid, private_key_sealed, key_secret_sealed, public_key, retired_at IS NOT NULL,"
    " $1::int > 0 AND created_at <= licensing_now() - make_interval(days => $1::int)" PUBLISHED
    " ORDER BY " NEWEST_FIRST,
    2);
/* what lic_keys_generation describes, read without unsealing anything; " !" when the
 * active key is missing or due for rotation */
static const cc_stmt_t q_state =
    CC_STMT("lic_keys_state",
            "SELECT coalesce(string_agg(kid || CASE WHEN retired_at IS NULL THEN '*' ELSE '' END,"
            " ' ' ORDER BY " NEWEST_FIRST "), '') || CASE WHEN coalesce(bool_or(retired_at IS NULL"
            " AND ($1::int = 0 OR created_at > licensing_now() - make_interval(days => $1::int))),"
            " false) THEN '' ELSE ' !' END" PUBLISHED,
            2);
static const cc_stmt_t q_retire =
    CC_STMT("lic_keys_retire",
            "UPDATE signing_keys SET retired_at = licensing_now() WHERE retired_at IS NULL"
            " RETURNING kid",
            0);
/* the product-key secret every key carries (the first key's, copied since) */
static const cc_stmt_t q_secret =
    CC_STMT("lic_keys_secret",
            "SELECT kid, key_secret_sealed FROM signing_keys ORDER BY created_at, kid LIMIT 1", 0);
static const cc_stmt_t q_insert =
    CC_STMT("lic_keys_insert",
            "INSERT INTO signing_keys (kid, private_key_sealed, public_key, key_secret_sealed)"
            " VALUES ($1, $2, $3, $4)",
            4);

static char *aad_for(const char *kid, const char *what)
{
    return cc_aprintf("licensing.signing_keys:%s:%s", kid, what);
}

static EVP_PKEY *public_from_b64(const char *b64)
{
    uint8_t *raw = NULL;
    size_t n = 0;
    EVP_PKEY *pub = NULL;
    if (cc_base64url_decode_strict(b64, strlen(b64), &raw, &n) == 0 && n == 32)
        pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
    free(raw);
    return pub;
}

int lic_keys_from_raw(lic_keys_t *k, const char *kid, const uint8_t priv[32],
                      const uint8_t secret[32])
{
    memset(k, 0, sizeof(*k));
    k->priv = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
    if (k->priv == NULL)
        return CC_ECRYPTO;
    uint8_t pub[32];
    size_t publen = sizeof(pub);
    if (EVP_PKEY_get_raw_public_key(k->priv, pub, &publen) != 1 || publen != 32) {
        lic_keys_dispose(k);
        return CC_ECRYPTO;
    }
    k->pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    if (k->pub == NULL) {
        lic_keys_dispose(k);
        return CC_ECRYPTO;
    }
    k->public_b64 = cc_base64url_encode(pub, 32);
    k->kid = cc_strdup(kid);
    memcpy(k->key_secret, secret, 32);
    /* the published set: this key alone */
    k->published = calloc(1, sizeof(*k->published));
    if (k->published == NULL)
        abort();
    k->npublished = 1;
    k->published[0].kid = cc_strdup(kid);
    k->published[0].pub = public_from_b64(k->public_b64);
    k->published[0].public_b64 = cc_strdup(k->public_b64);
    k->generation = cc_aprintf("%s*", kid);
    return k->published[0].pub != NULL ? 0 : CC_ECRYPTO;
}

static void published_free(lic_keys_t *k)
{
    for (size_t i = 0; i < k->npublished; i++) {
        EVP_PKEY_free(k->published[i].pub);
        free(k->published[i].kid);
        free(k->published[i].public_b64);
    }
    free(k->published);
    k->published = NULL;
    k->npublished = 0;
}

void lic_keys_dispose(lic_keys_t *k)
{
    EVP_PKEY_free(k->priv);
    EVP_PKEY_free(k->pub);
    free(k->kid);
    free(k->public_b64);
    published_free(k);
    free(k->generation);
    cc_wipe(k->key_secret, sizeof(k->key_secret));
    memset(k, 0, sizeof(*k));
}

static int unseal32(const cc_master_key_t *master, const char *blob, const char *aad,
                    uint8_t out[32])
{
    uint8_t *plain = NULL;
    size_t n = 0;
    int rc = cc_unseal(master, blob, aad, &plain, &n);
    if (rc == 0 && n != 32)
        rc = CC_EINVAL;
    if (rc == 0)
        memcpy(out, plain, 32);
    if (plain != NULL) {
        cc_wipe(plain, n);
        free(plain);
    }
    return rc;
}

/* A new key pair, sealed into signing_keys with the product-key secret of the keys before
 * it (a fresh one for the first key), inside the open transaction. */
static int generate(const cc_master_key_t *master, cc_db_t *db, cc_pool_t *pool)
{
    uint8_t priv[32], secret[32], pub[32];
    size_t privlen = sizeof(priv), publen = sizeof(pub);
    char *kid = cc_token_new(12), *aad_p = aad_for(kid, "private"), *aad_s = aad_for(kid, "hmac");
    char *sealed_p = NULL, *sealed_s = NULL, *pub_b64 = NULL;
    int rc = CC_ECRYPTO;
    EVP_PKEY *pkey = NULL;
    PGresult *res;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    if (ctx == NULL || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1 ||
        EVP_PKEY_get_raw_private_key(pkey, priv, &privlen) != 1 ||
        EVP_PKEY_get_raw_public_key(pkey, pub, &publen) != 1 || privlen != 32 || publen != 32)
        goto Exit;
    if ((rc = cc_db_query(db, pool, &q_secret, NULL, &res)) != 0)
        goto Exit;
    if (PQntuples(res) > 0) {
        char *aad_old = aad_for(PQgetvalue(res, 0, 0), "hmac");
        rc = unseal32(master, PQgetvalue(res, 0, 1), aad_old, secret);
        free(aad_old);
    } else {
        rc = cc_random_bytes(secret, sizeof(secret));
    }
    if (rc != 0 || (rc = cc_seal(master, priv, 32, aad_p, &sealed_p)) != 0 ||
        (rc = cc_seal(master, secret, 32, aad_s, &sealed_s)) != 0)
        goto Exit;
    pub_b64 = cc_base64url_encode(pub, 32);
    const char *params[] = {kid, sealed_p, pub_b64, sealed_s};
    rc = cc_db_query(db, pool, &q_insert, params, NULL);
    if (rc == 0)
        cc_log_info("generated license signing key %s", kid);
Exit:
    cc_wipe(priv, sizeof(priv));
    cc_wipe(secret, sizeof(secret));
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    free(kid);
    free(aad_p);
    free(aad_s);
    free(sealed_p);
    free(sealed_s);
    free(pub_b64);
    return rc;
}

static void policy_params(const lic_key_policy_t *policy, char days[16], char overlap[16])
{
    snprintf(days, 16, "%d", policy ? policy->rotation_days : 0);
    snprintf(overlap, 16, "%d", policy && policy->overlap_days > 0 ? policy->overlap_days : 400);
}

int lic_keys_init(lic_keys_t *k, const cc_master_key_t *master, cc_db_t *db,
                  const lic_key_policy_t *policy)
{
    cc_pool_t *pool = cc_pool_new();
    cc_scope_t system = {.system = true};
    PGresult *res = NULL;
    uint8_t priv[32], secret[32];
    char days[16], overlap[16];
    policy_params(policy, days, overlap);
    const char *lp[] = {days, overlap};
    memset(k, 0, sizeof(*k));
    int rc = cc_db_begin(db, &system);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_lock, NULL, NULL);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_list, lp, &res);
    if (rc == 0) {
        bool have_active = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 4), "f") == 0;
        bool due = have_active && strcmp(PQgetvalue(res, 0, 5), "t") == 0;
        if (due) { /* by age: the active key is retired and a successor signs from now on */
            rc = cc_db_query(db, pool, &q_retire, NULL, NULL);
            if (rc == 0)
                cc_log_info("license signing key %s retired after %s days", PQgetvalue(res, 0, 0),
                            days);
        }
        if (rc == 0 && (!have_active || due)) {
            rc = generate(master, db, pool);
            if (rc == 0)
                rc = cc_db_query(db, pool, &q_list, lp, &res);
        }
    }
    if (rc == 0)
        rc = cc_db_commit(db);
    if (rc != 0) {
        cc_db_rollback(db);
        goto Exit;
    }
    const char *kid = PQgetvalue(res, 0, 0);
    char *aad_p = aad_for(kid, "private"), *aad_s = aad_for(kid, "hmac");
    rc = unseal32(master, PQgetvalue(res, 0, 1), aad_p, priv);
    if (rc == 0)
        rc = unseal32(master, PQgetvalue(res, 0, 2), aad_s, secret);
    free(aad_p);
    free(aad_s);
    if (rc != 0) {
        cc_log_error("license signing key %s cannot be unsealed (%s): is CONSOLE_MASTER_KEY the "
                     "one it was sealed with?",
                     kid, cc_strerror(rc));
        goto Exit;
    }
    if ((rc = lic_keys_from_raw(k, kid, priv, secret)) != 0)
        goto Exit;
    /* every published key (the active one first) verifies; only the active one signs */
    int n = PQntuples(res);
    cc_buf_t gen;
    cc_buf_init(&gen);
    published_free(k); /* lic_keys_from_raw's set of one, replaced by the whole set */
    k->published = calloc((size_t)n, sizeof(*k->published));
    if (k->published == NULL)
        abort();
    k->npublished = 0;
    for (int i = 0; i < n; i++) {
        lic_pubkey_t *p = &k->published[k->npublished];
        p->pub = public_from_b64(PQgetvalue(res, i, 3));
        if (p->pub == NULL) {
            cc_log_error("license signing key %s has no valid public key", PQgetvalue(res, i, 0));
            continue;
        }
        p->kid = cc_strdup(PQgetvalue(res, i, 0));
        p->public_b64 = cc_strdup(PQgetvalue(res, i, 3));
        k->npublished++;
        cc_buf_printf(&gen, "%s%s%s", i ? " " : "", p->kid,
                      strcmp(PQgetvalue(res, i, 4), "f") == 0 ? "*" : "");
    }
    free(k->generation);
    k->generation = cc_strdup(gen.data ? gen.data : "");
    cc_buf_free(&gen);
    cc_log_info("signing licenses with key %s; %zu key(s) published", kid, k->npublished);
Exit:
    if (rc != 0)
        lic_keys_dispose(k);
    cc_wipe(priv, sizeof(priv));
    cc_wipe(secret, sizeof(secret));
    cc_pool_free(pool);
    return rc;
}

int lic_keys_changed(cc_db_t *db, cc_pool_t *pool, const lic_keys_t *k,
                     const lic_key_policy_t *policy, bool *changed)
{
    char days[16], overlap[16];
    policy_params(policy, days, overlap);
    cc_scope_t system = {.system = true};
    PGresult *res;
    *changed = false;
    int rc = cc_db_read(db, pool, &system, &q_state, (const char *const[]){days, overlap}, &res);
    if (rc == 0)
        *changed = PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), k->generation) != 0;
    return rc;
}

int lic_keys_retire_active(cc_db_t *db, cc_pool_t *pool, int *retired)
{
    cc_scope_t system = {.system = true};
    PGresult *res;
    int rc = cc_db_begin(db, &system);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_lock, NULL, NULL);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_retire, NULL, &res);
    if (rc == 0)
        rc = cc_db_commit(db);
    if (rc != 0) {
        cc_db_rollback(db);
        return rc;
    }
    *retired = PQntuples(res);
    return 0;
}

/* ---- JWS (RFC 7515 compact, RFC 8037 EdDSA) ---- */

char *lic_sign(const lic_keys_t *k, json_t *payload)
{
    json_t *header =
        json_pack("{s:s, s:s, s:s}", "alg", "EdDSA", "typ", "license+jws", "kid", k->kid);
    char *h = json_dumps(header, JSON_COMPACT), *p = json_dumps(payload, JSON_COMPACT);
    json_decref(header);
    char *hb = cc_base64url_encode(h, strlen(h)), *pb = cc_base64url_encode(p, strlen(p));
    free(h);
    free(p);
    char *input = cc_aprintf("%s.%s", hb, pb), *out = NULL;
    free(hb);
    free(pb);
    uint8_t sig[64];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->priv) == 1 &&
        EVP_DigestSign(ctx, sig, &siglen, (const uint8_t *)input, strlen(input)) == 1) {
        char *sb = cc_base64url_encode(sig, siglen);
        out = cc_aprintf("%s.%s", input, sb);
        free(sb);
    } else {
        cc_log_error("Ed25519 signing failed");
    }
    EVP_MD_CTX_free(ctx);
    free(input);
    return out;
}

int lic_verify(const lic_keys_t *k, const char *jws, json_t **payload)
{
    *payload = NULL;
    size_t n = strlen(jws);
    if (n > 64 * 1024)
        return CC_EINVAL;
    const char *d1 = memchr(jws, '.', n);
    const char *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - jws)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - jws)) != NULL)
        return CC_EINVAL;
    uint8_t *h = NULL, *p = NULL, *sig = NULL;
    size_t hl, pl, sl;
    int rc = CC_EINVAL;
    json_t *header = NULL;
    if (cc_base64url_decode_strict(jws, (size_t)(d1 - jws), &h, &hl) != 0 ||
        cc_base64url_decode_strict(d1 + 1, (size_t)(d2 - d1 - 1), &p, &pl) != 0 ||
        cc_base64url_decode_strict(d2 + 1, n - (size_t)(d2 + 1 - jws), &sig, &sl) != 0)
        goto Exit;
    header = json_loadb((const char *)h, hl, JSON_REJECT_DUPLICATES, NULL);
    const char *alg = json_string_value(json_object_get(header, "alg"));
    const char *kid = json_string_value(json_object_get(header, "kid"));
    if (!json_is_object(header) || alg == NULL)
        goto Exit;
    rc = CC_EAUTH;
    EVP_PKEY *pub = NULL; /* the published key of this kid, never one the header chooses */
    for (size_t i = 0; kid != NULL && i < k->npublished; i++)
        if (strcmp(kid, k->published[i].kid) == 0)
            pub = k->published[i].pub;
    if (strcmp(alg, "EdDSA") != 0 || pub == NULL || sl != 64)
        goto Exit;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pub) == 1 &&
              EVP_DigestVerify(ctx, sig, sl, (const uint8_t *)jws, (size_t)(d2 - jws)) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    if (!ok)
        goto Exit;
    *payload = json_loadb((const char *)p, pl, JSON_REJECT_DUPLICATES, NULL);
    rc = json_is_object(*payload) ? 0 : CC_EINVAL;
    if (rc != 0) {
        json_decref(*payload);
        *payload = NULL;
    }
Exit:
    json_decref(header);
    free(h);
    free(p);
    free(sig);
    return rc;
}

json_t *lic_jwks(const lic_keys_t *k)
{
    json_t *keys = json_array();
    for (size_t i = 0; i < k->npublished; i++)
        json_array_append_new(keys, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv",
                                              "Ed25519", "x", k->published[i].public_b64, "kid",
                                              k->published[i].kid, "use", "sig", "alg", "EdDSA"));
    return json_pack("{s:o}", "keys", keys);
}

/* ---- offline request files ---- */

#define REQUEST_FORMAT "console-license-request/1"

#define DEACTIVATION_FORMAT "console-license-deactivation/1"

static int file_open(json_t *file, const char *format, json_t **request, const char **request_b64,
                     const char **mac_b64)
{
    *request = NULL;
    const char *fmt = json_string_value(json_object_get(file, "format"));
    const char *rb = json_string_value(json_object_get(file, "request"));
    const char *mb = json_string_value(json_object_get(file, "mac"));
    if (!json_is_object(file) || json_object_size(file) != 3 || fmt == NULL || rb == NULL ||
        mb == NULL || strcmp(fmt, format) != 0 || strlen(rb) > 16384)
        return CC_EINVAL;
    uint8_t *raw = NULL;
    size_t n = 0;
    if (cc_base64url_decode_strict(rb, strlen(rb), &raw, &n) != 0)
        return CC_EINVAL;
    json_t *r = NULL;
    if (cc_utf8_valid((const char *)raw, n) && memchr(raw, 0, n) == NULL)
        r = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (!json_is_object(r)) {
        json_decref(r);
        return CC_EINVAL;
    }
    *request = r;
    *request_b64 = rb;
    *mac_b64 = mb;
    return 0;
}

int lic_request_open(json_t *file, json_t **request, const char **request_b64, const char **mac_b64)
{
    return file_open(file, REQUEST_FORMAT, request, request_b64, mac_b64);
}

int lic_deactivation_open(json_t *file, json_t **request, const char **request_b64,
                          const char **mac_b64)
{
    return file_open(file, DEACTIVATION_FORMAT, request, request_b64, mac_b64);
}

bool lic_request_mac_ok(const char *fulfillment_number, const char *request_b64,
                        const char *mac_b64)
{
    uint8_t mac[32], *given = NULL;
    size_t n = 0;
    cc_hmac_sha256(fulfillment_number, strlen(fulfillment_number), request_b64, strlen(request_b64),
                   mac);
    bool ok = cc_base64url_decode_strict(mac_b64, strlen(mac_b64), &given, &n) == 0 && n == 32 &&
              cc_ct_equal(mac, given, 32);
    free(given);
    return ok;
}

static json_t *file_make(const char *format, const char *fulfillment_number, json_t *request)
{
    char *text = json_dumps(request, JSON_COMPACT);
    char *rb = cc_base64url_encode(text, strlen(text));
    uint8_t mac[32];
    cc_hmac_sha256(fulfillment_number, strlen(fulfillment_number), rb, strlen(rb), mac);
    char *mb = cc_base64url_encode(mac, 32);
    json_t *file = json_pack("{s:s, s:s, s:s}", "format", format, "request", rb, "mac", mb);
    free(text);
    free(rb);
    free(mb);
    return file;
}

json_t *lic_request_make(const char *fulfillment_number, json_t *request)
{
    return file_make(REQUEST_FORMAT, fulfillment_number, request);
}

json_t *lic_deactivation_make(const char *fulfillment_number, json_t *request)
{
    return file_make(DEACTIVATION_FORMAT, fulfillment_number, request);
}

/* ---- product keys ----
 * 15 bytes: serial (4, big-endian), product code (2: SHA-256(product)), version major (1),
 * format (1, = 1), HMAC-SHA256(secret, those 8 bytes) truncated to 7; in Crockford
 * base32 (24 characters) plus one checksum character (a weighted sum mod 32 that catches
 * any single mistyped character and any swap of neighbours), grouped by five. */

static const char B32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static int b32_value(char c)
{
    if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
    if (c == 'O')
        c = '0';
    if (c == 'I' || c == 'L')
        c = '1';
    const char *p = c ? strchr(B32, c) : NULL;
    return p ? (int)(p - B32) : -1;
}

static int checksum(const int *v, int n)
{
    int sum = 0;
    for (int i = 0; i < n; i++)
        sum += (i % 2 ? 3 : 1) * v[i] + (i + 1) * v[i];
    return sum % 31; /* 31 is prime: a single change of one value always changes the sum */
}

static void key_bytes(const lic_keys_t *k, uint32_t serial, const uint8_t code[2], int major,
                      uint8_t out[15])
{
    out[0] = (uint8_t)(serial >> 24);
    out[1] = (uint8_t)(serial >> 16);
    out[2] = (uint8_t)(serial >> 8);
    out[3] = (uint8_t)serial;
    out[4] = code[0];
    out[5] = code[1];
    out[6] = (uint8_t)major;
    out[7] = 1;
    uint8_t mac[32];
    cc_hmac_sha256(k->key_secret, sizeof(k->key_secret), out, 8, mac);
    memcpy(out + 8, mac, 7);
}

void lic_product_key(const lic_keys_t *k, uint32_t serial, const char *product, int major,
                     char out[LIC_KEY_LEN + 1])
{
    uint8_t h[32], bytes[15];
    cc_sha256(product, strlen(product), h);
    key_bytes(k, serial, h, major, bytes);
    int v[25];
    for (int i = 0; i < 24; i++) { /* 5 bits at a time, 15 bytes = 120 bits */
        int bit = i * 5, byte = bit / 8, off = bit % 8;
        unsigned w = ((unsigned)bytes[byte] << 8) | (byte + 1 < 15 ? bytes[byte + 1] : 0);
        v[i] = (int)((w >> (11 - off)) & 31);
    }
    v[24] = checksum(v, 24);
    int o = 0;
    for (int i = 0; i < 25; i++) {
        if (i > 0 && i % 5 == 0)
            out[o++] = '-';
        out[o++] = B32[v[i]];
    }
    out[o] = '\0';
}

static int key_values(const char *key, int v[25])
{
    int n = 0;
    for (const char *p = key; *p; p++) {
        if (*p == '-' || *p == ' ')
            continue;
        int x = b32_value(*p);
        if (x < 0 || n == 25)
            return CC_EINVAL;
        v[n++] = x;
    }
    return n == 25 ? 0 : CC_EINVAL;
}

int lic_product_key_check(const lic_keys_t *k, const char *key, uint32_t *serial, int *major)
{
    int v[25];
    if (strlen(key) > 64 || key_values(key, v) != 0 || checksum(v, 24) != v[24])
        return CC_EINVAL;
    uint8_t bytes[15] = {0};
    for (int i = 0; i < 24; i++)
        for (int b = 0; b < 5; b++)
            if (v[i] & (16 >> b)) {
                int bit = i * 5 + b;
                bytes[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
            }
    uint32_t s = ((uint32_t)bytes[0] << 24) | ((uint32_t)bytes[1] << 16) |
                 ((uint32_t)bytes[2] << 8) | bytes[3];
    uint8_t again[15];
    key_bytes(k, s, bytes + 4, bytes[6], again);
    if (bytes[7] != 1 || !cc_ct_equal(again, bytes, 15))
        return CC_EAUTH;
    *serial = s;
    *major = bytes[6];
    return 0;
}

bool lic_product_key_for(const char *key, const char *product)
{
    int v[25];
    if (key_values(key, v) != 0)
        return false;
    uint8_t h[32];
    cc_sha256(product, strlen(product), h);
    /* bits 32..47 of the key are the product code */
    unsigned code = 0;
    for (int bit = 32; bit < 48; bit++)
        code = (code << 1) | ((unsigned)(v[bit / 5] >> (4 - bit % 5)) & 1);
    return code == (((unsigned)h[0] << 8) | h[1]);
}

/* ---- the service's current keys ---- */

typedef struct lic_keyring {
    lic_keys_t keys;
    int refs; /* under app->keys_lock */
} lic_keyring_t;

static void ring_unref(lic_app_t *app, lic_keyring_t *r)
{
    pthread_mutex_lock(&app->keys_lock);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&app->keys_lock);
    if (last) {
        lic_keys_dispose(&r->keys);
        free(r);
    }
}

static int ring_load(lic_app_t *app, cc_db_t *db, lic_keyring_t **out)
{
    lic_keyring_t *r = calloc(1, sizeof(*r));
    if (r == NULL)
        abort();
    int rc = lic_keys_init(&r->keys, &app->svc->master_key, db, &app->key_policy);
    if (rc != 0) {
        free(r);
        return rc;
    }
    r->refs = 1; /* the app's */
    *out = r;
    return 0;
}

int lic_app_keys_start(lic_app_t *app, cc_db_t *db)
{
    pthread_mutex_init(&app->keys_lock, NULL);
    return ring_load(app, db, &app->ring);
}

void lic_app_keys_stop(lic_app_t *app)
{
    if (app->ring != NULL)
        ring_unref(app, app->ring);
    app->ring = NULL;
    pthread_mutex_destroy(&app->keys_lock);
}

typedef struct ring_hold {
    lic_app_t *app;
    lic_keyring_t *ring;
} ring_hold_t;

static void on_request_end(void *p)
{
    ring_hold_t *h = p;
    ring_unref(h->app, h->ring);
}

const lic_keys_t *lic_req_keys(cc_req_t *req)
{
    lic_app_t *app = req->app;
    pthread_mutex_lock(&app->keys_lock);
    lic_keyring_t *cur = app->ring;
    cur->refs++;
    pthread_mutex_unlock(&app->keys_lock);
    bool changed = false;
    int rc = lic_keys_changed(req->db, req->pool, &cur->keys, &app->key_policy, &changed);
    if (rc != 0)
        cc_log_warn("the license signing keys could not be checked: %s", cc_strerror(rc));
    lic_keyring_t *fresh = NULL;
    if (changed && (rc = ring_load(app, req->db, &fresh)) != 0)
        cc_log_error("the license signing keys could not be reloaded (%s); signing with key %s",
                     cc_strerror(rc), cur->keys.kid);
    if (fresh != NULL) {
        /* swap the new keys in (unless another request did it first), keep them for this
         * request */
        pthread_mutex_lock(&app->keys_lock);
        lic_keyring_t *old = app->ring;
        app->ring = fresh;
        fresh->refs++;
        pthread_mutex_unlock(&app->keys_lock);
        ring_unref(app, old); /* the app's reference to the old keys */
        ring_unref(app, cur); /* this request's */
        cur = fresh;
        cc_log_info("license signing keys reloaded: %s", fresh->keys.generation);
    }
    ring_hold_t *h = cc_pool_alloc(req->pool, sizeof(*h));
    h->app = app;
    h->ring = cur;
    cc_pool_defer(req->pool, on_request_end, h);
    return &cur->keys;
}
