/*
 * libFuzzer driver for the federation relying party's parsers of upstream answers
 * (services/identity/federation_rp.c).
 *
 * The first byte picks what the rest of the input is:
 *   0: a compact JWS (an upstream ID token), verified against a fixed EC key set;
 *   1: a JWK set, against which a fixed well-formed token is verified;
 *   2: an ID token payload (JSON) for the claim checks;
 *   3: an upstream URL for fed_url_acceptable.
 *
 * Build (clang): cmake -DCONSOLE_FUZZ=ON; run:
 *   fuzz_idtoken -max_total_time=60 tests/fuzz/corpus/idtoken
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "federation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a throwaway P-256 public key (it verifies nothing real) */
static const char jwks[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"k1\",\"use\":\"sig\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";
static const char token[] = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSJ9."
                            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                            "AAAAAAAAAAAAAAAAAAAAAA";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *s = malloc(size);
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    const char *why = NULL;
    json_t *c = NULL;
    switch (data[0] % 4) {
    case 0:
        c = fed_verify_jws(s, jwks, &why);
        break;
    case 1:
        c = fed_verify_jws(token, s, &why);
        break;
    case 2: {
        fed_expect_t e = {.issuer = "https://idp.example.com",
                          .client_id = "console",
                          .nonce = "n",
                          .now = 1000000,
                          .leeway_s = 60};
        json_t *p = json_loads(s, 0, NULL);
        if (json_is_object(p))
            (void)fed_check_id_claims(p, &e);
        json_decref(p);
        break;
    }
    default:
        (void)fed_url_acceptable(s);
    }
    json_decref(c);
    free(s);
    return 0;
}
