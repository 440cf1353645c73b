/* Helpers shared by the identity handlers: transactions, secrets, signing, OAuth errors,
 * form bodies, client authentication and minimal HTML answers. */
#include <string.h>
#include <strings.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"

const cc_scope_t identity_system_scope = {.system = true};

bool identity_begin(cc_req_t *req)
{
    int rc = cc_db_begin(req->db, &identity_system_scope);
    if (rc != 0)
        cc_res_db_error(req, rc);
    return rc == 0;
}

bool identity_commit(cc_req_t *req)
{
    int rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
    }
    return rc == 0;
}

char *identity_secret_new(char digest[65])
{
    char *token = cc_token_new(32);
    cc_sha256_hex(token, strlen(token), digest);
    return token;
}

void identity_secret_digest(const char *token, char digest[65])
{
    cc_sha256_hex(token, strlen(token), digest);
}

int identity_sign(identity_app_t *app, const char *typ, json_t *claims, char **out)
{
    identity_keys_t *k = &app->keys;
    pthread_rwlock_rdlock(&k->lock);
    int rc = cc_jwt_sign_es256(k->priv_pem, k->kid, typ, claims, out);
    pthread_rwlock_unlock(&k->lock);
    if (rc != 0)
        cc_log_error("signing a token failed: %s", cc_strerror(rc));
    return rc;
}

void identity_oauth_error(cc_req_t *req, cc_error_id_t id, const char *error, const char *desc,
                          bool basic)
{
    const cc_problem_opts_t opts = {
        .content_type = "application/json",
        .www_authenticate = basic ? "Basic realm=\"console\"" : "Bearer",
    };
    cc_res_problem_opts(req, id, json_pack("{s:s, s:s}", "error", error, "error_description", desc),
                        &opts, "%s", desc);
    cc_res_header(req, "cache-control", "no-store");
}

bool identity_form(cc_req_t *req, const char *const *names, const char **vals)
{
    const char *ct = cc_req_header(req, "content-type");
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        identity_oauth_error(req, CC_ERR_UNSUPPORTED_MEDIA_TYPE, "invalid_request",
                             "Send the body as application/x-www-form-urlencoded.", false);
        return false;
    }
    const char *body = req->body ? req->body : "";
    if (!cc_utf8_valid(body, req->body_len) || strlen(body) != req->body_len) {
        identity_oauth_error(req, CC_ERR_INVALID_UTF8, "invalid_request",
                             "The body is not valid UTF-8 text.", false);
        return false;
    }
    for (int i = 0; names[i]; i++) {
        vals[i] = NULL;
        if (cc_query_get(req->pool, body, names[i], &vals[i]) < 0) {
            /* repeated (RFC 6749 §3.2), a bad escape, or escaped bytes that are not UTF-8 */
            identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                                 "A parameter is repeated, malformed or not valid UTF-8.", false);
            return false;
        }
    }
    return true;
}

/* Decodes "Basic base64(urlencode(id):urlencode(secret))" (RFC 6749 §2.3.1). */
static bool parse_basic(cc_req_t *req, const char *authz, const char **id, const char **secret)
{
    const char *b64 = authz + 6;
    while (*b64 == ' ')
        b64++;
    size_t n = strlen(b64);
    char *url = cc_pool_strndup(req->pool, b64, n);
    for (size_t i = 0; i < n; i++) {
        if (url[i] == '+')
            url[i] = '-';
        else if (url[i] == '/')
            url[i] = '_';
    }
    while (n > 0 && url[n - 1] == '=')
        url[--n] = '\0';
    uint8_t *raw = NULL;
    size_t rawlen = 0;
    if (cc_base64url_decode(url, n, &raw, &rawlen) != 0)
        return false;
    char *text = cc_pool_strndup(req->pool, (char *)raw, rawlen);
    free(raw);
    char *colon = memchr(text, ':', rawlen);
    if (colon == NULL || strlen(text) != rawlen)
        return false;
    *id = cc_percent_decode(req->pool, text, (size_t)(colon - text), true);
    *secret = cc_percent_decode(req->pool, colon + 1, strlen(colon + 1), true);
    return *id != NULL && *secret != NULL && **id != '\0';
}

bool identity_client_auth(cc_req_t *req, const char *client_id, const char *client_secret,
                          bool allow_public, identity_client_t *c)
{
    const char *authz = cc_req_header(req, "authorization");
    bool basic = authz != NULL && strncasecmp(authz, "basic ", 6) == 0;
    if (basic) {
        if (client_secret != NULL) {
            identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                                 "Use one client authentication method, not two.", false);
            return false;
        }
        const char *bid = NULL;
        if (!parse_basic(req, authz, &bid, &client_secret) ||
            (client_id != NULL && strcmp(client_id, bid) != 0)) {
            identity_oauth_error(req, CC_ERR_INVALID_CLIENT, "invalid_client",
                                 "Client authentication failed.", true);
            return false;
        }
        client_id = bid;
    }
    if (client_id == NULL) {
        identity_oauth_error(req, CC_ERR_INVALID_CLIENT, "invalid_client",
                             "Client authentication failed.", basic);
        return false;
    }
    int rc = identity_store_client_by_client_id(req->db, req->pool, client_id, c);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return false;
    }
    bool ok;
    if (rc == 0 && strcmp(c->kind, "public") == 0) {
        /* a public client proves nothing; it may only name itself (PKCE protects its codes) */
        ok = allow_public && client_secret == NULL && !basic && !c->revoked;
    } else {
        /* compare a digest even for an unknown client, so timing does not tell which exist */
        char digest[65], padded[65];
        cc_sha256_hex(client_secret ? client_secret : "", client_secret ? strlen(client_secret) : 0,
                      digest);
        const char *expect = rc == 0 && c->secret_hash ? c->secret_hash : "";
        snprintf(padded, sizeof(padded), "%-64s", expect);
        ok = cc_ct_equal(digest, padded, 64) && client_secret != NULL && rc == 0 &&
             c->secret_hash != NULL && !c->revoked;
    }
    if (!ok) {
        cc_log_info("client authentication failed for a %s client", rc == 0 ? "known" : "unknown");
        identity_oauth_error(req, CC_ERR_INVALID_CLIENT, "invalid_client",
                             "Client authentication failed.", basic);
        return false;
    }
    return true;
}

bool identity_json_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    if (s == NULL)
        return false;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

void identity_page_headers(cc_req_t *req)
{
    identity_page_headers_style(req, NULL);
}

void identity_page_headers_style(cc_req_t *req, const char *style_src)
{
    identity_page_headers_script(req, style_src, NULL);
}

const char *identity_page_param(cc_req_t *req, const char *name)
{
    const char *v = NULL, *ct = cc_req_header(req, "content-type");
    if (cc_query_get(req->pool, req->query, name, &v) == 1)
        return v;
    if (req->body && ct && strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0 &&
        cc_utf8_valid(req->body, req->body_len) && strlen(req->body) == req->body_len &&
        cc_query_get(req->pool, req->body, name, &v) == 1)
        return v;
    return NULL;
}

/* " scheme://host[:port]" of an http(s) URL, or NULL unless it is made only of the
 * characters a host and port may hold (nothing that could end a CSP source). */
static const char *origin_of(cc_pool_t *pool, const char *url)
{
    size_t scheme = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
    if (scheme == 0)
        return NULL;
    size_t n = strcspn(url + scheme, "/?#");
    if (n == 0 || n > 255)
        return NULL;
    for (size_t i = scheme; i < scheme + n; i++) {
        char c = url[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return NULL;
    }
    return cc_pool_printf(pool, " %.*s", (int)(scheme + n), url);
}

/*
 * form-action: a sign-in form posts to its own page, which answers 303 to
 * /oauth2/authorize, which redirects to the client's redirect URI; browsers check every hop
 * of that chain against form-action. So besides 'self' the policy names this issuer's own
 * origin (the console's callback and /oauth2/authorize, when the page is served on an MSP's
 * login domain) and the origin of the redirect URI of the authorization request the page
 * continues (its `continue` parameter), and nothing else: /oauth2/authorize checks that
 * URI against the client's registered ones before redirecting, and an origin named here
 * admits only the end of that chain. The forms' own actions are fixed relative paths.
 */
static const char *form_action_sources(cc_req_t *req)
{
    identity_app_t *app = req->app;
    const char *issuer = origin_of(req->pool, app->svc->issuer);
    const char *client = NULL, *cont = identity_page_param(req, "continue"), *redirect = NULL;
    static const char authorize[] = "/oauth2/authorize?";
    size_t own = issuer ? strlen(issuer + 1) : 0; /* an absolute URL on this issuer */
    if (cont != NULL && own > 0 && strncmp(cont, issuer + 1, own) == 0)
        cont += own;
    if (cont != NULL && strncmp(cont, authorize, sizeof(authorize) - 1) == 0 &&
        cc_query_get(req->pool, cont + sizeof(authorize) - 1, "redirect_uri", &redirect) == 1)
        client = origin_of(req->pool, redirect);
    return cc_pool_printf(req->pool, "%s%s", issuer ? issuer : "",
                          client && (!issuer || strcmp(client, issuer) != 0) ? client : "");
}

void identity_page_headers_script(cc_req_t *req, const char *style_src, const char *script_src)
{
    cc_res_header(req, "content-security-policy",
                  cc_pool_printf(req->pool,
                                 "default-src 'none'; style-src 'self'%s%s; img-src 'self';"
                                 "%s%s%s form-action 'self'%s; frame-ancestors 'none';"
                                 " base-uri 'none'",
                                 style_src ? " " : "", style_src ? style_src : "",
                                 script_src ? " script-src " : "", script_src ? script_src : "",
                                 script_src ? ";" : "", form_action_sources(req)));
    cc_res_header(req, "x-frame-options", "DENY");
    cc_res_header(req, "x-content-type-options", "nosniff");
    cc_res_header(req, "referrer-policy", "no-referrer");
    cc_res_header(req, "cache-control", "no-store");
}

void identity_redirect(cc_req_t *req, const char *location)
{
    cc_res_header(req, "location", location);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_header(req, "referrer-policy", "no-referrer");
    cc_res_text(req, 302, "text/plain; charset=utf-8", "", 0);
}

int identity_audit(cc_req_t *req, const char *action, const char *user_id, const char *tenant_id,
                   const char *msp_id, json_t *details)
{
    json_t *d = details ? json_deep_copy(details) : json_object();
    if (req->client_addr)
        json_object_set_new(d, "client_addr", json_string(req->client_addr));
    cc_audit_t a = {.action = action,
                    .target_type = "user",
                    .target_id = user_id,
                    .tenant_id = tenant_id,
                    .msp_id = msp_id,
                    .details = d};
    int rc = cc_audit_write(req, &a);
    json_decref(d);
    return rc;
}

const char *identity_cookie_get(cc_req_t *req, const char *name)
{
    const char *h = cc_req_header(req, "cookie");
    size_t n = strlen(name);
    for (const char *s = h; s && *s;) {
        while (*s == ' ' || *s == ';')
            s++;
        size_t len = strcspn(s, ";");
        if (len > n && strncmp(s, name, n) == 0 && s[n] == '=')
            return cc_pool_strndup(req->pool, s + n + 1, len - n - 1);
        s += len;
    }
    return NULL;
}

void identity_see_other(cc_req_t *req, const char *location)
{
    identity_page_headers(req);
    cc_res_header(req, "location", location);
    cc_res_text(req, 303, "text/plain; charset=utf-8", "", 0);
}

static const cc_stmt_t q_tenant = CC_STMT(
    "idn_tenant",
    "SELECT kind, path::text, status, msp_id FROM tenants.tenant_tree WHERE id = $1::uuid", 1);

bool identity_tenant_admin(cc_req_t *req, const char *perm, const char *forbidden,
                           identity_tenant_t *t)
{
    const char *id = cc_req_param(req, "id");
    PGresult *res = NULL;
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return false;
    }
    int rc = cc_db_read(req->db, req->pool, &identity_system_scope, &q_tenant, (const char *[]){id},
                        &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    if (PQntuples(res) != 1 || !cc_authz_sees(req->authz, PQgetvalue(res, 0, 1))) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return false;
    }
    *t = (identity_tenant_t){id, cc_db_get(res, 0, 0), cc_db_get(res, 0, 1), cc_db_get(res, 0, 2),
                             cc_db_get(res, 0, 3)};
    if (!cc_authz_can(req->authz, perm, t->path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "%s", forbidden);
        return false;
    }
    return true;
}

/* MSP staff: homed in an MSP (or the platform), or holding a role of an MSP kind, or any
 * role on an MSP or the platform */
static const cc_stmt_t q_msp_staff = CC_STMT(
    "idn_msp_staff",
    "SELECT EXISTS (SELECT 1 FROM tenants.tenant_tree t WHERE t.id = $2::uuid"
    "               AND t.kind IN ('platform', 'msp'))"
    " OR EXISTS (SELECT 1 FROM roles.grants g JOIN roles.roles r ON r.id = g.role"
    "            JOIN tenants.tenant_tree t ON t.id = g.tenant_id WHERE g.principal_id = $1::uuid"
    "            AND (r.account_kind IN ('platform', 'msp') OR r.id LIKE 'msp\\_%'"
    "                 OR t.kind IN ('platform', 'msp')))",
    2);

int identity_user_msp_staff(cc_db_t *db, cc_pool_t *pool, const identity_user_t *u, bool *staff)
{
    PGresult *res = NULL;
    *staff = true; /* on a database error, the stricter answer */
    int rc = cc_db_query(db, pool, &q_msp_staff, (const char *[]){u->id, u->tenant_id}, &res);
    if (rc == 0)
        *staff = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    return rc;
}
