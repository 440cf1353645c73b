/* HTTP handlers of the identity service (routes in main.c). */
#include <string.h>
#include <time.h>

#include "console/crypto.h"
#include "console/json.h"
#include "console/log.h"
#include "identity.h"

static identity_app_t *app_of(cc_req_t *req)
{
    return req->app;
}

void identity_handle_discovery(cc_req_t *req)
{
    const char *iss = app_of(req)->svc->issuer;
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:[s], s:[s], s:[s], s:[s,s], s:[s], s:[s,s,s]}", "issuer", iss,
        "token_endpoint", cc_pool_printf(req->pool, "%s/oauth2/token", iss), "jwks_uri",
        cc_pool_printf(req->pool, "%s/oauth2/jwks", iss), "response_types_supported", "code",
        "subject_types_supported", "public", "id_token_signing_alg_values_supported", "ES256",
        "token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post",
        "grant_types_supported", "client_credentials", "claims_supported", "sub", "tid", "msp");
    cc_res_header(req, "cache-control", "public, max-age=300");
    cc_res_json(req, 200, doc);
}

void identity_handle_jwks(cc_req_t *req)
{
    identity_keys_t *k = &app_of(req)->keys;
    pthread_rwlock_rdlock(&k->lock);
    char *doc = cc_pool_strdup(req->pool, k->jwks_json);
    pthread_rwlock_unlock(&k->lock);
    cc_res_header(req, "cache-control", "public, max-age=300");
    cc_res_text(req, 200, "application/jwk-set+json", doc, strlen(doc));
}

/* RFC 6749 §5.2 error: {error, error_description} as application/json, plus the problem
 * members (code, request_id, …) so that the body is also a valid problem document. */
static void oauth_error(cc_req_t *req, cc_error_id_t id, const char *error, const char *desc,
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

static bool json_array_has(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    }
    return false;
}

/* Grants the requested scopes (all of the client's when none requested), or NULL. */
static const char *grant_scopes(cc_req_t *req, json_t *allowed, const char *requested)
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
            if (!json_array_has(allowed, tok))
                goto Exit;
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

static const char *token_params[] = {"grant_type", "scope", "client_id", "client_secret", NULL};

void identity_handle_token(cc_req_t *req)
{
    identity_app_t *app = app_of(req);
    const char *ct = cc_req_header(req, "content-type");
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        oauth_error(req, CC_ERR_UNSUPPORTED_MEDIA_TYPE, "invalid_request",
                    "Send the body as application/x-www-form-urlencoded.", false);
        return;
    }
    const char *body = req->body ? req->body : "";
    if (!cc_utf8_valid(body, req->body_len) || strlen(body) != req->body_len) {
        oauth_error(req, CC_ERR_INVALID_UTF8, "invalid_request",
                    "The body is not valid UTF-8 text.", false);
        return;
    }
    const char *vals[4] = {0};
    for (int i = 0; token_params[i]; i++) {
        if (cc_query_get(req->pool, body, token_params[i], &vals[i]) < 0) {
            /* repeated (RFC 6749 §3.2), a bad escape, or escaped bytes that are not UTF-8 */
            oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                        "A parameter is repeated, malformed or not valid UTF-8.", false);
            return;
        }
    }
    const char *grant_type = vals[0], *scope = vals[1];
    const char *client_id = vals[2], *client_secret = vals[3];
    const char *authz = cc_req_header(req, "authorization");
    bool basic = authz != NULL && strncasecmp(authz, "basic ", 6) == 0;
    if (basic) {
        if (client_secret != NULL) {
            oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                        "Use one client authentication method, not two.", false);
            return;
        }
        const char *bid = NULL;
        if (!parse_basic(req, authz, &bid, &client_secret) ||
            (client_id != NULL && strcmp(client_id, bid) != 0)) {
            oauth_error(req, CC_ERR_INVALID_CLIENT, "invalid_client",
                        "Client authentication failed.", true);
            return;
        }
        client_id = bid;
    }
    if (grant_type == NULL) {
        oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request", "grant_type is required.",
                    false);
        return;
    }
    if (strcmp(grant_type, "client_credentials") != 0) {
        oauth_error(req, CC_ERR_UNSUPPORTED_GRANT_TYPE, "unsupported_grant_type",
                    "This grant type is not supported.", false);
        return;
    }
    if (client_id == NULL || client_secret == NULL) {
        oauth_error(req, CC_ERR_INVALID_CLIENT, "invalid_client", "Client authentication failed.",
                    basic);
        return;
    }

    identity_client_t c;
    int rc = identity_store_client_by_client_id(req->db, req->pool, client_id, &c);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return;
    }
    /* compare a digest even for an unknown client, so timing does not tell which exist */
    char digest[65];
    cc_sha256_hex(client_secret, strlen(client_secret), digest);
    const char *expect = rc == 0 && c.secret_hash ? c.secret_hash : "";
    char padded[65];
    snprintf(padded, sizeof(padded), "%-64s", expect);
    bool secret_ok = cc_ct_equal(digest, padded, 64) && rc == 0 && c.secret_hash != NULL;
    if (!secret_ok || c.revoked || strcmp(c.kind, "confidential") != 0) {
        cc_log_info("client authentication failed for a %s client", rc == 0 ? "known" : "unknown");
        oauth_error(req, CC_ERR_INVALID_CLIENT, "invalid_client", "Client authentication failed.",
                    basic);
        return;
    }
    if (!json_array_has(c.grant_types, "client_credentials")) {
        oauth_error(req, CC_ERR_VALIDATION_FAILED, "unauthorized_client",
                    "This client may not use the client_credentials grant.", false);
        return;
    }
    const char *granted = grant_scopes(req, c.scopes, scope);
    if (granted == NULL) {
        oauth_error(req, CC_ERR_INVALID_SCOPE, "invalid_scope",
                    "A requested scope is not allowed for this client.", false);
        return;
    }

    time_t now = time(NULL);
    int64_t ttl = app->svc->env.access_token_ttl_s;
    char jti[37];
    cc_uuid_new(jti);
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss",
                  app->svc->issuer, "aud", app->svc->env.audience, "sub", c.id, "kind",
                  "api_client", "tid", c.tenant_id ? c.tenant_id : "", "msp",
                  c.msp_id ? c.msp_id : "", "client_id", c.client_id, "scope", granted, "jti", jti,
                  "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)(now + ttl));
    char *token = NULL;
    identity_keys_t *k = &app->keys;
    pthread_rwlock_rdlock(&k->lock);
    rc = cc_jwt_sign_es256(k->priv_pem, k->kid, "at+jwt", claims, &token);
    pthread_rwlock_unlock(&k->lock);
    json_decref(claims);
    if (rc != 0) {
        cc_log_error("signing an access token failed: %s", cc_strerror(rc));
        oauth_error(req, CC_ERR_INTERNAL_ERROR, "server_error", "The token could not be issued.",
                    false);
        return;
    }
    cc_res_header(req, "cache-control", "no-store");
    cc_res_header(req, "pragma", "no-cache");
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:I, s:s}", "access_token", token, "token_type", "Bearer",
                          "expires_in", (json_int_t)ttl, "scope", granted));
    cc_wipe(token, strlen(token));
    free(token);
}

static const char *claim_str(const cc_principal_t *p, const char *name)
{
    json_t *v = json_object_get(p->claims, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void identity_handle_me(cc_req_t *req)
{
    const cc_principal_t *p = req->principal;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    json_t *acting = p->act_sub ? json_pack("{s:s}", "sub", p->act_sub) : json_null();
    if (p->kind == CC_PRINCIPAL_API_CLIENT) {
        identity_client_t c;
        cc_scope_t scope = {.tenant_id = p->tenant_id, .msp_id = p->msp_id, .principal_id = p->sub};
        int rc = identity_store_client_by_id(req->db, req->pool, &scope, p->sub, &c);
        if (rc == CC_ENOENT || (rc == 0 && c.revoked)) {
            json_decref(acting);
            cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This API client no longer exists.");
            return;
        }
        if (rc != 0) {
            json_decref(acting);
            cc_res_db_error(req, rc);
            return;
        }
        json_t *grants = json_array();
        if (c.role && c.tenant_id)
            json_array_append_new(
                grants, json_pack("{s:s, s:[s]}", "role", c.role, "tenant_ids", c.tenant_id));
        cc_res_json(req, 200,
                    json_pack("{s:s, s:s, s:s?, s:s?, s:n, s:s, s:n, s:n, s:s, s:o, s:o}", "id",
                              c.id, "kind", "api_client", "tenant_id", c.tenant_id, "msp_id",
                              c.msp_id, "email", "name", c.name, "language", "time_zone",
                              "client_id", c.client_id, "grants", grants, "acting_as", acting));
        return;
    }
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:[], s:o}", "id", p->sub,
                          "kind", "user", "tenant_id", p->tenant_id, "msp_id", p->msp_id, "email",
                          claim_str(p, "email"), "name", claim_str(p, "name"), "language",
                          claim_str(p, "locale"), "time_zone", claim_str(p, "zoneinfo"), "grants",
                          "acting_as", acting));
}
