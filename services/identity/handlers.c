/* HTTP handlers of the identity service (routes in main.c). */
#include <string.h>
#include <time.h>

#include "console/authz.h"
#include "console/crypto.h"
#include "console/json.h"
#include "console/log.h"
#include "identity.h"
#include "policy.h"

static identity_app_t *app_of(cc_req_t *req)
{
    return req->app;
}

void identity_handle_discovery(cc_req_t *req)
{
    const char *iss = app_of(req)->svc->issuer;
    cc_pool_t *p = req->pool;
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[s], s:[s], s:[s,s,s,s], s:[s], s:[s], s:[s],"
        " s:[s,s,s], s:[s,s,s], s:[s,s], s:[s,s], s:[s,s,s,s], s:[s,s], s:b, s:b, s:b, s:b,"
        " s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s]}",
        "issuer", iss, "authorization_endpoint", cc_pool_printf(p, "%s/oauth2/authorize", iss),
        "token_endpoint", cc_pool_printf(p, "%s/oauth2/token", iss), "userinfo_endpoint",
        cc_pool_printf(p, "%s/oauth2/userinfo", iss), "jwks_uri",
        cc_pool_printf(p, "%s/oauth2/jwks", iss), "revocation_endpoint",
        cc_pool_printf(p, "%s/oauth2/revoke", iss), "introspection_endpoint",
        cc_pool_printf(p, "%s/oauth2/introspect", iss), "end_session_endpoint",
        cc_pool_printf(p, "%s/oauth2/logout", iss), "response_types_supported", "code",
        "response_modes_supported", "query", "grant_types_supported", "authorization_code",
        "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_types_supported", "public", "id_token_signing_alg_values_supported", "ES256",
        "code_challenge_methods_supported", "S256", "token_endpoint_auth_methods_supported",
        "client_secret_basic", "client_secret_post", "none",
        "revocation_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post",
        "none", "introspection_endpoint_auth_methods_supported", "client_secret_basic",
        "client_secret_post", "acr_values_supported", IDENTITY_ACR_MFA, IDENTITY_ACR_1FA,
        "scopes_supported", "openid", "profile", "email", "offline_access",
        "prompt_values_supported", "none", "login",
        "authorization_response_iss_parameter_supported", 1, "request_parameter_supported", 0,
        "request_uri_parameter_supported", 0, "claims_parameter_supported", 0, "claims_supported",
        "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
        "email", "email_verified", "name", "given_name", "family_name", "preferred_username",
        "locale", "zoneinfo", "tid");
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

static const char *claim_str(const cc_principal_t *p, const char *name)
{
    json_t *v = json_object_get(p->claims, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/*
 * The grants authorization evaluated for this request, one item per role with its tenants
 * ([{role, tenant_ids}], the shape of a user's roles in the users API): for a person their
 * grants, for an impersonation token the one role it acts with.
 */
static json_t *grants_of(const cc_req_t *req)
{
    json_t *out = json_array();
    const cc_authz_t *a = req->authz;
    for (size_t i = 0; a != NULL && i < a->ngrants; i++) {
        const cc_grant_t *g = &a->grants[i];
        json_t *ids = NULL;
        size_t k;
        json_t *item;
        json_array_foreach(out, k, item)
        {
            if (strcmp(json_string_value(json_object_get(item, "role")), g->role) == 0)
                ids = json_object_get(item, "tenant_ids");
        }
        if (ids == NULL) {
            ids = json_array();
            json_array_append_new(out, json_pack("{s:s, s:o}", "role", g->role, "tenant_ids", ids));
        }
        json_array_append_new(ids, json_string(g->tenant_id));
    }
    return out;
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
                json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, s:o}", "id", p->sub,
                          "kind", "user", "tenant_id", p->tenant_id, "msp_id", p->msp_id, "email",
                          claim_str(p, "email"), "name", claim_str(p, "name"), "language",
                          claim_str(p, "locale"), "time_zone", claim_str(p, "zoneinfo"), "grants",
                          grants_of(req), "acting_as", acting));
}
