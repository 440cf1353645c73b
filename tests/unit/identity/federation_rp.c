/* Unit tests for services/identity/federation_rp.c: which upstream URLs are acceptable, the
 * ID token's claim checks (each defect alone), and the signature check against a JWKS
 * (the right key, a foreign key, alg none, HMAC, a key of the wrong type, a kid nobody
 * has). Table-driven; no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjose/cjose.h>
#include <cmocka.h>

#include "federation.h"

static void test_url(void **state)
{
    (void)state;
    const char *good[] = {"https://idp.example.com",
                          "https://idp.example.com/realms/msp",
                          "https://idp.example.com:8443/oauth2/default",
                          "http://127.0.0.1:9000",
                          "http://localhost/x",
                          "http://[::1]:8080/",
                          NULL};
    const char *bad[] = {"http://idp.example.com",
                         "http://10.0.0.1/",
                         "ftp://127.0.0.1/",
                         "https://",
                         "https:///path",
                         "https://user:pw@idp.example.com/",
                         "https://idp.example.com/#frag",
                         "https://idp.example.com/a b",
                         "https://idp.example.com/\n",
                         "javascript:alert(1)",
                         "http://127.0.0.1.evil.example/",
                         "http://localhost.evil.example/",
                         "",
                         NULL};
    for (int i = 0; good[i]; i++)
        if (!fed_url_acceptable(good[i]))
            fail_msg("refused: '%s'", good[i]);
    for (int i = 0; bad[i]; i++)
        if (fed_url_acceptable(bad[i]))
            fail_msg("accepted: '%s'", bad[i]);
    assert_false(fed_url_acceptable(NULL));
}

static const fed_expect_t expect = {.issuer = "https://idp.example.com",
                                    .client_id = "console",
                                    .nonce = "n-0123456789",
                                    .now = 1000000,
                                    .leeway_s = 60};

static json_t *good_claims(void)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "iss", "https://idp.example.com", "aud",
                     "console", "sub", "u1", "iat", (json_int_t)999990, "exp", (json_int_t)1000300,
                     "nonce", "n-0123456789");
}

static void test_claims(void **state)
{
    (void)state;
    json_t *c = good_claims();
    assert_null(fed_check_id_claims(c, &expect));
    json_decref(c);
    /* each defect alone is refused */
    struct {
        const char *key;
        json_t *value; /* NULL: delete the claim */
        const char *why;
    } bad[] = {
        {"iss", json_string("https://idp.example.com/"), "issuer"},
        {"iss", json_string("https://evil.example"), "issuer"},
        {"iss", NULL, "issuer"},
        {"aud", json_string("other"), "audience"},
        {"aud", json_pack("[s]", "other"), "audience"},
        {"aud", json_pack("[s,s]", "console", "other"), "azp"},
        {"aud", json_integer(1), "audience"},
        {"aud", NULL, "audience"},
        {"azp", json_string("other"), "azp"},
        {"exp", json_integer(999000), "expired"},
        {"exp", json_string("1000300"), "expired"},
        {"exp", json_real(1e101), "expired"},
        {"exp", json_integer(INT64_MAX), "expired"},
        {"iat", json_real(-1e300), "iat"},
        {"exp", NULL, "expired"},
        {"iat", json_integer(1000100), "iat"},
        {"iat", NULL, "iat"},
        {"nonce", json_string("n-0123456788"), "nonce"},
        {"nonce", json_string(""), "nonce"},
        {"nonce", NULL, "nonce"},
        {"sub", json_string(""), "sub"},
        {"sub", NULL, "sub"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = good_claims();
        if (bad[i].value)
            json_object_set_new(c, bad[i].key, bad[i].value);
        else
            json_object_del(c, bad[i].key);
        const char *why = fed_check_id_claims(c, &expect);
        if (why == NULL || strstr(why, bad[i].why) == NULL)
            fail_msg("case %zu (%s): %s", i, bad[i].key, why ? why : "accepted");
        json_decref(c);
    }
    /* several audiences with the right azp, and the leeway, are fine */
    c = good_claims();
    json_object_set_new(c, "aud", json_pack("[s,s]", "other", "console"));
    json_object_set_new(c, "azp", json_string("console"));
    json_object_set_new(c, "exp", json_integer(999950));
    assert_null(fed_check_id_claims(c, &expect));
    json_decref(c);
}

/* A compact JWS of payload signed by jwk with alg and kid. Caller frees. */
static char *sign_jws(cjose_jwk_t *jwk, const char *alg, const char *kid, const char *payload)
{
    cjose_err err;
    cjose_header_t *h = cjose_header_new(&err);
    cjose_header_set(h, CJOSE_HDR_ALG, alg, &err);
    if (kid)
        cjose_header_set(h, CJOSE_HDR_KID, kid, &err);
    cjose_jws_t *jws = cjose_jws_sign(jwk, h, (const uint8_t *)payload, strlen(payload), &err);
    assert_non_null(jws);
    const char *out = NULL;
    assert_true(cjose_jws_export(jws, &out, &err));
    char *copy = strdup(out);
    cjose_jws_release(jws);
    cjose_header_release(h);
    return copy;
}

/* {"keys": [public jwk with kid]} (caller frees) */
static char *jwks_of(cjose_jwk_t *jwk, const char *kid)
{
    cjose_err err;
    char *pub = cjose_jwk_to_json(jwk, false, &err);
    json_t *k = json_loads(pub, 0, NULL);
    free(pub);
    json_object_set_new(k, "kid", json_string(kid));
    json_object_set_new(k, "use", json_string("sig"));
    json_t *set = json_pack("{s:[o]}", "keys", k);
    char *out = json_dumps(set, JSON_COMPACT);
    json_decref(set);
    return out;
}

static void test_signature(void **state)
{
    (void)state;
    cjose_err err;
    cjose_jwk_t *ec = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
    cjose_jwk_t *other = cjose_jwk_create_EC_random(CJOSE_JWK_EC_P_256, &err);
    cjose_jwk_t *rsa = cjose_jwk_create_RSA_random(2048, NULL, 0, &err);
    assert_non_null(ec);
    assert_non_null(rsa);
    char *set = jwks_of(ec, "k1");
    char *rsa_set = jwks_of(rsa, "k1");
    const char *payload = "{\"iss\":\"https://idp.example.com\",\"sub\":\"u1\"}";
    const char *why = NULL;

    char *good = sign_jws(ec, "ES256", "k1", payload);
    json_t *c = fed_verify_jws(good, set, &why);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "sub")), "u1");
    json_decref(c);
    char *nokid = sign_jws(ec, "ES256", NULL, payload); /* no kid: every key is tried */
    c = fed_verify_jws(nokid, set, &why);
    assert_non_null(c);
    json_decref(c);

    char *foreign = sign_jws(other, "ES256", "k1", payload);
    assert_null(fed_verify_jws(foreign, set, &why));
    assert_non_null(strstr(why, "signature"));
    char *unknown_kid = sign_jws(ec, "ES256", "k2", payload);
    assert_null(fed_verify_jws(unknown_kid, set, &why));
    /* an RSA-signed token against an EC set, an EC token against an RSA set */
    char *rs = sign_jws(rsa, "RS256", "k1", payload);
    assert_null(fed_verify_jws(rs, set, &why));
    assert_null(fed_verify_jws(good, rsa_set, &why));
    c = fed_verify_jws(rs, rsa_set, &why);
    assert_non_null(c);
    json_decref(c);
    /* alg none, and HMAC keyed with the public key (algorithm confusion) */
    const char *none = "eyJhbGciOiJub25lIiwia2lkIjoiazEifQ."
                       "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSIsInN1YiI6InUxIn0.";
    assert_null(fed_verify_jws(none, set, &why));
    assert_non_null(strstr(why, "algorithm"));
    cjose_jwk_t *oct = cjose_jwk_create_oct_spec((const uint8_t *)set, strlen(set), &err);
    char *hs = sign_jws(oct, "HS256", "k1", payload);
    assert_null(fed_verify_jws(hs, set, &why));
    assert_non_null(strstr(why, "algorithm"));
    /* what made cjose assert (abort) before the shape checks: padding inside a part, a
     * key whose members are not base64url; and NumericDates that overflow */
    assert_null(fed_verify_jws("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdiJ1M=J9.AAAA", set, &why));
    assert_null(
        fed_verify_jws(good, "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AAB\",\"e\":\"Q=A\"}]}", &why));
    /* garbage */
    assert_null(fed_verify_jws("not a token", set, &why));
    assert_null(fed_verify_jws(good, "{\"keys\": 1}", &why));
    assert_null(fed_verify_jws(good, "", &why));

    free(good);
    free(nokid);
    free(foreign);
    free(unknown_kid);
    free(rs);
    free(hs);
    free(set);
    free(rsa_set);
    cjose_jwk_release(ec);
    cjose_jwk_release(other);
    cjose_jwk_release(rsa);
    cjose_jwk_release(oct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_signature),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
