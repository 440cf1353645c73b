/*
 * libFuzzer driver for access-token verification (common/auth.c).
 *
 * The first byte picks what the rest of the input is:
 *   0: a whole compact token, verified against a loaded key;
 *   1: the payload bytes of a token with a valid header, signed with the loaded key, so
 *      that claim checking is reached despite the signature;
 *   2: the header bytes of a token with valid claims, signed with the loaded key;
 *   3: a JWKS document for cc_jwks_load.
 * The key below is a throwaway generated for this driver; it signs nothing else.
 *
 * Build (clang): add_executable(fuzz_jwt tests/fuzz/jwt.c), linked with console_common,
 * compiled and linked with -fsanitize=fuzzer,address,undefined. Run:
 *   fuzz_jwt -max_total_time=60 tests/fuzz/corpus/jwt
 */
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console/auth.h"
#include "console/log.h"
#include "console/str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fuzz_priv_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgIuIMJX4DkYJq17C0\n"
    "VL6okp0IZ/n8ZmZwMr+vPsCXDM6hRANCAATp8eKdtYXTVTCkedEvv9FiE/YaZwtG\n"
    "eekcLXX1UwSDjCVWiQmPWqKafbR2sI/kFRM5MN0yQpMpl8n2p5mFHWbp\n"
    "-----END PRIVATE KEY-----\n";

static const char fuzz_jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"fuzz\",\"use\":\"sig\",\"alg\":"
    "\"ES256\",\"x\":\"6fHinbWF01UwpHnRL7_RYhP2GmcLRnnpHC119VMEg4w\","
    "\"y\":\"JVaJCY9aopp9tHawj-QVEzkw3TJCkymXyfanmYUdZuk\"}]}";

static const char fuzz_header[] = "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"fuzz\"}";
static const char fuzz_claims[] = "{\"iss\":\"https://id.test\",\"aud\":[\"console\"],"
                                  "\"sub\":\"u-1\",\"exp\":4102444800,\"scope\":\"a b\"}";

static const cc_auth_opts_t opts = {
    .issuer = "https://id.test", .audience = "console", .leeway_s = 30, .may_fetch = false};

static cc_jwks_t *jwks;
static EVP_PKEY *priv;

static void b64url(cc_buf_t *b, const void *p, size_t n)
{
    char *std = malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)std, p, (int)n);
    while (len > 0 && std[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        cc_buf_putc(b, std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i]);
    free(std);
}

/** header.payload signed with the fuzz key (JOSE R||S). Caller frees. */
static char *sign_raw(const uint8_t *head, size_t head_len, const uint8_t *body, size_t body_len)
{
    cc_buf_t b;
    cc_buf_init(&b);
    b64url(&b, head, head_len);
    cc_buf_putc(&b, '.');
    b64url(&b, body, body_len);
    unsigned char der[128], rs[64];
    size_t der_len = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, priv) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const unsigned char *)b.data, b.len) != 1)
        abort();
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
    ECDSA_SIG_free(sig);
    cc_buf_putc(&b, '.');
    b64url(&b, rs, sizeof(rs));
    return cc_buf_steal(&b, NULL);
}

static void verify(const char *token)
{
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    const char *why = NULL;
    int rc = cc_auth_verify(jwks, &opts, token, pool, &p, &why);
    if (rc == 0) {
        if (p == NULL || p->sub == NULL || p->sub[0] == '\0' || p->scope == NULL || why != NULL)
            abort(); /* success must come with a complete principal */
        (void)cc_principal_has_scope(p, "a");
    } else if (p != NULL || why == NULL) {
        abort(); /* failure must come with a reason and no principal */
    }
    cc_pool_free(pool);
    free(cc_jwt_peek_kid(token));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (jwks == NULL) {
        cc_log_init("fuzz", CC_LOG_ERROR);
        jwks = cc_jwks_new(NULL, 10);
        if (cc_jwks_load(jwks, fuzz_jwks) != 0)
            abort();
        BIO *bio = BIO_new_mem_buf(fuzz_priv_pem, -1);
        priv = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (priv == NULL)
            abort();
    }
    if (size == 0)
        return 0;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    char *text = cc_strndup((const char *)rest, n);
    char *token = NULL;
    switch (data[0] % 4) {
    case 0:
        verify(text);
        break;
    case 1:
        if (n <= 6000) { /* bigger ones only hit the size limit */
            token = sign_raw((const uint8_t *)fuzz_header, strlen(fuzz_header), rest, n);
            verify(token);
        }
        break;
    case 2:
        if (n <= 6000) {
            token = sign_raw(rest, n, (const uint8_t *)fuzz_claims, strlen(fuzz_claims));
            verify(token);
        }
        break;
    case 3: {
        cc_jwks_t *j = cc_jwks_new(NULL, 10);
        if (cc_jwks_load(j, text) == 0 && cc_jwks_count(j) < 1)
            abort();
        cc_jwks_free(j);
        break;
    }
    }
    free(token);
    free(text);
    return 0;
}
