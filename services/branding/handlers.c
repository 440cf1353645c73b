/*
 * The branding API (API.md, Branding). Every change: validate, check branding:manage on
 * the tenant from the caller's grants (console/authz.h), act in one transaction scoped by
 * row-level security, with the audit record and the outbox event in that transaction.
 * A tenant the caller cannot see answers 404; one it sees without the permission, 403.
 *
 * Public (no token): GET /api/v1/branding/effective (presentation fields only, with an
 * ETag and Cache-Control) and GET /branding/assets/{sha256} (checked content, its own
 * Content-Type, nosniff, a CSP that forbids everything active).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/crypto.h"
#include "console/log.h"
#include "console/outbox.h"
#include "branding.h"

static const cc_scope_t system_scope = {.system = true};

/* ---- helpers ---- */

static void res_forbidden(cc_req_t *req)
{
    cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing this brand.");
}

/*
 * The tenant {id} as the caller sees it, with perm on it: answers 404 (unknown or not
 * visible), 403 (no permission), 409 (deleted, for changes) and returns false.
 */
static bool tenant_for(cc_req_t *req, const char *perm, bool change, brand_tenant_t *t)
{
    const char *id = cc_req_param(req, "id");
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return false;
    }
    int rc = branding_store_tenant(req->db, req->pool, cc_req_scope(req), id, t);
    if (rc == 0 && !cc_authz_sees(req->authz, t->path))
        rc = CC_ENOENT;
    if (rc != 0) {
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        else
            cc_res_db_error(req, rc);
        return false;
    }
    if (!cc_authz_can(req->authz, perm, t->path)) {
        res_forbidden(req);
        return false;
    }
    if (change && strcmp(t->status, "deleted") == 0) {
        cc_res_problem(req, CC_ERR_TENANT_DELETED,
                       "The account is in the recycle bin; restore it first.");
        return false;
    }
    return true;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* The brand a tenant inherits: its root account's effective brand for a customer, the
 * platform's for a root account, the defaults for the platform itself. */
static int inherited(cc_req_t *req, const brand_tenant_t *t, cc_brand_t *b)
{
    if (strcmp(t->kind, "platform") == 0) {
        cc_brand_defaults(b);
        return 0;
    }
    if (strcmp(t->kind, "customer") == 0)
        return cc_brand_for_tenant(req->db, req->pool, t->msp_id, b);
    int rc = cc_brand_for_host(req->db, req->pool, NULL, b, NULL); /* the platform's brand */
    return rc == CC_ENOENT ? 0 : rc;
}

/* Overlays stored or unsaved fields on an inherited brand. */
static void overlay(cc_brand_t *b, const brand_fields_t *f, const char *logo, const char *favicon)
{
#define OVER(x)                                                                                    \
    if (f->x)                                                                                      \
    b->x = f->x
    OVER(product_name);
    OVER(primary_color);
    OVER(secondary_color);
    OVER(accent_color);
    OVER(support_email);
    OVER(support_phone);
    OVER(support_url);
    OVER(sender_name);
    OVER(sender_email);
    OVER(social_links);
    OVER(footer_text);
    OVER(default_language);
#undef OVER
    if (logo)
        b->logo_asset = logo;
    if (favicon)
        b->favicon_asset = favicon;
}

static json_t *brand_json(const brand_tenant_t *t, const stored_brand_t *s, const cc_brand_t *eff)
{
    const brand_fields_t *f = &s->f;
    json_t *o = json_object();
    json_object_set_new(o, "tenant_id", json_string(t->id));
    json_object_set_new(o, "product_name", str_or_null(f->product_name));
    json_object_set_new(o, "primary_color", str_or_null(f->primary_color));
    json_object_set_new(o, "secondary_color", str_or_null(f->secondary_color));
    json_object_set_new(o, "accent_color", str_or_null(f->accent_color));
    json_object_set_new(o, "support_email", str_or_null(f->support_email));
    json_object_set_new(o, "support_phone", str_or_null(f->support_phone));
    json_object_set_new(o, "support_url", str_or_null(f->support_url));
    json_object_set_new(o, "sender_name", str_or_null(f->sender_name));
    json_object_set_new(o, "sender_email", str_or_null(f->sender_email));
    json_object_set_new(o, "social_links",
                        f->social_links ? json_deep_copy(f->social_links) : json_null());
    json_object_set_new(o, "footer_text", str_or_null(f->footer_text));
    json_object_set_new(o, "default_language", str_or_null(f->default_language));
    json_object_set_new(o, "login_domain", str_or_null(f->login_domain));
    json_object_set_new(o, "logo_url",
                        s->logo_asset ? json_sprintf("/branding/assets/%s", s->logo_asset)
                                      : json_null());
    json_object_set_new(o, "favicon_url",
                        s->favicon_asset ? json_sprintf("/branding/assets/%s", s->favicon_asset)
                                         : json_null());
    json_object_set_new(o, "version", json_integer(s->version));
    json_object_set_new(o, "updated_at", str_or_null(s->updated_at));
    json_t *e = cc_brand_public_json(eff, NULL);
    json_object_set_new(e, "sender_name",
                        json_string(eff->sender_name ? eff->sender_name : eff->product_name));
    json_object_set_new(e, "sender_email", str_or_null(eff->sender_email));
    json_object_set_new(o, "effective", e);
    return o;
}

/* Answers the tenant's brand as stored (null = inherited) with its effective values. */
static void res_brand(cc_req_t *req, int status, const brand_tenant_t *t, const stored_brand_t *s)
{
    cc_brand_t eff;
    int rc = inherited(req, t, &eff);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    overlay(&eff, &s->f, s->logo_asset, s->favicon_asset);
    char etag[32];
    snprintf(etag, sizeof(etag), "\"%d\"", s->version);
    cc_res_header(req, "etag", etag);
    cc_res_json(req, status, brand_json(t, s, &eff));
}

/* The audit record and the outbox event of a change, in the open transaction. */
static int record(cc_req_t *req, const char *action, const brand_tenant_t *t, json_t *details)
{
    cc_audit_t a = {
        .action = action,
        .target_type = "brand",
        .target_id = t->id,
        .tenant_id = t->id,
        .msp_id = strcmp(t->kind, "platform") == 0 ? NULL : t->msp_id,
        .details = details,
    };
    int rc = cc_audit_write(req, &a);
    if (rc == 0) {
        json_t *ev =
            json_pack("{s:s, s:s, s:s}", "tenant_id", t->id, "msp_id", t->msp_id, "action", action);
        rc = cc_outbox_emit(req->db, req->pool, "branding.changed", t->id, ev);
        json_decref(ev);
    }
    json_decref(details);
    return rc;
}

static bool begin(cc_req_t *req)
{
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    return true;
}

/* Commits and answers the brand, or rolls back and answers the error. */
static void finish(cc_req_t *req, int rc, const brand_tenant_t *t, const stored_brand_t *s)
{
    if (rc == 0 && (rc = cc_db_commit(req->db)) == 0) {
        res_brand(req, 200, t, s);
        return;
    }
    cc_db_rollback(req->db);
    if (rc == CC_ECONFLICT)
        cc_res_problem(req, CC_ERR_LOGIN_DOMAIN_TAKEN,
                       "Another brand already uses this login domain.");
    else
        cc_res_db_error(req, rc);
}

/* The end of a removal: commits and answers 204, or rolls back and answers the error. */
static void finish_removal(cc_req_t *req, int rc)
{
    if (rc == 0 && (rc = cc_db_commit(req->db)) == 0) {
        cc_res_json(req, 204, NULL);
        return;
    }
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

/* Names of the fields that differ between two field sets (audit details). */
static json_t *changed_fields(const brand_fields_t *a, const brand_fields_t *b)
{
    json_t *out = json_array();
#define DIFF(x)                                                                                    \
    if ((a->x == NULL) != (b->x == NULL) || (a->x && strcmp(a->x, b->x) != 0))                     \
    json_array_append_new(out, json_string(#x))
    DIFF(product_name);
    DIFF(primary_color);
    DIFF(secondary_color);
    DIFF(accent_color);
    DIFF(support_email);
    DIFF(support_phone);
    DIFF(support_url);
    DIFF(sender_name);
    DIFF(sender_email);
    DIFF(footer_text);
    DIFF(default_language);
    DIFF(login_domain);
#undef DIFF
    if (!json_equal(a->social_links ? a->social_links : json_null(),
                    b->social_links ? b->social_links : json_null()))
        json_array_append_new(out, json_string("social_links"));
    return out;
}

/* The brand of a PUT or preview body, validated; answers 400/415 and returns false. */
static bool brand_body(cc_req_t *req, brand_fields_t *f)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return false;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    branding_validate(&v, body, f);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return false;
    }
    return true;
}

/* If-Match against the brand's version; rolls back and answers 412 when it differs. */
static bool if_match(cc_req_t *req, int version)
{
    if (cc_req_if_match(req, version))
        return true;
    cc_db_rollback(req->db);
    cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                   "The brand changed since you read it (ETag \"%d\"); read it again.", version);
    return false;
}

/* ---- GET|PUT|DELETE /api/v1/tenants/{id}/branding ---- */

static void handle_get(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    brand_tenant_t t;
    if (!tenant_for(req, "tenants:read", false, &t))
        return;
    stored_brand_t s;
    if (!begin(req))
        return;
    int rc = branding_store_get(req->db, req->pool, t.id, false, &s);
    cc_db_rollback(req->db);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return;
    }
    res_brand(req, 200, &t, &s);
}

/* The host of the platform's own public URL: no brand may claim it. */
static bool platform_host(cc_req_t *req, const char *domain)
{
    branding_app_t *app = req->app;
    const char *u = app && app->svc ? app->svc->env.public_url : NULL;
    if (u == NULL)
        return false;
    const char *h = strstr(u, "://");
    h = h ? h + 3 : u;
    size_t n = strcspn(h, ":/");
    return strlen(domain) == n && strncasecmp(h, domain, n) == 0;
}

static void handle_put(cc_req_t *req)
{
    brand_fields_t f;
    if (!brand_body(req, &f))
        return;
    if (f.login_domain && platform_host(req, f.login_domain)) {
        cc_res_problem(req, CC_ERR_LOGIN_DOMAIN_TAKEN,
                       "This is the platform's own host; choose your own domain.");
        return;
    }
    brand_tenant_t t;
    if (!tenant_for(req, "branding:manage", true, &t) || !begin(req))
        return;
    stored_brand_t old, s;
    int rc = branding_store_get(req->db, req->pool, t.id, true, &old);
    if (rc == CC_ENOENT)
        rc = 0;
    if (rc == 0 && !if_match(req, old.version))
        return;
    if (rc == 0)
        rc = branding_store_put(req->db, req->pool, &t, &f, req->principal->sub, &s);
    if (rc == 0)
        rc = record(req, "branding.updated", &t,
                    json_pack("{s:o}", "changed", changed_fields(&old.f, &f)));
    finish(req, rc, &t, &s);
}

/*
 * The start of a removal: the tenant with branding:manage, a transaction, and its own
 * brand locked. False when answered (refused, or 204: no brand of its own, nothing to
 * remove); else *rc is 0 (the brand in s) or a db error for the caller to answer.
 */
static bool begin_removal(cc_req_t *req, brand_tenant_t *t, stored_brand_t *s, int *rc)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 ||
        !tenant_for(req, "branding:manage", true, t) || !begin(req))
        return false;
    *rc = branding_store_get(req->db, req->pool, t->id, true, s);
    if (*rc == CC_ENOENT) {
        cc_db_rollback(req->db);
        cc_res_json(req, 204, NULL);
        return false;
    }
    return true;
}

static void handle_delete(cc_req_t *req)
{
    brand_tenant_t t;
    stored_brand_t s;
    int rc;
    if (!begin_removal(req, &t, &s, &rc)) /* none of its own: already inherits everything */
        return;
    if (rc == 0 && !if_match(req, s.version))
        return;
    if (rc == 0)
        rc = branding_store_delete(req->db, req->pool, t.id);
    if (rc == 0)
        rc = record(req, "branding.deleted", &t, NULL);
    finish_removal(req, rc);
}

/* ---- PUT|DELETE /api/v1/tenants/{id}/branding/logo and /favicon ---- */

static void put_asset(cc_req_t *req, asset_kind_t kind)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    brand_tenant_t t;
    if (!tenant_for(req, "branding:manage", true, &t))
        return;
    if (req->body_len > BRANDING_ASSET_MAX) {
        cc_res_problem(req, CC_ERR_PAYLOAD_TOO_LARGE,
                       "The image is %zu bytes; the limit is 512 KiB (524288 bytes).",
                       req->body_len);
        return;
    }
    asset_check_t c;
    if (branding_asset_check((const uint8_t *)req->body, req->body_len, kind, &c) != 0) {
        cc_error_id_t id = strcmp(c.code, "asset_type") == 0         ? CC_ERR_IMAGE_UNSUPPORTED
                           : strcmp(c.code, "asset_malformed") == 0  ? CC_ERR_IMAGE_MALFORMED
                           : strcmp(c.code, "asset_dimensions") == 0 ? CC_ERR_IMAGE_DIMENSIONS
                           : strcmp(c.code, "svg_unsafe") == 0       ? CC_ERR_SVG_UNSAFE
                                                                     : CC_ERR_PAYLOAD_TOO_LARGE;
        if (id == CC_ERR_IMAGE_DIMENSIONS)
            cc_res_problem_ext(req, id,
                               json_pack("{s:i, s:i}", "width", c.width, "height", c.height), "%s",
                               c.error);
        else
            cc_res_problem(req, id, "%s", c.error);
        return;
    }
    char sha[65];
    cc_sha256_hex(c.data, c.len, sha);
    stored_brand_t s;
    int rc = begin(req) ? 0 : -1;
    if (rc != 0) {
        free(c.data);
        return;
    }
    rc = branding_store_asset_put(req->db, req->pool, sha, &c, t.msp_id);
    if (rc == 0)
        rc = branding_store_set_asset(req->db, req->pool, &t, kind, sha, req->principal->sub, &s);
    if (rc == 0)
        rc = record(req, kind == ASSET_LOGO ? "branding.logo_set" : "branding.favicon_set", &t,
                    json_pack("{s:s, s:s, s:i, s:i, s:I, s:i}", "sha256", sha, "content_type",
                              c.content_type, "width", c.width, "height", c.height, "bytes",
                              (json_int_t)c.len, "svg_removed", c.removed));
    if (rc == 0 && (rc = cc_db_commit(req->db)) == 0) {
        char etag[32];
        snprintf(etag, sizeof(etag), "\"%d\"", s.version);
        cc_res_header(req, "etag", etag);
        cc_res_json(req, 200,
                    json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:i}", "url",
                              cc_pool_printf(req->pool, "/branding/assets/%s", sha), "sha256", sha,
                              "content_type", c.content_type, "width", c.width, "height", c.height,
                              "bytes", (json_int_t)c.len, "removed", c.removed));
        free(c.data);
        return;
    }
    free(c.data);
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

static void delete_asset(cc_req_t *req, asset_kind_t kind)
{
    brand_tenant_t t;
    stored_brand_t s;
    int rc;
    if (!begin_removal(req, &t, &s, &rc))
        return;
    if (rc == 0 && (kind == ASSET_LOGO ? s.logo_asset : s.favicon_asset) == NULL) {
        cc_db_rollback(req->db);
        cc_res_json(req, 204, NULL);
        return;
    }
    if (rc == 0)
        rc = branding_store_set_asset(req->db, req->pool, &t, kind, NULL, req->principal->sub, &s);
    if (rc == 0)
        rc = record(req, kind == ASSET_LOGO ? "branding.logo_removed" : "branding.favicon_removed",
                    &t, NULL);
    finish_removal(req, rc);
}

static void handle_put_logo(cc_req_t *req)
{
    put_asset(req, ASSET_LOGO);
}
static void handle_put_favicon(cc_req_t *req)
{
    put_asset(req, ASSET_FAVICON);
}
static void handle_delete_logo(cc_req_t *req)
{
    delete_asset(req, ASSET_LOGO);
}
static void handle_delete_favicon(cc_req_t *req)
{
    delete_asset(req, ASSET_FAVICON);
}

/* ---- preview and test mail ---- */

/* The sample message of previews and test mails, in lang. */
static void sample_message(cc_pool_t *pool, const cc_brand_t *b, const char *lang, const char *to,
                           cc_brand_message_t *m)
{
    bool ja = strcmp(lang, "ja") == 0;
    m->to = to;
    m->lang = lang;
    m->subject = ja ? "テストメール" : "Test message";
    m->text = cc_pool_printf(pool,
                             ja ? "%s からのテストメールです。\r\nこのメールは %s のブランド設定の"
                                  "確認用に送信されました。\r\n"
                                : "This is a test message from %s.\r\nIt was sent to check how "
                                  "mail from %s looks.\r\n",
                             b->product_name, b->product_name);
    cc_buf_t h;
    cc_buf_init(&h);
    cc_buf_puts(&h, ja ? "<p>" : "<p>This is a test message from ");
    cc_buf_html(&h, b->product_name);
    cc_buf_puts(&h, ja ? " からのテストメールです。</p>" : ".</p>");
    m->html = cc_pool_strdup(pool, h.data);
    cc_buf_free(&h);
}

static void handle_preview(cc_req_t *req)
{
    brand_fields_t f;
    if (!brand_body(req, &f))
        return;
    brand_tenant_t t;
    if (!tenant_for(req, "branding:manage", false, &t) || !begin(req))
        return;
    stored_brand_t s;
    int rc = branding_store_get(req->db, req->pool, t.id, false, &s);
    cc_db_rollback(req->db);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return;
    }
    cc_brand_t b;
    if ((rc = inherited(req, &t, &b)) != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    overlay(&b, &f, s.logo_asset, s.favicon_asset); /* the unsaved fields, the saved assets */
    const char *lang = b.default_language;
    bool ja = strcmp(lang, "ja") == 0;
    const char *css = cc_brand_page_css(req->pool, &b);
    cc_buf_t page;
    cc_buf_init(&page);
    cc_brand_page_open(&page, &b, lang, ja ? "サインイン" : "Sign in", css);
    cc_buf_printf(&page,
                  "<form><p><label for=\"username\">%s</label><br><input id=\"username\" "
                  "type=\"text\" disabled></p><p><button type=\"button\" disabled>%s</button>"
                  "</p></form>",
                  ja ? "ユーザー名" : "Username", ja ? "次へ" : "Next");
    cc_brand_page_close(&page, &b, lang);
    branding_app_t *app = req->app;
    cc_brand_message_t m;
    sample_message(req->pool, &b, lang, "recipient@example.com", &m);
    cc_mail_t mail;
    cc_brand_mail_compose(req->pool, &b, app->svc->env.public_url, &m, &mail);
    json_t *out = json_pack(
        "{s:s, s:s, s:{s:s, s:s?, s:s?, s:s, s:s, s:s}}", "login_page", page.data, "login_page_csp",
        cc_pool_printf(req->pool, "default-src 'none'; style-src %s; img-src 'self'",
                       cc_brand_css_hash(req->pool, css)),
        "mail", "from_name", mail.from_name, "from", mail.from_addr, "reply_to", mail.reply_to,
        "subject", mail.subject, "text", mail.text, "html", mail.html);
    cc_buf_free(&page);
    json_object_set_new(out, "effective", cc_brand_public_json(&b, NULL));
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200, out);
}

static const cc_stmt_t q_caller_email =
    CC_STMT("branding_caller_email",
            "SELECT primary_email, language FROM users.sign_in_profiles WHERE id = $1::uuid", 1);

/* Test mails to one address about one account in the last minute, to the address in the
 * last hour, and the seconds until the next may go (the audit trail is the record: every
 * test mail is audited before it leaves). */
static const cc_stmt_t q_test_mails_recent = CC_STMT(
    "branding_test_mails_recent",
    "SELECT count(*) FILTER (WHERE tenant_id = $2::uuid AND at > now() - interval '1 minute'),"
    " count(*),"
    " greatest(1, ceil(extract(epoch FROM CASE WHEN count(*) >= $3::int"
    "   THEN min(at) + interval '1 hour' ELSE max(at) + interval '1 minute' END - now())))::int"
    " FROM branding.audit_events"
    " WHERE action = 'branding.test_mail_sent' AND details->>'to' = $1"
    "   AND at > now() - interval '1 hour'",
    3);

#define TEST_MAILS_PER_HOUR 10

/* False (429 rate_limited answered, with Retry-After) when to had a test mail of this
 * account in the last minute, or TEST_MAILS_PER_HOUR of any in the last hour: the test
 * mail is no way to flood an inbox, whichever accounts the caller manages. */
static bool test_mail_allowed(cc_req_t *req, const char *to, const char *tenant_id)
{
    PGresult *res;
    const char *hour_max = cc_pool_printf(req->pool, "%d", TEST_MAILS_PER_HOUR);
    int rc = cc_db_read(req->db, req->pool, &system_scope, &q_test_mails_recent,
                        (const char *const[]){to, tenant_id, hour_max}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    long minute = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    long hour = strtol(PQgetvalue(res, 0, 1), NULL, 10);
    if (minute == 0 && hour < TEST_MAILS_PER_HOUR)
        return true;
    cc_res_header(req, "retry-after", cc_pool_strdup(req->pool, PQgetvalue(res, 0, 2)));
    if (hour >= TEST_MAILS_PER_HOUR)
        cc_res_problem(req, CC_ERR_RATE_LIMITED,
                       "You received %d test mails in the last hour; try again later.",
                       TEST_MAILS_PER_HOUR);
    else
        cc_res_problem(req, CC_ERR_RATE_LIMITED,
                       "A test mail of this account went to you less than a minute ago; wait "
                       "for it.");
    return false;
}

static void handle_test_mail(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    if (req->body_len > 0 && strspn(req->body, " \t\r\n") != req->body_len) {
        json_t *body;
        if (cc_req_json(req, &body) != 0)
            return;
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        if (!cc_v_object(&v, body, (const char *const[]){NULL}) || !cc_v_ok(&v)) {
            cc_res_invalid(req, &v);
            return;
        }
    }
    brand_tenant_t t;
    if (!tenant_for(req, "branding:manage", false, &t))
        return;
    /* the real person: an admin acting as someone gets the mail themself */
    const char *who = req->principal->act_sub ? req->principal->act_sub : req->principal->sub;
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, &system_scope, &q_caller_email,
                        (const char *const[]){who}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (PQntuples(res) != 1 || cc_db_get(res, 0, 0) == NULL) {
        cc_res_problem(req, CC_ERR_CALLER_HAS_NO_EMAIL,
                       "You have no e-mail address to send the test mail to.");
        return;
    }
    const char *to = cc_db_get(res, 0, 0), *ulang = cc_db_get(res, 0, 1);
    if (!test_mail_allowed(req, to, t.id))
        return;
    cc_brand_t b;
    if ((rc = cc_brand_for_tenant(req->db, req->pool, t.id, &b)) != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    const char *lang = ulang && strncmp(ulang, "ja", 2) == 0 ? "ja"
                       : ulang                               ? "en"
                                                             : b.default_language;
    branding_app_t *app = req->app;
    cc_brand_message_t m;
    sample_message(req->pool, &b, lang, to, &m);
    /* the record first: a mail that leaves is always accounted for */
    if (!begin(req))
        return;
    rc = record(req, "branding.test_mail_sent", &t, json_pack("{s:s}", "to", to));
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (cc_brand_mail_send(&app->svc->mail, &b, app->svc->env.public_url, &m) != 0) {
        cc_res_problem(req, CC_ERR_MAIL_UNAVAILABLE,
                       "The mail could not be sent; try again later.");
        return;
    }
    cc_res_json(req, 202, json_pack("{s:s}", "sent_to", to));
}

/* ---- public: effective brand and assets ---- */

static void handle_effective(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){"tenant_id", "host", NULL}) != 0)
        return;
    bool failed = false;
    const char *tenant_id = cc_req_query(req, "tenant_id", &failed);
    const char *host = failed ? NULL : cc_req_query(req, "host", &failed);
    if (failed)
        return;
    if ((tenant_id == NULL) == (host == NULL)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "Give exactly one of tenant_id or host.");
        return;
    }
    cc_brand_t b;
    int rc;
    if (tenant_id != NULL) {
        if (!cc_is_uuid(tenant_id)) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "tenant_id must be an account id.");
            return;
        }
        brand_tenant_t t;
        rc = branding_store_tenant(req->db, req->pool, &system_scope, tenant_id, &t);
        if (rc == 0 && strcmp(t.status, "deleted") == 0)
            rc = CC_ENOENT;
        if (rc == CC_ENOENT) {
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
            return;
        }
        if (rc == 0)
            rc = cc_brand_for_tenant(req->db, req->pool, tenant_id, &b);
    } else {
        if (cc_brand_host_normalize(req->pool, host) == NULL) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "host must be a host name.");
            return;
        }
        rc = cc_brand_for_host(req->db, req->pool, host, &b, NULL);
        if (rc == CC_ENOENT) /* an unknown host shows the platform's brand, as its pages do */
            rc = 0;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *out = cc_brand_public_json(&b, NULL);
    char *text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(out);
    char hex[65];
    cc_sha256_hex(text, strlen(text), hex);
    const char *etag = cc_pool_printf(req->pool, "\"%.32s\"", hex);
    cc_res_header(req, "etag", etag);
    cc_res_header(req, "cache-control", "public, max-age=300");
    const char *inm = cc_req_header(req, "if-none-match");
    if (inm != NULL && (strstr(inm, etag) != NULL || strcmp(inm, "*") == 0)) {
        free(text);
        cc_res_text(req, 304, "application/json", "", 0);
        return;
    }
    cc_res_text(req, 200, "application/json", text, strlen(text));
    free(text);
}

static void handle_asset(cc_req_t *req)
{
    const char *name = cc_req_param(req, "name");
    bool ok = name != NULL && strlen(name) == 64;
    for (size_t i = 0; ok && i < 64; i++)
        ok = (name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f');
    if (!ok || cc_req_query_allowed(req, (const char *const[]){NULL}) != 0) {
        if (!req->responded)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such asset.");
        return;
    }
    const char *type;
    uint8_t *data;
    size_t len;
    int rc = branding_store_asset_get(req->db, req->pool, name, &type, &data, &len);
    if (rc == CC_ENOENT) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such asset.");
        return;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    const char *etag = cc_pool_printf(req->pool, "\"%s\"", name);
    cc_res_header(req, "etag", etag);
    cc_res_header(req, "cache-control", "public, max-age=31536000, immutable");
    cc_res_header(req, "x-content-type-options", "nosniff");
    cc_res_header(req, "cross-origin-resource-policy", "cross-origin");
    /* nothing in an asset may run, load or navigate, even when opened directly */
    cc_res_header(req, "content-security-policy",
                  strcmp(type, "image/svg+xml") == 0
                      ? "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"
                      : "default-src 'none'; sandbox");
    cc_res_header(req, "content-disposition", "inline");
    const char *inm = cc_req_header(req, "if-none-match");
    if (inm != NULL && strstr(inm, name) != NULL) {
        cc_res_text(req, 304, type, "", 0);
        return;
    }
    cc_res_text(req, 200, type, (const char *)data, len);
}

/* ---- the route table ---- */

const cc_route_t branding_routes[] = {
    {"GET", "/api/v1/tenants/{id}/branding", handle_get, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/branding", handle_put, 0, 0},
    {"DELETE", "/api/v1/tenants/{id}/branding", handle_delete, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/branding/logo", handle_put_logo, 0, 1024 * 1024},
    {"DELETE", "/api/v1/tenants/{id}/branding/logo", handle_delete_logo, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/branding/favicon", handle_put_favicon, 0, 1024 * 1024},
    {"DELETE", "/api/v1/tenants/{id}/branding/favicon", handle_delete_favicon, 0, 0},
    {"POST", "/api/v1/tenants/{id}/branding/preview", handle_preview, 0, 0},
    {"POST", "/api/v1/tenants/{id}/branding/test-mail", handle_test_mail, 0, 0},
    {"GET", "/api/v1/branding/effective", handle_effective, CC_ROUTE_PUBLIC, 0},
    {"GET", "/branding/assets/{name}", handle_asset, CC_ROUTE_PUBLIC, 0},
};
const size_t branding_nroutes = CC_ARRAY_SIZE(branding_routes);
