/* CBOR reading helpers and COSE public keys (see console/cose.h). */
#include "console/cose.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <string.h>

#include "console/errors.h"

#define CBOR_MAX_DEPTH 16
#define CBOR_MAX_MAP 64

static bool same_key(const cbor_item_t *a, const cbor_item_t *b)
{
    if (cbor_typeof(a) != cbor_typeof(b))
        return false;
    switch (cbor_typeof(a)) {
    case CBOR_TYPE_UINT:
    case CBOR_TYPE_NEGINT:
        return cbor_get_int(a) == cbor_get_int(b);
    case CBOR_TYPE_STRING:
        return cbor_string_length(a) == cbor_string_length(b) &&
               memcmp(cbor_string_handle(a), cbor_string_handle(b), cbor_string_length(a)) == 0;
    case CBOR_TYPE_BYTESTRING:
        return cbor_bytestring_length(a) == cbor_bytestring_length(b) &&
               memcmp(cbor_bytestring_handle(a), cbor_bytestring_handle(b),
                      cbor_bytestring_length(a)) == 0;
    default:
        return false; /* other key types are refused by well_formed */
    }
}

/* Definite lengths only, bounded depth, maps with unique integer/string keys. */
static bool well_formed(const cbor_item_t *it, int depth)
{
    if (depth > CBOR_MAX_DEPTH)
        return false;
    switch (cbor_typeof(it)) {
    case CBOR_TYPE_BYTESTRING:
        return cbor_bytestring_is_definite(it);
    case CBOR_TYPE_STRING:
        return cbor_string_is_definite(it);
    case CBOR_TYPE_ARRAY: {
        if (!cbor_array_is_definite(it))
            return false;
        cbor_item_t **h = cbor_array_handle(it);
        for (size_t i = 0; i < cbor_array_size(it); i++)
            if (!well_formed(h[i], depth + 1))
                return false;
        return true;
    }
    case CBOR_TYPE_MAP: {
        size_t n = cbor_map_size(it);
        if (!cbor_map_is_definite(it) || n > CBOR_MAX_MAP)
            return false;
        struct cbor_pair *p = cbor_map_handle(it);
        for (size_t i = 0; i < n; i++) {
            cbor_type kt = cbor_typeof(p[i].key);
            if (kt != CBOR_TYPE_UINT && kt != CBOR_TYPE_NEGINT && kt != CBOR_TYPE_STRING)
                return false;
            if (!well_formed(p[i].key, depth + 1) || !well_formed(p[i].value, depth + 1))
                return false;
            for (size_t j = 0; j < i; j++)
                if (same_key(p[i].key, p[j].key))
                    return false;
        }
        return true;
    }
    case CBOR_TYPE_TAG:
        return false; /* nothing WebAuthn or COSE keys use */
    default:
        return true; /* integers, simple values, floats */
    }
}

/*
 * Walks the heads of the first data item of d[0..len) without allocating anything and
 * returns its size in bytes, or 0 to refuse it: definite lengths only, no tags, no reserved
 * additional information, depth bounded, and every declared length or count at most what
 * the input has left (each item takes a byte at least). libcbor reserves a declared count
 * before it reads the items, so a 2^40-entry map in an attacker's attestation must never
 * reach it.
 */
static size_t cbor_scan(const uint8_t *d, size_t len, int depth)
{
    if (len == 0 || depth > CBOR_MAX_DEPTH)
        return 0;
    unsigned major = d[0] >> 5, ai = d[0] & 0x1f;
    size_t pos = 1;
    uint64_t arg = ai;
    if (ai >= 24) {
        if (ai > 27)
            return 0; /* 28-30 reserved, 31 indefinite length or break */
        size_t n = (size_t)1 << (ai - 24);
        if (len - 1 < n)
            return 0;
        arg = 0;
        for (size_t i = 0; i < n; i++)
            arg = arg << 8 | d[1 + i];
        pos += n;
    }
    uint64_t left = len - pos;
    switch (major) {
    case 2: /* byte string */
    case 3: /* text string */
        return arg <= left ? pos + (size_t)arg : 0;
    case 4: /* array */
    case 5: /* map: a key and a value per entry */
        if (arg > left || (major == 5 && arg > left / 2))
            return 0;
        for (uint64_t i = 0, items = major == 5 ? arg * 2 : arg; i < items; i++) {
            size_t n = cbor_scan(d + pos, len - pos, depth + 1);
            if (n == 0)
                return 0;
            pos += n;
        }
        return pos;
    case 6: /* tag: nothing WebAuthn or COSE keys use */
        return 0;
    default: /* integers, simple values, floats: the head is the item */
        return pos;
    }
}

cbor_item_t *cc_cbor_load(const uint8_t *data, size_t len, size_t *used)
{
    struct cbor_load_result r;
    if (data == NULL || len == 0)
        return NULL;
    size_t size = cbor_scan(data, len, 0);
    if (size == 0)
        return NULL;
    len = size;
    cbor_item_t *it = cbor_load(data, len, &r);
    if (it == NULL || r.error.code != CBOR_ERR_NONE) {
        if (it)
            cbor_decref(&it);
        return NULL;
    }
    if (!well_formed(it, 0)) {
        cbor_decref(&it);
        return NULL;
    }
    *used = r.read;
    return it;
}

int cc_cbor_int(const cbor_item_t *item, int64_t *out)
{
    if (item == NULL)
        return CC_EINVAL;
    uint64_t v = cbor_get_int(item);
    if (cbor_isa_uint(item) && v <= (uint64_t)INT64_MAX) {
        *out = (int64_t)v;
        return 0;
    }
    if (cbor_isa_negint(item) && v <= (uint64_t)INT64_MAX) {
        *out = -1 - (int64_t)v;
        return 0;
    }
    return CC_EINVAL;
}

cbor_item_t *cc_cbor_map_int(const cbor_item_t *map, int64_t key)
{
    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++) {
        int64_t k;
        if ((cbor_isa_uint(p[i].key) || cbor_isa_negint(p[i].key)) &&
            cc_cbor_int(p[i].key, &k) == 0 && k == key)
            return p[i].value;
    }
    return NULL;
}

cbor_item_t *cc_cbor_map_str(const cbor_item_t *map, const char *key)
{
    if (map == NULL || !cbor_isa_map(map))
        return NULL;
    size_t n = strlen(key);
    struct cbor_pair *p = cbor_map_handle(map);
    for (size_t i = 0; i < cbor_map_size(map); i++)
        if (cbor_isa_string(p[i].key) && cbor_string_length(p[i].key) == n &&
            memcmp(cbor_string_handle(p[i].key), key, n) == 0)
            return p[i].value;
    return NULL;
}

/* A definite byte string of exactly n bytes (n 0: any length), or NULL. */
static const uint8_t *bytes_of(const cbor_item_t *it, size_t n, size_t *len)
{
    if (it == NULL || !cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
        return NULL;
    if (n != 0 && cbor_bytestring_length(it) != n)
        return NULL;
    if (len)
        *len = cbor_bytestring_length(it);
    return cbor_bytestring_handle(it);
}

static bool int_is(const cbor_item_t *it, int64_t want)
{
    int64_t v;
    return it != NULL && cc_cbor_int(it, &v) == 0 && v == want;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1)
        (void)EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *ec2_key(const cbor_item_t *m)
{
    const uint8_t *x = bytes_of(cc_cbor_map_int(m, -2), 32, NULL);
    const uint8_t *y = bytes_of(cc_cbor_map_int(m, -3), 32, NULL);
    if (!int_is(cc_cbor_map_int(m, -1), 1) || x == NULL || y == NULL)
        return NULL;
    uint8_t point[65];
    point[0] = 0x04;
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *k = NULL;
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) == 1 &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) == 1)
        k = from_params("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    return k;
}

static EVP_PKEY *rsa_key(const cbor_item_t *m)
{
    size_t nlen = 0, elen = 0;
    const uint8_t *n = bytes_of(cc_cbor_map_int(m, -1), 0, &nlen);
    const uint8_t *e = bytes_of(cc_cbor_map_int(m, -2), 0, &elen);
    if (n == NULL || e == NULL || nlen < 256 || nlen > 512 || elen == 0 || elen > 8)
        return NULL;
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL), *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *k = NULL;
    if (bn && be && bld && BN_is_odd(be) && !BN_is_one(be) && BN_num_bits(bn) >= 2048 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) == 1 &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) == 1)
        k = from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    return k;
}

static EVP_PKEY *okp_key(const cbor_item_t *m)
{
    const uint8_t *x = bytes_of(cc_cbor_map_int(m, -2), 32, NULL);
    if (!int_is(cc_cbor_map_int(m, -1), 6) || x == NULL)
        return NULL;
    return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, 32);
}

int cc_cose_key_parse(const uint8_t *data, size_t len, size_t *used, cc_cose_key_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t n = 0;
    cbor_item_t *m = cc_cbor_load(data, len, &n);
    if (m == NULL)
        return CC_EINVAL;
    int rc = CC_EINVAL;
    int64_t kty = 0, alg = 0;
    if (!cbor_isa_map(m) || cc_cbor_int(cc_cbor_map_int(m, 1), &kty) != 0 ||
        cc_cbor_int(cc_cbor_map_int(m, 3), &alg) != 0)
        goto Exit;
    EVP_PKEY *k = NULL;
    if (alg == CC_COSE_ES256 && kty == 2)
        k = ec2_key(m);
    else if (alg == CC_COSE_RS256 && kty == 3)
        k = rsa_key(m);
    else if (alg == CC_COSE_EDDSA && kty == 1)
        k = okp_key(m);
    else {
        rc = (alg == CC_COSE_ES256 || alg == CC_COSE_RS256 || alg == CC_COSE_EDDSA) ? CC_EINVAL
                                                                                    : CC_ENOENT;
        goto Exit;
    }
    if (k == NULL)
        goto Exit;
    out->alg = alg;
    out->key = k;
    *used = n;
    rc = 0;
Exit:
    cbor_decref(&m);
    return rc;
}

void cc_cose_key_dispose(cc_cose_key_t *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->key);
    k->key = NULL;
}

int cc_cose_verify(EVP_PKEY *key, int64_t alg, const uint8_t *msg, size_t msglen,
                   const uint8_t *sig, size_t siglen)
{
    if (key == NULL || sig == NULL || siglen == 0 || siglen > 1024)
        return CC_EINVAL;
    const EVP_MD *md = NULL;
    switch (alg) {
    case CC_COSE_ES256: {
        char group[32] = "";
        size_t gl = 0;
        if (!EVP_PKEY_is_a(key, "EC") ||
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                           &gl) != 1 ||
            strcmp(group, "prime256v1") != 0)
            return CC_EAUTH;
        md = EVP_sha256();
        break;
    }
    case CC_COSE_RS256:
        if (!EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_get_bits(key) < 2048)
            return CC_EAUTH;
        md = EVP_sha256();
        break;
    case CC_COSE_EDDSA:
        if (!EVP_PKEY_is_a(key, "ED25519"))
            return CC_EAUTH;
        break;
    default:
        return CC_EAUTH;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestVerifyInit(ctx, NULL, md, NULL, key) == 1 &&
             EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : CC_EAUTH;
}
