/*
 * The effective brand and its use in pages and mail (console/brand.h).
 */
#include <string.h>

#include "console/brand.h"
#include "console/crypto.h"
#include "console/errors.h"
#include "console/json.h"
#include "console/log.h"

const char *const cc_brand_networks[] = {"facebook",  "x",      "linkedin", "youtube",
                                         "instagram", "github", "other",    NULL};

static const char *const network_label[] = {"Facebook",  "X",      "LinkedIn", "YouTube",
                                            "Instagram", "GitHub", "Web"};

void cc_brand_defaults(cc_brand_t *b)
{
    *b = (cc_brand_t){
        .product_name = "Console",
        .primary_color = "#1f4e79",
        .secondary_color = "#e8eef5",
        .accent_color = "#2b7a0b",
        .sender_name = NULL,
        .default_language = "en",
    };
}

#define BRAND_COLUMNS                                                                              \
    "e.product_name, e.logo_asset, e.favicon_asset, e.primary_color, e.secondary_color,"           \
    " e.accent_color, e.support_email, e.support_phone, e.support_url, e.sender_name,"             \
    " e.sender_email, e.social_links::text, e.footer_text, e.default_language, e.tenant_id,"       \
    " e.login_domain"

static const cc_stmt_t q_by_tenant = CC_STMT(
    "cc_brand_by_tenant",
    "SELECT " BRAND_COLUMNS " FROM branding.effective_brands e WHERE e.tenant_id = $1::uuid", 1);
/* the login domain's tenant, else the platform's brand, in one round trip; the last
 * column says whether the domain matched */
static const cc_stmt_t q_by_host =
    CC_STMT("cc_brand_by_host",
            "SELECT " BRAND_COLUMNS ", s.matched FROM (SELECT d.tenant_id AS id, true AS matched"
            " FROM branding.login_domains d WHERE d.login_domain = $1"
            " UNION ALL SELECT t.id, false FROM tenants.tenant_tree t WHERE t.kind = 'platform'"
            " ORDER BY 2 DESC LIMIT 1) s JOIN branding.effective_brands e ON e.tenant_id = s.id",
            1);

static const cc_scope_t system_scope = {.system = true};

/* One statement in system scope: inside the caller's open transaction, or a read. */
static int run(cc_db_t *db, cc_pool_t *pool, const cc_stmt_t *st, const char *const *params,
               PGresult **res)
{
    if (cc_db_in_tx(db))
        return cc_db_query(db, pool, st, params, res);
    return cc_db_read(db, pool, &system_scope, st, params, res);
}

/* Overlays row 0 of res on b (defaults stay where the brand is silent). */
static void apply_row(cc_pool_t *pool, const PGresult *res, cc_brand_t *b)
{
    const char *v;
#define TAKE(col, field)                                                                           \
    if ((v = cc_db_get(res, 0, col)) != NULL)                                                      \
    b->field = v
    TAKE(0, product_name);
    TAKE(1, logo_asset);
    TAKE(2, favicon_asset);
    TAKE(3, primary_color);
    TAKE(4, secondary_color);
    TAKE(5, accent_color);
    TAKE(6, support_email);
    TAKE(7, support_phone);
    TAKE(8, support_url);
    TAKE(9, sender_name);
    TAKE(10, sender_email);
    TAKE(12, footer_text);
    TAKE(13, default_language);
    TAKE(15, login_domain);
#undef TAKE
    if ((v = cc_db_get(res, 0, 11)) != NULL) {
        json_t *links = json_loads(v, 0, NULL);
        if (json_is_object(links))
            b->social_links = cc_json_on_pool(pool, links);
        else
            json_decref(links);
    }
}

int cc_brand_for_tenant(cc_db_t *db, cc_pool_t *pool, const char *tenant_id, cc_brand_t *b)
{
    cc_brand_defaults(b);
    if (tenant_id == NULL || !cc_is_uuid(tenant_id))
        return 0;
    PGresult *res;
    int rc = run(db, pool, &q_by_tenant, (const char *const[]){tenant_id}, &res);
    if (rc != 0) {
        cc_log_warn("brand of tenant %s unavailable: %s", tenant_id, cc_db_errmsg(db));
        return rc;
    }
    if (PQntuples(res) == 1)
        apply_row(pool, res, b);
    return 0;
}

const char *cc_brand_host_normalize(cc_pool_t *pool, const char *host)
{
    if (host == NULL)
        return NULL;
    size_t n = strcspn(host, ":");
    if (n == 0 || n > 253)
        return NULL;
    char *out = cc_pool_alloc(pool, n + 1);
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
            return NULL;
        out[i] = c;
    }
    out[n] = '\0';
    return out;
}

int cc_brand_for_host(cc_db_t *db, cc_pool_t *pool, const char *host, cc_brand_t *b,
                      const char **tenant_id)
{
    cc_brand_defaults(b);
    if (tenant_id)
        *tenant_id = NULL;
    const char *h = cc_brand_host_normalize(pool, host);
    PGresult *res;
    int rc = run(db, pool, &q_by_host, (const char *const[]){h ? h : ""}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT; /* no platform tenant yet: the defaults */
    apply_row(pool, res, b);
    if (strcmp(PQgetvalue(res, 0, 16), "t") != 0)
        return CC_ENOENT;
    if (tenant_id)
        *tenant_id = cc_db_get(res, 0, 14);
    return 0;
}

const char *cc_brand_base_url(cc_pool_t *pool, const cc_brand_t *b, const char *public_url)
{
    if (public_url == NULL)
        return "";
    const char *host = strstr(public_url, "://");
    if (b == NULL || b->login_domain == NULL || b->login_domain[0] == '\0' || host == NULL)
        return public_url;
    host += 3;
    /* the authority ends at the path; a port after the host stays (IPv6 literals too) */
    const char *end = host + strcspn(host, "/?#");
    const char *port = NULL;
    if (*host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));
        if (close != NULL && close + 1 < end && close[1] == ':')
            port = close + 1;
    } else {
        port = memchr(host, ':', (size_t)(end - host));
    }
    return cc_pool_printf(pool, "%.*s%s%.*s%s", (int)(host - public_url), public_url,
                          b->login_domain, port ? (int)(end - port) : 0, port ? port : "", end);
}

const char *cc_brand_asset_path(cc_pool_t *pool, const char *asset)
{
    return asset ? cc_pool_printf(pool, "/branding/assets/%s", asset) : NULL;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *cc_brand_public_json(const cc_brand_t *b, const char *base)
{
    const char *pre = base ? base : "";
    json_t *o = json_object();
    json_object_set_new(o, "product_name", json_string(b->product_name));
    json_object_set_new(o, "logo_url",
                        b->logo_asset ? json_sprintf("%s/branding/assets/%s", pre, b->logo_asset)
                                      : json_null());
    json_object_set_new(o, "favicon_url",
                        b->favicon_asset
                            ? json_sprintf("%s/branding/assets/%s", pre, b->favicon_asset)
                            : json_null());
    json_object_set_new(o, "primary_color", json_string(b->primary_color));
    json_object_set_new(o, "secondary_color", json_string(b->secondary_color));
    json_object_set_new(o, "accent_color", json_string(b->accent_color));
    json_object_set_new(o, "support_email", str_or_null(b->support_email));
    json_object_set_new(o, "support_phone", str_or_null(b->support_phone));
    json_object_set_new(o, "support_url", str_or_null(b->support_url));
    json_object_set_new(o, "social_links",
                        b->social_links ? json_deep_copy(b->social_links) : json_object());
    json_object_set_new(o, "footer_text", str_or_null(b->footer_text));
    json_object_set_new(o, "default_language", json_string(b->default_language));
    return o;
}

/* ---- pages ---- */

static bool is_ja(const char *lang)
{
    return lang != NULL && strcmp(lang, "ja") == 0;
}

static bool primary_is(const char *tag, const char *lang)
{
    size_t n = strlen(lang);
    return strncmp(tag, lang, n) == 0 && (tag[n] == '\0' || tag[n] == '-' || tag[n] == '_');
}

const char *cc_brand_language(const cc_brand_t *b, const char *preferred)
{
    if (preferred != NULL && primary_is(preferred, "ja"))
        return "ja";
    if (preferred != NULL && primary_is(preferred, "en"))
        return "en";
    return b != NULL && is_ja(b->default_language) ? "ja" : "en";
}

const char *cc_brand_page_css(cc_pool_t *pool, const cc_brand_t *b)
{
    return cc_pool_printf(
        pool,
        "body{margin:0;font-family:system-ui,sans-serif;color:#1d1d1f;background:%s}"
        "header.brand{background:%s;color:#fff;padding:12px 24px;display:flex;align-items:center;"
        "gap:12px}header.brand img{max-height:40px;max-width:200px}"
        "header.brand span{font-size:1.25em;font-weight:600}"
        "main{max-width:440px;margin:32px auto;background:#fff;padding:24px;"
        "border-top:4px solid %s}"
        "button{background:%s;color:#fff;border:0;padding:8px 16px;font-size:1em}"
        "a{color:%s}footer.brand{max-width:440px;margin:0 auto 32px;font-size:.85em;color:#555}"
        "footer.brand ul{list-style:none;padding:0}footer.brand "
        "li{display:inline;margin-right:12px}",
        b->secondary_color, b->primary_color, b->primary_color, b->accent_color, b->primary_color);
}

const char *cc_brand_css_hash(cc_pool_t *pool, const char *css)
{
    uint8_t d[32];
    cc_sha256(css, strlen(css), d);
    char *b64 = cc_base64_encode(d, sizeof(d));
    const char *out = cc_pool_printf(pool, "'sha256-%s'", b64);
    free(b64);
    return out;
}

void cc_brand_page_open(cc_buf_t *out, const cc_brand_t *b, const char *lang, const char *title,
                        const char *css)
{
    cc_buf_printf(out, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">",
                  is_ja(lang) ? "ja" : "en");
    cc_buf_puts(out, "<meta name=\"viewport\" content=\"width=device-width\"><title>");
    cc_buf_html(out, title);
    cc_buf_puts(out, " - ");
    cc_buf_html(out, b->product_name);
    cc_buf_puts(out, "</title>");
    if (b->favicon_asset)
        cc_buf_printf(out, "<link rel=\"icon\" href=\"/branding/assets/%s\">", b->favicon_asset);
    if (css) {
        cc_buf_puts(out, "<style>");
        cc_buf_puts(out, css); /* colours only, validated: nothing to escape */
        cc_buf_puts(out, "</style>");
    }
    cc_buf_puts(out, "</head><body><header class=\"brand\">");
    if (b->logo_asset) {
        cc_buf_printf(out, "<img id=\"brand-logo\" src=\"/branding/assets/%s\" alt=\"",
                      b->logo_asset);
        cc_buf_html(out, b->product_name);
        cc_buf_puts(out, "\">");
    }
    cc_buf_puts(out, "<span id=\"brand-name\">");
    cc_buf_html(out, b->product_name);
    cc_buf_puts(out, "</span></header><main><h1>");
    cc_buf_html(out, title);
    cc_buf_puts(out, "</h1>");
}

/* digits and a leading + of a phone number, for a tel: URI (pool) */
static const char *tel_uri(cc_pool_t *pool, const char *phone)
{
    size_t n = strlen(phone);
    char *out = cc_pool_alloc(pool, n + 5);
    size_t k = 0;
    memcpy(out, "tel:", 4);
    k = 4;
    for (size_t i = 0; i < n; i++)
        if ((phone[i] >= '0' && phone[i] <= '9') || (phone[i] == '+' && k == 4))
            out[k++] = phone[i];
    out[k] = '\0';
    return out;
}

static void footer_html(cc_buf_t *out, cc_pool_t *pool, const cc_brand_t *b, const char *lang,
                        const char *link_style)
{
    const char *ls = link_style ? link_style : "";
    if (b->support_email || b->support_phone || b->support_url) {
        cc_buf_printf(out, "<p id=\"brand-support\">%s: ", is_ja(lang) ? "サポート" : "Support");
        if (b->support_email) {
            cc_buf_printf(out, "<a%s href=\"mailto:", ls);
            cc_buf_html(out, b->support_email);
            cc_buf_puts(out, "\">");
            cc_buf_html(out, b->support_email);
            cc_buf_puts(out, "</a> ");
        }
        if (b->support_phone) {
            cc_buf_printf(out, "<a%s href=\"", ls);
            cc_buf_html(out, tel_uri(pool, b->support_phone));
            cc_buf_puts(out, "\">");
            cc_buf_html(out, b->support_phone);
            cc_buf_puts(out, "</a> ");
        }
        if (b->support_url) {
            cc_buf_printf(out, "<a%s href=\"", ls);
            cc_buf_html(out, b->support_url);
            cc_buf_puts(out, "\">");
            cc_buf_html(out, b->support_url);
            cc_buf_puts(out, "</a>");
        }
        cc_buf_puts(out, "</p>");
    }
    if (b->social_links && json_object_size(b->social_links) > 0) {
        cc_buf_puts(out, "<ul id=\"brand-social\">");
        for (size_t i = 0; cc_brand_networks[i]; i++) {
            const char *url =
                json_string_value(json_object_get(b->social_links, cc_brand_networks[i]));
            if (url == NULL)
                continue;
            cc_buf_printf(out, "<li><a%s rel=\"noopener noreferrer\" href=\"", ls);
            cc_buf_html(out, url);
            cc_buf_printf(out, "\">%s</a></li>", network_label[i]);
        }
        cc_buf_puts(out, "</ul>");
    }
    if (b->footer_text) {
        cc_buf_puts(out, "<p id=\"brand-footer\">");
        cc_buf_html(out, b->footer_text);
        cc_buf_puts(out, "</p>");
    }
}

void cc_brand_page_close(cc_buf_t *out, const cc_brand_t *b, const char *lang)
{
    cc_pool_t *pool = cc_pool_new();
    cc_buf_puts(out, "</main><footer class=\"brand\">");
    footer_html(out, pool, b, lang, NULL);
    cc_buf_puts(out, "</footer></body></html>\n");
    cc_pool_free(pool);
}

/* ---- mail ---- */

void cc_brand_mail_compose(cc_pool_t *pool, const cc_brand_t *b, const char *public_url,
                           const cc_brand_message_t *m, cc_mail_t *out)
{
    const char *base = cc_brand_base_url(pool, b, public_url);
    cc_buf_t t, h;
    cc_buf_init(&t);
    cc_buf_init(&h);

    cc_buf_puts(&t, m->text ? m->text : "");
    cc_buf_printf(&t, "\r\n-- \r\n%s\r\n", b->product_name);
    if (b->support_email || b->support_phone || b->support_url) {
        cc_buf_puts(&t, is_ja(m->lang) ? "サポート:" : "Support:");
        if (b->support_email)
            cc_buf_printf(&t, " %s", b->support_email);
        if (b->support_phone)
            cc_buf_printf(&t, " %s", b->support_phone);
        if (b->support_url)
            cc_buf_printf(&t, " %s", b->support_url);
        cc_buf_puts(&t, "\r\n");
    }
    if (b->social_links)
        for (size_t i = 0; cc_brand_networks[i]; i++) {
            const char *url =
                json_string_value(json_object_get(b->social_links, cc_brand_networks[i]));
            if (url)
                cc_buf_printf(&t, "%s: %s\r\n", network_label[i], url);
        }
    if (b->footer_text)
        cc_buf_printf(&t, "%s\r\n", b->footer_text);

    cc_buf_printf(&h,
                  "<!DOCTYPE html><html lang=\"%s\"><head><meta charset=\"utf-8\"></head>"
                  "<body style=\"margin:0;background:%s;font-family:sans-serif;color:#1d1d1f\">"
                  "<div style=\"background:%s;color:#ffffff;padding:12px 24px\">",
                  is_ja(m->lang) ? "ja" : "en", b->secondary_color, b->primary_color);
    if (b->logo_asset) {
        cc_buf_printf(&h, "<img src=\"");
        cc_buf_html(&h, base);
        cc_buf_printf(&h, "/branding/assets/%s\" alt=\"", b->logo_asset);
        cc_buf_html(&h, b->product_name);
        cc_buf_puts(&h, "\" style=\"max-height:40px;vertical-align:middle\"> ");
    }
    cc_buf_puts(&h, "<strong style=\"font-size:18px\">");
    cc_buf_html(&h, b->product_name);
    cc_buf_puts(&h, "</strong></div><div style=\"background:#ffffff;max-width:560px;margin:24px "
                    "auto;padding:24px\">");
    cc_buf_puts(&h, m->html ? m->html : "");
    cc_buf_puts(&h, "</div><div style=\"max-width:560px;margin:0 auto 24px;font-size:12px;"
                    "color:#555555\">");
    footer_html(&h, pool, b, m->lang,
                cc_pool_printf(pool, " style=\"color:%s\"", b->primary_color));
    cc_buf_puts(&h, "</div></body></html>");

    *out = (cc_mail_t){
        .from_name = b->sender_name ? b->sender_name : b->product_name,
        .from_addr = b->sender_email,
        .reply_to = b->support_email,
        .to = m->to,
        .subject = cc_pool_printf(pool, "%s: %s", b->product_name, m->subject ? m->subject : ""),
        .text = cc_pool_strdup(pool, t.data ? t.data : ""),
        .html = cc_pool_strdup(pool, h.data ? h.data : ""),
    };
    cc_buf_free(&t);
    cc_buf_free(&h);
}

int cc_brand_mail_send(const cc_mail_config_t *conf, const cc_brand_t *b, const char *public_url,
                       const cc_brand_message_t *m)
{
    cc_pool_t *pool = cc_pool_new();
    cc_mail_t mail;
    cc_brand_mail_compose(pool, b, public_url, m, &mail);
    int rc = cc_mail_send(conf, &mail);
    cc_pool_free(pool);
    return rc;
}
