/*
 * Validation of brand fields: pure functions, tested without a database
 * (tests/unit/branding/validate.c). Strict by design: a brand's values end up in pages and
 * mail that other people read, so colours are only #rrggbb, links only https: (mailto: and
 * tel: are made from validated addresses and numbers, never taken as given), text without
 * control characters and of bounded length.
 */
#include <string.h>

#include "branding.h"

bool branding_color_valid(const char *s)
{
    if (s == NULL || strlen(s) != 7 || s[0] != '#')
        return false;
    for (int i = 1; i < 7; i++)
        if (cc_hex_value(s[i]) < 0)
            return false;
    return true;
}

static bool label_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* host[0..n): DNS labels, lower-case, at least two, the last one not all digits. */
static bool host_valid(const char *s, size_t n)
{
    if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
        return false;
    size_t label = 0, labels = 1, start = 0;
    bool digits_only = true;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[start] == '-' || s[i - 1] == '-')
                return false;
            if (i < n) {
                labels++;
                label = 0;
                start = i + 1;
                digits_only = true;
            }
            continue;
        }
        if (!label_char(s[i]))
            return false;
        if (s[i] < '0' || s[i] > '9')
            digits_only = false;
        label++;
    }
    return labels >= 2 && !digits_only; /* "10.0.0.1" is not a host name */
}

bool branding_hostname_valid(const char *s)
{
    return s != NULL && host_valid(s, strlen(s));
}

bool branding_https_url_valid(const char *s)
{
    if (s == NULL || strncmp(s, "https://", 8) != 0)
        return false;
    size_t n = strlen(s);
    if (n > 2048)
        return false;
    const char *host = s + 8;
    size_t hn = strcspn(host, "/?#");
    size_t port_at = strcspn(host, ":");
    size_t name_len = port_at < hn ? port_at : hn;
    if (!host_valid(host, name_len))
        return false;
    if (port_at < hn) { /* :port, 1..65535 */
        const char *p = host + port_at + 1;
        size_t pn = hn - port_at - 1;
        if (pn == 0 || pn > 5)
            return false;
        long port = 0;
        for (size_t i = 0; i < pn; i++) {
            if (p[i] < '0' || p[i] > '9')
                return false;
            port = port * 10 + (p[i] - '0');
        }
        if (port < 1 || port > 65535)
            return false;
    }
    /* the rest: printable ASCII without spaces, quotes, angle brackets or backslashes */
    for (const char *p = host + hn; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("\"'<>\\`{}|^", c) != NULL)
            return false;
    }
    return true;
}

static char *lower_dup(cc_pool_t *pool, const char *s)
{
    char *out = cc_pool_strdup(pool, s);
    for (char *c = out; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return out;
}

static const char *const fields[] = {"product_name",    "primary_color",
                                     "secondary_color", "accent_color",
                                     "support_email",   "support_phone",
                                     "support_url",     "sender_name",
                                     "sender_email",    "social_links",
                                     "footer_text",     "default_language",
                                     "login_domain",    NULL};

static const char *color(cc_validator_t *v, json_t *body, const char *name)
{
    json_t *j = json_object_get(body, name);
    if (j == NULL || json_is_null(j))
        return NULL;
    if (!json_is_string(j) || !branding_color_valid(json_string_value(j))) {
        cc_v_add(v, name, "format", "%s must be a colour as #rrggbb.", name);
        return NULL;
    }
    return lower_dup(v->pool, json_string_value(j));
}

static const char *email(cc_validator_t *v, json_t *body, const char *name)
{
    const char *s = cc_v_string(v, body, name, false, 3, 254, false);
    if (s != NULL && !cc_email_valid(s)) {
        cc_v_add(v, name, "format", "%s is not an e-mail address.", name);
        return NULL;
    }
    return s;
}

void branding_validate(cc_validator_t *v, json_t *body, brand_fields_t *f)
{
    memset(f, 0, sizeof(*f));
    if (!cc_v_object(v, body, fields))
        return;
    f->product_name = cc_v_string(v, body, "product_name", false, 1, 64, true);
    f->primary_color = color(v, body, "primary_color");
    f->secondary_color = color(v, body, "secondary_color");
    f->accent_color = color(v, body, "accent_color");
    f->support_email = email(v, body, "support_email");
    f->sender_email = email(v, body, "sender_email");
    f->support_phone = cc_v_string(v, body, "support_phone", false, 7, 32, true);
    if (f->support_phone != NULL && !cc_phone_valid(f->support_phone)) {
        cc_v_add(v, "support_phone", "format",
                 "support_phone must be a phone number: +, digits, spaces, dashes.");
        f->support_phone = NULL;
    }
    f->support_url = cc_v_string(v, body, "support_url", false, 12, 2048, false);
    if (f->support_url != NULL && !branding_https_url_valid(f->support_url)) {
        cc_v_add(v, "support_url", "format", "support_url must be an https:// URL.");
        f->support_url = NULL;
    }
    f->sender_name = cc_v_string(v, body, "sender_name", false, 1, 64, true);
    if (f->sender_name != NULL && strpbrk(f->sender_name, "<>\"\\@") != NULL) {
        cc_v_add(v, "sender_name", "format",
                 "sender_name is a display name: no < > \" \\ or @ characters.");
        f->sender_name = NULL;
    }
    f->footer_text = cc_v_string(v, body, "footer_text", false, 1, 500, true);
    f->default_language =
        cc_v_enum(v, body, "default_language", false, (const char *const[]){"en", "ja", NULL});
    const char *domain = cc_v_string(v, body, "login_domain", false, 4, 253, false);
    if (domain != NULL) {
        domain = lower_dup(v->pool, domain);
        if (!branding_hostname_valid(domain)) {
            cc_v_add(v, "login_domain", "format",
                     "login_domain must be a host name such as backup.example.com.");
            domain = NULL;
        }
        f->login_domain = domain;
    }
    json_t *links = json_object_get(body, "social_links");
    if (links != NULL && !json_is_null(links)) {
        if (!json_is_object(links)) {
            cc_v_add(v, "social_links", "type",
                     "social_links must be an object of network: https URL.");
            return;
        }
        const char *key;
        json_t *val;
        json_object_foreach(links, key, val)
        {
            bool known = false;
            for (size_t i = 0; cc_brand_networks[i]; i++)
                known = known || strcmp(key, cc_brand_networks[i]) == 0;
            const char *field = cc_pool_printf(v->pool, "social_links.%s", key);
            if (!known || !cc_utf8_valid(key, strlen(key)) || strlen(key) > 32) {
                cc_v_add(v, "social_links", "enum",
                         "social_links networks: facebook, x, linkedin, youtube, instagram, "
                         "github, other.");
                continue;
            }
            if (!json_is_string(val)) {
                cc_v_add(v, field, "type", "%s must be an https:// URL.", field);
                continue;
            }
            if (!branding_https_url_valid(json_string_value(val)))
                cc_v_add(v, field, "format", "%s must be an https:// URL.", field);
        }
        if (json_object_size(links) > 0)
            f->social_links = links;
    }
}
