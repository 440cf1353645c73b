/*
 * "View as end-user admin": POST /api/v1/tenants/{id}/impersonate {reason, read_only}.
 *
 * A person (never an API client, never an impersonation token: no nesting) holding
 * tenants:impersonate on a customer gets a short access token (at most 30 minutes, no
 * refresh token) that acts inside that customer as its tenant admin (tenant_monitor with
 * read_only). The token's sub is the session id and act.sub the real user (RFC 8693
 * delegation semantics), so every audit record written under it in any service names
 * both; its imp_role claim is the role the authorization module gives it
 * (common/authz.c). The session (actor, customer, reason, expiry) is recorded and
 * audited under the customer, the record naming the person (actor_name, actor_email: an
 * MSP user's id is nothing the customer's admins can look up), so they see who looked and
 * why. A
 * customer that set allow_msp_access to false refuses (403 msp_access_refused).
 */
#include <string.h>
#include <time.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/json.h"
#include "console/log.h"
#include "identity.h"

#define IMPERSONATION_MAX_S 1800

static const cc_stmt_t q_target = CC_STMT(
    "identity_imp_target",
    "SELECT kind, path::text, status, msp_id, allow_msp_access, name FROM tenants.tenant_tree"
    " WHERE id = $1::uuid",
    1);
static const cc_stmt_t q_insert = CC_STMT(
    "identity_imp_insert",
    "INSERT INTO impersonations (id, actor_id, tenant_id, msp_id, reason, read_only, expires_at,"
    " request_id) VALUES ($1, $2, $3, $4, $5, $6::boolean, to_timestamp($7::bigint), $8)",
    8);

/* Why an impersonation was refused: the catalogue error and a sentence. */
typedef struct refusal {
    cc_error_id_t id;
    const char *detail;
} refusal_t;

/*
 * The impersonation itself, for actor p with grants a (of the request, or of a subject
 * token): checks, records the session, signs the token. On success *out is the answer
 * (new reference) and 0 is returned; on a refusal *why is set and 1 returned; on a
 * database or signing failure the problem is answered and -1 returned.
 */
static int impersonate(cc_req_t *req, const cc_principal_t *p, const cc_authz_t *a, const char *id,
                       const char *reason, bool read_only, json_t **out, refusal_t *why)
{
    identity_app_t *app = req->app;
    *out = NULL;
    if (p->act_sub != NULL) {
        *why = (refusal_t){CC_ERR_FORBIDDEN,
                           "An impersonation token cannot start another impersonation."};
        return 1;
    }
    if (p->kind != CC_PRINCIPAL_USER) {
        *why = (refusal_t){CC_ERR_FORBIDDEN,
                           "Only a person can view a customer as its admin, not an API client."};
        return 1;
    }
    if (id == NULL || !cc_is_uuid(id)) {
        *why = (refusal_t){CC_ERR_NOT_FOUND, "No such tenant."};
        return 1;
    }
    PGresult *t;
    int rc =
        cc_db_read(req->db, req->pool, &identity_system_scope, &q_target, (const char *[]){id}, &t);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return -1;
    }
    const char *path = PQntuples(t) ? PQgetvalue(t, 0, 1) : NULL;
    if (path == NULL || !cc_authz_sees(a, path) ||
        (!cc_authz_can(a, "tenants:read", path) && !cc_authz_can(a, "tenants:impersonate", path))) {
        *why = (refusal_t){CC_ERR_NOT_FOUND, "No such tenant."};
        return 1;
    }
    const char *kind = PQgetvalue(t, 0, 0), *status = PQgetvalue(t, 0, 2);
    const char *msp = PQgetvalue(t, 0, 3), *name = PQgetvalue(t, 0, 5);
    if (!cc_authz_can(a, "tenants:impersonate", path))
        *why = (refusal_t){CC_ERR_FORBIDDEN,
                           "Your roles do not allow viewing this account as its admin."};
    else if (strcmp(kind, "customer") != 0)
        *why = (refusal_t){CC_ERR_CONFLICT, "Only a customer account can be viewed as its admin."};
    else if (strcmp(status, "deleted") == 0)
        *why = (refusal_t){CC_ERR_TENANT_DELETED, "The account is in the recycle bin."};
    else if (strcmp(status, "active") != 0)
        *why = (refusal_t){CC_ERR_TENANT_SUSPENDED, "The account is suspended."};
    else if (strcmp(PQgetvalue(t, 0, 4), "t") != 0)
        *why = (refusal_t){CC_ERR_MSP_ACCESS_REFUSED,
                           "The customer does not allow its MSP to view its console as its admin."};
    else
        why->detail = NULL;
    if (why->detail != NULL)
        return 1;

    time_t now = time(NULL);
    int64_t ttl = app->svc->env.access_token_ttl_s;
    if (ttl > IMPERSONATION_MAX_S)
        ttl = IMPERSONATION_MAX_S;
    char session[37], jti[37], exp[24];
    cc_uuid_new(session);
    cc_uuid_new(jti);
    snprintf(exp, sizeof(exp), "%lld", (long long)(now + ttl));
    const char *role = read_only ? "tenant_monitor" : "tenant_admin";
    json_t *amr = json_object_get(p->claims, "amr");
    json_t *claims = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:s, s:s, s:s, s:O, s:s, s:I, s:I, s:I}", "iss",
        app->svc->issuer, "aud", app->svc->env.audience, "sub", session, "kind", "user", "tid", id,
        "msp", msp, "act", "sub", p->sub, "imp_role", role, "scope", "", "client_id",
        p->client_id ? p->client_id : "", "amr", json_is_array(amr) ? amr : json_array(), "jti",
        jti, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp", (json_int_t)(now + ttl));
    json_t *actor_name = json_object_get(p->claims, "name");
    json_object_set_new(
        claims, "name",
        json_string(cc_pool_printf(
            req->pool, "%s (as admin of %s)",
            json_is_string(actor_name) ? json_string_value(actor_name) : p->sub, name)));
    char *token = NULL;
    rc = identity_sign(app, "at+jwt", claims, &token);
    json_decref(claims);
    if (rc != 0) {
        cc_res_problem(req, CC_ERR_INTERNAL_ERROR, "The token could not be issued.");
        return -1;
    }
    /* the session and its audit record, under the customer, before the token leaves; the
     * actor is p (the request's caller or the subject token's user) */
    int ret = -1;
    if (!identity_begin(req))
        goto Exit;
    rc = cc_db_query(req->db, req->pool, &q_insert,
                     (const char *[]){session, p->sub, id, msp, reason,
                                      read_only ? "true" : "false", exp, req->request_id},
                     NULL);
    if (rc == 0) {
        /* who it was, by name: the customer's admins reading their log cannot look an MSP
         * user's id up */
        json_t *email = json_object_get(p->claims, "email");
        json_t *d = json_pack(
            "{s:s, s:s, s:b, s:I, s:s, s:s?, s:s?}", "session_id", session, "reason", reason,
            "read_only", read_only, "expires_in", (json_int_t)ttl, "as_role", role, "actor_name",
            json_is_string(actor_name) ? json_string_value(actor_name) : NULL, "actor_email",
            json_is_string(email) ? json_string_value(email) : NULL);
        cc_principal_t *saved = req->principal;
        req->principal = (cc_principal_t *)p; /* the record names the real actor */
        cc_audit_t au = {.action = "tenant.impersonation_started",
                         .target_type = "tenant",
                         .target_id = id,
                         .tenant_id = id,
                         .msp_id = msp,
                         .details = d};
        rc = cc_audit_write(req, &au);
        req->principal = saved;
        json_decref(d);
    }
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        goto Exit;
    }
    if (!identity_commit(req))
        goto Exit;
    cc_log_info("impersonation %s of tenant %s started", session, id);
    *out =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:b, s:s}", "access_token", token, "token_type",
                  "Bearer", "issued_token_type", "urn:ietf:params:oauth:token-type:access_token",
                  "expires_in", (json_int_t)ttl, "session_id", session, "tenant_id", id,
                  "read_only", read_only, "acting_as", role);
    ret = 0;
Exit:
    cc_wipe(token, strlen(token));
    free(token);
    return ret;
}

void identity_handle_impersonate(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"reason", "read_only", NULL});
    const char *reason = cc_v_string(&v, body, "reason", true, 1, 500, true);
    bool read_only = cc_v_bool(&v, body, "read_only", false, false);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    json_t *out;
    refusal_t why = {0};
    int rc = impersonate(req, req->principal, req->authz, cc_req_param(req, "id"), reason,
                         read_only, &out, &why);
    if (rc == 1)
        cc_res_problem(req, why.id, "%s", why.detail);
    if (rc != 0)
        return;
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 201, out);
}

/*
 * The same through the token endpoint (RFC 8693): grant_type=urn:ietf:params:oauth:
 * grant-type:token-exchange, subject_token = the person's access token (type
 * urn:ietf:params:oauth:token-type:access_token), resource = urn:console:tenant:<id>,
 * reason (required, our extension) and optionally read_only=true. Answers in the token
 * endpoint's form; no refresh token.
 */
void identity_token_exchange(cc_req_t *req, const char *subject_token, const char *subject_type,
                             const char *resource, const char *reason, const char *read_only)
{
    identity_app_t *app = req->app;
    static const char prefix[] = "urn:console:tenant:";
    if (subject_token == NULL || subject_type == NULL ||
        strcmp(subject_type, "urn:ietf:params:oauth:token-type:access_token") != 0) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                             "subject_token and subject_token_type "
                             "(urn:ietf:params:oauth:token-type:access_token) are required.",
                             false);
        return;
    }
    if (resource == NULL || strncmp(resource, prefix, sizeof(prefix) - 1) != 0) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_target",
                             "resource must be urn:console:tenant:<customer id>.", false);
        return;
    }
    size_t rl = reason ? strlen(reason) : 0;
    if (rl == 0 || cc_utf8_length(reason, rl) > 500 || cc_has_control(reason, rl)) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                             "reason (1-500 characters) is required.", false);
        return;
    }
    if (read_only != NULL && strcmp(read_only, "true") != 0 && strcmp(read_only, "false") != 0) {
        identity_oauth_error(req, CC_ERR_VALIDATION_FAILED, "invalid_request",
                             "read_only must be true or false.", false);
        return;
    }
    cc_auth_opts_t opts = {.issuer = app->svc->issuer,
                           .audience = app->svc->env.audience,
                           .leeway_s = 30,
                           .may_fetch = false};
    cc_principal_t *p = NULL;
    const char *reason_ = NULL;
    cc_authz_t *a = NULL;
    if (cc_auth_verify(app->svc->jwks, &opts, subject_token, req->pool, &p, &reason_) != 0 ||
        cc_authz_load(req->db, req->pool, p, &a) != 0 || strcmp(a->home_status, "active") != 0) {
        identity_oauth_error(req, CC_ERR_INVALID_GRANT, "invalid_grant",
                             "The subject token is not a valid, current access token.", false);
        return;
    }
    json_t *out;
    refusal_t why = {0};
    int rc = impersonate(req, p, a, resource + sizeof(prefix) - 1, reason,
                         read_only && strcmp(read_only, "true") == 0, &out, &why);
    if (rc == 1) {
        const char *error = why.id == CC_ERR_NOT_FOUND ? "invalid_target" : "access_denied";
        identity_oauth_error(req, why.id, error, why.detail, false);
        return;
    }
    if (rc != 0)
        return;
    cc_res_header(req, "cache-control", "no-store");
    cc_res_header(req, "pragma", "no-cache");
    cc_res_json(req, 200, out);
}
