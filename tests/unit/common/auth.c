/*
 * Tests for common/auth.c and common/jwt_sign.c: a matrix of hostile tokens, the JWKS
 * cache (loading, replacing, fetching over HTTP, the unknown-kid rate limit), signing
 * round trips and interoperability with libjwt, and verification under concurrent reloads.
 *
 * Tokens are signed here with OpenSSL directly (sign_raw), independently of
 * cc_jwt_sign_es256, so that a bug shared by the signer and the verifier cannot hide.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jwt.h>
#include <netinet/in.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "console/auth.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/str.h"

#define ISSUER "https://id.test"
#define AUDIENCE "console"

/* ---- fixtures ---- */

static char *key_a_priv, *key_b_priv, *key_c_priv; /* c: not published, claims kid-a */
static char *key_a_pub;                            /* SPKI PEM of key a */
static json_t *jwk_a, *jwk_b;
static char *jwks_a;  /* {"keys":[a]} */
static char *jwks_ab; /* {"keys":[a, b]} */

static char *jwks_doc(json_t *k1, json_t *k2)
{
    json_t *keys = json_array();
    if (k1)
        json_array_append(keys, k1);
    if (k2)
        json_array_append(keys, k2);
    json_t *doc = json_pack("{s:o}", "keys", keys);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static char *public_pem_of(const char *priv_pem)
{
    BIO *in = BIO_new_mem_buf(priv_pem, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);
    BIO *out = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(out, pkey);
    char *data = NULL;
    long len = BIO_get_mem_data(out, &data);
    char *pem = cc_strndup(data, (size_t)len);
    BIO_free(in);
    BIO_free(out);
    EVP_PKEY_free(pkey);
    return pem;
}

static int group_setup(void **state)
{
    json_t *jwk_c = NULL;
    cc_log_init("test", CC_LOG_ERROR);
    if (cc_es256_generate("kid-a", &key_a_priv, &jwk_a) != 0 ||
        cc_es256_generate("kid-b", &key_b_priv, &jwk_b) != 0 ||
        cc_es256_generate("kid-a", &key_c_priv, &jwk_c) != 0)
        return -1;
    json_decref(jwk_c);
    key_a_pub = public_pem_of(key_a_priv);
    jwks_a = jwks_doc(jwk_a, NULL);
    jwks_ab = jwks_doc(jwk_a, jwk_b);
    return 0;
}

static int group_teardown(void **state)
{
    free(key_a_priv);
    free(key_b_priv);
    free(key_c_priv);
    free(key_a_pub);
    free(jwks_a);
    free(jwks_ab);
    json_decref(jwk_a);
    json_decref(jwk_b);
    return 0;
}

/* ---- an independent signer ---- */

static void b64url(cc_buf_t *b, const void *data, size_t n)
{
    /* through standard base64, then the URL alphabet without padding */
    char *std = cc_malloc(4 * ((n + 2) / 3) + 1);
    int len = EVP_EncodeBlock((unsigned char *)std, data, (int)n);
    while (len > 0 && std[len - 1] == '=')
        len--;
    for (int i = 0; i < len; i++)
        cc_buf_putc(b, std[i] == '+' ? '-' : std[i] == '/' ? '_' : std[i]);
    free(std);
}

/** The JOSE ES256 signature (R||S) of input under priv_pem, base64url-appended to b. */
static void append_es256_sig(cc_buf_t *b, const char *priv_pem, const char *input, size_t n)
{
    BIO *bio = BIO_new_mem_buf(priv_pem, -1);
    EVP_PKEY *pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t der_len = sizeof(der);
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pkey), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, n), 1);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    unsigned char rs[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
    b64url(b, rs, sizeof(rs));
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    BIO_free(bio);
}

/** header.payload signed with priv_pem (NULL: an empty signature). Caller frees. */
static char *sign_raw(const char *priv_pem, const char *header, const char *payload)
{
    cc_buf_t b;
    cc_buf_init(&b);
    b64url(&b, header, strlen(header));
    cc_buf_putc(&b, '.');
    b64url(&b, payload, strlen(payload));
    size_t input_len = b.len;
    cc_buf_putc(&b, '.');
    if (priv_pem != NULL)
        append_es256_sig(&b, priv_pem, b.data, input_len);
    return cc_buf_steal(&b, NULL);
}

/**
 * Expands a claims template: ${N} becomes now + N (N signed, seconds), $BIG a 9000-byte
 * string. Caller frees.
 */
static char *expand(const char *tmpl, int64_t now)
{
    cc_buf_t b;
    cc_buf_init(&b);
    for (const char *p = tmpl; *p;) {
        if (p[0] == '$' && p[1] == '{') {
            char *end;
            long long off = strtoll(p + 2, &end, 10);
            cc_buf_printf(&b, "%lld", (long long)now + off);
            p = end + 1; /* past '}' */
        } else if (strncmp(p, "$BIG", 4) == 0) {
            for (int i = 0; i < 9000; i++)
                cc_buf_putc(&b, 'x');
            p += 4;
        } else {
            cc_buf_putc(&b, *p++);
        }
    }
    return cc_buf_steal(&b, NULL);
}

static const cc_auth_opts_t opts_nofetch = {
    .issuer = ISSUER, .audience = AUDIENCE, .leeway_s = 30, .may_fetch = false};

#define HDR_OK "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"kid-a\"}"
#define CLAIMS_OK                                                                                  \
    "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u-1\",\"exp\":${600},\"iat\":${0}" \
    "}"

/* ---- the hostile-token matrix ---- */

typedef enum sig_mode {
    SIG_A,         /* signed with the published key of kid-a */
    SIG_C,         /* signed with another key that claims kid-a */
    SIG_NONE,      /* empty signature segment */
    SIG_HS256_PEM, /* libjwt HS256 MACed with key a's public PEM as the secret */
    SIG_ZERO,      /* 64 zero bytes */
    SIG_LITERAL,   /* the header field is the whole token */
} sig_mode_t;

typedef struct token_case {
    const char *name;
    const char *header; /* JSON text; NULL: HDR_OK */
    const char *claims; /* template; NULL: CLAIMS_OK */
    sig_mode_t sig;
    void (*mangle)(cc_buf_t *token);
    int want;
    const char *why; /* expected reason, NULL: not checked (success) */
} token_case_t;

/** The byte offsets of the two dots. */
static void dots(const char *t, size_t *d1, size_t *d2)
{
    *d1 = (size_t)(strchr(t, '.') - t);
    *d2 = (size_t)(strchr(t + *d1 + 1, '.') - t);
}

static void rotate_char(char *c)
{
    *c = *c == 'A' ? 'B' : 'A';
}

static void tamper_payload(cc_buf_t *t)
{
    size_t d1, d2;
    dots(t->data, &d1, &d2);
    rotate_char(&t->data[(d1 + d2) / 2]);
}

static void tamper_header(cc_buf_t *t)
{
    /* another valid header (typ JWT instead of at+jwt) in front of the same signature */
    static const char other[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"kid-a\"}";
    cc_buf_t n;
    cc_buf_init(&n);
    b64url(&n, other, strlen(other));
    cc_buf_puts(&n, strchr(t->data, '.'));
    cc_buf_free(t);
    *t = n;
}

static void truncate_sig_1(cc_buf_t *t)
{
    t->data[--t->len] = '\0';
}

static void truncate_sig_2(cc_buf_t *t)
{
    t->len -= 2;
    t->data[t->len] = '\0';
}

static void extra_segment(cc_buf_t *t)
{
    cc_buf_puts(t, ".e30");
}

static void drop_sig_segment(cc_buf_t *t)
{
    size_t d1, d2;
    dots(t->data, &d1, &d2);
    t->len = d2;
    t->data[d2] = '\0';
}

static void plus_in_payload(cc_buf_t *t)
{
    size_t d1, d2;
    dots(t->data, &d1, &d2);
    t->data[d1 + 2] = '+';
}

static void pad_header(cc_buf_t *t)
{
    size_t d1, d2;
    dots(t->data, &d1, &d2);
    cc_buf_t n;
    cc_buf_init(&n);
    cc_buf_append(&n, t->data, d1);
    cc_buf_puts(&n, "==");
    cc_buf_puts(&n, t->data + d1);
    cc_buf_free(t);
    *t = n;
}

static void space_before(cc_buf_t *t)
{
    cc_buf_t n;
    cc_buf_init(&n);
    cc_buf_putc(&n, ' ');
    cc_buf_puts(&n, t->data);
    cc_buf_free(t);
    *t = n;
}

static void noncanonical_sig(cc_buf_t *t)
{
    /* 64 bytes take 86 characters; the last one's low 4 bits are unused and must be 0 */
    char *c = &t->data[t->len - 1];
    const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    *c = a[(strchr(a, *c) - a) | 1];
}

static const token_case_t token_cases[] = {
    {"valid", NULL, NULL, SIG_A, NULL, 0, NULL},
    {"typ absent", "{\"alg\":\"ES256\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, 0, NULL},
    {"typ JWT", "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, 0,
     NULL},
    {"typ application/at+jwt",
     "{\"alg\":\"ES256\",\"typ\":\"application/at+jwt\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, 0,
     NULL},
    {"typ id_token", "{\"alg\":\"ES256\",\"typ\":\"id_token\",\"kid\":\"kid-a\"}", NULL, SIG_A,
     NULL, CC_EINVAL, "typ not allowed"},
    {"typ not a string", "{\"alg\":\"ES256\",\"typ\":1,\"kid\":\"kid-a\"}", NULL, SIG_A, NULL,
     CC_EINVAL, "typ not allowed"},
    {"crit header", "{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false,\"kid\":\"kid-a\"}", NULL,
     SIG_A, NULL, CC_EINVAL, "crit not supported"},

    /* claims */
    {"expired", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${-31}}", SIG_A, NULL,
     CC_EEXPIRED, "expired"},
    {"expired within leeway", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${-10}}", SIG_A, NULL,
     0, NULL},
    {"exp missing", NULL, "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\"}", SIG_A,
     NULL, CC_EINVAL, "missing exp"},
    {"exp as string", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":\"${600}\"}", SIG_A,
     NULL, CC_EINVAL, "bad exp"},
    {"exp as real", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600}.5}", SIG_A,
     NULL, CC_EINVAL, "bad exp"},
    {"exp null", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":null}", SIG_A, NULL,
     CC_EINVAL, "bad exp"},
    {"exp at int64 max", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
     "\",\"sub\":\"u\",\"exp\":9223372036854775807,\"nbf\":-9223372036854775807}",
     SIG_A, NULL, 0, NULL},
    {"exp at int64 min", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":-9223372036854775807}",
     SIG_A, NULL, CC_EEXPIRED, "expired"},
    {"nbf in the future", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600},\"nbf\":${60}}",
     SIG_A, NULL, CC_EEXPIRED, "not yet valid"},
    {"nbf within leeway", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600},\"nbf\":${20}}",
     SIG_A, NULL, 0, NULL},
    {"nbf as string", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600},\"nbf\":\"0\"}",
     SIG_A, NULL, CC_EINVAL, "bad nbf"},
    {"iat in the future beyond leeway", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600},\"iat\":${60}}",
     SIG_A, NULL, CC_EEXPIRED, "issued in the future"},
    {"iat at int64 max", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
     "\",\"sub\":\"u\",\"exp\":${600},\"iat\":9223372036854775807}",
     SIG_A, NULL, CC_EEXPIRED, "issued in the future"},
    {"wrong iss", NULL,
     "{\"iss\":\"https://evil.test\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600}}", SIG_A,
     NULL, CC_EAUTH, "wrong issuer"},
    {"iss with a suffix", NULL,
     "{\"iss\":\"" ISSUER "/\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600}}", SIG_A, NULL,
     CC_EAUTH, "wrong issuer"},
    {"iss missing", NULL, "{\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600}}", SIG_A, NULL,
     CC_EINVAL, "missing iss"},
    {"iss as array", NULL,
     "{\"iss\":[\"" ISSUER "\"],\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600}}", SIG_A,
     NULL, CC_EINVAL, "bad iss"},
    {"wrong aud", NULL, "{\"iss\":\"" ISSUER "\",\"aud\":\"billing\",\"sub\":\"u\",\"exp\":${600}}",
     SIG_A, NULL, CC_EAUTH, "wrong audience"},
    {"aud missing", NULL, "{\"iss\":\"" ISSUER "\",\"sub\":\"u\",\"exp\":${600}}", SIG_A, NULL,
     CC_EINVAL, "missing aud"},
    {"aud array with the audience", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":[\"billing\",\"" AUDIENCE "\"],\"sub\":\"u\",\"exp\":${600}}",
     SIG_A, NULL, 0, NULL},
    {"aud array without the audience", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":[\"billing\",\"consoles\",1],\"sub\":\"u\",\"exp\":${600}}",
     SIG_A, NULL, CC_EAUTH, "wrong audience"},
    {"aud empty array", NULL, "{\"iss\":\"" ISSUER "\",\"aud\":[],\"sub\":\"u\",\"exp\":${600}}",
     SIG_A, NULL, CC_EAUTH, "wrong audience"},
    {"aud as object", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":{\"" AUDIENCE "\":1},\"sub\":\"u\",\"exp\":${600}}", SIG_A,
     NULL, CC_EINVAL, "bad aud"},
    {"sub missing", NULL, "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"exp\":${600}}", SIG_A,
     NULL, CC_EINVAL, "missing sub"},
    {"sub empty", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"\",\"exp\":${600}}", SIG_A, NULL,
     CC_EINVAL, "missing sub"},
    {"kind unknown", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
     "\",\"sub\":\"u\",\"exp\":${600},\"kind\":\"root\"}",
     SIG_A, NULL, CC_EINVAL, "bad kind"},
    {"act without sub", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600},\"act\":{}}",
     SIG_A, NULL, CC_EINVAL, "bad act"},
    {"tid not a string", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE "\",\"sub\":\"u\",\"exp\":${600},\"tid\":7}",
     SIG_A, NULL, CC_EINVAL, "bad tid"},
    {"duplicate claim", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
     "\",\"sub\":\"u\",\"sub\":\"admin\",\"exp\":${600}}",
     SIG_A, NULL, CC_EINVAL, "malformed payload"},
    {"payload JSON array", NULL, "[\"" ISSUER "\"]", SIG_A, NULL, CC_EINVAL, "malformed payload"},
    {"payload not JSON", NULL, "exp=1", SIG_A, NULL, CC_EINVAL, "malformed payload"},
    {"token over 8 KiB", NULL,
     "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
     "\",\"sub\":\"u\",\"exp\":${600},\"x\":\"$BIG\"}",
     SIG_A, NULL, CC_EINVAL, "token too long"},

    /* algorithms and keys */
    {"alg none, no kid", "{\"alg\":\"none\"}", NULL, SIG_NONE, NULL, CC_EINVAL, "alg not allowed"},
    {"alg none with a real kid", "{\"alg\":\"none\",\"kid\":\"kid-a\"}", NULL, SIG_NONE, NULL,
     CC_EINVAL, "alg not allowed"},
    {"alg none with a valid signature", "{\"alg\":\"none\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL,
     CC_EINVAL, "alg not allowed"},
    {"alg NONE", "{\"alg\":\"NONE\",\"kid\":\"kid-a\"}", NULL, SIG_NONE, NULL, CC_EINVAL,
     "alg not allowed"},
    {"HS256 keyed with the public key PEM", NULL, NULL, SIG_HS256_PEM, NULL, CC_EINVAL,
     "alg not allowed"},
    {"RS256 header", "{\"alg\":\"RS256\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL,
     "alg not allowed"},
    {"PS256 header", "{\"alg\":\"PS256\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL,
     "alg not allowed"},
    {"EdDSA header", "{\"alg\":\"EdDSA\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL,
     "alg not allowed"},
    {"ES384 header", "{\"alg\":\"ES384\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL,
     "alg not allowed"},
    {"alg lower case", "{\"alg\":\"es256\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL,
     "alg not allowed"},
    {"alg missing", "{\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL, "alg not allowed"},
    {"alg as array", "{\"alg\":[\"ES256\"],\"kid\":\"kid-a\"}", NULL, SIG_A, NULL, CC_EINVAL,
     "alg not allowed"},
    {"alg duplicated", "{\"alg\":\"none\",\"alg\":\"ES256\",\"kid\":\"kid-a\"}", NULL, SIG_A, NULL,
     CC_EINVAL, "malformed header"},
    {"kid missing", "{\"alg\":\"ES256\"}", NULL, SIG_A, NULL, CC_EINVAL, "missing kid"},
    {"kid empty", "{\"alg\":\"ES256\",\"kid\":\"\"}", NULL, SIG_A, NULL, CC_EINVAL, "missing kid"},
    {"kid not a string", "{\"alg\":\"ES256\",\"kid\":1}", NULL, SIG_A, NULL, CC_EINVAL,
     "missing kid"},
    {"unknown kid without fetch", "{\"alg\":\"ES256\",\"kid\":\"kid-x\"}", NULL, SIG_A, NULL,
     CC_EKEY, "unknown kid"},
    {"another key with the right kid", NULL, NULL, SIG_C, NULL, CC_EAUTH, "bad signature"},
    {"signature of zeros", NULL, NULL, SIG_ZERO, NULL, CC_EAUTH, "bad signature"},
    {"empty signature", NULL, NULL, SIG_NONE, NULL, CC_EINVAL, "malformed signature"},

    /* structure and encoding */
    {"tampered payload", NULL, NULL, SIG_A, tamper_payload, CC_EAUTH, "bad signature"},
    {"tampered header", NULL, NULL, SIG_A, tamper_header, CC_EAUTH, "bad signature"},
    {"signature short by one char", NULL, NULL, SIG_A, truncate_sig_1, CC_EINVAL,
     "malformed signature"},
    {"signature short by one byte", NULL, NULL, SIG_A, truncate_sig_2, CC_EINVAL,
     "malformed signature"},
    {"non-canonical signature encoding", NULL, NULL, SIG_A, noncanonical_sig, CC_EINVAL,
     "malformed signature"},
    {"4 segments", NULL, NULL, SIG_A, extra_segment, CC_EINVAL, "malformed"},
    {"2 segments", NULL, NULL, SIG_A, drop_sig_segment, CC_EINVAL, "malformed"},
    {"'+' in the payload", NULL, NULL, SIG_A, plus_in_payload, CC_EINVAL, "malformed payload"},
    {"padding in the header", NULL, NULL, SIG_A, pad_header, CC_EINVAL, "malformed header"},
    {"leading space", NULL, NULL, SIG_A, space_before, CC_EINVAL, "malformed header"},
    {"header not JSON", "ES256", NULL, SIG_A, NULL, CC_EINVAL, "malformed header"},
    {"header JSON array", "[\"ES256\"]", NULL, SIG_A, NULL, CC_EINVAL, "malformed header"},
    {"empty string", "", NULL, SIG_LITERAL, NULL, CC_EINVAL, "malformed"},
    {"dots only", "..", NULL, SIG_LITERAL, NULL, CC_EINVAL, "malformed"},
    {"no dots", "eyJhbGciOiJFUzI1NiJ9", NULL, SIG_LITERAL, NULL, CC_EINVAL, "malformed"},
    {"bearer prefix", "Bearer eyJ.eyJ.AAAA", NULL, SIG_LITERAL, NULL, CC_EINVAL,
     "malformed header"},
};

/** Builds the token of a case. Caller frees. */
static char *build_token(const token_case_t *tc, int64_t now)
{
    const char *header = tc->header ? tc->header : HDR_OK;
    char *claims = expand(tc->claims ? tc->claims : CLAIMS_OK, now);
    char *token = NULL;
    switch (tc->sig) {
    case SIG_A:
        token = sign_raw(key_a_priv, header, claims);
        break;
    case SIG_C:
        token = sign_raw(key_c_priv, header, claims);
        break;
    case SIG_NONE:
        token = sign_raw(NULL, header, claims);
        break;
    case SIG_ZERO: {
        cc_buf_t b;
        cc_buf_init(&b);
        char *unsigned_tok = sign_raw(NULL, header, claims);
        cc_buf_puts(&b, unsigned_tok);
        unsigned char zero[64] = {0};
        b64url(&b, zero, sizeof(zero));
        free(unsigned_tok);
        token = cc_buf_steal(&b, NULL);
        break;
    }
    case SIG_HS256_PEM: {
        jwt_t *jwt = NULL;
        assert_int_equal(jwt_new(&jwt), 0);
        assert_int_equal(jwt_add_grants_json(jwt, claims), 0);
        assert_int_equal(jwt_add_header(jwt, "kid", "kid-a"), 0);
        assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key_a_pub,
                                     (int)strlen(key_a_pub)),
                         0);
        char *s = jwt_encode_str(jwt);
        token = cc_strdup(s);
        free(s);
        jwt_free(jwt);
        break;
    }
    case SIG_LITERAL:
        token = cc_strdup(header);
        break;
    }
    free(claims);
    if (tc->mangle != NULL) {
        cc_buf_t b;
        cc_buf_init(&b);
        cc_buf_puts(&b, token);
        free(token);
        tc->mangle(&b);
        token = cc_buf_steal(&b, NULL);
    }
    return token;
}

static void test_token_matrix(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    int64_t now = (int64_t)time(NULL);
    int failures = 0;
    for (size_t i = 0; i < CC_ARRAY_SIZE(token_cases); i++) {
        const token_case_t *tc = &token_cases[i];
        char *token = build_token(tc, now);
        cc_pool_t *pool = cc_pool_new();
        cc_principal_t *p = (cc_principal_t *)(uintptr_t)1;
        const char *why = "unset";
        int rc = cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, &why);
        bool ok = rc == tc->want &&
                  (tc->want == 0 ? p != NULL && why == NULL
                                 : p == NULL && why != NULL && strcmp(why, tc->why) == 0);
        if (!ok) {
            print_error("case '%s': got %d (%s), want %d (%s)\n", tc->name, rc, why ? why : "NULL",
                        tc->want, tc->why ? tc->why : "NULL");
            failures++;
        }
        cc_pool_free(pool);
        free(token);
    }
    cc_jwks_free(jwks);
    assert_int_equal(failures, 0);
}

/* The confusion tokens of the matrix must be real attacks: plain libjwt accepts them. */
static void test_confusion_tokens_fool_plain_libjwt(void **state)
{
    int64_t now = (int64_t)time(NULL);
    token_case_t hs = {"hs", NULL, NULL, SIG_HS256_PEM, NULL, 0, NULL};
    char *token = build_token(&hs, now);
    jwt_t *jwt = NULL;
    assert_int_equal(
        jwt_decode(&jwt, token, (const unsigned char *)key_a_pub, (int)strlen(key_a_pub)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_HS256);
    jwt_free(jwt);
    free(token);

    token_case_t none = {"none", "{\"alg\":\"none\",\"kid\":\"kid-a\"}", NULL, SIG_NONE, NULL, 0,
                         NULL};
    token = build_token(&none, now);
    jwt = NULL;
    assert_int_equal(jwt_decode(&jwt, token, NULL, 0), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_NONE);
    jwt_free(jwt);
    free(token);
}

static void test_valid_token_maps_every_field(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    int64_t now = (int64_t)time(NULL);
    char *claims = expand("{\"iss\":\"" ISSUER "\",\"aud\":[\"" AUDIENCE "\"],\"sub\":\"c-9\","
                          "\"exp\":${600},\"iat\":${-5},\"nbf\":${-5},\"kind\":\"api_client\","
                          "\"tid\":\"t-1\",\"msp\":\"m-1\",\"scope\":\"tenants:read users:write\","
                          "\"client_id\":\"cli-7\",\"jti\":\"j-42\",\"act\":{\"sub\":\"u-real\"},"
                          "\"amr\":[\"pwd\",\"otp\"]}",
                          now);
    char *token = sign_raw(key_a_priv, HDR_OK, claims);
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    const char *why = NULL;
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, &why), 0);
    assert_non_null(p);
    assert_null(why);
    assert_int_equal(p->kind, CC_PRINCIPAL_API_CLIENT);
    assert_string_equal(p->sub, "c-9");
    assert_string_equal(p->tenant_id, "t-1");
    assert_string_equal(p->msp_id, "m-1");
    assert_string_equal(p->scope, "tenants:read users:write");
    assert_string_equal(p->client_id, "cli-7");
    assert_string_equal(p->jti, "j-42");
    assert_string_equal(p->act_sub, "u-real");
    assert_true(json_is_array(p->amr));
    assert_int_equal(json_array_size(p->amr), 2);
    assert_string_equal(json_string_value(json_array_get(p->amr, 1)), "otp");
    assert_int_equal(p->exp, now + 600);
    assert_int_equal(p->iat, now - 5);
    assert_true(json_is_object(p->claims));
    assert_string_equal(json_string_value(json_object_get(p->claims, "msp")), "m-1");
    assert_true(cc_principal_has_scope(p, "users:write"));
    cc_pool_free(pool);
    free(token);
    free(claims);

    /* the minimal token: defaults */
    claims = expand(CLAIMS_OK, now);
    token = sign_raw(key_a_priv, HDR_OK, claims);
    pool = cc_pool_new();
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, NULL), 0);
    assert_int_equal(p->kind, CC_PRINCIPAL_USER);
    assert_string_equal(p->sub, "u-1");
    assert_null(p->tenant_id);
    assert_null(p->msp_id);
    assert_string_equal(p->scope, "");
    assert_null(p->client_id);
    assert_null(p->jti);
    assert_null(p->act_sub);
    assert_null(p->amr);
    assert_int_equal(p->iat, now);
    cc_pool_free(pool);
    free(token);
    free(claims);
    cc_jwks_free(jwks);
}

static void test_verify_rejects_bad_arguments(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    char *claims = expand(CLAIMS_OK, (int64_t)time(NULL));
    char *token = sign_raw(key_a_priv, HDR_OK, claims);
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    const char *why = NULL;
    cc_auth_opts_t no_iss = {.audience = AUDIENCE};
    cc_auth_opts_t no_aud = {.issuer = ISSUER};
    assert_int_equal(cc_auth_verify(jwks, &no_iss, token, pool, &p, &why), CC_EINVAL);
    assert_int_equal(cc_auth_verify(jwks, &no_aud, token, pool, &p, &why), CC_EINVAL);
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, NULL, pool, &p, &why), CC_EINVAL);
    assert_int_equal(cc_auth_verify(NULL, &opts_nofetch, token, pool, &p, &why), CC_EINVAL);
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, NULL, &p, &why), CC_EINVAL);
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, NULL, &why), CC_EINVAL);
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, &why), 0);
    cc_pool_free(pool);
    free(token);
    free(claims);
    cc_jwks_free(jwks);
}

/* The 8 KiB limit: the longest token under it passes, one byte over fails. */
static void test_token_size_boundary(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    int64_t now = (int64_t)time(NULL);
    char *at = NULL, *over = NULL;
    for (int pad = 5800; over == NULL; pad++) {
        char *claims = cc_aprintf("{\"iss\":\"" ISSUER "\",\"aud\":\"" AUDIENCE
                                  "\",\"sub\":\"u\",\"exp\":%lld,\"x\":\"%*s\"}",
                                  (long long)now + 600, pad, "");
        char *t = sign_raw(key_a_priv, HDR_OK, claims);
        free(claims);
        if (strlen(t) <= 8192) {
            free(at);
            at = t;
        } else {
            over = t;
        }
    }
    assert_non_null(at);
    assert_true(strlen(at) > 8185);
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    const char *why = NULL;
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, at, pool, &p, &why), 0);
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, over, pool, &p, &why), CC_EINVAL);
    assert_string_equal(why, "token too long");
    cc_pool_free(pool);
    free(at);
    free(over);
    cc_jwks_free(jwks);
}

/* ---- scopes and peeking ---- */

static void test_has_scope(void **state)
{
    static const struct {
        const char *list, *scope;
        bool want;
    } cases[] = {
        {"a b c", "a", true},
        {"a b c", "b", true},
        {"a b c", "c", true},
        {"tenants:read", "tenants:read", true},
        {"tenants:read", "tenants", false},
        {"tenants:read", "tenants:rea", false},
        {"tenants:read", "tenants:read:all", false},
        {"xtenants:read", "tenants:read", false},
        {"  a   b  ", "b", true},
        {"", "a", false},
        {"a b", "", false},
        {"a b", "a b", false},
        {"A", "a", false},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_principal_t p = {.scope = cases[i].list};
        if (cc_principal_has_scope(&p, cases[i].scope) != cases[i].want)
            fail_msg("has_scope('%s', '%s') != %d", cases[i].list, cases[i].scope, cases[i].want);
    }
    cc_principal_t none = {.scope = NULL};
    assert_false(cc_principal_has_scope(&none, "a"));
    assert_false(cc_principal_has_scope(NULL, "a"));
}

static void test_peek_kid(void **state)
{
    char *t = sign_raw(NULL, "{\"alg\":\"ES256\",\"kid\":\"k-9\"}", "{}");
    char *kid = cc_jwt_peek_kid(t);
    assert_non_null(kid);
    assert_string_equal(kid, "k-9");
    free(kid);
    free(t);
    t = sign_raw(NULL, "{\"alg\":\"ES256\"}", "{}");
    assert_null(cc_jwt_peek_kid(t));
    free(t);
    assert_null(cc_jwt_peek_kid(""));
    assert_null(cc_jwt_peek_kid(NULL));
    assert_null(cc_jwt_peek_kid("not a token"));
    assert_null(cc_jwt_peek_kid("a.b.c.d"));
}

/* ---- signing ---- */

static void test_sign_verify_round_trip(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_ab), 0);
    int64_t now = (int64_t)time(NULL);
    json_t *claims = json_pack("{s:s, s:[s,s], s:s, s:I, s:I, s:s, s:s}", "iss", ISSUER, "aud",
                               "other", AUDIENCE, "sub", "u-2", "exp", (json_int_t)now + 300, "iat",
                               (json_int_t)now, "scope", "a b", "tid", "t-2");
    const char *typs[] = {"at+jwt", NULL};
    for (size_t i = 0; i < 2; i++) {
        char *token = NULL;
        assert_int_equal(cc_jwt_sign_es256(key_b_priv, "kid-b", typs[i], claims, &token), 0);
        assert_non_null(token);
        /* the header says what auth.h promises */
        json_t *head = NULL;
        {
            size_t d1 = (size_t)(strchr(token, '.') - token);
            cc_buf_t b;
            cc_buf_init(&b);
            cc_buf_append(&b, token, d1);
            while (b.len % 4)
                cc_buf_putc(&b, '=');
            for (size_t k = 0; k < b.len; k++)
                b.data[k] = b.data[k] == '-' ? '+' : b.data[k] == '_' ? '/' : b.data[k];
            unsigned char raw[256] = {0};
            int n = EVP_DecodeBlock(raw, (unsigned char *)b.data, (int)b.len);
            assert_true(n > 0);
            head = json_loadb((char *)raw, strlen((char *)raw), 0, NULL);
            cc_buf_free(&b);
        }
        assert_non_null(head);
        assert_string_equal(json_string_value(json_object_get(head, "alg")), "ES256");
        assert_string_equal(json_string_value(json_object_get(head, "kid")), "kid-b");
        assert_string_equal(json_string_value(json_object_get(head, "typ")),
                            typs[i] ? typs[i] : "JWT");
        json_decref(head);

        cc_pool_t *pool = cc_pool_new();
        cc_principal_t *p = NULL;
        const char *why = NULL;
        assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, &why), 0);
        assert_string_equal(p->sub, "u-2");
        assert_string_equal(p->tenant_id, "t-2");
        assert_true(cc_principal_has_scope(p, "b"));
        cc_pool_free(pool);
        free(token);
    }
    json_decref(claims);
    cc_jwks_free(jwks);
}

static void test_sign_rejects_bad_keys(void **state)
{
    json_t *claims = json_pack("{s:s}", "sub", "u");
    char *token = (char *)"unchanged";
    assert_int_equal(cc_jwt_sign_es256("not a pem", "k", NULL, claims, &token), CC_ECRYPTO);
    assert_null(token);
    assert_int_equal(cc_jwt_sign_es256(NULL, "k", NULL, claims, &token), CC_ECRYPTO);
    assert_int_equal(cc_jwt_sign_es256(key_a_pub, "k", NULL, claims, &token), CC_ECRYPTO);
    assert_int_equal(cc_jwt_sign_es256(key_a_priv, NULL, NULL, claims, &token), CC_ECRYPTO);
    json_t *arr = json_array();
    assert_int_equal(cc_jwt_sign_es256(key_a_priv, "k", NULL, arr, &token), CC_ECRYPTO);
    json_decref(arr);

    /* keys that are not P-256 */
    const char *others[] = {"P-384", "RSA"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(others); i++) {
        EVP_PKEY *pkey = i == 0 ? EVP_EC_gen(others[i]) : EVP_RSA_gen(2048);
        assert_non_null(pkey);
        BIO *bio = BIO_new(BIO_s_mem());
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
        char *data = NULL;
        long len = BIO_get_mem_data(bio, &data);
        char *pem = cc_strndup(data, (size_t)len);
        assert_int_equal(cc_jwt_sign_es256(pem, "k", NULL, claims, &token), CC_ECRYPTO);
        json_t *jwk = NULL;
        assert_int_equal(cc_es256_public_jwk(pem, "k", &jwk), CC_ECRYPTO);
        assert_null(jwk);
        free(pem);
        BIO_free(bio);
        EVP_PKEY_free(pkey);
    }
    json_decref(claims);
}

/* libjwt is the reference for the JOSE ES256 format: it must verify what we sign
 * (typ JWT), and we must verify what it signs (proving it emits R||S, not DER). */
static void test_interop_with_libjwt(void **state)
{
    int64_t now = (int64_t)time(NULL);
    char *claims_text = expand(CLAIMS_OK, now);
    json_t *claims = json_loads(claims_text, 0, NULL);

    char *ours = NULL;
    assert_int_equal(cc_jwt_sign_es256(key_a_priv, "kid-a", NULL, claims, &ours), 0);
    jwt_t *jwt = NULL;
    assert_int_equal(
        jwt_decode(&jwt, ours, (const unsigned char *)key_a_pub, (int)strlen(key_a_pub)), 0);
    assert_int_equal(jwt_get_alg(jwt), JWT_ALG_ES256);
    assert_string_equal(jwt_get_grant(jwt, "sub"), "u-1");
    jwt_free(jwt);
    free(ours);

    /* why auth.c does not verify with libjwt: it refuses typ "at+jwt" */
    assert_int_equal(cc_jwt_sign_es256(key_a_priv, "kid-a", "at+jwt", claims, &ours), 0);
    jwt = NULL;
    assert_int_not_equal(
        jwt_decode(&jwt, ours, (const unsigned char *)key_a_pub, (int)strlen(key_a_pub)), 0);
    assert_null(jwt);
    free(ours);

    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    for (int i = 0; i < 20; i++) { /* several signatures: some r or s have leading zeros */
        assert_int_equal(jwt_new(&jwt), 0);
        assert_int_equal(jwt_add_grants_json(jwt, claims_text), 0);
        assert_int_equal(jwt_add_header(jwt, "kid", "kid-a"), 0);
        assert_int_equal(jwt_set_alg(jwt, JWT_ALG_ES256, (const unsigned char *)key_a_priv,
                                     (int)strlen(key_a_priv)),
                         0);
        char *theirs = jwt_encode_str(jwt);
        assert_non_null(theirs);
        assert_int_equal(strlen(strrchr(theirs, '.') + 1), 86); /* 64 bytes, not DER */
        cc_pool_t *pool = cc_pool_new();
        cc_principal_t *p = NULL;
        const char *why = NULL;
        assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, theirs, pool, &p, &why), 0);
        cc_pool_free(pool);
        free(theirs);
        jwt_free(jwt);
    }
    cc_jwks_free(jwks);
    json_decref(claims);
    free(claims_text);
}

static void test_generate_and_public_jwk(void **state)
{
    for (int i = 0; i < 100; i++) { /* enough keys that some coordinates need padding */
        char *pem = NULL;
        json_t *jwk = NULL, *again = NULL;
        assert_int_equal(cc_es256_generate("k1", &pem, &jwk), 0);
        assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
        assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
        assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
        assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
        assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "ES256");
        assert_string_equal(json_string_value(json_object_get(jwk, "kid")), "k1");
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 43);
        assert_int_equal(strlen(json_string_value(json_object_get(jwk, "y"))), 43);
        assert_null(json_object_get(jwk, "d"));
        assert_int_equal(cc_es256_public_jwk(pem, "k1", &again), 0);
        assert_true(json_equal(jwk, again));
        /* what we publish, we can load */
        cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
        char *doc = jwks_doc(jwk, NULL);
        assert_int_equal(cc_jwks_load(jwks, doc), 0);
        assert_true(cc_jwks_has(jwks, "k1"));
        free(doc);
        cc_jwks_free(jwks);
        json_decref(jwk);
        json_decref(again);
        free(pem);
    }
    char *pem = NULL;
    json_t *jwk = NULL;
    assert_int_equal(cc_es256_generate("", &pem, &jwk), CC_EINVAL);
    assert_int_equal(cc_es256_public_jwk("garbage", "k", &jwk), CC_ECRYPTO);
}

/* ---- JWKS loading ---- */

/** A copy of jwk_a with member name set to value (JSON text; NULL deletes it). */
static json_t *jwk_a_with(const char *name, const char *value)
{
    json_t *k = json_deep_copy(jwk_a);
    if (value == NULL)
        json_object_del(k, name);
    else
        json_object_set_new(k, name, json_loads(value, JSON_DECODE_ANY, NULL));
    return k;
}

static char *b64url_of_bytes(const unsigned char *data, size_t n)
{
    cc_buf_t b;
    cc_buf_init(&b);
    b64url(&b, data, n);
    return cc_buf_steal(&b, NULL);
}

static void test_jwks_rejects_unsuitable_keys(void **state)
{
    unsigned char rnd[48];
    RAND_bytes(rnd, sizeof(rnd));
    char *rnd32 = b64url_of_bytes(rnd, 32), *rnd31 = b64url_of_bytes(rnd, 31);
    char *rnd33 = b64url_of_bytes(rnd, 33), *rnd48 = b64url_of_bytes(rnd, 48);
    char q_rnd32[64], q_rnd31[64], q_rnd33[64], q_rnd48[80];
    snprintf(q_rnd32, sizeof(q_rnd32), "\"%s\"", rnd32);
    snprintf(q_rnd31, sizeof(q_rnd31), "\"%s\"", rnd31);
    snprintf(q_rnd33, sizeof(q_rnd33), "\"%s\"", rnd33);
    snprintf(q_rnd48, sizeof(q_rnd48), "\"%s\"", rnd48);

    /* y of key a with one bit flipped: x stays valid, the point leaves the curve */
    const char *y = json_string_value(json_object_get(jwk_a, "y"));
    char q_y_flip[64];
    snprintf(q_y_flip, sizeof(q_y_flip), "\"%s\"", y);
    q_y_flip[5] = q_y_flip[5] == 'A' ? 'B' : 'A';
    char q_x_padded[64];
    snprintf(q_x_padded, sizeof(q_x_padded), "\"%s=\"",
             json_string_value(json_object_get(jwk_a, "x")));
    char long_kid[140];
    memset(long_kid, 'k', sizeof(long_kid));
    long_kid[0] = '"';
    long_kid[130] = '"';
    long_kid[131] = '\0';

    static const char *rsa =
        "{\"kty\":\"RSA\",\"kid\":\"kid-a\",\"use\":\"sig\",\"alg\":\"RS256\",\"e\":\"AQAB\","
        "\"n\":\"sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95"
        "GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS"
        "8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynV"
        "JCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN"
        "-aEAw3vRw\"}";
    const struct {
        const char *name, *member, *value;
    } cases[] = {
        {"kty RSA", "kty", "\"RSA\""},
        {"kty missing", "kty", NULL},
        {"kty OKP", "kty", "\"OKP\""},
        {"crv P-384", "crv", "\"P-384\""},
        {"crv secp256k1", "crv", "\"secp256k1\""},
        {"crv missing", "crv", NULL},
        {"use enc", "use", "\"enc\""},
        {"alg ES384", "alg", "\"ES384\""},
        {"alg RS256", "alg", "\"RS256\""},
        {"alg none", "alg", "\"none\""},
        {"private d present", "d", "\"AAAA\""},
        {"kid missing", "kid", NULL},
        {"kid empty", "kid", "\"\""},
        {"kid not a string", "kid", "7"},
        {"kid with a newline", "kid", "\"kid\\n-a\""},
        {"kid over 128 chars", "kid", long_kid},
        {"x missing", "x", NULL},
        {"x short (31 bytes)", "x", q_rnd31},
        {"x long (33 bytes)", "x", q_rnd33},
        {"x of P-384 size", "x", q_rnd48},
        {"x with padding", "x", q_x_padded},
        {"x not a string", "x", "123"},
        {"y random (off the curve)", "y", q_rnd32},
        {"y with a flipped bit (off the curve)", "y", q_y_flip},
    };
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_ab), 0);
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        json_t *bad = jwk_a_with(cases[i].member, cases[i].value);
        char *doc = jwks_doc(bad, NULL);
        /* alone: the document has no usable key and the old set stays */
        if (cc_jwks_load(jwks, doc) != CC_EINVAL || cc_jwks_count(jwks) != 2)
            fail_msg("case '%s': loaded alone", cases[i].name);
        free(doc);
        /* next to a good key: skipped, the good one loads */
        json_t *other = json_deep_copy(jwk_b);
        doc = jwks_doc(bad, other);
        if (cc_jwks_load(jwks, doc) != 0 || cc_jwks_count(jwks) != 1 || !cc_jwks_has(jwks, "kid-b"))
            fail_msg("case '%s': not skipped next to a good key", cases[i].name);
        assert_int_equal(cc_jwks_load(jwks, jwks_ab), 0);
        free(doc);
        json_decref(other);
        json_decref(bad);
    }
    /* a real RSA JWK */
    char *doc = cc_aprintf("{\"keys\":[%s]}", rsa);
    assert_int_equal(cc_jwks_load(jwks, doc), CC_EINVAL);
    assert_int_equal(cc_jwks_count(jwks), 2);
    free(doc);

    /* the x coordinate of a real P-384 key under crv P-256 */
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    BIGNUM *x384 = NULL;
    unsigned char raw[48];
    EVP_PKEY_get_bn_param(p384, "qx", &x384);
    BN_bn2binpad(x384, raw, 48);
    char *x384s = b64url_of_bytes(raw, 48);
    json_t *k = json_deep_copy(jwk_a);
    json_object_set_new(k, "x", json_string(x384s));
    doc = jwks_doc(k, NULL);
    assert_int_equal(cc_jwks_load(jwks, doc), CC_EINVAL);
    free(doc);
    json_decref(k);
    free(x384s);
    BN_free(x384);
    EVP_PKEY_free(p384);

    cc_jwks_free(jwks);
    free(rnd32);
    free(rnd31);
    free(rnd33);
    free(rnd48);
}

static void test_jwks_rejects_bad_documents(void **state)
{
    static const char *docs[] = {
        "",
        "not json",
        "[]",
        "{}",
        "{\"keys\":{}}",
        "{\"keys\":[]}",
        "{\"keys\":[1,\"a\",null]}",
        "{\"keys\":[],\"keys\":[]}",
    };
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    for (size_t i = 0; i < CC_ARRAY_SIZE(docs); i++) {
        if (cc_jwks_load(jwks, docs[i]) != CC_EINVAL)
            fail_msg("document %zu loaded", i);
        assert_int_equal(cc_jwks_count(jwks), 1);
        assert_true(cc_jwks_has(jwks, "kid-a"));
    }
    assert_int_equal(cc_jwks_load(jwks, NULL), CC_EINVAL);
    assert_int_equal(cc_jwks_load(NULL, jwks_a), CC_EINVAL);
    /* a duplicate kid: the first wins, the document loads */
    json_t *b_as_a = json_deep_copy(jwk_b);
    json_object_set_new(b_as_a, "kid", json_string("kid-a"));
    char *doc = jwks_doc(jwk_a, b_as_a);
    assert_int_equal(cc_jwks_load(jwks, doc), 0);
    assert_int_equal(cc_jwks_count(jwks), 1);
    free(doc);
    json_decref(b_as_a);
    /* use and alg may be absent */
    json_t *bare = json_deep_copy(jwk_b);
    json_object_del(bare, "use");
    json_object_del(bare, "alg");
    doc = jwks_doc(bare, NULL);
    assert_int_equal(cc_jwks_load(jwks, doc), 0);
    assert_true(cc_jwks_has(jwks, "kid-b"));
    free(doc);
    json_decref(bare);
    assert_false(cc_jwks_has(jwks, NULL));
    assert_int_equal(cc_jwks_count(NULL), 0);
    cc_jwks_free(jwks);
    cc_jwks_free(NULL);
}

static int verify_with(cc_jwks_t *jwks, const cc_auth_opts_t *opts, const char *priv,
                       const char *kid, const char **why)
{
    char *claims = expand(CLAIMS_OK, (int64_t)time(NULL));
    char *head = cc_aprintf("{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", kid);
    char *token = sign_raw(priv, head, claims);
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    int rc = cc_auth_verify(jwks, opts, token, pool, &p, why);
    cc_pool_free(pool);
    free(token);
    free(head);
    free(claims);
    return rc;
}

static void test_jwks_replacing_the_key_set(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    const char *why = NULL;
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_a_priv, "kid-a", &why), CC_EKEY);
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_a_priv, "kid-a", &why), 0);
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_b_priv, "kid-b", &why), CC_EKEY);
    char *doc_b = jwks_doc(jwk_b, NULL);
    assert_int_equal(cc_jwks_load(jwks, doc_b), 0);
    assert_int_equal(cc_jwks_count(jwks), 1);
    assert_false(cc_jwks_has(jwks, "kid-a"));
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_a_priv, "kid-a", &why), CC_EKEY);
    assert_string_equal(why, "unknown kid");
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_b_priv, "kid-b", &why), 0);
    /* a bad document later leaves b in place */
    assert_int_equal(cc_jwks_load(jwks, "{\"keys\":[]}"), CC_EINVAL);
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_b_priv, "kid-b", &why), 0);
    free(doc_b);
    cc_jwks_free(jwks);
}

/* A token verified once is trusted again without a second signature check, but only
 * while the key set is the same: replacing the keys forgets it. */
static void test_verified_tokens_are_remembered_per_key_set(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    const char *why = NULL;
    assert_int_equal(cc_jwks_load(jwks, jwks_a), 0);
    char *claims = expand(CLAIMS_OK, (int64_t)time(NULL));
    char *token =
        sign_raw(key_a_priv, "{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"kid-a\"}", claims);
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    for (int i = 0; i < 3; i++) { /* the first verifies, the others are remembered */
        assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, &why), 0);
        assert_non_null(p->sub);
    }
    /* one flipped signature character is another string: checked, and refused */
    char *forged = cc_strdup(token);
    char *last = forged + strlen(forged) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    assert_int_not_equal(cc_auth_verify(jwks, &opts_nofetch, forged, pool, &p, &why), 0);
    /* the key is withdrawn: the remembered token is not trusted any more */
    char *doc_b = jwks_doc(jwk_b, NULL);
    assert_int_equal(cc_jwks_load(jwks, doc_b), 0);
    assert_int_equal(cc_auth_verify(jwks, &opts_nofetch, token, pool, &p, &why), CC_EKEY);
    cc_pool_free(pool);
    free(doc_b);
    free(forged);
    free(token);
    free(claims);
    cc_jwks_free(jwks);
}

/* ---- fetching from a tiny HTTP server ---- */

typedef struct test_server {
    int fd, port;
    pthread_t thread;
    atomic_int requests;
    atomic_bool stop;
    pthread_mutex_t mu; /* guards status, body, close_delimited */
    int status;
    char *body;
    bool close_delimited; /* no Content-Length: the body ends when the connection closes */
} test_server_t;

static void server_set(test_server_t *s, int status, const char *body, bool close_delimited)
{
    pthread_mutex_lock(&s->mu);
    free(s->body);
    s->body = cc_strdup(body);
    s->status = status;
    s->close_delimited = close_delimited;
    pthread_mutex_unlock(&s->mu);
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the client gave up (e.g. the body was too large) */
        p += w;
        n -= (size_t)w;
    }
}

static void *server_main(void *arg)
{
    test_server_t *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[8192];
        size_t got = 0;
        while (got < sizeof(req) - 1) {
            ssize_t r = recv(c, req + got, sizeof(req) - 1 - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = '\0';
            if (strstr(req, "\r\n\r\n") != NULL)
                break;
        }
        atomic_fetch_add(&s->requests, 1);
        pthread_mutex_lock(&s->mu);
        char *head = s->close_delimited
                         ? cc_aprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                      "Connection: close\r\n\r\n",
                                      s->status)
                         : cc_aprintf("HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                                      s->status, strlen(s->body));
        char *body = cc_strdup(s->body);
        pthread_mutex_unlock(&s->mu);
        send_all(c, head, strlen(head));
        send_all(c, body, strlen(body));
        free(head);
        free(body);
        close(c);
    }
    return NULL;
}

static test_server_t *server_start(const char *body)
{
    test_server_t *s = cc_calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    server_set(s, 200, body, false);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 16), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
    return s;
}

static void server_stop(test_server_t *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->thread, NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s->body);
    free(s);
}

static char *server_url(test_server_t *s)
{
    return cc_aprintf("http://127.0.0.1:%d/oauth2/jwks", s->port);
}

static void test_refresh_over_http(void **state)
{
    test_server_t *s = server_start(jwks_ab);
    char *url = server_url(s);
    cc_jwks_t *jwks = cc_jwks_new(url, 60);
    assert_int_equal(cc_jwks_count(jwks), 0);
    assert_int_equal(cc_jwks_refresh(jwks), 0);
    assert_int_equal(atomic_load(&s->requests), 1);
    assert_int_equal(cc_jwks_count(jwks), 2);
    assert_true(cc_jwks_has(jwks, "kid-b"));

    /* refresh always fetches, and picks up a rotation */
    char *doc_b = jwks_doc(jwk_b, NULL);
    server_set(s, 200, doc_b, false);
    assert_int_equal(cc_jwks_refresh(jwks), 0);
    assert_int_equal(atomic_load(&s->requests), 2);
    assert_false(cc_jwks_has(jwks, "kid-a"));

    /* failures keep the current set */
    server_set(s, 500, jwks_ab, false);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EIO);
    server_set(s, 404, "", false);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EIO);
    server_set(s, 200, "<html>", false);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EINVAL);
    server_set(s, 200, "{\"keys\":[]}", true);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EINVAL);

    /* bodies over 256 KiB, announced or not */
    cc_buf_t big;
    cc_buf_init(&big);
    cc_buf_puts(&big, "{\"keys\":[");
    while (big.len < 300 * 1024) {
        cc_buf_puts(&big, doc_b + 9); /* {...}]} minus the prefix: a key object */
        big.len -= 2;                 /* drop "]}" */
        big.data[big.len] = '\0';
        cc_buf_putc(&big, ',');
    }
    big.data[big.len - 1] = ']';
    cc_buf_putc(&big, '}');
    server_set(s, 200, big.data, false);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EIO);
    server_set(s, 200, big.data, true);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EIO);
    cc_buf_free(&big);
    assert_int_equal(cc_jwks_count(jwks), 1);
    assert_true(cc_jwks_has(jwks, "kid-b"));
    cc_jwks_free(jwks);

    /* only http and https */
    jwks = cc_jwks_new("file:///etc/passwd", 60);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EIO);
    cc_jwks_free(jwks);
    jwks = cc_jwks_new(NULL, 60);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EINVAL);
    cc_jwks_free(jwks);

    int before = atomic_load(&s->requests);
    server_stop(s);
    /* nobody listening */
    jwks = cc_jwks_new(url, 60);
    assert_int_equal(cc_jwks_refresh(jwks), CC_EIO);
    cc_jwks_free(jwks);
    assert_true(before >= 8);
    free(doc_b);
    free(url);
}

static void test_unknown_kid_fetch_is_rate_limited(void **state)
{
    test_server_t *s = server_start(jwks_a);
    char *url = server_url(s);
    cc_jwks_t *jwks = cc_jwks_new(url, 60);
    cc_auth_opts_t fetch = opts_nofetch;
    fetch.may_fetch = true;
    const char *why = NULL;

    /* without may_fetch an unknown kid never fetches */
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_a_priv, "kid-a", &why), CC_EKEY);
    assert_int_equal(atomic_load(&s->requests), 0);
    /* with it, once, and the key found is used */
    assert_int_equal(verify_with(jwks, &fetch, key_a_priv, "kid-a", &why), 0);
    assert_int_equal(atomic_load(&s->requests), 1);
    /* a known kid does not fetch */
    assert_int_equal(verify_with(jwks, &fetch, key_a_priv, "kid-a", &why), 0);
    assert_int_equal(atomic_load(&s->requests), 1);
    /* kid-b is published now, but the last kid-triggered fetch is too recent */
    server_set(s, 200, jwks_ab, false);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(verify_with(jwks, &fetch, key_b_priv, "kid-b", &why), CC_EKEY);
        assert_string_equal(why, "unknown kid");
        assert_int_equal(verify_with(jwks, &fetch, key_c_priv, "kid-zz", &why), CC_EKEY);
    }
    assert_int_equal(atomic_load(&s->requests), 1);
    /* an explicit refresh is not rate-limited */
    assert_int_equal(cc_jwks_refresh(jwks), 0);
    assert_int_equal(atomic_load(&s->requests), 2);
    assert_int_equal(verify_with(jwks, &fetch, key_b_priv, "kid-b", &why), 0);
    cc_jwks_free(jwks);

    /* after min_refresh_s an unknown kid may fetch again */
    atomic_store(&s->requests, 0);
    server_set(s, 200, jwks_a, false);
    jwks = cc_jwks_new(url, 1);
    assert_int_equal(verify_with(jwks, &fetch, key_b_priv, "kid-b", &why), CC_EKEY);
    assert_int_equal(atomic_load(&s->requests), 1);
    server_set(s, 200, jwks_ab, false);
    assert_int_equal(verify_with(jwks, &fetch, key_b_priv, "kid-b", &why), CC_EKEY);
    assert_int_equal(atomic_load(&s->requests), 1);
    struct timespec nap = {.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&nap, NULL);
    assert_int_equal(verify_with(jwks, &fetch, key_b_priv, "kid-b", &why), 0);
    assert_int_equal(atomic_load(&s->requests), 2);
    cc_jwks_free(jwks);

    /* a failed fetch counts too: a down issuer is not hammered; and the answer says the
     * key set is unreachable (CC_EIO), not that the token is bad */
    atomic_store(&s->requests, 0);
    server_set(s, 503, "", false);
    jwks = cc_jwks_new(url, 60);
    assert_int_equal(verify_with(jwks, &fetch, key_a_priv, "kid-a", &why), CC_EIO);
    assert_string_equal(why, "key set unreachable");
    assert_int_equal(verify_with(jwks, &fetch, key_a_priv, "kid-a", &why), CC_EIO);
    assert_int_equal(atomic_load(&s->requests), 1);
    /* without may_fetch it stays an unknown kid */
    assert_int_equal(verify_with(jwks, &opts_nofetch, key_a_priv, "kid-a", &why), CC_EKEY);
    cc_jwks_free(jwks);

    server_stop(s);
    free(url);
}

/* Many threads meeting the same unknown kid at once cause one fetch, and all succeed. */
typedef struct burst_arg {
    cc_jwks_t *jwks;
    const char *token;
    int rc;
} burst_arg_t;

static void *burst_main(void *arg)
{
    burst_arg_t *a = arg;
    cc_auth_opts_t fetch = opts_nofetch;
    fetch.may_fetch = true;
    cc_pool_t *pool = cc_pool_new();
    cc_principal_t *p = NULL;
    a->rc = cc_auth_verify(a->jwks, &fetch, a->token, pool, &p, NULL);
    cc_pool_free(pool);
    return NULL;
}

static void test_unknown_kid_burst_fetches_once(void **state)
{
    test_server_t *s = server_start(jwks_ab);
    char *url = server_url(s);
    cc_jwks_t *jwks = cc_jwks_new(url, 60);
    char *claims = expand(CLAIMS_OK, (int64_t)time(NULL));
    char *token = sign_raw(key_b_priv, "{\"alg\":\"ES256\",\"kid\":\"kid-b\"}", claims);
    pthread_t th[8];
    burst_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (burst_arg_t){.jwks = jwks, .token = token, .rc = 99};
        assert_int_equal(pthread_create(&th[i], NULL, burst_main, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    assert_int_equal(atomic_load(&s->requests), 1);
    cc_jwks_free(jwks);
    server_stop(s);
    free(token);
    free(claims);
    free(url);
}

/* ---- concurrency ---- */

typedef struct conc_arg {
    cc_jwks_t *jwks;
    const char *token_a, *token_b;
    atomic_bool *stop;
    int iterations, ok_a, ok_b, bad;
} conc_arg_t;

static void *verifier_main(void *arg)
{
    conc_arg_t *a = arg;
    for (int i = 0; i < a->iterations; i++) {
        cc_pool_t *pool = cc_pool_new();
        cc_principal_t *p = NULL;
        int rc = cc_auth_verify(a->jwks, &opts_nofetch, a->token_a, pool, &p, NULL);
        if (rc == 0 && strcmp(p->sub, "u-1") == 0)
            a->ok_a++;
        else
            a->bad++;
        rc = cc_auth_verify(a->jwks, &opts_nofetch, a->token_b, pool, &p, NULL);
        if (rc == 0)
            a->ok_b++;
        else if (rc != CC_EKEY) /* b comes and goes with the reloads */
            a->bad++;
        (void)cc_jwks_has(a->jwks, "kid-b");
        (void)cc_jwks_count(a->jwks);
        cc_pool_free(pool);
    }
    return NULL;
}

static void *reloader_main(void *arg)
{
    conc_arg_t *a = arg;
    for (int i = 0; !atomic_load(a->stop); i++) {
        if (cc_jwks_load(a->jwks, i % 2 ? jwks_ab : jwks_a) != 0)
            a->bad++;
        a->iterations++;
    }
    return NULL;
}

static void test_concurrent_verify_and_reload(void **state)
{
    cc_jwks_t *jwks = cc_jwks_new(NULL, 10);
    assert_int_equal(cc_jwks_load(jwks, jwks_ab), 0);
    char *claims = expand(CLAIMS_OK, (int64_t)time(NULL));
    char *token_a = sign_raw(key_a_priv, HDR_OK, claims);
    char *token_b = sign_raw(key_b_priv, "{\"alg\":\"ES256\",\"kid\":\"kid-b\"}", claims);
    atomic_bool stop = false;
    conc_arg_t v[4], r = {.jwks = jwks, .stop = &stop};
    pthread_t vt[4], rt;
    assert_int_equal(pthread_create(&rt, NULL, reloader_main, &r), 0);
    for (int i = 0; i < 4; i++) {
        v[i] =
            (conc_arg_t){.jwks = jwks, .token_a = token_a, .token_b = token_b, .iterations = 400};
        assert_int_equal(pthread_create(&vt[i], NULL, verifier_main, &v[i]), 0);
    }
    int ok_a = 0, ok_b = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(vt[i], NULL);
        assert_int_equal(v[i].bad, 0);
        ok_a += v[i].ok_a;
        ok_b += v[i].ok_b;
    }
    atomic_store(&stop, true);
    pthread_join(rt, NULL);
    assert_int_equal(r.bad, 0);
    assert_int_equal(ok_a, 4 * 400);
    assert_true(r.iterations > 10); /* the reloads really interleaved */
    print_message("concurrent: %d reloads, token b verified %d/%d times\n", r.iterations, ok_b,
                  4 * 400);
    cc_jwks_free(jwks);
    free(token_a);
    free(token_b);
    free(claims);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_matrix),
        cmocka_unit_test(test_confusion_tokens_fool_plain_libjwt),
        cmocka_unit_test(test_valid_token_maps_every_field),
        cmocka_unit_test(test_verify_rejects_bad_arguments),
        cmocka_unit_test(test_token_size_boundary),
        cmocka_unit_test(test_has_scope),
        cmocka_unit_test(test_peek_kid),
        cmocka_unit_test(test_sign_verify_round_trip),
        cmocka_unit_test(test_sign_rejects_bad_keys),
        cmocka_unit_test(test_interop_with_libjwt),
        cmocka_unit_test(test_generate_and_public_jwk),
        cmocka_unit_test(test_jwks_rejects_unsuitable_keys),
        cmocka_unit_test(test_jwks_rejects_bad_documents),
        cmocka_unit_test(test_jwks_replacing_the_key_set),
        cmocka_unit_test(test_verified_tokens_are_remembered_per_key_set),
        cmocka_unit_test(test_refresh_over_http),
        cmocka_unit_test(test_unknown_kid_fetch_is_rate_limited),
        cmocka_unit_test(test_unknown_kid_burst_fetches_once),
        cmocka_unit_test(test_concurrent_verify_and_reload),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
