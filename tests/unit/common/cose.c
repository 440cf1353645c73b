/* Unit tests for common/cose.c: strict CBOR loading (hostile inputs), COSE_Key parsing
 * of ES256/RS256/EdDSA keys, refusals, and signature verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "console/cose.h"
#include "console/crypto.h"
#include "console/errors.h"

static cbor_item_t *load(const uint8_t *d, size_t n)
{
    size_t used = 0;
    return cc_cbor_load(d, n, &used);
}

static void test_cbor_refusals(void **state)
{
    (void)state;
    static const uint8_t indefinite_bytes[] = {0x5f, 0x41, 0x00, 0xff};
    static const uint8_t tagged[] = {0xc2, 0x41, 0x01};
    static const uint8_t dup_keys[] = {0xa2, 0x01, 0x02, 0x01, 0x03};
    static const uint8_t dup_text[] = {0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02};
    static const uint8_t truncated[] = {0x58, 0x20, 0x00};
    static const uint8_t bytes_key[] = {0xa1, 0x41, 0x00, 0x01};
    assert_null(load(indefinite_bytes, sizeof(indefinite_bytes)));
    assert_null(load(tagged, sizeof(tagged)));
    assert_null(load(dup_keys, sizeof(dup_keys)));
    assert_null(load(dup_text, sizeof(dup_text)));
    assert_null(load(truncated, sizeof(truncated)));
    assert_null(load(bytes_key, sizeof(bytes_key)));
    assert_null(load(NULL, 0));
    /* counts and lengths the input cannot hold are refused before anything is allocated
     * (libcbor would reserve the declared count first: 2^40 map entries here) */
    static const uint8_t huge_map[] = {0xbb, 0x00, 0x00, 0x01, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x01, 0x02};
    static const uint8_t huge_array[] = {0x9b, 0x00, 0x00, 0x01, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t huge_bytes[] = {0x5b, 0x00, 0x00, 0x01, 0x00,
                                         0x00, 0x00, 0x00, 0x00, 0x01};
    static const uint8_t inner_huge[] = {0xa1, 0x01, 0x9a, 0x7f, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t reserved_ai[] = {0x1c};
    assert_null(load(huge_map, sizeof(huge_map)));
    assert_null(load(huge_array, sizeof(huge_array)));
    assert_null(load(huge_bytes, sizeof(huge_bytes)));
    assert_null(load(inner_huge, sizeof(inner_huge)));
    assert_null(load(reserved_ai, sizeof(reserved_ai)));
    uint8_t deep[40];
    memset(deep, 0x81, sizeof(deep)); /* [[[[...]]]] */
    deep[sizeof(deep) - 1] = 0x00;
    assert_null(load(deep, sizeof(deep)));
    /* a good map: trailing bytes are reported, not swallowed */
    static const uint8_t good[] = {0xa2, 0x01, 0x02, 0x20, 0x41, 0x07, 0xff, 0xff};
    size_t used = 0;
    cbor_item_t *m = cc_cbor_load(good, sizeof(good), &used);
    assert_non_null(m);
    assert_int_equal(used, 6);
    int64_t v = 0;
    assert_int_equal(cc_cbor_int(cc_cbor_map_int(m, 1), &v), 0);
    assert_int_equal(v, 2);
    assert_non_null(cc_cbor_map_int(m, -1));
    assert_null(cc_cbor_map_int(m, 3));
    cbor_decref(&m);
}

/* CBOR head for short lengths (< 256) */
static size_t put_head(uint8_t *o, int major, size_t n)
{
    if (n < 24) {
        o[0] = (uint8_t)(major << 5 | n);
        return 1;
    }
    if (n < 256) {
        o[0] = (uint8_t)(major << 5 | 24);
        o[1] = (uint8_t)n;
        return 2;
    }
    o[0] = (uint8_t)(major << 5 | 25);
    o[1] = (uint8_t)(n >> 8);
    o[2] = (uint8_t)n;
    return 3;
}

static size_t put_int(uint8_t *o, int64_t v)
{
    return v >= 0 ? put_head(o, 0, (size_t)v) : put_head(o, 1, (size_t)(-1 - v));
}

static size_t put_bytes(uint8_t *o, const uint8_t *b, size_t n)
{
    size_t h = put_head(o, 2, n);
    memcpy(o + h, b, n);
    return h + n;
}

/* A COSE EC2 key of a fresh P-256 key pair (*pkey gets the private key). */
static size_t es256_key(uint8_t *o, EVP_PKEY **pkey, int64_t alg, int64_t crv)
{
    *pkey = EVP_EC_gen("P-256");
    uint8_t pub[65];
    size_t len = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(*pkey, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);
    assert_int_equal(len, 65);
    size_t n = put_head(o, 5, 5);
    n += put_int(o + n, 1);
    n += put_int(o + n, 2);
    n += put_int(o + n, 3);
    n += put_int(o + n, alg);
    n += put_int(o + n, -1);
    n += put_int(o + n, crv);
    n += put_int(o + n, -2);
    n += put_bytes(o + n, pub + 1, 32);
    n += put_int(o + n, -3);
    n += put_bytes(o + n, pub + 33, 32);
    return n;
}

static size_t sign_msg(EVP_PKEY *k, const EVP_MD *md, const uint8_t *m, size_t n, uint8_t *sig)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t len = 600;
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
    assert_int_equal(EVP_DigestSign(ctx, sig, &len, m, n), 1);
    EVP_MD_CTX_free(ctx);
    return len;
}

static void test_es256(void **state)
{
    (void)state;
    uint8_t buf[200], sig[600];
    EVP_PKEY *priv = NULL;
    size_t n = es256_key(buf, &priv, CC_COSE_ES256, 1);
    cc_cose_key_t k;
    size_t used = 0;
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), 0);
    assert_int_equal(used, n);
    assert_int_equal(k.alg, CC_COSE_ES256);
    static const uint8_t msg[] = "authenticator data || client data hash";
    size_t sl = sign_msg(priv, EVP_sha256(), msg, sizeof(msg), sig);
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_ES256, msg, sizeof(msg), sig, sl), 0);
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_ES256, msg, sizeof(msg) - 1, sig, sl), CC_EAUTH);
    sig[sl - 3] ^= 1;
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_ES256, msg, sizeof(msg), sig, sl), CC_EAUTH);
    /* the key of one algorithm never verifies under another */
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_RS256, msg, sizeof(msg), sig, sl), CC_EAUTH);
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_EDDSA, msg, sizeof(msg), sig, sl), CC_EAUTH);
    cc_cose_key_dispose(&k);

    /* every truncation and every single-byte change of the key parses or fails cleanly */
    for (size_t cut = 0; cut < n; cut++)
        assert_int_not_equal(cc_cose_key_parse(buf, cut, &used, &k), 0);
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1 << bit);
            if (cc_cose_key_parse(buf, n, &used, &k) == 0)
                cc_cose_key_dispose(&k);
            buf[i] ^= (uint8_t)(1 << bit);
        }
    EVP_PKEY_free(priv);

    /* wrong curve, unknown algorithm */
    n = es256_key(buf, &priv, CC_COSE_ES256, 2);
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), CC_EINVAL);
    EVP_PKEY_free(priv);
    n = es256_key(buf, &priv, -35, 1);
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), CC_ENOENT);
    EVP_PKEY_free(priv);
}

static void test_off_curve(void **state)
{
    (void)state;
    uint8_t buf[200], x[32], y[32];
    memset(x, 1, sizeof(x));
    memset(y, 2, sizeof(y));
    size_t n = put_head(buf, 5, 5);
    n += put_int(buf + n, 1);
    n += put_int(buf + n, 2);
    n += put_int(buf + n, 3);
    n += put_int(buf + n, -7);
    n += put_int(buf + n, -1);
    n += put_int(buf + n, 1);
    n += put_int(buf + n, -2);
    n += put_bytes(buf + n, x, 32);
    n += put_int(buf + n, -3);
    n += put_bytes(buf + n, y, 32);
    cc_cose_key_t k;
    size_t used;
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), CC_EINVAL);
}

static void test_eddsa_and_rsa(void **state)
{
    (void)state;
    uint8_t buf[700], sig[600];
    static const uint8_t msg[] = "message";
    /* Ed25519 */
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    uint8_t raw[32];
    size_t rl = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(ed, raw, &rl), 1);
    size_t n = put_head(buf, 5, 4);
    n += put_int(buf + n, 1);
    n += put_int(buf + n, 1);
    n += put_int(buf + n, 3);
    n += put_int(buf + n, -8);
    n += put_int(buf + n, -1);
    n += put_int(buf + n, 6);
    n += put_int(buf + n, -2);
    n += put_bytes(buf + n, raw, 32);
    cc_cose_key_t k;
    size_t used;
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), 0);
    size_t sl = sign_msg(ed, NULL, msg, sizeof(msg), sig);
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_EDDSA, msg, sizeof(msg), sig, sl), 0);
    sig[0] ^= 1;
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_EDDSA, msg, sizeof(msg), sig, sl), CC_EAUTH);
    cc_cose_key_dispose(&k);
    EVP_PKEY_free(ed);

    /* RSA 2048 */
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    BIGNUM *bn = NULL, *be = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &bn), 1);
    assert_int_equal(EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_E, &be), 1);
    uint8_t nb[256], eb[8];
    int nl = BN_bn2bin(bn, nb), el = BN_bn2bin(be, eb);
    n = put_head(buf, 5, 4);
    n += put_int(buf + n, 1);
    n += put_int(buf + n, 3);
    n += put_int(buf + n, 3);
    n += put_int(buf + n, -257);
    n += put_int(buf + n, -1);
    n += put_bytes(buf + n, nb, (size_t)nl);
    n += put_int(buf + n, -2);
    n += put_bytes(buf + n, eb, (size_t)el);
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), 0);
    sl = sign_msg(rsa, EVP_sha256(), msg, sizeof(msg), sig);
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_RS256, msg, sizeof(msg), sig, sl), 0);
    assert_int_equal(cc_cose_verify(k.key, CC_COSE_ES256, msg, sizeof(msg), sig, sl), CC_EAUTH);
    cc_cose_key_dispose(&k);
    /* a 1024-bit modulus is refused */
    n = put_head(buf, 5, 4);
    n += put_int(buf + n, 1);
    n += put_int(buf + n, 3);
    n += put_int(buf + n, 3);
    n += put_int(buf + n, -257);
    n += put_int(buf + n, -1);
    n += put_bytes(buf + n, nb, 128);
    n += put_int(buf + n, -2);
    n += put_bytes(buf + n, eb, (size_t)el);
    assert_int_equal(cc_cose_key_parse(buf, n, &used, &k), CC_EINVAL);
    BN_free(bn);
    BN_free(be);
    EVP_PKEY_free(rsa);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cbor_refusals),
        cmocka_unit_test(test_es256),
        cmocka_unit_test(test_off_curve),
        cmocka_unit_test(test_eddsa_and_rsa),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
