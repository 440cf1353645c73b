/*
 * ES256 signing and P-256 key generation for the identity service.
 *
 * Why tokens are signed with OpenSSL and not with libjwt's jwt_encode_str(): libjwt
 * 1.10.2 (jwt_write_head) deletes any "typ" header and writes "typ": "JWT" on every
 * encode, so it cannot issue the RFC 9068 "at+jwt" access tokens auth.h promises. The
 * signature format is the same as libjwt's (JOSE R||S, 32 bytes each, not DER); the unit
 * tests check that libjwt verifies what we sign and that we verify what libjwt signs.
 */
#include "console/auth.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console/crypto.h"
#include "console/errors.h"
#include "console/str.h"

#define P256_COORD 32

/** Appends base64url (RFC 4648 §5, no padding) of data[0..n) to b. */
static void b64url_append(cc_buf_t *b, const void *data, size_t n)
{
    char *enc = cc_base64url_encode(data, n);
    cc_buf_puts(b, enc);
    free(enc);
}

/** True when pkey is an EC key on P-256. */
static bool is_p256(EVP_PKEY *pkey)
{
    char group[64];
    size_t len = 0;
    return pkey != NULL && EVP_PKEY_is_a(pkey, "EC") &&
           EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          &len) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

/** Reads a PEM private key (PKCS#8 or SEC1) that must be EC P-256; NULL otherwise. */
static EVP_PKEY *read_p256_private(const char *priv_pem)
{
    if (priv_pem == NULL)
        return NULL;
    BIO *bio = BIO_new_mem_buf(priv_pem, -1);
    /* an empty passphrase callback: an encrypted key fails instead of prompting on a tty */
    EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"") : NULL;
    BIO_free(bio);
    if (!is_p256(pkey)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
        ERR_clear_error();
    }
    return pkey;
}

int cc_jwt_sign_es256(const char *priv_pem, const char *kid, const char *typ, json_t *claims,
                      char **out)
{
    int ret = CC_ECRYPTO;
    EVP_PKEY *pkey = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    json_t *head = NULL;
    char *head_json = NULL, *body_json = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    cc_buf_t b;
    cc_buf_init(&b);

    if (out != NULL)
        *out = NULL;
    if (out == NULL || kid == NULL || kid[0] == '\0' || !json_is_object(claims))
        goto Exit;
    if ((pkey = read_p256_private(priv_pem)) == NULL)
        goto Exit;

    head = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", typ ? typ : "JWT", "kid", kid);
    if (head == NULL)
        goto Exit;
    head_json = json_dumps(head, JSON_COMPACT);
    body_json = json_dumps(claims, JSON_COMPACT);
    if (head_json == NULL || body_json == NULL)
        goto Exit;
    b64url_append(&b, head_json, strlen(head_json));
    cc_buf_putc(&b, '.');
    b64url_append(&b, body_json, strlen(body_json));

    if ((md = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(md, NULL, &der_len, (const unsigned char *)b.data, b.len) != 1)
        goto Exit;
    der = OPENSSL_malloc(der_len);
    if (der == NULL || EVP_DigestSign(md, der, &der_len, (const unsigned char *)b.data, b.len) != 1)
        goto Exit;

    /* DER ECDSA-Sig-Value -> JOSE R||S (RFC 7518 §3.4), each left-padded to 32 bytes */
    const unsigned char *p = der;
    const BIGNUM *r = NULL, *s = NULL;
    unsigned char rs[2 * P256_COORD];
    if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len)) == NULL)
        goto Exit;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, rs, P256_COORD) != P256_COORD ||
        BN_bn2binpad(s, rs + P256_COORD, P256_COORD) != P256_COORD)
        goto Exit;
    cc_buf_putc(&b, '.');
    b64url_append(&b, rs, sizeof(rs));
    *out = cc_buf_steal(&b, NULL);
    ret = 0;
Exit:
    if (ret != 0)
        ERR_clear_error();
    cc_buf_free(&b);
    ECDSA_SIG_free(sig);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    free(head_json);
    free(body_json);
    json_decref(head);
    EVP_PKEY_free(pkey);
    return ret;
}

/** base64url of a big-endian coordinate left-padded to 32 bytes; NULL on failure. */
static char *coord_b64url(EVP_PKEY *pkey, const char *param)
{
    BIGNUM *bn = NULL;
    unsigned char raw[P256_COORD];
    char *s = NULL;
    if (EVP_PKEY_get_bn_param(pkey, param, &bn) == 1 &&
        BN_bn2binpad(bn, raw, P256_COORD) == P256_COORD)
        s = cc_base64url_encode(raw, sizeof(raw));
    BN_free(bn);
    return s;
}

/** The public JWK of a P-256 key, or NULL. */
static json_t *jwk_of(EVP_PKEY *pkey, const char *kid)
{
    char *x = coord_b64url(pkey, OSSL_PKEY_PARAM_EC_PUB_X);
    char *y = coord_b64url(pkey, OSSL_PKEY_PARAM_EC_PUB_Y);
    json_t *jwk = NULL;
    if (x != NULL && y != NULL)
        jwk = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", x,
                        "y", y, "kid", kid, "use", "sig", "alg", "ES256");
    free(x);
    free(y);
    return jwk;
}

int cc_es256_public_jwk(const char *priv_pem, const char *kid, json_t **public_jwk)
{
    if (public_jwk == NULL)
        return CC_EINVAL;
    *public_jwk = NULL;
    if (kid == NULL || kid[0] == '\0')
        return CC_EINVAL;
    EVP_PKEY *pkey = read_p256_private(priv_pem);
    if (pkey == NULL)
        return CC_ECRYPTO;
    *public_jwk = jwk_of(pkey, kid);
    EVP_PKEY_free(pkey);
    if (*public_jwk == NULL) {
        ERR_clear_error();
        return CC_ECRYPTO;
    }
    return 0;
}

int cc_es256_generate(const char *kid, char **priv_pem, json_t **public_jwk)
{
    int ret = CC_ECRYPTO;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    json_t *jwk = NULL;
    char *data = NULL;
    long len = 0;

    if (priv_pem == NULL || public_jwk == NULL)
        return CC_EINVAL;
    *priv_pem = NULL;
    *public_jwk = NULL;
    if (kid == NULL || kid[0] == '\0')
        return CC_EINVAL;
    if ((pkey = EVP_EC_gen("P-256")) == NULL)
        goto Exit;
    if ((jwk = jwk_of(pkey, kid)) == NULL)
        goto Exit;
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"), unencrypted */
    if ((bio = BIO_new(BIO_s_mem())) == NULL ||
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
        goto Exit;
    if ((len = BIO_get_mem_data(bio, &data)) <= 0)
        goto Exit;
    *priv_pem = cc_strndup(data, (size_t)len);
    *public_jwk = jwk;
    jwk = NULL;
    ret = 0;
Exit:
    if (ret != 0)
        ERR_clear_error();
    /* the PEM held the private key: wipe the BIO's copy before it goes back to the heap */
    if (bio != NULL && (len = BIO_get_mem_data(bio, &data)) > 0)
        OPENSSL_cleanse(data, (size_t)len);
    BIO_free(bio);
    json_decref(jwk);
    EVP_PKEY_free(pkey);
    return ret;
}
