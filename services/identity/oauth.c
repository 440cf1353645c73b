/*
 * The OAuth 2.0 / OpenID Connect endpoints: authorization (code flow with PKCE), token
 * (authorization_code, refresh_token with rotation and reuse detection, client
 * credentials), userinfo, revocation (RFC 7009), introspection (RFC 7662) and
 * RP-initiated logout.
 *
 * Every grant to a client lives in a token family (token_families): the code's tokens
 * and each rotated refresh token. Access tokens carry the family id as "grant_id"; a
 * revoked family (code reuse, refresh-token reuse, revocation, logout) makes userinfo and
 * introspection refuse its access tokens at once, and the gateway within their lifetime.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"
#include "policy.h"
#include "store_oauth.h"

#define REFRESH_TTL "2592000" /* 30 days */
#define SESSION_COOKIE "console_session"
#define SESSION_MAX_AGE "43200" /* 12 hours, as sessions.expires_at */
#define ACR_MFA IDENTITY_ACR_MFA
#define ACR_1FA IDENTITY_ACR_1FA
#define FRESH_GRACE_S 10 /* max_age grace for a session token used in this request */

static identity_app_t *app_of(cc_req_t *req)
{
    return req->app;
}

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *s = list; s && *s;) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, " ");
        if (len == n && strncmp(s, word, n) == 0)
            return true;
        s += len;
    }
    return false;
}

/* Every requested scope must be allowed; NULL when one is not. Pool memory. */
static const char *scopes_allowed(cc_req_t *req, json_t *allowed, const char *requested)
{
    cc_buf_t out;
    cc_buf_init(&out);
    const char *result = NULL;
    if (requested == NULL || *requested == '\0') {
        size_t i;
        json_t *v;
        json_array_foreach(allowed, i, v)
        {
            if (out.len)
                cc_buf_putc(&out, ' ');
            cc_buf_puts(&out, json_string_value(v));
        }
    } else {
        char *copy = cc_pool_strdup(req->pool, requested), *save = NULL;
        for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
            if (!identity_json_has(allowed, tok))
                goto Exit;
            if (has_word(out.data, tok))
                continue;
            if (out.len)
                cc_buf_putc(&out, ' ');
            cc_buf_puts(&out, tok);
        }
    }
    result = cc_pool_strdup(req->pool, out.data ? out.data : "");
Exit:
    cc_buf_free(&out);
    return result;
}

/* ================= GET /oauth2/authorize ================= */

enum {
    A_RESPONSE_TYPE,
    A_CLIENT_ID,
    A_REDIRECT_URI,
    A_SCOPE,
    A_STATE,
    A_NONCE,
    A_CHALLENGE,
    A_CHALLENGE_METHOD,
    A_PROMPT,
    A_MAX_AGE,
    A_SESSION_TOKEN,
    A_REQUEST,
    A_REQUEST_URI,
    A_RESPONSE_MODE,
    A_ACR_VALUES,
    A_COUNT
};
static const char *const authorize_params[] = {
    "response_type", "client_id",     "redirect_uri",   "scope",
    "state",         "nonce",         "code_challenge", "code_challenge_method",
    "prompt",        "max_age",       "session_token",  "request",
    "request_uri",   "response_mode", "acr_values",     NULL,
};

/* Redirects an authorization error to the (registered) redirect_uri (RFC 6749 §4.1.2.1). */
static void authorize_error(cc_req_t *req, const char *redirect_uri, const char *state,
                            const char *error, const char *desc)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, redirect_uri);
    cc_buf_putc(&b, strchr(redirect_uri, '?') ? '&' : '?');
    cc_buf_puts(&b, "error=");
    cc_buf_percent_encode(&b, error);
    cc_buf_puts(&b, "&error_description=");
    cc_buf_percent_encode(&b, desc);
    if (state) {
        cc_buf_puts(&b, "&state=");
        cc_buf_percent_encode(&b, state);
    }
    cc_buf_puts(&b, "&iss=");
    cc_buf_percent_encode(&b, app_of(req)->svc->issuer);
    identity_redirect(req, b.data);
    cc_buf_free(&b);
}

/* The value of a cookie, or NULL (pool memory). */
static const char *cookie_get(cc_req_t *req, const char *name)
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

static bool issuer_https(cc_req_t *req)
{
    return strncmp(app_of(req)->svc->issuer, "https:", 6) == 0;
}

/* 302 to the login page, carrying the authorization request (without a session token). */
static void to_login(cc_req_t *req)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "/login?");
    const char *q = req->query;
    bool first = true;
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > 0 && strncmp(q, "session_token=", 14) != 0) {
            if (!first)
                cc_buf_putc(&b, '&');
            cc_buf_append(&b, q, len);
            first = false;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    identity_redirect(req, b.data);
    cc_buf_free(&b);
}

static const char *acr_of(const char *amr_json);

typedef struct auth_session {
    const char *id, *user_id, *amr_json;
    int64_t auth_time;
} auth_session_t;

void identity_handle_authorize(cc_req_t *req)
{
    identity_app_t *app = app_of(req);
    const char *p[A_COUNT] = {0};
    bool malformed = false;
    for (int i = 0; i < A_COUNT; i++)
        if (cc_query_get(req->pool, req->query, authorize_params[i], &p[i]) < 0)
            malformed = true;

    /* Until the client and its redirect URI are known, errors are shown here: never
     * redirect to an unverified URI (open redirector, RFC 6749 §4.1.2.1). */
    identity_client_t c;
    int rc = p[A_CLIENT_ID]
                 ? identity_store_client_by_client_id(req->db, req->pool, p[A_CLIENT_ID], &c)
                 : CC_ENOENT;
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return;
    }
    if (rc == CC_ENOENT || c.revoked) {
        identity_html_page(req, 400, CC_ERR_UNKNOWN_CLIENT, "Sign-in request refused",
                           "The application that sent you here is not registered.");
        return;
    }
    const char *redirect = p[A_REDIRECT_URI];
    if (redirect == NULL || !identity_json_has(c.redirect_uris, redirect)) {
        identity_html_page(req, 400, CC_ERR_INVALID_REDIRECT_URI, "Sign-in request refused",
                           "The application asked to return to an address that is not "
                           "registered for it.");
        return;
    }
    const char *state = p[A_STATE];
    if (malformed) {
        authorize_error(req, redirect, NULL, "invalid_request",
                        "A parameter is repeated, malformed or not valid UTF-8.");
        return;
    }
    if (p[A_REQUEST]) {
        authorize_error(req, redirect, state, "request_not_supported",
                        "Request objects are not supported.");
        return;
    }
    if (p[A_REQUEST_URI]) {
        authorize_error(req, redirect, state, "request_uri_not_supported",
                        "request_uri is not supported.");
        return;
    }
    if (p[A_RESPONSE_TYPE] == NULL) {
        authorize_error(req, redirect, state, "invalid_request", "response_type is required.");
        return;
    }
    if (strcmp(p[A_RESPONSE_TYPE], "code") != 0) {
        authorize_error(req, redirect, state, "unsupported_response_type",
                        "Only the authorization code flow (response_type=code) is supported.");
        return;
    }
    if (p[A_RESPONSE_MODE] && strcmp(p[A_RESPONSE_MODE], "query") != 0) {
        authorize_error(req, redirect, state, "invalid_request",
                        "Only response_mode=query is supported.");
        return;
    }
    if (!identity_json_has(c.grant_types, "authorization_code")) {
        authorize_error(req, redirect, state, "unauthorized_client",
                        "This client may not use the authorization code flow.");
        return;
    }
    const char *scope = p[A_SCOPE] ? scopes_allowed(req, c.scopes, p[A_SCOPE]) : NULL;
    if (scope == NULL || *scope == '\0') {
        authorize_error(req, redirect, state, "invalid_scope",
                        p[A_SCOPE] ? "A requested scope is not allowed for this client."
                                   : "scope is required.");
        return;
    }
    const char *challenge = p[A_CHALLENGE], *method = p[A_CHALLENGE_METHOD];
    if (method && strcmp(method, "S256") != 0) {
        authorize_error(req, redirect, state, "invalid_request",
                        "Only code_challenge_method=S256 is supported.");
        return;
    }
    if (challenge == NULL && strcmp(c.kind, "public") == 0) {
        authorize_error(req, redirect, state, "invalid_request",
                        "PKCE (code_challenge with S256) is required for this client.");
        return;
    }
    if (challenge && (method == NULL || !identity_pkce_challenge_valid(challenge))) {
        authorize_error(req, redirect, state, "invalid_request",
                        "code_challenge must be an S256 challenge with "
                        "code_challenge_method=S256.");
        return;
    }
    const char *prompt = p[A_PROMPT] ? p[A_PROMPT] : "";
    bool prompt_none = has_word(prompt, "none"), prompt_login = has_word(prompt, "login");
    if (prompt_none &&
        (prompt_login || has_word(prompt, "consent") || has_word(prompt, "select_account"))) {
        authorize_error(req, redirect, state, "invalid_request",
                        "prompt=none cannot be combined with other values.");
        return;
    }
    int64_t max_age = -1;
    if (p[A_MAX_AGE]) {
        char *end = NULL;
        long long v = strtoll(p[A_MAX_AGE], &end, 10);
        if (*p[A_MAX_AGE] == '\0' || *end != '\0' || v < 0) {
            authorize_error(req, redirect, state, "invalid_request",
                            "max_age must be a non-negative integer.");
            return;
        }
        max_age = v;
    }
    if (p[A_NONCE] && strlen(p[A_NONCE]) > 512) {
        authorize_error(req, redirect, state, "invalid_request", "nonce is too long.");
        return;
    }

    /* who is signing in: a fresh session token, else the browser session */
    if (!identity_begin(req))
        return;
    auth_session_t s = {0};
    bool have = false, fresh = false;
    int64_t now = (int64_t)time(NULL);
    PGresult *res = NULL;
    if (p[A_SESSION_TOKEN]) {
        char digest[65];
        identity_secret_digest(p[A_SESSION_TOKEN], digest);
        const char *pt[] = {digest};
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_session_token_use, pt, &res)) != 0)
            goto DbError;
        if (PQntuples(res) == 1) {
            char sid[37], shash[65];
            cc_uuid_new(sid);
            char *cookie = identity_secret_new(shash);
            s.id = cc_pool_strdup(req->pool, sid);
            s.user_id = cc_db_get(res, 0, 0);
            s.amr_json = cc_db_get(res, 0, 1);
            s.auth_time = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
            const char *ps[] = {sid, shash, s.user_id, s.amr_json, PQgetvalue(res, 0, 2)};
            rc = cc_db_query(req->db, req->pool, &identity_q_session_insert, ps, NULL);
            if (rc != 0) {
                free(cookie);
                goto DbError;
            }
            cc_res_header(req, "set-cookie",
                          cc_pool_printf(req->pool,
                                         SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Lax;"
                                                        " Max-Age=" SESSION_MAX_AGE "%s",
                                         cookie, issuer_https(req) ? "; Secure" : ""));
            free(cookie);
            have = fresh = true;
        } else {
            cc_log_info("authorize: a session token was unknown, used or expired");
        }
    } else if (!prompt_login) {
        const char *cookie = cookie_get(req, SESSION_COOKIE);
        if (cookie) {
            char digest[65];
            identity_secret_digest(cookie, digest);
            const char *pc[] = {digest};
            if ((rc = cc_db_query(req->db, req->pool, &identity_q_session_get, pc, &res)) != 0)
                goto DbError;
            if (PQntuples(res) == 1) {
                s.id = cc_db_get(res, 0, 0);
                s.user_id = cc_db_get(res, 0, 1);
                s.amr_json = cc_db_get(res, 0, 2);
                s.auth_time = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
                have = true;
            }
        }
    }
    /* too old for this client: sign in again. A session token is a sign-in made for this
     * very request, so it gets a few seconds of grace (max_age=0 would loop otherwise). */
    if (have && max_age >= 0 && now - s.auth_time > max_age + (fresh ? FRESH_GRACE_S : 0))
        have = false;
    /* step-up: the client asks for the MFA level and this sign-in has no second factor (a
     * password-only policy, a remembered browser, a federated sign-in without MFA): the
     * login page asks for one (it reads acr_values too, so this cannot loop) */
    if (have && identity_acr_wants_mfa(p[A_ACR_VALUES]) &&
        strcmp(acr_of(s.amr_json), ACR_MFA) != 0) {
        cc_log_info("authorize: acr_values asks for MFA; the session has none: sign in again");
        have = false;
    }
    identity_user_t u;
    if (have) {
        if ((rc = identity_store_user_by_id(req->db, req->pool, s.user_id, &u)) != 0 &&
            rc != CC_ENOENT)
            goto DbError;
        bool active = false;
        if (rc == 0 &&
            (rc = identity_store_tenant_active(req->db, req->pool, u.tenant_id, &active)) != 0)
            goto DbError;
        if (!active || strcmp(u.status, "active") != 0) {
            cc_db_rollback(req->db);
            authorize_error(req, redirect, state, "access_denied",
                            "This account cannot sign in (suspended or deactivated).");
            return;
        }
    }
    if (!have) {
        if (!identity_commit(req)) /* the used session token stays used */
            return;
        if (prompt_none)
            authorize_error(req, redirect, state, "login_required", "The user is not signed in.");
        else
            to_login(req);
        return;
    }

    char code_hash[65], at[24];
    char *code = identity_secret_new(code_hash);
    snprintf(at, sizeof(at), "%lld", (long long)s.auth_time);
    const char *pi[] = {code_hash, c.client_id, u.id,  s.id,       redirect,
                        challenge, p[A_NONCE],  scope, s.amr_json, at};
    rc = cc_db_query(req->db, req->pool, &identity_q_code_insert, pi, NULL);
    if (rc != 0) {
        free(code);
        goto DbError;
    }
    if (!identity_commit(req)) {
        free(code);
        return;
    }
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, redirect);
    cc_buf_putc(&b, strchr(redirect, '?') ? '&' : '?');
    cc_buf_printf(&b, "code=%s", code);
    if (state) {
        cc_buf_puts(&b, "&state=");
        cc_buf_percent_encode(&b, state);
    }
    cc_buf_puts(&b, "&iss=");
    cc_buf_percent_encode(&b, app->svc->issuer);
    identity_redirect(req, b.data);
    cc_buf_free(&b);
    cc_wipe(code, strlen(code));
    free(code);
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

/* ================= POST /oauth2/token ================= */

enum {
    T_GRANT_TYPE,
    T_SCOPE,
    T_CLIENT_ID,
    T_CLIENT_SECRET,
    T_CODE,
    T_REDIRECT_URI,
    T_CODE_VERIFIER,
    T_REFRESH_TOKEN,
    T_SUBJECT_TOKEN,
    T_SUBJECT_TOKEN_TYPE,
    T_RESOURCE,
    T_REASON,
    T_READ_ONLY,
    T_COUNT
};
static const char *const token_params[] = {"grant_type",    "scope",
                                           "client_id",     "client_secret",
                                           "code",          "redirect_uri",
                                           "code_verifier", "refresh_token",
                                           "subject_token", "subject_token_type",
                                           "resource",      "reason",
                                           "read_only",     NULL};
#define TOKEN_EXCHANGE "urn:ietf:params:oauth:grant-type:token-exchange"

static void token_headers(cc_req_t *req)
{
    cc_res_header(req, "cache-control", "no-store");
    cc_res_header(req, "pragma", "no-cache");
}

static void client_credentials(cc_req_t *req, const identity_client_t *c, const char *scope)
{
    identity_app_t *app = app_of(req);
    if (strcmp(c->kind, "confidential") != 0 ||
        !identity_json_has(c->grant_types, "client_credentials")) {
        identity_oauth_error(req, CC_ERR_UNAUTHORIZED_CLIENT, "unauthorized_client",
                             "This client may not use the client_credentials grant.", false);
        return;
    }
    const char *granted = scopes_allowed(req, c->scopes, scope);
    if (granted == NULL) {
        identity_oauth_error(req, CC_ERR_INVALID_SCOPE, "invalid_scope",
                             "A requested scope is not allowed for this client.", false);
        return;
    }
    time_t now = time(NULL);
    int64_t ttl = app->svc->env.access_token_ttl_s;
    char jti[37];
    cc_uuid_new(jti);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
                               "iss", app->svc->issuer, "aud", app->svc->env.audience, "sub", c->id,
                               "kind", "api_client", "tid", c->tenant_id ? c->tenant_id : "", "msp",
                               c->msp_id ? c->msp_id : "", "client_id", c->client_id, "scope",
                               granted, "jti", jti, "iat", (json_int_t)now, "nbf", (json_int_t)now,
                               "exp", (json_int_t)(now + ttl));
    char *token = NULL;
    int rc = identity_sign(app, "at+jwt", claims, &token);
    json_decref(claims);
    if (rc != 0) {
        identity_oauth_error(req, CC_ERR_INTERNAL_ERROR, "server_error",
                             "The token could not be issued.", false);
        return;
    }
    token_headers(req);
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:I, s:s}", "access_token", token, "token_type", "Bearer",
                          "expires_in", (json_int_t)ttl, "scope", granted));
    cc_wipe(token, strlen(token));
    free(token);
}

/* What a user's tokens are issued from. */
typedef struct grant {
    const char *family_id, *session_id, *scope, *amr_json, *nonce;
    int64_t auth_time;
} grant_t;

/* The display name: "Last First" for Japanese, "First Last" otherwise. Pool memory. */
static const char *display_name(cc_pool_t *pool, const identity_user_t *u)
{
    if (strncmp(u->language, "ja", 2) == 0)
        return cc_pool_printf(pool, "%s %s", u->last_name, u->first_name);
    return cc_pool_printf(pool, "%s %s", u->first_name, u->last_name);
}

/* The standard claims the scope allows (ID token and userinfo). */
static void add_profile_claims(cc_pool_t *pool, json_t *claims, const identity_user_t *u,
                               const char *scope)
{
    if (has_word(scope, "email")) {
        json_object_set_new(claims, "email", json_string(u->email));
        json_object_set_new(claims, "email_verified", json_true()); /* via the activation mail */
    }
    if (has_word(scope, "profile")) {
        json_object_set_new(claims, "name", json_string(display_name(pool, u)));
        json_object_set_new(claims, "given_name", json_string(u->first_name));
        json_object_set_new(claims, "family_name", json_string(u->last_name));
        json_object_set_new(claims, "preferred_username", json_string(u->username));
        json_object_set_new(claims, "locale", json_string(u->language));
        json_object_set_new(claims, "zoneinfo", json_string(u->time_zone));
    }
}

static json_t *amr_of(const char *amr_json)
{
    json_t *amr = json_loads(amr_json ? amr_json : "[]", 0, NULL);
    return amr ? amr : json_array();
}

/* The acr a grant earned: MFA when its methods say so; a federated sign-in of a user the
 * console did not ask for a second factor (no MSP role, no MFA upstream) earns only
 * single-factor (federation.c). */
static const char *acr_of(const char *amr_json)
{
    return amr_json && strstr(amr_json, "\"mfa\"") ? ACR_MFA : ACR_1FA;
}

/* Signs the access token (and the ID token when idt is not NULL) of a user grant. */
static int sign_user_tokens(cc_req_t *req, const identity_client_t *c, const identity_user_t *u,
                            const grant_t *g, char **at, char **idt)
{
    identity_app_t *app = app_of(req);
    time_t now = time(NULL);
    int64_t ttl = app->svc->env.access_token_ttl_s;
    char jti[37];
    cc_uuid_new(jti);
    json_t *claims = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "iss",
        app->svc->issuer, "aud", app->svc->env.audience, "sub", u->id, "kind", "user", "tid",
        u->tenant_id, "msp", u->msp_id, "client_id", c->client_id, "scope", g->scope, "amr",
        amr_of(g->amr_json), "acr", acr_of(g->amr_json), "jti", jti, "grant_id", g->family_id,
        "auth_time", (json_int_t)g->auth_time, "iat", (json_int_t)now, "nbf", (json_int_t)now,
        "exp", (json_int_t)(now + ttl));
    /* /api/v1/me and the services read who the user is from the access token */
    json_object_set_new(claims, "email", json_string(u->email));
    json_object_set_new(claims, "name", json_string(display_name(req->pool, u)));
    json_object_set_new(claims, "locale", json_string(u->language));
    json_object_set_new(claims, "zoneinfo", json_string(u->time_zone));
    int rc = identity_sign(app, "at+jwt", claims, at);
    json_decref(claims);
    if (rc != 0 || idt == NULL)
        return rc;
    json_t *id =
        json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:s}", "iss", app->svc->issuer, "sub",
                  u->id, "aud", c->client_id, "azp", c->client_id, "iat", (json_int_t)now, "exp",
                  (json_int_t)(now + ttl), "auth_time", (json_int_t)g->auth_time, "amr",
                  amr_of(g->amr_json), "acr", acr_of(g->amr_json));
    if (g->nonce)
        json_object_set_new(id, "nonce", json_string(g->nonce));
    if (g->session_id)
        json_object_set_new(id, "sid", json_string(g->session_id));
    add_profile_claims(req->pool, id, u, g->scope);
    rc = identity_sign(app, NULL, id, idt);
    json_decref(id);
    if (rc != 0) {
        free(*at);
        *at = NULL;
    }
    return rc;
}

/* Loads the user of a grant and checks that they may still sign in; answers otherwise. */
static bool grant_user_ok(cc_req_t *req, const char *user_id, identity_user_t *u)
{
    int rc = identity_store_user_by_id(req->db, req->pool, user_id, u);
    bool active = false;
    if (rc == 0)
        rc = identity_store_tenant_active(req->db, req->pool, u->tenant_id, &active);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return false;
    }
    if (rc == CC_ENOENT || strcmp(u->status, "active") != 0) {
        cc_db_rollback(req->db);
        identity_oauth_error(req, CC_ERR_INVALID_GRANT, "invalid_grant",
                             "The user of this grant can no longer sign in.", false);
        return false;
    }
    if (!active) {
        cc_db_rollback(req->db);
        identity_oauth_error(req, CC_ERR_TENANT_SUSPENDED, "invalid_grant",
                             "The account of this user (or one of its parents) is suspended.",
                             false);
        return false;
    }
    return true;
}

/* Issues a refresh token into the family when the grant allows one. *out NULL otherwise. */
static int maybe_refresh(cc_req_t *req, const identity_client_t *c, const grant_t *g,
                         const char *parent, char **out)
{
    *out = NULL;
    if (!has_word(g->scope, "offline_access") ||
        !identity_json_has(c->grant_types, "refresh_token"))
        return 0;
    char digest[65];
    char *rt = identity_secret_new(digest);
    const char *p[] = {digest, g->family_id, parent, REFRESH_TTL};
    int rc = cc_db_query(req->db, req->pool, &identity_q_refresh_insert, p, NULL);
    if (rc != 0) {
        free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

static void answer_user_tokens(cc_req_t *req, const identity_client_t *c, const identity_user_t *u,
                               const grant_t *g, char *rt, bool with_id_token)
{
    char *at = NULL, *idt = NULL;
    if (sign_user_tokens(req, c, u, g, &at, with_id_token ? &idt : NULL) != 0) {
        cc_db_rollback(req->db);
        free(rt);
        identity_oauth_error(req, CC_ERR_INTERNAL_ERROR, "server_error",
                             "The token could not be issued.", false);
        return;
    }
    if (!identity_commit(req)) {
        free(at);
        free(idt);
        free(rt);
        return;
    }
    json_t *out =
        json_pack("{s:s, s:s, s:I, s:s}", "access_token", at, "token_type", "Bearer", "expires_in",
                  (json_int_t)app_of(req)->svc->env.access_token_ttl_s, "scope", g->scope);
    if (idt)
        json_object_set_new(out, "id_token", json_string(idt));
    if (rt)
        json_object_set_new(out, "refresh_token", json_string(rt));
    token_headers(req);
    cc_res_json(req, 200, out);
    free(at);
    free(idt);
    if (rt) {
        cc_wipe(rt, strlen(rt));
        free(rt);
    }
}

static void invalid_grant(cc_req_t *req, const char *desc)
{
    identity_oauth_error(req, CC_ERR_INVALID_GRANT, "invalid_grant", desc, false);
}

static void grant_authorization_code(cc_req_t *req, const identity_client_t *c, const char **v)
{
    if (!identity_json_has(c->grant_types, "authorization_code")) {
        identity_oauth_error(req, CC_ERR_UNAUTHORIZED_CLIENT, "unauthorized_client",
                             "This client may not use the authorization_code grant.", false);
        return;
    }
    if (v[T_CODE] == NULL || v[T_REDIRECT_URI] == NULL) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                             "code and redirect_uri are required.", false);
        return;
    }
    char digest[65];
    identity_secret_digest(v[T_CODE], digest);
    if (!identity_begin(req))
        return;
    PGresult *res = NULL;
    const char *pc[] = {digest};
    int rc = cc_db_query(req->db, req->pool, &identity_q_code_get, pc, &res);
    if (rc != 0)
        goto DbError;
    if (PQntuples(res) != 1) {
        cc_db_rollback(req->db);
        invalid_grant(req, "The authorization code is invalid.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 10), "t") == 0) {
        /* a second use: someone else holds this code; revoke what the first use got */
        const char *family = cc_db_get(res, 0, 11);
        if (family) {
            const char *pf[] = {family, "code_reuse"};
            json_t *d = json_pack("{s:s, s:s}", "grant_id", family, "client_id", c->client_id);
            rc = cc_db_query(req->db, req->pool, &identity_q_family_revoke, pf, NULL);
            if (rc == 0)
                rc = identity_audit(req, "oauth.code_reused", PQgetvalue(res, 0, 1), NULL, NULL, d);
            json_decref(d);
            if (rc != 0)
                goto DbError;
        }
        if (!identity_commit(req))
            return;
        cc_log_warn("authorization code reused: tokens of grant %s revoked",
                    family ? family : "(none)");
        invalid_grant(req, "The authorization code was already used; tokens issued from it are "
                           "revoked.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 0), c->client_id) != 0 ||
        strcmp(PQgetvalue(res, 0, 9), "t") != 0 ||
        strcmp(PQgetvalue(res, 0, 3), v[T_REDIRECT_URI]) != 0) {
        cc_db_rollback(req->db);
        invalid_grant(req, "The authorization code is invalid, expired, or was issued to another "
                           "client or redirect_uri.");
        return;
    }
    const char *challenge = cc_db_get(res, 0, 4);
    if (challenge ? !identity_pkce_s256_matches(v[T_CODE_VERIFIER], challenge)
                  : v[T_CODE_VERIFIER] != NULL) {
        cc_db_rollback(req->db);
        invalid_grant(req, "The code_verifier does not match the code_challenge.");
        return;
    }
    identity_user_t u;
    if (!grant_user_ok(req, PQgetvalue(res, 0, 1), &u))
        return;
    char fid[37];
    cc_uuid_new(fid);
    grant_t g = {.family_id = fid,
                 .session_id = cc_db_get(res, 0, 2),
                 .scope = cc_db_get(res, 0, 6),
                 .amr_json = cc_db_get(res, 0, 7),
                 .nonce = cc_db_get(res, 0, 5),
                 .auth_time = strtoll(PQgetvalue(res, 0, 8), NULL, 10)};
    const char *pf[] = {fid,     u.id,       c->client_id,         g.session_id,
                        g.scope, g.amr_json, PQgetvalue(res, 0, 8)};
    const char *pu[] = {digest, fid};
    char *rt = NULL;
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_family_insert, pf, NULL)) != 0 ||
        (rc = cc_db_query(req->db, req->pool, &identity_q_code_use, pu, NULL)) != 0 ||
        (rc = maybe_refresh(req, c, &g, NULL, &rt)) != 0)
        goto DbError;
    answer_user_tokens(req, c, &u, &g, rt, has_word(g.scope, "openid"));
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

static void grant_refresh_token(cc_req_t *req, const identity_client_t *c, const char **v)
{
    if (!identity_json_has(c->grant_types, "refresh_token")) {
        identity_oauth_error(req, CC_ERR_UNAUTHORIZED_CLIENT, "unauthorized_client",
                             "This client may not use the refresh_token grant.", false);
        return;
    }
    if (v[T_REFRESH_TOKEN] == NULL) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                             "refresh_token is required.", false);
        return;
    }
    char digest[65];
    identity_secret_digest(v[T_REFRESH_TOKEN], digest);
    if (!identity_begin(req))
        return;
    PGresult *res = NULL;
    const char *pr[] = {digest};
    int rc = cc_db_query(req->db, req->pool, &identity_q_refresh_get, pr, &res);
    if (rc != 0)
        goto DbError;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 4), c->client_id) != 0) {
        cc_db_rollback(req->db);
        invalid_grant(req, "The refresh token is invalid.");
        return;
    }
    const char *family = cc_db_get(res, 0, 0);
    if (strcmp(PQgetvalue(res, 0, 2), "t") == 0) {
        /* a rotated token came back: it was stolen or replayed; end the whole family */
        const char *pf[] = {family, "refresh_reuse"};
        json_t *d = json_pack("{s:s, s:s}", "grant_id", family, "client_id", c->client_id);
        rc = cc_db_query(req->db, req->pool, &identity_q_family_revoke, pf, NULL);
        if (rc == 0)
            rc = identity_audit(req, "oauth.refresh_token_reused", PQgetvalue(res, 0, 5), NULL,
                                NULL, d);
        json_decref(d);
        if (rc != 0)
            goto DbError;
        if (!identity_commit(req))
            return;
        cc_log_warn("refresh token reused: grant %s revoked", family);
        invalid_grant(req, "The refresh token was already used; the grant is revoked.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 3), "t") == 0 || strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        cc_db_rollback(req->db);
        invalid_grant(req, "The refresh token is expired or revoked.");
        return;
    }
    grant_t g = {.family_id = family,
                 .session_id = cc_db_get(res, 0, 9),
                 .scope = cc_db_get(res, 0, 6),
                 .amr_json = cc_db_get(res, 0, 7),
                 .auth_time = strtoll(PQgetvalue(res, 0, 8), NULL, 10)};
    if (v[T_SCOPE]) {
        /* a narrower scope may be asked for (RFC 6749 §6), never a wider one */
        json_t *had = json_array();
        char *copy = cc_pool_strdup(req->pool, g.scope), *save = NULL;
        for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
            json_array_append_new(had, json_string(t));
        const char *narrowed = scopes_allowed(req, had, v[T_SCOPE]);
        json_decref(had);
        if (narrowed == NULL) {
            cc_db_rollback(req->db);
            identity_oauth_error(req, CC_ERR_INVALID_SCOPE, "invalid_scope",
                                 "A requested scope was not granted originally.", false);
            return;
        }
        g.scope = narrowed;
    }
    identity_user_t u;
    if (!grant_user_ok(req, PQgetvalue(res, 0, 5), &u))
        return;
    char *rt = NULL;
    grant_t keep = g;
    keep.scope = cc_db_get(res, 0, 6); /* the family keeps its scope for later refreshes */
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_refresh_rotate, pr, NULL)) != 0 ||
        (rc = maybe_refresh(req, c, &keep, digest, &rt)) != 0)
        goto DbError;
    answer_user_tokens(req, c, &u, &g, rt, false);
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

void identity_handle_token(cc_req_t *req)
{
    const char *v[T_COUNT + 1] = {0};
    if (!identity_form(req, token_params, v))
        return;
    const char *gt = v[T_GRANT_TYPE];
    if (gt == NULL) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                             "grant_type is required.", false);
        return;
    }
    bool cc = strcmp(gt, "client_credentials") == 0;
    bool code = strcmp(gt, "authorization_code") == 0;
    bool refresh = strcmp(gt, "refresh_token") == 0;
    bool exchange = strcmp(gt, TOKEN_EXCHANGE) == 0;
    if (!cc && !code && !refresh && !exchange) {
        identity_oauth_error(req, CC_ERR_UNSUPPORTED_GRANT_TYPE, "unsupported_grant_type",
                             "This grant type is not supported.", false);
        return;
    }
    identity_client_t c;
    if (!identity_client_auth(req, v[T_CLIENT_ID], v[T_CLIENT_SECRET], !cc, &c))
        return;
    if (cc)
        client_credentials(req, &c, v[T_SCOPE]);
    else if (exchange) /* "view as end-user admin": the subject token is the authority */
        identity_token_exchange(req, v[T_SUBJECT_TOKEN], v[T_SUBJECT_TOKEN_TYPE], v[T_RESOURCE],
                                v[T_REASON], v[T_READ_ONLY]);
    else if (code)
        grant_authorization_code(req, &c, v);
    else
        grant_refresh_token(req, &c, v);
}

/* ================= userinfo, revocation, introspection ================= */

static const char *claim_str(json_t *claims, const char *name)
{
    json_t *v = json_object_get(claims, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* True when the grant behind a user access token is still live. */
int identity_grant_live(cc_req_t *req, const char *grant_id, const char **client_id, bool *live)
{
    *live = false;
    if (grant_id == NULL || !cc_is_uuid(grant_id))
        return 0;
    PGresult *res = NULL;
    const char *p[] = {grant_id};
    int rc =
        cc_db_read(req->db, req->pool, &identity_system_scope, &identity_q_family_live, p, &res);
    if (rc == 0 && PQntuples(res) == 1) {
        *live = true;
        if (client_id)
            *client_id = cc_db_get(res, 0, 0);
    }
    return rc;
}

void identity_handle_userinfo(cc_req_t *req)
{
    const cc_principal_t *pr = req->principal;
    if (pr == NULL || pr->kind != CC_PRINCIPAL_USER || !cc_principal_has_scope(pr, "openid")) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "userinfo needs a user's access token with the openid scope.");
        return;
    }
    bool live = false;
    int rc = identity_grant_live(req, claim_str(pr->claims, "grant_id"), NULL, &live);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (!live) {
        cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This access token has been revoked.");
        return;
    }
    identity_user_t u;
    rc = cc_db_begin(req->db, &identity_system_scope);
    if (rc == 0)
        rc = identity_store_user_by_id(req->db, req->pool, pr->sub, &u);
    cc_db_rollback(req->db);
    if (rc == CC_ENOENT) {
        cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This user no longer exists.");
        return;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *out = json_pack("{s:s}", "sub", u.id);
    add_profile_claims(req->pool, out, &u, pr->scope);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200, out);
}

typedef struct token_info {
    bool active, refresh;
    const char *grant_id, *client_id;
    json_t *claims; /* access tokens: the verified payload (borrowed, pool) */
    int64_t exp, iat;
    const char *sub, *scope;
} token_info_t;

/* Identifies an access token (ours, verified) or a refresh token; info->active. */
static int token_lookup(cc_req_t *req, const char *token, token_info_t *ti)
{
    identity_app_t *app = app_of(req);
    memset(ti, 0, sizeof(*ti));
    if (strchr(token, '.') != NULL) {
        cc_principal_t *p = NULL;
        const char *why = NULL;
        cc_auth_opts_t opts = {
            .issuer = app->svc->issuer, .audience = app->svc->env.audience, .leeway_s = 30};
        if (cc_auth_verify(app->svc->jwks, &opts, token, req->pool, &p, &why) != 0)
            return 0;
        ti->claims = p->claims;
        ti->client_id = p->client_id;
        ti->grant_id = claim_str(p->claims, "grant_id");
        ti->exp = p->exp;
        ti->iat = p->iat;
        ti->sub = p->sub;
        ti->scope = p->scope;
        if (p->kind == CC_PRINCIPAL_API_CLIENT) {
            ti->active = true;
            return 0;
        }
        bool live = false;
        int rc = identity_grant_live(req, ti->grant_id, NULL, &live);
        ti->active = live;
        return rc;
    }
    char digest[65];
    identity_secret_digest(token, digest);
    PGresult *res = NULL;
    const char *pr[] = {digest};
    int rc =
        cc_db_read(req->db, req->pool, &identity_system_scope, &identity_q_refresh_peek, pr, &res);
    if (rc != 0 || PQntuples(res) != 1)
        return rc;
    ti->refresh = true;
    ti->grant_id = cc_db_get(res, 0, 0);
    ti->client_id = cc_db_get(res, 0, 4);
    ti->sub = cc_db_get(res, 0, 5);
    ti->scope = cc_db_get(res, 0, 6);
    ti->exp = strtoll(PQgetvalue(res, 0, 10), NULL, 10);
    ti->iat = strtoll(PQgetvalue(res, 0, 11), NULL, 10);
    ti->active = strcmp(PQgetvalue(res, 0, 1), "t") == 0 &&
                 strcmp(PQgetvalue(res, 0, 2), "f") == 0 && strcmp(PQgetvalue(res, 0, 3), "f") == 0;
    return 0;
}

static const char *const revoke_params[] = {"token", "token_type_hint", "client_id",
                                            "client_secret", NULL};

void identity_handle_revoke(cc_req_t *req)
{
    const char *v[5] = {0};
    if (!identity_form(req, revoke_params, v))
        return;
    identity_client_t c;
    if (!identity_client_auth(req, v[2], v[3], true, &c))
        return;
    if (v[0] == NULL) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request", "token is required.",
                             false);
        return;
    }
    token_info_t ti;
    int rc = token_lookup(req, v[0], &ti);
    if (rc == 0 && ti.grant_id && ti.client_id && strcmp(ti.client_id, c.client_id) == 0) {
        /* RFC 7009 §2.1: revoking a refresh token ends its grant, access tokens included */
        if ((rc = cc_db_begin(req->db, &identity_system_scope)) == 0) {
            const char *pf[] = {ti.grant_id, "revoked"};
            rc = cc_db_query(req->db, req->pool, &identity_q_family_revoke, pf, NULL);
            rc = rc == 0 ? cc_db_commit(req->db) : rc;
            cc_db_rollback(req->db);
        }
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    /* unknown, invalid or foreign tokens get the same answer (RFC 7009 §2.2) */
    token_headers(req);
    cc_res_text(req, 200, "application/json", "{}", 2);
}

void identity_handle_introspect(cc_req_t *req)
{
    identity_app_t *app = app_of(req);
    const char *v[5] = {0};
    if (!identity_form(req, revoke_params, v))
        return;
    identity_client_t c;
    if (!identity_client_auth(req, v[2], v[3], false, &c))
        return;
    if (v[0] == NULL) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request", "token is required.",
                             false);
        return;
    }
    token_info_t ti;
    int rc = token_lookup(req, v[0], &ti);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    token_headers(req);
    /* a client learns only about its own tokens */
    if (!ti.active || ti.client_id == NULL || strcmp(ti.client_id, c.client_id) != 0) {
        cc_res_json(req, 200, json_pack("{s:b}", "active", 0));
        return;
    }
    json_t *out = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "active", 1, "scope",
                            ti.scope ? ti.scope : "", "client_id", ti.client_id, "sub", ti.sub,
                            "token_type", ti.refresh ? "refresh_token" : "Bearer", "exp",
                            (json_int_t)ti.exp, "iat", (json_int_t)ti.iat, "iss", app->svc->issuer);
    if (!ti.refresh) {
        static const char *const copy[] = {"aud", "jti", "tid",       "msp", "kind",
                                           "amr", "acr", "auth_time", "nbf"};
        for (size_t i = 0; i < CC_ARRAY_SIZE(copy); i++) {
            json_t *x = json_object_get(ti.claims, copy[i]);
            if (x)
                json_object_set(out, copy[i], x);
        }
    }
    cc_res_json(req, 200, out);
}

/* ================= GET /oauth2/logout ================= */

static const char *const logout_params[] = {"id_token_hint", "post_logout_redirect_uri", "state",
                                            "client_id", NULL};

/* The aud of an ID token hint, verified with our keys (expired hints are not used). */
static const char *hint_client(cc_req_t *req, const char *hint, const char **sid)
{
    identity_app_t *app = app_of(req);
    const char *dot1 = strchr(hint, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL)
        return NULL;
    uint8_t *raw = NULL;
    size_t n = 0;
    if (cc_base64url_decode_strict(dot1 + 1, (size_t)(dot2 - dot1 - 1), &raw, &n) != 0)
        return NULL;
    json_t *payload = json_loadb((char *)raw, n, 0, NULL);
    free(raw);
    const char *aud = json_string_value(json_object_get(payload, "aud"));
    const char *client = aud ? cc_pool_strdup(req->pool, aud) : NULL;
    json_decref(payload);
    if (client == NULL)
        return NULL;
    cc_principal_t *p = NULL;
    const char *why = NULL;
    cc_auth_opts_t opts = {.issuer = app->svc->issuer, .audience = client, .leeway_s = 30};
    if (cc_auth_verify(app->svc->jwks, &opts, hint, req->pool, &p, &why) != 0)
        return NULL;
    *sid = claim_str(p->claims, "sid");
    return client;
}

void identity_handle_logout(cc_req_t *req)
{
    const char *v[4] = {0};
    for (int i = 0; i < 4; i++) {
        if (cc_query_get(req->pool, req->query, logout_params[i], &v[i]) < 0) {
            identity_html_page(req, 400, CC_ERR_INVALID_PARAMETER, "Sign-out refused",
                               "A parameter is repeated or malformed.");
            return;
        }
    }
    const char *sid = NULL;
    const char *client_id = v[0] ? hint_client(req, v[0], &sid) : NULL;
    if (v[0] && client_id == NULL) {
        identity_html_page(req, 400, CC_ERR_VALIDATION_FAILED, "Sign-out refused",
                           "The id_token_hint is not a valid ID token of this issuer.");
        return;
    }
    if (client_id && v[3] && strcmp(client_id, v[3]) != 0) {
        identity_html_page(req, 400, CC_ERR_VALIDATION_FAILED, "Sign-out refused",
                           "client_id does not match the id_token_hint.");
        return;
    }
    if (client_id == NULL)
        client_id = v[3];
    const char *target = NULL;
    if (v[1]) {
        identity_client_t c;
        int rc = client_id ? identity_store_client_by_client_id(req->db, req->pool, client_id, &c)
                           : CC_ENOENT;
        if (rc != 0 && rc != CC_ENOENT) {
            cc_res_db_error(req, rc);
            return;
        }
        if (rc != 0 || !identity_json_has(c.post_logout_uris, v[1])) {
            identity_html_page(req, 400, CC_ERR_INVALID_REDIRECT_URI, "Sign-out refused",
                               "The address to return to is not registered for this "
                               "application.");
            return;
        }
        target = v[1];
    }
    /* end the browser session and every grant made under it */
    const char *cookie = cookie_get(req, SESSION_COOKIE);
    if (!identity_begin(req))
        return;
    int rc = 0;
    PGresult *res = NULL;
    if (cookie) {
        char digest[65];
        identity_secret_digest(cookie, digest);
        const char *pc[] = {digest};
        rc = cc_db_query(req->db, req->pool, &identity_q_session_revoke, pc, &res);
        if (rc == 0 && PQntuples(res) == 1 && sid == NULL)
            sid = cc_db_get(res, 0, 0);
    }
    if (rc == 0 && sid && cc_is_uuid(sid)) {
        const char *pf[] = {sid, "logout"};
        rc = cc_db_query(req->db, req->pool, &identity_q_family_revoke_session, pf, NULL);
    }
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (!identity_commit(req))
        return;
    cc_res_header(req, "set-cookie",
                  cc_pool_printf(req->pool,
                                 SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
                                 issuer_https(req) ? "; Secure" : ""));
    if (target) {
        cc_buf_t b;
        cc_buf_init(&b);
        cc_buf_puts(&b, target);
        if (v[2]) {
            cc_buf_putc(&b, strchr(target, '?') ? '&' : '?');
            cc_buf_puts(&b, "state=");
            cc_buf_percent_encode(&b, v[2]);
        }
        identity_redirect(req, b.data);
        cc_buf_free(&b);
        return;
    }
    identity_html_page(req, 200, -1, "Signed out", "You are signed out of the console.");
}
