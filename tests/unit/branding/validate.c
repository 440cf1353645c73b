/* Unit tests for services/branding/validate.c: colours, https URLs, host names, and the
 * whole body of a brand (table-driven: each bad value names its field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "branding.h"

static void test_color(void **state)
{
    (void)state;
    const char *good[] = {"#000000", "#ffffff", "#AbCdEf", "#1f4e79", NULL};
    const char *bad[] = {"",        "#fff",     "000000",   "#0000000",   "#00000g", "red",
                         "#12345 ", " #123456", "#12345\n", "rgb(0,0,0)", "#12;}a{", NULL};
    for (int i = 0; good[i]; i++)
        assert_true(branding_color_valid(good[i]));
    for (int i = 0; bad[i]; i++)
        if (branding_color_valid(bad[i]))
            fail_msg("colour accepted: '%s'", bad[i]);
    assert_false(branding_color_valid(NULL));
}

static void test_https_url(void **state)
{
    (void)state;
    const char *good[] = {"https://example.com",
                          "https://help.example.co.jp/support?lang=ja#top",
                          "https://x.com/alpha",
                          "https://example.com:8443/a/b",
                          "https://xn--eckwd4c7c.xn--zckzah/",
                          "https://example.com/%E3%83%98%E3%83%AB%E3%83%97",
                          NULL};
    const char *bad[] = {"http://example.com",
                         "javascript:alert(1)",
                         "JAVASCRIPT://example.com/%0aalert(1)",
                         "data:text/html,<script>",
                         "https://",
                         "https:///path",
                         "https://user:pw@example.com/",
                         "https://example.com:0/",
                         "https://example.com:99999/",
                         "https://example.com:80a/",
                         "https://localhost/",
                         "https://10.0.0.1/",
                         "https://[::1]/",
                         "https://exa mple.com/",
                         "https://example.com/a b",
                         "https://example.com/\"onmouseover=\"x",
                         "https://example.com/<script>",
                         "https://example.com/\\evil",
                         "https://-bad.example.com/",
                         "https://ヘルプ.example/",
                         "https://example.com/\x01",
                         "//example.com",
                         "mailto:support@example.com",
                         NULL};
    for (int i = 0; good[i]; i++)
        if (!branding_https_url_valid(good[i]))
            fail_msg("URL refused: '%s'", good[i]);
    for (int i = 0; bad[i]; i++)
        if (branding_https_url_valid(bad[i]))
            fail_msg("URL accepted: '%s'", bad[i]);
    char longurl[2100] = "https://example.com/";
    memset(longurl + strlen(longurl), 'a', 2100 - 1 - strlen(longurl));
    longurl[2099] = '\0';
    assert_false(branding_https_url_valid(longurl));
}

static void test_hostname(void **state)
{
    (void)state;
    const char *good[] = {"backup.msp.example",    "a.io", "login-1.example.co.jp", "x1.example",
                          "xn--eckwd4c7c.example", NULL};
    const char *bad[] = {"",
                         "localhost",
                         "10.0.0.1",
                         "backup.msp.example.",
                         ".example.com",
                         "a..b",
                         "-a.example",
                         "a-.example",
                         "BACKUP.example", /* callers lower-case first */
                         "a_b.example",
                         "a b.example",
                         "backup.msp.example:8080",
                         "ヘルプ.example",
                         NULL};
    for (int i = 0; good[i]; i++)
        if (!branding_hostname_valid(good[i]))
            fail_msg("host refused: '%s'", good[i]);
    for (int i = 0; bad[i]; i++)
        if (branding_hostname_valid(bad[i]))
            fail_msg("host accepted: '%s'", bad[i]);
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example");
    assert_false(branding_hostname_valid(label)); /* a label of 64 */
}

/* Validates body (JSON text); returns the validator's errors as text ("" when none). */
static const char *validate(cc_pool_t *pool, const char *text, brand_fields_t *f)
{
    json_t *body = json_loads(text, 0, NULL);
    assert_non_null(body);
    cc_validator_t v;
    cc_v_init(&v, pool);
    branding_validate(&v, body, f);
    const char *out = "";
    if (v.unknown_field)
        out = cc_pool_printf(pool, "unknown:%s", v.unknown_field);
    else if (json_array_size(v.errors) > 0) {
        char *d = json_dumps(v.errors, JSON_COMPACT);
        out = cc_pool_strdup(pool, d);
        free(d);
    }
    cc_json_on_pool(pool, body);
    return out;
}

static void test_body(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    brand_fields_t f;
    const char *e =
        validate(pool,
                 "{\"product_name\": \"  Alpha Backup \", \"primary_color\": \"#AA2200\","
                 " \"support_email\": \"support@alpha.example\", \"support_phone\": "
                 "\"+81 3-1234-5678\", \"support_url\": \"https://help.alpha.example\","
                 " \"sender_name\": \"Alpha Team\", \"sender_email\": "
                 "\"noreply@alpha.example\", \"social_links\": {\"x\": "
                 "\"https://x.com/a\"}, \"footer_text\": \"(c) Alpha\","
                 " \"default_language\": \"ja\", \"login_domain\": "
                 "\"Backup.Alpha.Example\", \"accent_color\": null}",
                 &f);
    assert_string_equal(e, "");
    assert_string_equal(f.product_name, "Alpha Backup");
    assert_string_equal(f.primary_color, "#aa2200");
    assert_string_equal(f.login_domain, "backup.alpha.example");
    assert_null(f.accent_color);
    assert_string_equal(json_string_value(json_object_get(f.social_links, "x")), "https://x.com/a");
    assert_string_equal(validate(pool, "{}", &f), "");

    struct {
        const char *body, *field;
    } bad[] = {
        {"{\"primary_color\": \"blue\"}", "primary_color"},
        {"{\"secondary_color\": 255}", "secondary_color"},
        {"{\"product_name\": \"\"}", "product_name"},
        {"{\"product_name\": 7}", "product_name"},
        {"{\"product_name\": \"tab\\there\"}", "product_name"},
        {"{\"footer_text\": \"line\\nbreak\"}", "footer_text"},
        {"{\"support_email\": \"a@b\"}", "support_email"},
        {"{\"support_email\": \"a b@example.com\"}", "support_email"},
        {"{\"sender_email\": \"noreply@example.com\\r\\nBcc: x@y.z\"}", "sender_email"},
        {"{\"sender_name\": \"Team\\r\\nBcc: x@y.z\"}", "sender_name"},
        {"{\"sender_name\": \"\\\"Bank\\\" <ceo@bank.example>\"}", "sender_name"},
        {"{\"support_phone\": \"123\"}", "support_phone"},
        {"{\"support_url\": \"http://example.com\"}", "support_url"},
        {"{\"default_language\": \"fr\"}", "default_language"},
        {"{\"login_domain\": \"127.0.0.1\"}", "login_domain"},
        {"{\"login_domain\": \"a_b.example\"}", "login_domain"},
        {"{\"social_links\": \"https://x.com\"}", "social_links"},
        {"{\"social_links\": {\"tiktok\": \"https://tiktok.com/a\"}}", "social_links"},
        {"{\"social_links\": {\"x\": 1}}", "social_links.x"},
        {"{\"social_links\": {\"other\": \"javascript:alert(1)\"}}", "social_links.other"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = validate(pool, bad[i].body, &f);
        const char *want = cc_pool_printf(pool, "\"field\":\"%s\"", bad[i].field);
        if (strstr(e, want) == NULL)
            fail_msg("%s: expected an error on %s, got %s", bad[i].body, bad[i].field, e);
    }
    assert_string_equal(validate(pool, "{\"logo\": \"x\"}", &f), "unknown:logo");
    assert_string_equal(
        validate(pool, "{\"login_domain\": \"a.example\", \"Login_domain\": 1}", &f),
        "unknown:Login_domain");
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_color),
        cmocka_unit_test(test_https_url),
        cmocka_unit_test(test_hostname),
        cmocka_unit_test(test_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
