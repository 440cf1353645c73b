/*
 * Unit tests for common/brand.c without a database: the base URL of a brand's links and
 * images (the platform's public URL with the brand's login domain for its host, scheme,
 * port and path kept), and branded mail whose logo is fetched from that base.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "console/brand.h"
#include "console/mem.h"

static void test_base_url(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_brand_t b;
    cc_brand_defaults(&b);
    /* no login domain: the public URL as it is */
    assert_string_equal(cc_brand_base_url(pool, &b, "http://127.0.0.1:8080"),
                        "http://127.0.0.1:8080");
    assert_string_equal(cc_brand_base_url(pool, NULL, "https://console.example"),
                        "https://console.example");
    assert_string_equal(cc_brand_base_url(pool, &b, NULL), "");
    b.login_domain = "backup.msp.example";
    assert_string_equal(cc_brand_base_url(pool, &b, "http://127.0.0.1:8080"),
                        "http://backup.msp.example:8080");
    assert_string_equal(cc_brand_base_url(pool, &b, "https://console.example"),
                        "https://backup.msp.example");
    assert_string_equal(cc_brand_base_url(pool, &b, "https://console.example/console"),
                        "https://backup.msp.example/console");
    assert_string_equal(cc_brand_base_url(pool, &b, "https://console.example:8443/a/b"),
                        "https://backup.msp.example:8443/a/b");
    assert_string_equal(cc_brand_base_url(pool, &b, "http://[::1]:8080"),
                        "http://backup.msp.example:8080");
    assert_string_equal(cc_brand_base_url(pool, &b, "http://[::1]"), "http://backup.msp.example");
    /* not a URL with an authority: left alone */
    assert_string_equal(cc_brand_base_url(pool, &b, "relative/path"), "relative/path");
    b.login_domain = "";
    assert_string_equal(cc_brand_base_url(pool, &b, "http://127.0.0.1:8080"),
                        "http://127.0.0.1:8080");
    cc_pool_free(pool);
}

static void test_mail_logo_from_login_domain(void **state)
{
    (void)state;
    cc_pool_t *pool = cc_pool_new();
    cc_brand_t b;
    cc_brand_defaults(&b);
    b.product_name = "Sakura Backup";
    b.logo_asset = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    b.login_domain = "backup.msp.example";
    cc_brand_message_t m = {.to = "yui@customer.example",
                            .lang = "en",
                            .subject = "Hello",
                            .text = "Hi",
                            .html = "<p>Hi</p>"};
    cc_mail_t mail;
    cc_brand_mail_compose(pool, &b, "https://console.example", &m, &mail);
    assert_non_null(strstr(mail.html,
                           "<img src=\"https://backup.msp.example/branding/assets/"
                           "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\""));
    assert_null(strstr(mail.html, "console.example"));
    assert_string_equal(mail.subject, "Sakura Backup: Hello");
    b.login_domain = NULL;
    cc_brand_mail_compose(pool, &b, "https://console.example", &m, &mail);
    assert_non_null(strstr(mail.html, "<img src=\"https://console.example/branding/assets/"));
    cc_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_url),
        cmocka_unit_test(test_mail_logo_from_login_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
