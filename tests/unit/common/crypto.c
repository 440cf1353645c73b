/* Unit tests for common/crypto.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "console/crypto.h"
#include "console/errors.h"
#include "console/str.h"

/* ---- helpers ---- */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/cc_crypto_test.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    return cc_strdup(tmpl);
}

static void test_key(cc_master_key_t *k, uint8_t fill)
{
    memset(k, 0, sizeof(*k));
    memset(k->key, fill, sizeof(k->key));
    char *hex = cc_hex_encode(k->key, sizeof(k->key));
    assert_int_equal(cc_master_key_load(hex, NULL, false, k), 0);
    free(hex);
}

/* ---- ids and tokens ---- */

static void test_uuid_format(void **state)
{
    (void)state;
    for (int i = 0; i < 100; i++) {
        char u[37];
        uint64_t before = now_ms();
        cc_uuid_new(u);
        uint64_t after = now_ms();
        assert_int_equal(strlen(u), 36);
        assert_true(cc_is_uuid(u));
        assert_int_equal(u[14], '7');           /* version */
        assert_non_null(strchr("89ab", u[19])); /* variant 10xx */
        char ts_hex[13];
        memcpy(ts_hex, u, 8);
        memcpy(ts_hex + 8, u + 9, 4);
        ts_hex[12] = '\0';
        uint64_t ts = strtoull(ts_hex, NULL, 16);
        assert_true(ts >= before && ts <= after);
    }
}

static void test_uuid_ordering_and_uniqueness(void **state)
{
    (void)state;
    char prev[37], cur[37];
    cc_uuid_new(prev);
    for (int i = 0; i < 5; i++) {
        sleep_ms(2);
        cc_uuid_new(cur);
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof(cur));
    }
    /* Within one millisecond the random part keeps them distinct. */
    char many[64][37];
    for (int i = 0; i < 64; i++)
        cc_uuid_new(many[i]);
    for (int i = 0; i < 64; i++)
        for (int j = i + 1; j < 64; j++)
            assert_string_not_equal(many[i], many[j]);
}

static void test_token(void **state)
{
    (void)state;
    static const struct {
        size_t nbytes, len;
    } cases[] = {{0, 0}, {1, 2}, {2, 3}, {3, 4}, {16, 22}, {32, 43}, {33, 44}, {64, 86}};
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        char *t = cc_token_new(cases[i].nbytes);
        assert_int_equal(strlen(t), cases[i].len);
        assert_int_equal(
            strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            cases[i].len);
        uint8_t *dec;
        size_t declen;
        assert_int_equal(cc_base64url_decode(t, strlen(t), &dec, &declen), 0);
        assert_int_equal(declen, cases[i].nbytes);
        free(dec);
        free(t);
    }
    char *a = cc_token_new(32), *b = cc_token_new(32);
    assert_string_not_equal(a, b);
    free(a);
    free(b);
}

static void test_random_bytes(void **state)
{
    (void)state;
    uint8_t a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_int_equal(cc_random_bytes(a, sizeof(a)), 0);
    assert_int_equal(cc_random_bytes(b, sizeof(b)), 0);
    assert_memory_not_equal(a, zero, sizeof(a));
    assert_memory_not_equal(a, b, sizeof(a));
    assert_int_equal(cc_random_bytes(NULL, 0), 0);
}

/* ---- encodings ---- */

static void test_base64_rfc4648_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *b64, *b64url;
    } cases[] = {
        {"", "", ""},
        {"f", "Zg==", "Zg"},
        {"fo", "Zm8=", "Zm8"},
        {"foo", "Zm9v", "Zm9v"},
        {"foob", "Zm9vYg==", "Zm9vYg"},
        {"fooba", "Zm9vYmE=", "Zm9vYmE"},
        {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
        {"\xfb\xff", "+/8=", "-_8"},
        {"\xfb\xef\xbe", "++++", "----"},
        {"\xff\xff\xff", "////", "____"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        size_t n = strlen(cases[i].in);
        char *s = cc_base64_encode(cases[i].in, n);
        assert_string_equal(s, cases[i].b64);
        free(s);
        s = cc_base64url_encode(cases[i].in, n);
        assert_string_equal(s, cases[i].b64url);
        free(s);

        uint8_t *dec;
        size_t declen;
        assert_int_equal(
            cc_base64url_decode(cases[i].b64url, strlen(cases[i].b64url), &dec, &declen), 0);
        assert_int_equal(declen, n);
        assert_memory_equal(dec, cases[i].in, n);
        free(dec);
    }
}

static void test_base64url_padding_accepted(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } cases[] = {{"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}};
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        uint8_t *dec;
        size_t declen;
        assert_int_equal(cc_base64url_decode(cases[i].in, strlen(cases[i].in), &dec, &declen), 0);
        assert_int_equal(declen, strlen(cases[i].out));
        assert_memory_equal(dec, cases[i].out, declen);
        free(dec);
    }
}

static void test_base64url_round_trip(void **state)
{
    (void)state;
    uint8_t data[257];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(data); n++) {
        char *s = cc_base64url_encode(data, n);
        assert_int_equal(strlen(s), (4 * n + 2) / 3);
        uint8_t *dec;
        size_t declen;
        assert_int_equal(cc_base64url_decode(s, strlen(s), &dec, &declen), 0);
        assert_int_equal(declen, n);
        assert_memory_equal(dec, data, n);
        free(dec);
        free(s);
    }
}

static void test_base64url_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        size_t n; /* 0: strlen */
    } cases[] = {
        {"Z", 0},        /* one leftover character cannot hold a byte */
        {"Zm9vY", 0},    /* same after a full quantum */
        {"Zm9v!", 0},    /* not in the alphabet */
        {"Zm+v", 0},     /* standard alphabet */
        {"Zm/v", 0},     /* standard alphabet */
        {"Zm 9v", 0},    /* whitespace */
        {"Zg=", 0},      /* incomplete padding */
        {"Zg===", 0},    /* too much padding */
        {"Zm9v====", 0}, /* padding after a full quantum */
        {"=Zg", 0},      /* padding first */
        {"Zm=9", 0},     /* padding in the middle */
        {"==", 0},       /* padding only */
        {"Zh", 0},       /* non-zero trailing bits */
        {"Zm9", 0},      /* non-zero trailing bits */
        {"Zm\0v", 4},    /* embedded NUL */
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        size_t n = cases[i].n ? cases[i].n : strlen(cases[i].s);
        uint8_t *dec = (uint8_t *)"sentinel";
        size_t declen = 99;
        int rc = cc_base64url_decode(cases[i].s, n, &dec, &declen);
        if (rc != CC_EINVAL)
            fail_msg("case %zu (\"%s\") gave %d", i, cases[i].s, rc);
        assert_null(dec);
        assert_int_equal(declen, 0);
    }
}

static void test_hex_encode(void **state)
{
    (void)state;
    char *h = cc_hex_encode("\x00\x01\xab\xff", 4);
    assert_string_equal(h, "0001abff");
    free(h);
    h = cc_hex_encode("", 0);
    assert_string_equal(h, "");
    free(h);
}

/* ---- hashing ---- */

static void test_sha256_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *in, *hex;
    } cases[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        char hex[65];
        cc_sha256_hex(cases[i].in, strlen(cases[i].in), hex);
        assert_string_equal(hex, cases[i].hex);
        uint8_t raw[32], want[32];
        cc_sha256(cases[i].in, strlen(cases[i].in), raw);
        hex_to_bytes(cases[i].hex, want, 32);
        assert_memory_equal(raw, want, 32);
    }
}

static void test_hmac_sha256_rfc4231(void **state)
{
    (void)state;
    uint8_t key1[20], key3[20], data3[50], key6[131];
    memset(key1, 0x0b, sizeof(key1));
    memset(key3, 0xaa, sizeof(key3));
    memset(data3, 0xdd, sizeof(data3));
    memset(key6, 0xaa, sizeof(key6));
    static const char data6[] = "Test Using Larger Than Block-Size Key - Hash Key First";
    const struct {
        const void *key;
        size_t keylen;
        const void *data;
        size_t n;
        const char *hex;
    } cases[] = {
        {key1, sizeof(key1), "Hi There", 8,
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
        {"Jefe", 4, "what do ya want for nothing?", 28,
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
        {key3, sizeof(key3), data3, sizeof(data3),
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
        {key6, sizeof(key6), data6, strlen(data6),
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        uint8_t mac[32], want[32];
        cc_hmac_sha256(cases[i].key, cases[i].keylen, cases[i].data, cases[i].n, mac);
        hex_to_bytes(cases[i].hex, want, 32);
        if (memcmp(mac, want, 32) != 0)
            fail_msg("RFC 4231 case %zu mismatch", i);
    }
    /* Empty key and data are valid inputs. */
    uint8_t mac[32], want[32];
    cc_hmac_sha256(NULL, 0, NULL, 0, mac);
    hex_to_bytes("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", want, 32);
    assert_memory_equal(mac, want, 32);
}

static void test_ct_equal(void **state)
{
    (void)state;
    static const struct {
        const char *a, *b;
        bool eq;
    } cases[] = {
        {"", "", true},         {"abc", "abc", true}, {"abc", "abd", false}, {"abc", "abcd", false},
        {"abcd", "abc", false}, {"", "a", false},     {"Abc", "abc", false},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        assert_int_equal(cc_ct_streq(cases[i].a, cases[i].b), cases[i].eq);
        if (strlen(cases[i].a) == strlen(cases[i].b))
            assert_int_equal(cc_ct_equal(cases[i].a, cases[i].b, strlen(cases[i].a)), cases[i].eq);
    }
    assert_false(cc_ct_streq(NULL, "a"));
    assert_false(cc_ct_streq("a", NULL));
    assert_true(cc_ct_equal("\x00\x01", "\x00\x01", 2));
    assert_false(cc_ct_equal("\x00\x01", "\x00\x02", 2));
}

/* ---- passwords (argon2id is ~50 ms per call: few calls) ---- */

static void test_password_hash_verify(void **state)
{
    (void)state;
    char *h1 = NULL, *h2 = NULL;
    assert_int_equal(cc_password_hash("correct horse battery staple", &h1), 0);
    assert_non_null(h1);
    assert_true(strncmp(h1, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
    assert_int_equal(cc_password_verify(h1, "correct horse battery staple"), 0);
    assert_int_equal(cc_password_verify(h1, "correct horse battery stapl"), CC_EAUTH);

    /* Same password, fresh salt: a different string that still verifies. */
    assert_int_equal(cc_password_hash("pässwörd ✓", &h2), 0);
    assert_string_not_equal(h1, h2);
    assert_int_equal(cc_password_verify(h2, "pässwörd ✓"), 0);
    free(h1);
    free(h2);
}

static void test_password_verify_malformed(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "",
        "plain",
        ("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
         "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), /* argon2i, not argon2id */
        "$argon2id$v=19$m=19456,t=2",
        "$argon2id$v=19$m=19456,t=2,p=1$!!!!$AAAA",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA",
        "$2b$12$abcdefghijklmnopqrstuu",
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        int rc = cc_password_verify(cases[i], "x");
        if (rc != CC_EINVAL)
            fail_msg("case %zu gave %d", i, rc);
    }
    assert_int_equal(cc_password_verify(NULL, "x"), CC_EINVAL);
}

/* ---- sealing ---- */

static void test_seal_round_trip(void **state)
{
    (void)state;
    cc_master_key_t k;
    test_key(&k, 0x42);
    static uint8_t big[5000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)i;
    const struct {
        const void *data;
        size_t n;
        const char *aad;
    } cases[] = {
        {"", 0, NULL},
        {"x", 1, NULL},
        {"secret value", 12, "identity.signing_keys:abc"},
        {"with\0nul", 8, "ctx"},
        {big, sizeof(big), "big"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        char *blob = NULL, *blob2 = NULL;
        assert_int_equal(cc_seal(&k, cases[i].data, cases[i].n, cases[i].aad, &blob), 0);
        char *prefix = cc_aprintf("v1.%s.", k.id);
        assert_true(strncmp(blob, prefix, strlen(prefix)) == 0);
        assert_int_equal(strlen(blob) - strlen(prefix), (4 * (12 + cases[i].n + 16) + 2) / 3);
        free(prefix);

        uint8_t *out = NULL;
        size_t outlen = 99;
        assert_int_equal(cc_unseal(&k, blob, cases[i].aad, &out, &outlen), 0);
        assert_int_equal(outlen, cases[i].n);
        assert_memory_equal(out, cases[i].data, cases[i].n);
        assert_int_equal(out[outlen], '\0');
        cc_wipe(out, outlen);
        free(out);

        /* A fresh nonce each time. */
        assert_int_equal(cc_seal(&k, cases[i].data, cases[i].n, cases[i].aad, &blob2), 0);
        assert_string_not_equal(blob, blob2);
        free(blob);
        free(blob2);
    }
}

static void test_unseal_wrong_aad(void **state)
{
    (void)state;
    cc_master_key_t k;
    test_key(&k, 0x42);
    static const struct {
        const char *seal_aad, *open_aad;
    } cases[] = {
        {"tenant:1", "tenant:2"},
        {"tenant:1", NULL},
        {NULL, "tenant:1"},
        {"tenant:1", "tenant:1 "},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        char *blob;
        assert_int_equal(cc_seal(&k, "s3cret", 6, cases[i].seal_aad, &blob), 0);
        uint8_t *out = (uint8_t *)"sentinel";
        size_t outlen = 99;
        assert_int_equal(cc_unseal(&k, blob, cases[i].open_aad, &out, &outlen), CC_ECRYPTO);
        assert_null(out);
        assert_int_equal(outlen, 0);
        free(blob);
    }
}

static void test_unseal_wrong_key(void **state)
{
    (void)state;
    cc_master_key_t k1, k2;
    test_key(&k1, 0x01);
    test_key(&k2, 0x02);
    assert_string_not_equal(k1.id, k2.id);
    char *blob;
    assert_int_equal(cc_seal(&k1, "s3cret", 6, "a", &blob), 0);
    uint8_t *out;
    size_t outlen;
    assert_int_equal(cc_unseal(&k2, blob, "a", &out, &outlen), CC_EKEY);
    assert_null(out);

    /* Same key id but another key (a forged header) is still refused, as tampering. */
    cc_master_key_t forged = k2;
    memcpy(forged.id, k1.id, sizeof(forged.id));
    assert_int_equal(cc_unseal(&forged, blob, "a", &out, &outlen), CC_ECRYPTO);
    free(blob);
}

static void test_unseal_tampered(void **state)
{
    (void)state;
    cc_master_key_t k;
    test_key(&k, 0x42);
    char *blob;
    assert_int_equal(cc_seal(&k, "some plaintext", 14, "ctx", &blob), 0);
    const char *payload = strrchr(blob, '.') + 1;
    uint8_t *raw;
    size_t rawlen;
    assert_int_equal(cc_base64url_decode(payload, strlen(payload), &raw, &rawlen), 0);
    assert_int_equal(rawlen, 12 + 14 + 16);

    /* Flip one bit in the nonce, the ciphertext and the tag in turn. */
    static const size_t positions[] = {0, 11, 12, 20, 25, 26, 41};
    for (size_t i = 0; i < CC_ARRAY_SIZE(positions); i++) {
        raw[positions[i]] ^= 0x01;
        char *enc = cc_base64url_encode(raw, rawlen);
        char *bad = cc_aprintf("v1.%s.%s", k.id, enc);
        uint8_t *out;
        size_t outlen;
        int rc = cc_unseal(&k, bad, "ctx", &out, &outlen);
        if (rc != CC_ECRYPTO)
            fail_msg("flip at %zu gave %d", positions[i], rc);
        raw[positions[i]] ^= 0x01;
        free(enc);
        free(bad);
    }
    free(raw);
    free(blob);
}

static void test_unseal_malformed(void **state)
{
    (void)state;
    cc_master_key_t k;
    test_key(&k, 0x42);
    char *blob;
    assert_int_equal(cc_seal(&k, "plaintext", 9, NULL, &blob), 0);
    const char *payload = strrchr(blob, '.') + 1;
    char *short_payload = cc_base64url_encode("0123456789abcdefghijklmnopq", 27); /* < 28 */

    char *cases[] = {
        cc_strdup(""),
        cc_strdup("v1"),
        cc_strdup("v1."),
        cc_aprintf("v1.%s", k.id),
        cc_aprintf("v1.%s.", k.id),
        cc_aprintf("v2.%s.%s", k.id, payload),
        cc_aprintf("V1.%s.%s", k.id, payload),
        cc_aprintf("v1.%.15s.%s", k.id, payload),
        cc_aprintf("v1.%sA.%s", k.id, payload),
        cc_aprintf("v1.ABCDEF0123456789.%s", payload),
        cc_aprintf("v1.%s.%s", k.id, short_payload),
        cc_aprintf("v1.%s.%.20s", k.id, payload), /* truncated */
        cc_aprintf("v1.%s.%s!", k.id, payload),   /* bad character */
        cc_aprintf("v1.%s.%s.x", k.id, payload),  /* extra part */
        cc_strndup(blob, strlen("v1.") + 10),     /* truncated inside the key id */
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        uint8_t *out = (uint8_t *)"sentinel";
        size_t outlen = 99;
        int rc = cc_unseal(&k, cases[i], NULL, &out, &outlen);
        if (rc != CC_EINVAL)
            fail_msg("case %zu (\"%s\") gave %d", i, cases[i], rc);
        assert_null(out);
        free(cases[i]);
    }
    uint8_t *out;
    size_t outlen;
    assert_int_equal(cc_unseal(&k, NULL, NULL, &out, &outlen), CC_EINVAL);
    free(short_payload);
    free(blob);
}

/* ---- master key ---- */

static const char key_hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void test_master_key_env(void **state)
{
    (void)state;
    uint8_t want[32];
    hex_to_bytes(key_hex, want, 32);
    char digest[65];
    cc_sha256_hex(want, 32, digest);
    char *b64 = cc_base64url_encode(want, 32);
    char *upper = cc_strdup(key_hex);
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    char *padded = cc_aprintf("%s=", b64);
    char *newline = cc_aprintf("%s\n", key_hex);

    const char *forms[] = {key_hex, upper, b64, padded, newline};
    for (size_t i = 0; i < CC_ARRAY_SIZE(forms); i++) {
        cc_master_key_t k;
        int rc = cc_master_key_load(forms[i], "/nonexistent", false, &k);
        if (rc != 0)
            fail_msg("form %zu gave %d", i, rc);
        assert_memory_equal(k.key, want, 32);
        assert_int_equal(strlen(k.id), 16);
        assert_memory_equal(k.id, digest, 16);
    }
    free(b64);
    free(upper);
    free(padded);
    free(newline);
}

static void test_master_key_bad_env(void **state)
{
    (void)state;
    uint8_t k31[31], k33[33];
    memset(k31, 7, sizeof(k31));
    memset(k33, 7, sizeof(k33));
    char *b31 = cc_base64url_encode(k31, sizeof(k31));
    char *b33 = cc_base64url_encode(k33, sizeof(k33));
    char *hex63 = cc_strndup(key_hex, 63);
    char *hex65 = cc_aprintf("%s0", key_hex);
    char *nonhex = cc_strdup(key_hex);
    nonhex[10] = 'g';
    char *inner_space = cc_strdup(key_hex);
    inner_space[32] = ' ';

    const char *cases[] = {"x", "changeme", b31, b33, hex63, hex65, nonhex, inner_space};
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_master_key_t k;
        memset(&k, 0xee, sizeof(k));
        int rc = cc_master_key_load(cases[i], NULL, true, &k);
        if (rc != CC_EINVAL)
            fail_msg("case %zu gave %d", i, rc);
    }
    /* No value and no permission to generate. */
    cc_master_key_t k;
    assert_int_equal(cc_master_key_load(NULL, "/tmp", false, &k), CC_EINVAL);
    assert_int_equal(cc_master_key_load("", "/tmp", false, &k), CC_EINVAL);
    assert_int_equal(cc_master_key_load(NULL, NULL, true, &k), CC_EINVAL);
    free(b31);
    free(b33);
    free(hex63);
    free(hex65);
    free(nonhex);
    free(inner_space);
}

static void test_master_key_generate(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    char *data_dir = cc_aprintf("%s/data", dir); /* created on demand */
    char *secrets = cc_aprintf("%s/secrets", data_dir);
    char *path = cc_aprintf("%s/master.key", secrets);

    cc_master_key_t k1, k2, k3;
    assert_int_equal(cc_master_key_load(NULL, data_dir, true, &k1), 0);
    struct stat st;
    assert_int_equal(stat(secrets, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65);

    /* The file holds 64 hex characters and a newline, and the id derives from the key. */
    char content[80] = {0};
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_int_equal(fread(content, 1, sizeof(content) - 1, f), 65);
    fclose(f);
    assert_int_equal(content[64], '\n');
    char *hex = cc_hex_encode(k1.key, 32);
    assert_memory_equal(content, hex, 64);
    free(hex);
    char digest[65];
    cc_sha256_hex(k1.key, 32, digest);
    assert_memory_equal(k1.id, digest, 16);

    /* Reloading (also with an empty env value) gives the same key. */
    assert_int_equal(cc_master_key_load(NULL, data_dir, true, &k2), 0);
    assert_memory_equal(k1.key, k2.key, 32);
    assert_string_equal(k1.id, k2.id);
    assert_int_equal(cc_master_key_load("", data_dir, true, &k3), 0);
    assert_memory_equal(k1.key, k3.key, 32);

    /* Something sealed before a restart opens after it. */
    char *blob;
    uint8_t *out;
    size_t outlen;
    assert_int_equal(cc_seal(&k1, "persisted", 9, "x", &blob), 0);
    assert_int_equal(cc_unseal(&k3, blob, "x", &out, &outlen), 0);
    assert_int_equal(outlen, 9);
    free(out);
    free(blob);

    /* No temporary files left behind. */
    DIR *d = opendir(secrets);
    assert_non_null(d);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' || strncmp(e->d_name, ".master", 7) == 0)
            entries++;
    closedir(d);
    assert_int_equal(entries, 1);

    /* A corrupt file is refused rather than replaced. */
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(cc_master_key_load(NULL, data_dir, true, &k2), CC_EINVAL);

    test_rm_tree(dir);
    free(dir);
    free(data_dir);
    free(secrets);
    free(path);
}

typedef struct race_arg {
    const char *data_dir;
    int rc;
    cc_master_key_t key;
} race_arg_t;

static void *race_main(void *p)
{
    race_arg_t *a = p;
    a->rc = cc_master_key_load(NULL, a->data_dir, true, &a->key);
    return NULL;
}

static void test_master_key_generate_race(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    race_arg_t args[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        args[i].data_dir = dir;
        assert_int_equal(pthread_create(&th[i], NULL, race_main, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++) {
        assert_int_equal(args[i].rc, 0);
        assert_memory_equal(args[i].key.key, args[0].key.key, 32);
    }
    test_rm_tree(dir);
    free(dir);
}

static void test_wipe(void **state)
{
    (void)state;
    uint8_t buf[16];
    memset(buf, 0xaa, sizeof(buf));
    cc_wipe(buf, sizeof(buf));
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0);
    cc_wipe(NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_format),
        cmocka_unit_test(test_uuid_ordering_and_uniqueness),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_random_bytes),
        cmocka_unit_test(test_base64_rfc4648_vectors),
        cmocka_unit_test(test_base64url_padding_accepted),
        cmocka_unit_test(test_base64url_round_trip),
        cmocka_unit_test(test_base64url_malformed),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_sha256_rfc4231),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_password_hash_verify),
        cmocka_unit_test(test_password_verify_malformed),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_unseal_wrong_aad),
        cmocka_unit_test(test_unseal_wrong_key),
        cmocka_unit_test(test_unseal_tampered),
        cmocka_unit_test(test_unseal_malformed),
        cmocka_unit_test(test_master_key_env),
        cmocka_unit_test(test_master_key_bad_env),
        cmocka_unit_test(test_master_key_generate),
        cmocka_unit_test(test_master_key_generate_race),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
