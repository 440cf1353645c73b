/* Unit tests for services/identity/phone.c and the common pieces it stands on: the
 * webhook signature (a known vector, and what changes it), E.164 numbers, the texts of
 * codes (ja/en, sms/voice, with the product's name), the bodies each adapter sends, and
 * the rate rule at each of its edges. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "console/json.h"
#include "console/str.h"
#include "console/webhook.h"
#include "phone.h"

static void test_signature(void **state)
{
    (void)state;
    char sig[68];
    const char *body = "{\"code\":\"123456\"}";
    /* python3 -c "import hmac,hashlib;print(hmac.new(b'k'*32,b'1700000000.'+body,
     * hashlib.sha256).hexdigest())" */
    cc_webhook_signature("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "1700000000", body, strlen(body), sig);
    assert_string_equal(sig, "v1=daba229d0053b82c35e847678dc73e6447a1245b8f18140a0185810256990bca");
    char other[68];
    cc_webhook_signature("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "1700000001", body, strlen(body),
                         other);
    assert_string_not_equal(sig, other); /* the timestamp is signed */
    cc_webhook_signature("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "1700000000", "{\"code\":\"123457\"}",
                         strlen(body), other);
    assert_string_not_equal(sig, other); /* so is every byte of the body */
    cc_webhook_signature("jkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "1700000000", body, strlen(body),
                         other);
    assert_string_not_equal(sig, other);
}

static void test_e164(void **state)
{
    (void)state;
    const char *good[] = {"+819012345678", "+14155550100",     "+4420123456",
                          "+12345678",     "+123456789012345", NULL};
    const char *bad[] = {"819012345678",
                         "+0901234567",
                         "+81 90 1234 5678",
                         "+81-90-1234-5678",
                         "+1234567",
                         "+1234567890123456",
                         "+",
                         "",
                         "+81901234567x",
                         "++819012345678",
                         NULL};
    for (int i = 0; good[i]; i++)
        assert_true(cc_phone_e164_valid(good[i]));
    for (int i = 0; bad[i]; i++)
        assert_false(cc_phone_e164_valid(bad[i]));
    assert_false(cc_phone_e164_valid(NULL));
}

static void test_messages(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    const char *en = identity_phone_message(pool, "sms", false, "Acme Backup", "012345");
    assert_string_equal(en, "Acme Backup: your verification code is 012345. It expires in 5 "
                            "minutes. Do not share it.");
    const char *ja = identity_phone_message(pool, "sms", true, "Acme Backup", "012345");
    assert_non_null(strstr(ja, "Acme Backup の認証コード: 012345"));
    assert_non_null(strstr(ja, "5 分"));
    const char *ven = identity_phone_message(pool, "voice", false, "Acme", "987650");
    assert_string_equal(ven, "This is Acme. Your verification code is 9, 8, 7, 6, 5, 0. Again: "
                             "9, 8, 7, 6, 5, 0. It expires in 5 minutes.");
    const char *vja = identity_phone_message(pool, "voice", true, "Acme", "987650");
    assert_non_null(strstr(vja, "9、8、7、6、5、0"));
    /* the product name is text, and in TwiML it is escaped */
    const char *x = identity_phone_message(pool, "voice", false, "A&B <Backup>", "111111");
    const char *twiml = identity_phone_twiml(pool, x, false);
    assert_non_null(strstr(twiml, "<Response><Say language=\"en-US\">This is A&amp;B "
                                  "&lt;Backup&gt;."));
    assert_non_null(strstr(identity_phone_twiml(pool, vja, true), "language=\"ja-JP\""));
    cc_pool_free(pool);
}

static void test_bodies(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    identity_phone_delivery_t d = {.id = "0b6f7c64-8f0e-4b8e-9d51-2f1b4b8a0c11",
                                   .channel = "sms",
                                   .to = "+819012345678",
                                   .code = "123456",
                                   .message = "Acme: code 123456 & more",
                                   .lang = "en",
                                   .product_name = "Acme",
                                   .user_id = "u",
                                   .tenant_id = "t"};
    char *body = identity_phone_webhook_body(&d);
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "channel")), "sms");
    assert_string_equal(json_string_value(json_object_get(j, "to")), "+819012345678");
    assert_string_equal(json_string_value(json_object_get(j, "code")), "123456");
    assert_string_equal(json_string_value(json_object_get(j, "lang")), "en");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 300);
    json_decref(j);
    free(body);
    const char *form = identity_phone_twilio_form(pool, &d, "+14155550100");
    assert_string_equal(form, "To=%2B819012345678&From=%2B14155550100&Body=Acme%3A%20code%20123456"
                              "%20%26%20more");
    d.channel = "voice";
    d.message = "Hi";
    form = identity_phone_twilio_form(pool, &d, "+14155550100");
    assert_non_null(strstr(form, "&Twiml=%3CResponse%3E%3CSay%20language%3D%22en-US%22%3EHi%3C"));
    assert_null(strstr(form, "Body="));
    cc_pool_free(pool);
}

static void test_rate(void **state)
{
    (void)state;
    identity_phone_limits_t l = {.resend_s = 30, .per_user = 5, .per_number = 10};
    int64_t retry = -1;
    identity_phone_history_t none = {.since_last_user_s = -1};
    assert_int_equal(identity_phone_rate(&l, &none, &retry), IDENTITY_PHONE_OK);
    assert_int_equal(retry, 0);
    identity_phone_history_t soon = {.user_sends = 1,
                                     .number_sends = 1,
                                     .since_last_user_s = 12,
                                     .oldest_user_age_s = 12,
                                     .oldest_number_age_s = 12};
    assert_int_equal(identity_phone_rate(&l, &soon, &retry), IDENTITY_PHONE_TOO_SOON);
    assert_int_equal(retry, 18);
    assert_string_equal(identity_phone_verdict_name(IDENTITY_PHONE_TOO_SOON), "resend_interval");
    soon.since_last_user_s = 30; /* exactly the gap: allowed */
    assert_int_equal(identity_phone_rate(&l, &soon, &retry), IDENTITY_PHONE_OK);
    identity_phone_history_t user = {.user_sends = 5,
                                     .number_sends = 5,
                                     .since_last_user_s = 100,
                                     .oldest_user_age_s = 3000,
                                     .oldest_number_age_s = 3000};
    assert_int_equal(identity_phone_rate(&l, &user, &retry), IDENTITY_PHONE_USER_CAP);
    assert_int_equal(retry, 600);
    user.user_sends = 4;
    assert_int_equal(identity_phone_rate(&l, &user, &retry), IDENTITY_PHONE_OK);
    identity_phone_history_t number = {
        .user_sends = 0, .number_sends = 10, .since_last_user_s = -1, .oldest_number_age_s = 3599};
    assert_int_equal(identity_phone_rate(&l, &number, &retry), IDENTITY_PHONE_NUMBER_CAP);
    assert_int_equal(retry, 1);
    assert_string_equal(identity_phone_verdict_name(IDENTITY_PHONE_NUMBER_CAP), "number");
    l.resend_s = 0; /* no gap: only the caps */
    identity_phone_history_t now = {.user_sends = 1, .number_sends = 1, .since_last_user_s = 0};
    assert_int_equal(identity_phone_rate(&l, &now, &retry), IDENTITY_PHONE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature), cmocka_unit_test(test_e164),
        cmocka_unit_test(test_messages),  cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
