/* Unit tests for common/totp.c: RFC 4648 base32 and the RFC 6238 (SHA-1) test vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/errors.h"
#include "console/totp.h"

static const char rfc_key[] = "12345678901234567890"; /* RFC 6238 appendix B, SHA-1 */

static void test_base32_rfc4648(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } v[] = {{"", ""},
             {"f", "MY"},
             {"fo", "MZXQ"},
             {"foo", "MZXW6"},
             {"foob", "MZXW6YQ"},
             {"fooba", "MZXW6YTB"},
             {"foobar", "MZXW6YTBOI"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *enc = cc_base32_encode(v[i].in, strlen(v[i].in));
        assert_string_equal(enc, v[i].out);
        uint8_t *dec = NULL;
        size_t n = 0;
        assert_int_equal(cc_base32_decode(enc, &dec, &n), 0);
        assert_int_equal(n, strlen(v[i].in));
        assert_memory_equal(dec, v[i].in, n);
        free(dec);
        free(enc);
    }
    /* lower case, spaces and padding are accepted; other characters are not */
    uint8_t *dec = NULL;
    size_t n = 0;
    assert_int_equal(cc_base32_decode("mzxw 6ytb oi======", &dec, &n), 0);
    assert_int_equal(n, 6);
    assert_memory_equal(dec, "foobar", 6);
    free(dec);
    assert_int_equal(cc_base32_decode("MZXW1", &dec, &n), CC_EINVAL);
    assert_int_equal(cc_base32_decode("MZ!W", &dec, &n), CC_EINVAL);
}

static void test_rfc6238_vectors(void **state)
{
    (void)state;
    static const struct {
        int64_t t;
        const char *code8;
    } v[] = {{59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
             {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000LL, "65353130"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char got[9];
        snprintf(got, sizeof(got), "%08u",
                 cc_hotp(rfc_key, 20, (uint64_t)(v[i].t / CC_TOTP_STEP_S), 8));
        assert_string_equal(got, v[i].code8);
        /* the 6-digit code is the last six digits of the 8-digit one */
        int64_t step = -1;
        assert_true(cc_totp_check(rfc_key, 20, v[i].code8 + 2, v[i].t, 0, -1, &step));
        assert_int_equal(step, v[i].t / CC_TOTP_STEP_S);
    }
}

static void test_totp_window_and_replay(void **state)
{
    (void)state;
    const int64_t t = 1111111111; /* step 37037037 */
    const int64_t s = t / CC_TOTP_STEP_S;
    char prev[7], next[7], far[7];
    snprintf(prev, sizeof(prev), "%06u", cc_hotp(rfc_key, 20, (uint64_t)(s - 1), 6));
    snprintf(next, sizeof(next), "%06u", cc_hotp(rfc_key, 20, (uint64_t)(s + 1), 6));
    snprintf(far, sizeof(far), "%06u", cc_hotp(rfc_key, 20, (uint64_t)(s + 2), 6));
    int64_t step = -1;
    /* ±1 step accepted, 2 steps away refused */
    assert_true(cc_totp_check(rfc_key, 20, prev, t, 1, -1, &step));
    assert_int_equal(step, s - 1);
    assert_true(cc_totp_check(rfc_key, 20, next, t, 1, -1, &step));
    assert_int_equal(step, s + 1);
    assert_false(cc_totp_check(rfc_key, 20, far, t, 1, -1, &step));
    /* each step once: the last accepted step and every earlier one are refused */
    assert_false(cc_totp_check(rfc_key, 20, "050471", t, 1, s, &step));
    assert_false(cc_totp_check(rfc_key, 20, prev, t, 1, s, &step));
    assert_true(cc_totp_check(rfc_key, 20, next, t, 1, s, &step));
    /* shape */
    assert_false(cc_totp_check(rfc_key, 20, "05047", t, 1, -1, &step));
    assert_false(cc_totp_check(rfc_key, 20, "0504711", t, 1, -1, &step));
    assert_false(cc_totp_check(rfc_key, 20, "05047a", t, 1, -1, &step));
    assert_false(cc_totp_check(rfc_key, 20, "", t, 1, -1, &step));
    assert_false(cc_totp_check(rfc_key, 20, NULL, t, 1, -1, &step));
    /* another key */
    assert_false(cc_totp_check("another key 12345678", 20, "050471", t, 1, -1, &step));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base32_rfc4648),
        cmocka_unit_test(test_rfc6238_vectors),
        cmocka_unit_test(test_totp_window_and_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
