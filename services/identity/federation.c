/*
 * Federation (DESIGN.md, Identity): a tenant connects its own upstream OpenID Provider.
 *
 * API: GET|PUT /api/v1/tenants/{id}/identity-provider, access:manage on the tenant (a
 * tenant the caller cannot see answers 404). PUT fetches and checks the upstream's
 * discovery document before anything is written (422 with a code per misconfiguration),
 * seals the client secret (AES-256-GCM, aad "identity.identity_providers:<tenant>"),
 * never returns it, and audits the change in the same transaction.
 *
 * Sign-in: the login page asks for the username first; an e-mail address whose domain
 * belongs to an enabled provider is sent to the upstream (identity_federation_discover):
 * authorization code + PKCE (S256), state and nonce stored hashed/here, bound to the
 * browser by an HttpOnly cookie. GET /login/callback takes the login once, exchanges the
 * code, verifies the ID token (federation_rp.c), and then, in one transaction: finds or
 * provisions the user IN THAT TENANT ONLY (an address of another tenant's domain, or an
 * existing user of another tenant, is refused), updates the profile claims, reconciles
 * the grants the claim mappings give on that tenant (grants created by federation only;
 * never another tenant), and audits. A user holding MSP roles whose upstream sign-in does
 * not show MFA (amr, or an acr the tenant lists) continues to the console's own second
 * factor (/mfa, or /mfa/enroll); otherwise a session token continues the authorization
 * request.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/crypto.h"
#include "console/json.h"
#include "console/log.h"
#include "federation.h"
#include "identity.h"
#include "policy.h"
#include "store_authn.h"

#define FED_COOKIE "console_fed"
#define AUTHN_COOKIE "console_authn" /* the sign-in state cookie of pages.c */
#define LOGIN_TTL_S 600
#define LEEWAY_S 60
#define MAPPINGS_MAX 50
#define DOMAINS_MAX 20

static const cc_scope_t system_scope = {.system = true};
static const cc_stmt_t q_tenant = CC_STMT(
    "fed_tenant",
    "SELECT kind, path::text, status, msp_id FROM tenants.tenant_tree WHERE id = $1::uuid", 1);

/* ---- SQL ---- */

#define IDP_COLUMNS                                                                                \
    "issuer, client_id, client_secret_sealed, array_to_json(scopes)::text, claim_mappings::text,"  \
    " array_to_json(email_domains)::text, array_to_json(mfa_acr_values)::text, enabled,"           \
    " authorization_endpoint, token_endpoint, userinfo_endpoint, jwks_uri, token_auth_method,"     \
    " version, created_at, updated_at, msp_id"

static const cc_stmt_t q_idp_get = CC_STMT(
    "fed_idp_get", "SELECT " IDP_COLUMNS " FROM identity_providers WHERE tenant_id = $1::uuid", 1);

static const cc_stmt_t q_idp_upsert = CC_STMT(
    "fed_idp_upsert",
    "INSERT INTO identity_providers (tenant_id, msp_id, issuer, client_id, client_secret_sealed,"
    " scopes, claim_mappings, email_domains, mfa_acr_values, enabled, authorization_endpoint,"
    " token_endpoint, userinfo_endpoint, jwks_uri, token_auth_method, created_by)"
    " VALUES ($1::uuid, $2::uuid, $3, $4, $5,"
    " ARRAY(SELECT json_array_elements_text($6::json)), $7::jsonb,"
    " ARRAY(SELECT json_array_elements_text($8::json)),"
    " ARRAY(SELECT json_array_elements_text($9::json)), $10::boolean, $11, $12, $13, $14, $15, $16)"
    " ON CONFLICT (tenant_id) DO UPDATE SET issuer = EXCLUDED.issuer,"
    " client_id = EXCLUDED.client_id, client_secret_sealed = EXCLUDED.client_secret_sealed,"
    " scopes = EXCLUDED.scopes, claim_mappings = EXCLUDED.claim_mappings,"
    " email_domains = EXCLUDED.email_domains, mfa_acr_values = EXCLUDED.mfa_acr_values,"
    " enabled = EXCLUDED.enabled, authorization_endpoint = EXCLUDED.authorization_endpoint,"
    " token_endpoint = EXCLUDED.token_endpoint, userinfo_endpoint = EXCLUDED.userinfo_endpoint,"
    " jwks_uri = EXCLUDED.jwks_uri, token_auth_method = EXCLUDED.token_auth_method,"
    " updated_at = now(), version = identity_providers.version + 1"
    " RETURNING (xmax = 0)",
    16);

static const cc_stmt_t q_domains_clear = CC_STMT(
    "fed_domains_clear", "DELETE FROM identity_provider_domains WHERE tenant_id = $1::uuid", 1);
static const cc_stmt_t q_domains_add =
    CC_STMT("fed_domains_add",
            "INSERT INTO identity_provider_domains (domain, tenant_id, msp_id)"
            " SELECT d, $1::uuid, $2::uuid FROM json_array_elements_text($3::json) d",
            3);

/* the roles a mapping may name: visible to the caller, with their kind and permissions */
static const cc_stmt_t q_roles =
    CC_STMT("fed_roles",
            "SELECT id, account_kind, array_to_string(permissions, ' ') FROM roles.roles"
            " WHERE id IN (SELECT json_array_elements_text($1::json))",
            1);

static const cc_stmt_t q_hrd = CC_STMT(
    "fed_hrd",
    "SELECT p.tenant_id, p.client_id, p.authorization_endpoint, array_to_string(p.scopes, ' ')"
    " FROM identity_provider_domains d JOIN identity_providers p ON p.tenant_id = d.tenant_id"
    " WHERE d.domain = $1 AND p.enabled AND NOT EXISTS (SELECT 1 FROM users.sign_in_profiles u"
    "   WHERE lower(u.username) = lower($2) AND u.tenant_id <> p.tenant_id)",
    2);

/* a domain already used by people outside the tenant's own tree cannot be claimed */
static const cc_stmt_t q_domain_used =
    CC_STMT("fed_domain_used",
            "SELECT d FROM json_array_elements_text($1::json) d WHERE EXISTS (SELECT 1"
            " FROM users.sign_in_profiles u JOIN tenants.tenant_tree t ON t.id = u.tenant_id"
            " WHERE lower(split_part(u.username, '@', 2)) = d AND NOT t.path <@ $2::ltree) LIMIT 1",
            2);

static const cc_stmt_t q_login_insert =
    CC_STMT("fed_login_insert",
            "INSERT INTO federation_logins (state_hash, browser_hash, tenant_id, nonce,"
            " code_verifier, continue_query, login_hint, expires_at)"
            " VALUES ($1, $2, $3::uuid, $4, $5, $6, $7, now() + interval '600 seconds')",
            7);
static const cc_stmt_t q_login_prune =
    CC_STMT("fed_login_prune",
            "DELETE FROM federation_logins WHERE expires_at < now() - interval '1 hour'", 0);
static const cc_stmt_t q_login_take =
    CC_STMT("fed_login_take",
            "UPDATE federation_logins SET used_at = now()"
            " WHERE state_hash = $1 AND used_at IS NULL AND expires_at > now()"
            " RETURNING browser_hash, tenant_id, nonce, code_verifier, continue_query",
            1);

static const cc_stmt_t q_link_get =
    CC_STMT("fed_link_get",
            "SELECT user_id FROM federated_identities WHERE tenant_id = $1::uuid AND issuer = $2"
            " AND subject = $3",
            3);
static const cc_stmt_t q_link_of_user =
    CC_STMT("fed_link_of_user",
            "SELECT issuer, subject FROM federated_identities WHERE user_id = $1::uuid", 1);
static const cc_stmt_t q_link_put =
    CC_STMT("fed_link_put",
            "INSERT INTO federated_identities (tenant_id, issuer, subject, user_id, msp_id,"
            " last_sign_in_at) VALUES ($1::uuid, $2, $3, $4::uuid, $5::uuid, now())"
            " ON CONFLICT (user_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id,"
            " issuer = EXCLUDED.issuer, subject = EXCLUDED.subject, last_sign_in_at = now()",
            5);

static const cc_stmt_t q_user_insert =
    CC_STMT("fed_user_insert",
            "INSERT INTO users.users (id, tenant_id, msp_id, username, primary_email, first_name,"
            " last_name, language, status, profile, created_by, created_by_name)"
            " VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $4, $5, $6, $7, 'active', $8::jsonb,"
            " 'federation', 'Single sign-on')",
            8);
static const cc_stmt_t q_user_update =
    CC_STMT("fed_user_update",
            "UPDATE users.users SET first_name = $2, last_name = $3, updated_at = now(),"
            " version = version + 1"
            " WHERE id = $1::uuid AND (first_name <> $2 OR last_name <> $3) RETURNING id",
            3);

static const cc_stmt_t q_grants_add =
    CC_STMT("fed_grants_add",
            "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id,"
            " created_by)"
            " SELECT gen_random_uuid(), $1::uuid, 'user', r.id, $2::uuid, $3::uuid, 'federation'"
            " FROM roles.roles r WHERE r.id IN (SELECT json_array_elements_text($4::json))"
            " AND r.account_kind = $5 AND (r.builtin OR r.msp_id = $3::uuid)"
            " ON CONFLICT (principal_id, role, tenant_id) DO NOTHING RETURNING role",
            5);
static const cc_stmt_t q_grants_prune =
    CC_STMT("fed_grants_prune",
            "DELETE FROM roles.grants WHERE principal_id = $1::uuid AND tenant_id = $2::uuid"
            " AND created_by = 'federation'"
            " AND role NOT IN (SELECT json_array_elements_text($3::json)) RETURNING role",
            3);

/* ---- the stored configuration ---- */

typedef struct fed_idp {
    const char *tenant_id, *msp_id, *issuer, *client_id, *sealed, *created_at, *updated_at;
    json_t *scopes, *mappings, *domains, *acr_values;
    bool enabled;
    int version;
    fed_metadata_t md;
} fed_idp_t;

static json_t *pool_json(cc_pool_t *pool, const char *text)
{
    json_t *v = json_loads(text ? text : "null", 0, NULL);
    return cc_json_on_pool(pool, v ? v : json_array());
}

/* The provider of a tenant in scope: 0, CC_ENOENT, or a database error. */
static int idp_load(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *tenant_id,
                    fed_idp_t *o)
{
    PGresult *res = NULL;
    memset(o, 0, sizeof(*o));
    int rc = cc_db_in_tx(db)
                 ? cc_db_query(db, pool, &q_idp_get, (const char *[]){tenant_id}, &res)
                 : cc_db_read(db, pool, scope, &q_idp_get, (const char *[]){tenant_id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    o->tenant_id = tenant_id;
    o->issuer = cc_db_get(res, 0, 0);
    o->client_id = cc_db_get(res, 0, 1);
    o->sealed = cc_db_get(res, 0, 2);
    o->scopes = pool_json(pool, cc_db_get(res, 0, 3));
    o->mappings = pool_json(pool, cc_db_get(res, 0, 4));
    o->domains = pool_json(pool, cc_db_get(res, 0, 5));
    o->acr_values = pool_json(pool, cc_db_get(res, 0, 6));
    o->enabled = strcmp(PQgetvalue(res, 0, 7), "t") == 0;
    o->md.authorization_endpoint = cc_db_get(res, 0, 8);
    o->md.token_endpoint = cc_db_get(res, 0, 9);
    o->md.userinfo_endpoint = cc_db_get(res, 0, 10);
    o->md.jwks_uri = cc_db_get(res, 0, 11);
    o->md.token_auth_method = cc_db_get(res, 0, 12);
    o->version = atoi(PQgetvalue(res, 0, 13));
    o->created_at = cc_db_get_time(pool, res, 0, 14);
    o->updated_at = cc_db_get_time(pool, res, 0, 15);
    o->msp_id = cc_db_get(res, 0, 16);
    return 0;
}

static const char *redirect_uri(cc_req_t *req)
{
    identity_app_t *app = req->app;
    return cc_pool_printf(req->pool, "%s/login/callback", app->svc->issuer);
}

static json_t *idp_json(cc_req_t *req, const fed_idp_t *p)
{
    return json_pack(
        "{s:s, s:s, s:s, s:b, s:O, s:O, s:O, s:O, s:b, s:s, s:{s:s, s:s, s:s?, s:s,"
        " s:s}, s:i, s:s?, s:s?}",
        "tenant_id", p->tenant_id, "issuer", p->issuer, "client_id", p->client_id,
        "client_secret_set", 1, "scopes", p->scopes, "claim_mappings", p->mappings, "email_domains",
        p->domains, "mfa_acr_values", p->acr_values, "enabled", p->enabled, "redirect_uri",
        redirect_uri(req), "endpoints", "authorization_endpoint", p->md.authorization_endpoint,
        "token_endpoint", p->md.token_endpoint, "userinfo_endpoint", p->md.userinfo_endpoint,
        "jwks_uri", p->md.jwks_uri, "token_endpoint_auth_method", p->md.token_auth_method,
        "version", p->version, "created_at", p->created_at, "updated_at", p->updated_at);
}

/* ---- the API ---- */

typedef identity_tenant_t fed_tenant_t;

/* The tenant {id} with access:manage on it: 404 (unknown or invisible), 403 and false. */
static bool tenant_for(cc_req_t *req, fed_tenant_t *t)
{
    return identity_tenant_admin(
        req, "access:manage", "Your roles do not allow managing the sign-in of this account.", t);
}

void identity_handle_idp_get(cc_req_t *req)
{
    fed_tenant_t t;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || !tenant_for(req, &t))
        return;
    fed_idp_t p;
    int rc = idp_load(req->db, req->pool, cc_req_scope(req), t.id, &p);
    if (rc == CC_ENOENT) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "This account has no identity provider.");
        return;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    char etag[24];
    snprintf(etag, sizeof(etag), "\"%d\"", p.version);
    cc_res_header(req, "etag", etag);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200, idp_json(req, &p));
}

/* An optional array of strings: each checked by ok(); NULL when absent or wrong. */
static json_t *string_array(cc_validator_t *v, json_t *body, const char *field, bool required,
                            size_t min, size_t max, bool (*ok)(const char *))
{
    json_t *a = json_object_get(body, field);
    if (a == NULL || json_is_null(a)) {
        if (required)
            cc_v_add(v, field, "required", "%s is required.", field);
        return NULL;
    }
    if (!json_is_array(a)) {
        cc_v_add(v, field, "type", "%s must be an array of strings.", field);
        return NULL;
    }
    if (json_array_size(a) < min || json_array_size(a) > max) {
        cc_v_add(v, field, "range", "%s takes %zu to %zu items.", field, min, max);
        return NULL;
    }
    size_t i, j;
    json_t *x, *y;
    json_array_foreach(a, i, x)
    {
        const char *s = json_is_string(x) ? json_string_value(x) : NULL;
        if (s == NULL || !ok(s)) {
            cc_v_add(v, cc_pool_printf(v->pool, "%s[%zu]", field, i), s ? "format" : "type",
                     "This item is not acceptable.");
            return NULL;
        }
        json_array_foreach(a, j, y) if (j < i && json_equal(x, y))
        {
            cc_v_add(v, cc_pool_printf(v->pool, "%s[%zu]", field, i), "duplicate",
                     "This item is repeated.");
            return NULL;
        }
    }
    return a;
}

/* RFC 6749 scope-token */
static bool scope_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100)
        return false;
    for (const char *c = s; *c; c++)
        if (*c < 0x21 || *c > 0x7e || *c == '"' || *c == '\\')
            return false;
    return true;
}

/* A lower-case DNS name with at least two labels. */
static bool domain_ok(const char *s)
{
    size_t n = strlen(s), label = 0;
    if (n < 3 || n > 253 || strchr(s, '.') == NULL || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (const char *c = s; *c; c++) {
        if (*c == '.') {
            if (label == 0 || c[-1] == '-')
                return false;
            label = 0;
        } else if ((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
                   (*c == '-' && label > 0)) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static bool acr_ok(const char *s)
{
    return *s != '\0' && strlen(s) <= 255 && !cc_has_control(s, strlen(s));
}

/* claim_mappings: [{claim, value, role}]; the roles checked later against the catalogue. */
static json_t *mappings_valid(cc_validator_t *v, json_t *body)
{
    json_t *a = json_object_get(body, "claim_mappings");
    if (a == NULL || json_is_null(a))
        return cc_json_on_pool(v->pool, json_array());
    if (!json_is_array(a) || json_array_size(a) > MAPPINGS_MAX) {
        cc_v_add(v, "claim_mappings", json_is_array(a) ? "range" : "type",
                 "claim_mappings is an array of at most %d {claim, value, role} objects.",
                 MAPPINGS_MAX);
        return NULL;
    }
    size_t i;
    json_t *m;
    json_array_foreach(a, i, m)
    {
        if (!json_is_object(m)) {
            cc_v_add(v, cc_pool_printf(v->pool, "claim_mappings[%zu]", i), "type",
                     "A mapping is an object {claim, value, role}.");
            continue;
        }
        cc_v_object(v, m, (const char *const[]){"claim", "value", "role", NULL});
        cc_v_string(v, m, "claim", true, 1, 100, false);
        cc_v_string(v, m, "value", true, 1, 255, false);
        const char *role = cc_v_string(v, m, "role", true, 1, 64, false);
        if (role && strspn(role, "abcdefghijklmnopqrstuvwxyz0123456789_:-") != strlen(role))
            cc_v_add(v, cc_pool_printf(v->pool, "claim_mappings[%zu].role", i), "format",
                     "Not a role id.");
    }
    return a;
}

/*
 * The mapped roles exist, fit the tenant's kind, and hold no permission the caller lacks
 * there (no escalation through an upstream group). Answers and returns false otherwise.
 */
static bool mapped_roles_ok(cc_req_t *req, const fed_tenant_t *t, json_t *mappings)
{
    json_t *ids = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(mappings, i, m) json_array_append(ids, json_object_get(m, "role"));
    char *text = json_dumps(ids, JSON_COMPACT);
    json_decref(ids);
    PGresult *res = NULL;
    int rc =
        cc_db_read(req->db, req->pool, cc_req_scope(req), &q_roles, (const char *[]){text}, &res);
    free(text);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    json_array_foreach(mappings, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        int row = -1;
        for (int r = 0; r < PQntuples(res); r++)
            if (strcmp(PQgetvalue(res, r, 0), role) == 0)
                row = r;
        const char *field = cc_pool_printf(req->pool, "claim_mappings[%zu].role", i);
        if (row < 0) {
            cc_v_add(&v, field, "unknown_role", "No role %s.", role);
            continue;
        }
        if (strcmp(PQgetvalue(res, row, 1), t->kind) != 0) {
            cc_v_add(&v, field, "wrong_account_kind",
                     "Role %s is for %s accounts; this account is of kind %s.", role,
                     PQgetvalue(res, row, 1), t->kind);
            continue;
        }
        const char *perms = PQgetvalue(res, row, 2);
        for (const char *p = perms; *p;) {
            size_t len = strcspn(p, " ");
            const char *perm = cc_pool_strndup(req->pool, p, len);
            if (len > 0 && !cc_authz_can(req->authz, perm, t->path)) {
                cc_res_problem(req, CC_ERR_FORBIDDEN,
                               "Role %s holds %s, which you do not hold on this account; an "
                               "upstream group cannot give more than you may grant.",
                               role, perm);
                return false;
            }
            p += len;
            while (*p == ' ')
                p++;
        }
    }
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return false;
    }
    return true;
}

static bool http_upstreams_allowed(cc_req_t *req)
{
    identity_app_t *app = req->app; /* http only when the console itself runs on http */
    return strncmp(app->svc->issuer, "http:", 5) == 0;
}

void identity_handle_idp_put(cc_req_t *req)
{
    identity_app_t *app = req->app;
    json_t *body = NULL;
    fed_tenant_t t;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"issuer", "client_id", "client_secret", "scopes",
                                      "claim_mappings", "email_domains", "mfa_acr_values",
                                      "enabled", NULL});
    const char *issuer = cc_v_string(&v, body, "issuer", true, 8, 512, false);
    const char *client_id = cc_v_string(&v, body, "client_id", true, 1, 255, false);
    const char *secret = cc_v_string(&v, body, "client_secret", false, 1, 1024, false);
    json_t *scopes = string_array(&v, body, "scopes", false, 1, 20, scope_ok);
    json_t *mappings = mappings_valid(&v, body);
    json_t *domains = string_array(&v, body, "email_domains", true, 1, DOMAINS_MAX, domain_ok);
    json_t *acrs = string_array(&v, body, "mfa_acr_values", false, 0, 10, acr_ok);
    bool enabled = cc_v_bool(&v, body, "enabled", false, true);
    if (issuer && (!fed_url_acceptable(issuer) || strchr(issuer, '?') != NULL ||
                   (strncasecmp(issuer, "http:", 5) == 0 && !http_upstreams_allowed(req))))
        cc_v_add(&v, "issuer", "format",
                 "The issuer is an https URL without query or fragment (http only to a loopback "
                 "address on a development console).");
    if (scopes && !identity_json_has(scopes, "openid"))
        cc_v_add(&v, "scopes", "format", "scopes must include openid.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (!tenant_for(req, &t))
        return;
    if (strcmp(t.kind, "platform") == 0) {
        cc_res_problem(req, CC_ERR_CONFLICT,
                       "The platform's own sign-in cannot be federated; configure an MSP, "
                       "customer or direct account.");
        return;
    }
    if (strcmp(t.status, "deleted") == 0) {
        cc_res_problem(req, CC_ERR_TENANT_DELETED,
                       "The account is in the recycle bin; restore it first.");
        return;
    }
    fed_idp_t old;
    int rc = idp_load(req->db, req->pool, cc_req_scope(req), t.id, &old);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return;
    }
    bool existed = rc == 0;
    if (secret == NULL && !existed) {
        cc_v_add(&v, "client_secret", "required",
                 "client_secret is required when the provider is first configured.");
        cc_res_invalid(req, &v);
        return;
    }
    if (existed && !cc_req_if_match(req, old.version)) {
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The configuration changed since you read it; read it again.");
        return;
    }
    if (!mapped_roles_ok(req, &t, mappings))
        return;
    /* a domain whose addresses already sign in elsewhere is not this account's to claim
     * (no DNS proof of ownership yet: docs/architecture.md) */
    char *j_claim = json_dumps(domains, JSON_COMPACT);
    PGresult *used = NULL;
    rc = cc_db_read(req->db, req->pool, &system_scope, &q_domain_used,
                    (const char *[]){j_claim, t.path}, &used);
    free(j_claim);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (PQntuples(used) > 0) {
        cc_res_problem(req, CC_ERR_EMAIL_DOMAIN_TAKEN,
                       "Users of another account already sign in with addresses of %s.",
                       PQgetvalue(used, 0, 0));
        return;
    }
    /* the upstream, checked before anything is written */
    fed_metadata_t md;
    const char *why = NULL;
    int err = fed_discover(req->pool, issuer, &md, &why);
    if (err == 0 && !http_upstreams_allowed(req) &&
        (strncasecmp(md.token_endpoint, "http:", 5) == 0 ||
         strncasecmp(md.jwks_uri, "http:", 5) == 0 ||
         strncasecmp(md.authorization_endpoint, "http:", 5) == 0)) {
        err = CC_ERR_IDP_NO_CODE_FLOW;
        why = "The upstream's endpoints must be https.";
    }
    if (err != 0) {
        cc_log_info("identity provider of %s refused: %s", t.id, why);
        cc_res_problem(req, (cc_error_id_t)err, "%s", why);
        return;
    }
    char *sealed = NULL;
    if (secret) {
        char *aad = cc_aprintf("identity.identity_providers:%s", t.id);
        rc = cc_seal(&app->svc->master_key, secret, strlen(secret), aad, &sealed);
        free(aad);
        if (rc != 0) {
            cc_res_problem(req, CC_ERR_INTERNAL_ERROR, "The client secret could not be stored.");
            return;
        }
    }
    if (scopes == NULL)
        scopes = cc_json_on_pool(req->pool, json_pack("[s,s,s]", "openid", "email", "profile"));
    if (acrs == NULL)
        acrs = cc_json_on_pool(req->pool, json_array());
    /* domains are stored lower-case (domain_ok admits nothing else) */
    char *j_scopes = json_dumps(scopes, JSON_COMPACT), *j_map = json_dumps(mappings, JSON_COMPACT);
    char *j_dom = json_dumps(domains, JSON_COMPACT), *j_acr = json_dumps(acrs, JSON_COMPACT);
    const char *actor = req->principal ? req->principal->sub : NULL;
    const char *pu[] = {t.id,
                        t.msp_id,
                        issuer,
                        client_id,
                        sealed ? sealed : old.sealed,
                        j_scopes,
                        j_map,
                        j_dom,
                        j_acr,
                        enabled ? "true" : "false",
                        md.authorization_endpoint,
                        md.token_endpoint,
                        md.userinfo_endpoint,
                        md.jwks_uri,
                        md.token_auth_method,
                        actor};
    PGresult *res = NULL;
    bool taken = false;
    rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_idp_upsert, pu, &res);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_domains_clear, (const char *[]){t.id}, NULL);
    if (rc == 0) {
        rc = cc_db_query(req->db, req->pool, &q_domains_add,
                         (const char *[]){t.id, t.msp_id, j_dom}, NULL);
        taken = rc != 0 && strcmp(cc_db_sqlstate(req->db), "23505") == 0;
    }
    if (rc == 0) {
        json_t *d =
            json_pack("{s:s, s:s, s:O, s:O, s:O, s:b, s:b}", "issuer", issuer, "client_id",
                      client_id, "scopes", scopes, "claim_mappings", mappings, "email_domains",
                      domains, "enabled", enabled, "client_secret_changed", secret != NULL);
        cc_audit_t a = {.action =
                            existed ? "identity_provider.updated" : "identity_provider.created",
                        .target_type = "identity_provider",
                        .target_id = t.id,
                        .tenant_id = t.id,
                        .msp_id = t.msp_id,
                        .details = d};
        rc = cc_audit_write(req, &a);
        json_decref(d);
    }
    free(j_scopes);
    free(j_map);
    free(j_dom);
    free(j_acr);
    free(sealed);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        if (taken)
            cc_res_problem(req, CC_ERR_EMAIL_DOMAIN_TAKEN,
                           "One of these e-mail domains is already served by another account's "
                           "identity provider.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    cc_log_info("identity provider of tenant %s %s (issuer %s)", t.id,
                existed ? "updated" : "created", issuer);
    fed_idp_t now;
    if ((rc = idp_load(req->db, req->pool, cc_req_scope(req), t.id, &now)) != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    char etag[24];
    snprintf(etag, sizeof(etag), "\"%d\"", now.version);
    cc_res_header(req, "etag", etag);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, existed ? 200 : 201, idp_json(req, &now));
}

/* ---- sign-in: home-realm discovery ---- */

static const char *secure_attr(cc_req_t *req)
{
    identity_app_t *app = req->app;
    return strncmp(app->svc->issuer, "https:", 6) == 0 ? "; Secure" : "";
}

/* The lower-case domain of an e-mail address (pool), or NULL. */
static const char *email_domain(cc_pool_t *pool, const char *email)
{
    const char *at = strrchr(email, '@');
    if (at == NULL || at == email || at[1] == '\0')
        return NULL;
    char *d = cc_pool_strdup(pool, at + 1);
    for (char *c = d; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return domain_ok(d) ? d : NULL;
}

bool identity_federation_discover(cc_req_t *req, const char *login, const char *cont)
{
    const char *domain = email_domain(req->pool, login);
    if (domain == NULL)
        return false;
    PGresult *res = NULL;
    /* not for an existing user of another account: that one keeps its own sign-in */
    int rc = cc_db_read(req->db, req->pool, &system_scope, &q_hrd, (const char *[]){domain, login},
                        &res);
    if (rc != 0 || PQntuples(res) != 1) {
        if (rc != 0)
            cc_log_warn("home-realm discovery failed: %s", cc_strerror(rc));
        return false;
    }
    const char *tenant = cc_db_get(res, 0, 0), *client_id = cc_db_get(res, 0, 1);
    const char *endpoint = cc_db_get(res, 0, 2), *scope = cc_db_get(res, 0, 3);
    char state_hash[65], browser_hash[65], nonce_hash[65];
    char *state = identity_secret_new(state_hash), *browser = identity_secret_new(browser_hash);
    char *nonce = identity_secret_new(nonce_hash), *verifier = cc_token_new(32);
    uint8_t digest[32];
    cc_sha256(verifier, strlen(verifier), digest);
    char *challenge = cc_base64url_encode(digest, sizeof(digest));
    const char *pi[] = {state_hash, browser_hash, tenant, nonce, verifier, cont, login};
    rc = cc_db_begin(req->db, &system_scope);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_login_prune, NULL, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_login_insert, pi, NULL);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        identity_html_page(req, 503, CC_ERR_DATABASE_UNAVAILABLE, "Sign-in unavailable",
                           "The service is unavailable. Please try again in a moment.");
        goto Exit;
    }
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, endpoint);
    cc_buf_putc(&b, strchr(endpoint, '?') ? '&' : '?');
    cc_buf_puts(&b, "response_type=code&client_id=");
    cc_buf_percent_encode(&b, client_id);
    cc_buf_puts(&b, "&redirect_uri=");
    cc_buf_percent_encode(&b, redirect_uri(req));
    cc_buf_puts(&b, "&scope=");
    cc_buf_percent_encode(&b, scope);
    cc_buf_printf(&b, "&state=%s&nonce=%s&code_challenge=%s&code_challenge_method=S256", state,
                  nonce, challenge);
    cc_buf_puts(&b, "&login_hint=");
    cc_buf_percent_encode(&b, login);
    cc_res_header(req, "set-cookie",
                  cc_pool_printf(req->pool,
                                 FED_COOKIE "=%s; Path=/login/callback; HttpOnly; SameSite=Lax;"
                                            " Max-Age=%d%s",
                                 browser, LOGIN_TTL_S, secure_attr(req)));
    identity_see_other(req, b.data);
    cc_buf_free(&b);
    cc_log_info("sign-in of a %s address sent to the identity provider of tenant %s", domain,
                tenant);
Exit:
    free(state);
    free(browser);
    free(nonce);
    cc_wipe(verifier, strlen(verifier));
    free(verifier);
    free(challenge);
    return true;
}

/* ---- sign-in: the callback ---- */

typedef struct fed_login {
    const char *tenant_id, *nonce, *verifier, *cont;
} fed_login_t;

/* A refused sign-in: audited under the provider's tenant (best effort), then the page. */
static void refuse(cc_req_t *req, const fed_idp_t *p, int status, const char *reason,
                   const char *email, const char *message)
{
    cc_log_info("federated sign-in refused (tenant %s): %s", p ? p->tenant_id : "?", reason);
    if (p != NULL && cc_db_begin(req->db, &system_scope) == 0) {
        json_t *d = json_pack("{s:s, s:s, s:s?, s:s?}", "reason", reason, "issuer", p->issuer,
                              "email", email, "client_addr", req->client_addr);
        cc_audit_t a = {.action = "user.federated_sign_in_refused",
                        .target_type = "identity_provider",
                        .target_id = p->tenant_id,
                        .tenant_id = p->tenant_id,
                        .msp_id = p->msp_id,
                        .details = d};
        int rc = cc_audit_write(req, &a);
        json_decref(d);
        if (rc == 0)
            rc = cc_db_commit(req->db);
        if (rc != 0)
            cc_db_rollback(req->db);
    }
    identity_html_page(req, status, CC_ERR_AUTHENTICATION_FAILED, "Sign-in refused", message);
}

static const char *claim_str(json_t *c, const char *name)
{
    json_t *v = json_object_get(c, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* RFC 8176 methods: "mfa", or a knowledge factor together with a possession/inherence one;
 * or an acr the tenant declared as multi-factor. */
static bool upstream_mfa(json_t *id, json_t *acr_values)
{
    json_t *amr = json_object_get(id, "amr");
    static const char *const know[] = {"pwd", "pin", "kba"};
    static const char *const have[] = {"otp", "hwk",  "swk",  "sms",    "tel", "sc",
                                       "fpt", "face", "iris", "retina", "vbm"};
    bool k = false, h = false;
    if (json_is_array(amr)) {
        if (identity_json_has(amr, "mfa"))
            return true;
        for (size_t i = 0; i < CC_ARRAY_SIZE(know); i++)
            k = k || identity_json_has(amr, know[i]);
        for (size_t i = 0; i < CC_ARRAY_SIZE(have); i++)
            h = h || identity_json_has(amr, have[i]);
        if (k && h)
            return true;
    }
    const char *acr = claim_str(id, "acr");
    return acr && identity_json_has(acr_values, acr);
}

/* The upstream's amr (borrowed) when it is an array, else JSON null (a new reference). */
static json_t *amr_or_null(json_t *id)
{
    json_t *amr = json_object_get(id, "amr");
    return json_is_array(amr) ? amr : json_null();
}

/* The roles the mappings give for these claims (a JSON array, new reference). */
static json_t *mapped_roles(json_t *mappings, json_t *claims)
{
    json_t *roles = json_array(), *m;
    size_t i;
    json_array_foreach(mappings, i, m)
    {
        const char *claim = claim_str(m, "claim"), *want = claim_str(m, "value");
        const char *role = claim_str(m, "role");
        json_t *c = claim ? json_object_get(claims, claim) : NULL;
        bool hit = false;
        if (json_is_string(c))
            hit = strcmp(json_string_value(c), want) == 0;
        else if (json_is_array(c))
            hit = identity_json_has(c, want);
        else if (json_is_boolean(c))
            hit = strcmp(want, json_is_true(c) ? "true" : "false") == 0;
        if (hit && role && !identity_json_has(roles, role))
            json_array_append_new(roles, json_string(role));
    }
    return roles;
}

static const char *clean_name(cc_pool_t *pool, const char *s, const char *fallback)
{
    if (s == NULL || *s == '\0' || strlen(s) > 200 || cc_has_control(s, strlen(s)))
        return fallback;
    return cc_pool_strdup(pool, s);
}

/* Roles a result column lists (RETURNING role), as a JSON array (new reference). */
static json_t *roles_of(PGresult *res)
{
    json_t *a = json_array();
    for (int i = 0; res && i < PQntuples(res); i++)
        json_array_append_new(a, json_string(PQgetvalue(res, i, 0)));
    return a;
}

typedef struct fed_outcome {
    const char *user_id, *session_token, *state_token;
    bool needs_mfa, enroll;
    bool step_up; /* the relying party asked for the MFA level (acr_values) */
    const char *refusal, *refusal_msg;
} fed_outcome_t;

/*
 * The user of a verified upstream sign-in, in the open transaction: found, linked or
 * provisioned in the provider's tenant, profile and grants brought up to date, audited,
 * and the next step prepared. Returns a database error; refusals in o->refusal.
 */
static int admit(cc_req_t *req, const fed_idp_t *p, const fed_tenant_t *t, json_t *id,
                 json_t *claims, const char *email, fed_outcome_t *o)
{
    const char *sub = claim_str(id, "sub");
    PGresult *res = NULL;
    identity_user_t u;
    bool provisioned = false;
    int rc = cc_db_query(req->db, req->pool, &q_link_get,
                         (const char *[]){p->tenant_id, p->issuer, sub}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        rc = identity_store_user_by_id(req->db, req->pool, PQgetvalue(res, 0, 0), &u);
        if (rc == CC_ENOENT) {
            o->refusal = "the linked user no longer exists";
            return 0;
        }
    } else {
        rc = identity_store_user_by_username(req->db, req->pool, email, &u);
        if (rc == 0) {
            /* an existing user of this address: linked only within this tenant, and only
             * when no other upstream subject of this issuer owns it */
            PGresult *l = NULL;
            if (strcmp(u.tenant_id, p->tenant_id) != 0) {
                o->refusal = "the e-mail address belongs to a user of another account";
                return 0;
            }
            if ((rc = cc_db_query(req->db, req->pool, &q_link_of_user, (const char *[]){u.id},
                                  &l)) != 0)
                return rc;
            if (PQntuples(l) == 1 && strcmp(PQgetvalue(l, 0, 0), p->issuer) == 0) {
                o->refusal = "the user is linked to another subject of this issuer";
                return 0;
            }
        } else if (rc == CC_ENOENT) {
            char uid[37];
            cc_uuid_new(uid);
            const char *given = claim_str(claims, "given_name");
            const char *family = claim_str(claims, "family_name");
            const char *locale = claim_str(claims, "locale");
            const char *first = clean_name(req->pool, given, claim_str(claims, "name"));
            first = clean_name(req->pool, first,
                               cc_pool_strndup(req->pool, email, strcspn(email, "@")));
            const char *last = clean_name(req->pool, family, "");
            const char *lang = locale && strncmp(locale, "ja", 2) == 0 ? "ja" : "en";
            json_t *prof =
                json_pack("{s:{s:s, s:s}}", "federation", "issuer", p->issuer, "subject", sub);
            char *pj = json_dumps(prof, JSON_COMPACT);
            json_decref(prof);
            rc = cc_db_query(
                req->db, req->pool, &q_user_insert,
                (const char *[]){uid, p->tenant_id, p->msp_id, email, first, last, lang, pj}, NULL);
            free(pj);
            if (rc != 0)
                return rc;
            if ((rc = identity_store_user_by_id(req->db, req->pool, uid, &u)) != 0)
                return rc;
            provisioned = true;
        }
    }
    if (rc != 0)
        return rc;
    if (strcmp(u.tenant_id, p->tenant_id) != 0) {
        o->refusal = "the linked user belongs to another account";
        return 0;
    }
    if (strcmp(u.status, "deactivated") == 0) {
        o->refusal = "the user is deactivated";
        o->refusal_msg = "This user is deactivated; ask your administrator.";
        return 0;
    }
    o->user_id = u.id;
    /* the link, the profile claims, the mapped grants on this tenant only */
    if ((rc = cc_db_query(req->db, req->pool, &q_link_put,
                          (const char *[]){p->tenant_id, p->issuer, sub, u.id, p->msp_id}, NULL)) !=
        0)
        return rc;
    bool profile_updated = false;
    if (!provisioned) {
        const char *first = clean_name(req->pool, claim_str(claims, "given_name"), u.first_name);
        const char *last = clean_name(req->pool, claim_str(claims, "family_name"), u.last_name);
        PGresult *up = NULL;
        if ((rc = cc_db_query(req->db, req->pool, &q_user_update,
                              (const char *[]){u.id, first, last}, &up)) != 0)
            return rc;
        profile_updated = PQntuples(up) == 1;
    }
    json_t *roles = mapped_roles(p->mappings, claims);
    char *jr = json_dumps(roles, JSON_COMPACT);
    PGresult *added = NULL, *removed = NULL;
    rc = cc_db_query(req->db, req->pool, &q_grants_add,
                     (const char *[]){u.id, p->tenant_id, p->msp_id, jr, t->kind}, &added);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_grants_prune,
                         (const char *[]){u.id, p->tenant_id, jr}, &removed);
    free(jr);
    bool staff = false;
    if (rc == 0)
        rc = identity_user_msp_staff(req->db, req->pool, &u, &staff);
    if (rc != 0) {
        json_decref(roles);
        return rc;
    }
    bool up_mfa = upstream_mfa(id, p->acr_values);
    o->needs_mfa = !up_mfa && (staff || o->step_up);
    json_t *d =
        json_pack("{s:s, s:s, s:b, s:b, s:o, s:o, s:o, s:b, s:b, s:O, s:s?}", "issuer", p->issuer,
                  "subject", sub, "provisioned", provisioned, "profile_updated", profile_updated,
                  "mapped_roles", roles, "roles_added", roles_of(added), "roles_removed",
                  roles_of(removed), "upstream_mfa", up_mfa, "console_mfa_required", o->needs_mfa,
                  "upstream_amr", amr_or_null(id), "upstream_acr", claim_str(id, "acr"));
    if (provisioned)
        rc = identity_audit(req, "user.provisioned", u.id, u.tenant_id, u.msp_id, d);
    if (rc == 0)
        rc = identity_audit(req, "user.federated_sign_in", u.id, u.tenant_id, u.msp_id, d);
    json_decref(d);
    if (rc != 0)
        return rc;
    char digest[65];
    if (o->needs_mfa) {
        PGresult *f = NULL;
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_factors_active,
                              (const char *[]){u.id}, &f)) != 0)
            return rc;
        o->enroll = PQntuples(f) == 0;
        char *state = identity_secret_new(digest);
        o->state_token = cc_pool_strdup(req->pool, state);
        cc_wipe(state, strlen(state));
        free(state);
        return cc_db_query(
            req->db, req->pool, &identity_q_tx_insert,
            (const char *[]){digest, u.id, o->enroll ? IDENTITY_MFA_ENROLL : "MFA_REQUIRED", "900"},
            NULL);
    }
    char *token = identity_secret_new(digest);
    o->session_token = cc_pool_strdup(req->pool, token);
    cc_wipe(token, strlen(token));
    free(token);
    return cc_db_query(req->db, req->pool, &identity_q_session_token_insert,
                       (const char *[]){digest, u.id, up_mfa ? "{fed,mfa}" : "{fed}"}, NULL);
}

static const char *query_param(cc_req_t *req, const char *name)
{
    const char *v = NULL;
    return cc_query_get(req->pool, req->query, name, &v) == 1 ? v : NULL;
}

void identity_handle_federation_callback(cc_req_t *req)
{
    identity_app_t *app = req->app;
    const char *state = query_param(req, "state"), *code = query_param(req, "code");
    const char *browser = identity_cookie_get(req, FED_COOKIE);
    /* the binding cookie is single use whatever happens next */
    cc_res_header(req, "set-cookie",
                  cc_pool_printf(req->pool,
                                 FED_COOKIE "=; Path=/login/callback; HttpOnly; SameSite=Lax;"
                                            " Max-Age=0%s",
                                 secure_attr(req)));
    if (state == NULL || strlen(state) > 256 || browser == NULL || strlen(browser) > 256) {
        identity_html_page(req, 400, CC_ERR_STATE_TOKEN_INVALID, "Sign-in refused",
                           "This sign-in is unknown, expired or was started in another browser; "
                           "start again.");
        return;
    }
    char state_hash[65], browser_hash[65];
    identity_secret_digest(state, state_hash);
    identity_secret_digest(browser, browser_hash);
    PGresult *res = NULL;
    int rc = cc_db_begin(req->db, &system_scope);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_login_take, (const char *[]){state_hash}, &res);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (PQntuples(res) != 1 || !cc_ct_equal(PQgetvalue(res, 0, 0), browser_hash, 64)) {
        identity_html_page(req, 400, CC_ERR_STATE_TOKEN_INVALID, "Sign-in refused",
                           "This sign-in is unknown, expired, already used or was started in "
                           "another browser; start again.");
        return;
    }
    fed_login_t l = {cc_db_get(res, 0, 1), cc_db_get(res, 0, 2), cc_db_get(res, 0, 3),
                     cc_db_get(res, 0, 4)};
    fed_idp_t p;
    rc = idp_load(req->db, req->pool, &system_scope, l.tenant_id, &p);
    if (rc != 0 && rc != CC_ENOENT) {
        cc_res_db_error(req, rc);
        return;
    }
    if (rc == CC_ENOENT || !p.enabled) {
        identity_html_page(req, 400, CC_ERR_AUTHENTICATION_FAILED, "Sign-in refused",
                           "Your organization's sign-in is no longer configured.");
        return;
    }
    const char *upstream_error = query_param(req, "error");
    const char *iss = query_param(req, "iss");
    if (upstream_error != NULL || code == NULL || strlen(code) > 2048) {
        refuse(req, &p, 401,
               upstream_error && strlen(upstream_error) < 64
                   ? cc_pool_printf(req->pool, "the upstream answered error %s", upstream_error)
                   : "the upstream answered no code",
               NULL, "Your organization's sign-in did not complete.");
        return;
    }
    if (iss != NULL && strcmp(iss, p.issuer) != 0) { /* RFC 9207: a mix-up */
        refuse(req, &p, 401, "the authorization response names another issuer (iss)", NULL,
               "Your organization's sign-in answered for another issuer.");
        return;
    }
    uint8_t *secret = NULL;
    size_t slen = 0;
    char *aad = cc_aprintf("identity.identity_providers:%s", p.tenant_id);
    rc = cc_unseal(&app->svc->master_key, p.sealed ? p.sealed : "", aad, &secret, &slen);
    free(aad);
    if (rc != 0) {
        cc_log_error("client secret of the identity provider of %s cannot be unsealed: %s",
                     p.tenant_id, cc_strerror(rc));
        identity_html_page(req, 500, CC_ERR_INTERNAL_ERROR, "Sign-in unavailable",
                           "Your organization's sign-in cannot be used now.");
        return;
    }
    char *secret_str = cc_pool_strndup(req->pool, (const char *)secret, slen);
    cc_wipe(secret, slen);
    free(secret);
    fed_expect_t e = {.issuer = p.issuer,
                      .client_id = p.client_id,
                      .client_secret = secret_str,
                      .redirect_uri = redirect_uri(req),
                      .code_verifier = l.verifier,
                      .nonce = l.nonce,
                      .md = &p.md,
                      .now = (int64_t)time(NULL),
                      .leeway_s = LEEWAY_S};
    fed_tokens_t tok;
    const char *why = NULL;
    rc = fed_sign_in(req->pool, code, &e, &tok, &why);
    cc_wipe(secret_str, strlen(secret_str));
    if (rc != 0) {
        refuse(req, &p, 401, why, NULL,
               "Your organization's sign-in could not be verified; start again.");
        return;
    }
    const char *email = claim_str(tok.claims, "email");
    json_t *verified = json_object_get(tok.claims, "email_verified");
    const char *domain = email ? email_domain(req->pool, email) : NULL;
    if (email == NULL || !cc_email_valid(email) || domain == NULL) {
        refuse(req, &p, 403, "the upstream gave no usable e-mail address", email,
               "Your organization's sign-in gave no e-mail address.");
        return;
    }
    if (json_is_false(verified)) {
        refuse(req, &p, 403, "the upstream says the e-mail address is not verified", email,
               "Your e-mail address is not verified at your organization.");
        return;
    }
    if (!identity_json_has(p.domains, domain)) {
        refuse(req, &p, 403, "the e-mail address is not of a domain of this account", email,
               "Your organization's sign-in cannot be used for this e-mail address.");
        return;
    }
    char *lower = cc_pool_strdup(req->pool, email); /* usernames compare case-insensitively */
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    PGresult *tr = NULL;
    fed_tenant_t t = {.id = p.tenant_id};
    bool active = false;
    fed_outcome_t o = {0};
    const char *acr = NULL; /* a step-up request: the console's factor when upstream had none */
    o.step_up = l.cont && cc_query_get(req->pool, l.cont, "acr_values", &acr) == 1 &&
                identity_acr_wants_mfa(acr);
    rc = cc_db_begin(req->db, &system_scope);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_tenant, (const char *[]){p.tenant_id}, &tr);
    if (rc == 0 && PQntuples(tr) == 1) {
        t.kind = cc_db_get(tr, 0, 0);
        rc = identity_store_tenant_active(req->db, req->pool, p.tenant_id, &active);
    }
    if (rc == 0 && !active) {
        cc_db_rollback(req->db);
        identity_html_page(req, 403, CC_ERR_TENANT_SUSPENDED, "Sign-in refused",
                           "This account is suspended; its users cannot sign in.");
        return;
    }
    if (rc == 0)
        rc = admit(req, &p, &t, tok.id_claims, tok.claims, lower, &o);
    if (rc == 0 && o.refusal) {
        cc_db_rollback(req->db);
        refuse(req, &p, 403, o.refusal, lower,
               o.refusal_msg ? o.refusal_msg
                             : "Your organization's sign-in cannot be used for this user.");
        return;
    }
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    cc_log_info("federated sign-in of user %s (tenant %s)%s", o.user_id, p.tenant_id,
                o.needs_mfa ? ": the console's second factor follows" : "");
    const char *cont = l.cont && *l.cont ? l.cont : NULL;
    if (o.needs_mfa) {
        /* the console's own second factor, on its pages; the page is reached from this
         * site (a meta refresh), so their SameSite=Strict state cookie travels */
        cc_res_header(req, "set-cookie",
                      cc_pool_printf(req->pool,
                                     AUTHN_COOKIE
                                     "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=900%s",
                                     o.state_token, secure_attr(req)));
        cc_buf_t next;
        cc_buf_init(&next);
        cc_buf_puts(&next, o.enroll ? "/mfa/enroll?lang=en" : "/mfa?lang=en");
        if (cont) {
            cc_buf_puts(&next, "&continue=");
            cc_buf_percent_encode(&next, cont);
        }
        cc_buf_t b;
        cc_buf_init(&b);
        cc_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<meta http-equiv=\"refresh\" content=\"0;url=");
        cc_buf_html(&b, next.data);
        cc_buf_puts(&b, "\"><title>Second factor</title></head><body><main><p>Your account "
                        "also needs the console's second factor. <a id=\"next\" href=\"");
        cc_buf_html(&b, next.data);
        cc_buf_puts(&b, "\">Continue</a></p></main></body></html>\n");
        identity_page_headers(req);
        cc_res_text(req, 200, "text/html; charset=utf-8", b.data, b.len);
        cc_buf_free(&b);
        cc_buf_free(&next);
        return;
    }
    if (cont) {
        identity_see_other(req, cc_pool_printf(req->pool, "/oauth2/authorize?%s&session_token=%s",
                                               cont, o.session_token));
        return;
    }
    identity_html_page(req, 200, -1, "You are signed in", "Your account is ready.");
}
