/*
 * API clients: POST, GET /api/v1/api-clients and DELETE /api/v1/api-clients/{id}.
 *
 * An API client (a billing tool, a backup agent) is a confidential OAuth client for the
 * client_credentials grant, bound to one tenant and one role. Its secret (256 bits) is
 * shown once and stored as a SHA-256 digest. Creating one grants its role: the caller
 * needs access:manage on the tenant and every permission of the role there (no
 * privilege escalation, as for grants to people). The grant itself belongs to the roles
 * schema: identity emits api_client.created / api_client.deleted in its outbox in the
 * same transaction and the roles service writes or removes the grant (its consumer,
 * services/roles/events.c), within milliseconds of the commit.
 */
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/crypto.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "identity.h"

static const cc_stmt_t q_target =
    CC_STMT("identity_ac_target",
            "SELECT t.kind, t.path::text, t.status, t.msp_id, r.account_kind, r.msp_id,"
            " array_to_string(r.permissions, ' ')"
            " FROM tenants.tenant_tree t LEFT JOIN roles.roles r ON r.id = $2"
            " WHERE t.id = $1::uuid",
            2);
static const cc_stmt_t q_insert =
    CC_STMT("identity_ac_insert",
            "INSERT INTO clients (id, client_id, name, kind, secret_hash, tenant_id, msp_id, role,"
            " scopes, grant_types, created_by) VALUES ($1, $2, $3, 'confidential', $4, $5::uuid,"
            " $6::uuid, $7, ARRAY(SELECT json_array_elements_text($8::json)),"
            " '{client_credentials}', $9)",
            9);
static const cc_stmt_t q_list = CC_STMT(
    "identity_ac_list",
    "SELECT c.id, c.client_id, c.name, c.tenant_id, c.role, array_to_json(c.scopes)::text,"
    " to_char(c.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), c.created_by,"
    " t.path::text"
    " FROM clients c JOIN tenants.tenant_tree t ON t.id = c.tenant_id"
    " WHERE c.kind = 'confidential' AND c.revoked_at IS NULL"
    " AND CASE WHEN $2 = '' THEN c.msp_id = $1::uuid ELSE c.tenant_id = $2::uuid END"
    " ORDER BY c.created_at, c.id",
    2);
static const cc_stmt_t q_tenant_path =
    CC_STMT("identity_ac_tenant_path",
            "SELECT path::text FROM tenants.tenant_tree WHERE id = NULLIF($1, '')::uuid", 1);
static const cc_stmt_t q_get = CC_STMT(
    "identity_ac_get",
    "SELECT c.id, c.tenant_id, c.msp_id, c.role, t.path::text, c.client_id, t.kind,"
    " r.account_kind FROM clients c JOIN tenants.tenant_tree t ON t.id = c.tenant_id"
    " LEFT JOIN roles.roles r ON r.id = c.role"
    " WHERE c.id = $1::uuid AND c.kind = 'confidential' AND c.revoked_at IS NULL FOR UPDATE OF c",
    1);
static const cc_stmt_t q_revoke =
    CC_STMT("identity_ac_revoke", "UPDATE clients SET revoked_at = now() WHERE id = $1::uuid", 1);

void identity_handle_api_client_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"name", "tenant_id", "role", "scopes", NULL});
    const char *name = cc_v_string(&v, body, "name", true, 1, 128, true);
    const char *tenant_id = cc_v_uuid(&v, body, "tenant_id", false);
    const char *role = cc_v_string(&v, body, "role", true, 1, 64, false);
    json_t *scopes = json_object_get(body, "scopes");
    if (scopes != NULL && (!json_is_array(scopes) || json_array_size(scopes) > 16)) {
        cc_v_add(&v, "scopes", "type", "scopes must be an array of at most 16 strings.");
    } else if (scopes != NULL) {
        size_t i;
        json_t *s;
        json_array_foreach(scopes, i, s)
        {
            const char *t = json_string_value(s);
            bool ok = t != NULL && json_string_length(s) >= 3 && json_string_length(s) <= 64;
            for (const char *c = t; ok && *c; c++)
                ok = (*c >= 'a' && *c <= 'z') || *c == ':' || *c == '_';
            if (!ok)
                cc_v_add(&v, "scopes", "format", "Each scope is like usage:write (a-z, ':', '_').");
        }
    }
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (tenant_id == NULL)
        tenant_id = req->principal->tenant_id;
    if (cc_idem_replay(req) != 0)
        return;
    PGresult *t;
    int rc = cc_db_read(req->db, req->pool, &identity_system_scope, &q_target,
                        (const char *[]){tenant_id, role}, &t);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    const char *path = PQntuples(t) ? PQgetvalue(t, 0, 1) : NULL;
    if (path == NULL || !cc_authz_sees(req->authz, path) ||
        !cc_authz_can(req->authz, "tenants:read", path)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such tenant.");
        return;
    }
    const char *kind = PQgetvalue(t, 0, 0), *msp = PQgetvalue(t, 0, 3);
    if (strcmp(PQgetvalue(t, 0, 2), "active") != 0) {
        cc_res_problem(req, CC_ERR_TENANT_SUSPENDED, "The account is not active.");
        return;
    }
    if (req->principal->act_sub != NULL ||
        !cc_authz_may_grant(req->authz, kind, cc_db_get(t, 0, 4), path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Creating API clients needs access:manage on the account (users:manage "
                       "for a customer role on a customer account).");
        return;
    }
    if (PQgetisnull(t, 0, 4) || (!PQgetisnull(t, 0, 5) && strcmp(PQgetvalue(t, 0, 5), msp) != 0)) {
        cc_v_add(&v, "role", "enum", "No role %s for this account (GET /api/v1/roles).", role);
        cc_res_invalid(req, &v);
        return;
    }
    if (strcmp(PQgetvalue(t, 0, 4), kind) != 0) {
        cc_v_add(&v, "role", "enum", "Role %s is for %s accounts; this is a %s account.", role,
                 PQgetvalue(t, 0, 4), kind);
        cc_res_invalid(req, &v);
        return;
    }
    /* no privilege escalation: the caller holds every permission of the role there */
    const char *perms = PQgetvalue(t, 0, 6);
    for (const char *p = perms; *p;) {
        size_t n = strcspn(p, " ");
        char *perm = cc_pool_strndup(req->pool, p, n);
        if (!cc_authz_can(req->authz, perm, path)) {
            cc_res_problem_ext(
                req, CC_ERR_PRIVILEGE_ESCALATION, json_pack("{s:s}", "permission", perm),
                "Role %s carries %s, which you do not hold on this account.", role, perm);
            return;
        }
        p += n;
        while (*p == ' ')
            p++;
    }

    char id[37], digest[65];
    cc_uuid_new(id);
    char *rand = cc_token_new(9);
    char *client_id = cc_pool_printf(req->pool, "cli_%s", rand);
    free(rand);
    char *secret = identity_secret_new(digest);
    char *scopes_text = json_dumps(scopes ? scopes : json_array(), JSON_COMPACT | JSON_ENCODE_ANY);
    json_t *out = NULL;
    if (!identity_begin(req))
        goto Exit;
    rc = cc_db_query(req->db, req->pool, &q_insert,
                     (const char *[]){id, client_id, name, digest, tenant_id, msp, role,
                                      scopes_text, req->principal->sub},
                     NULL);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "client_id", client_id, "role",
                           role, "tenant_id", tenant_id, "msp_id", msp);
    if (rc == 0)
        rc = cc_outbox_emit(req->db, req->pool, "api_client.created", id, ev);
    if (rc == 0) {
        cc_audit_t a = {.action = "api_client.created",
                        .target_type = "api_client",
                        .target_id = id,
                        .tenant_id = tenant_id,
                        .msp_id = msp,
                        .details = ev};
        rc = cc_audit_write(req, &a);
    }
    json_decref(ev);
    out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O, s:s}", "id", id, "client_id", client_id,
                    "client_secret", secret, "name", name, "tenant_id", tenant_id, "role", role,
                    "scopes", scopes ? scopes : json_array(), "token_endpoint", "/oauth2/token");
    const char *location = cc_pool_printf(req->pool, "/api/v1/api-clients/%s", id);
    if (rc == 0) {
        /* a replay returns the client without its secret: a secret is never stored
         * readable, not even for the replay window */
        json_t *replay = json_deep_copy(out);
        json_object_del(replay, "client_secret");
        json_object_set_new(replay, "client_secret_shown", json_string("once"));
        rc = cc_idem_remember(req, 201, replay, location, NULL);
        json_decref(replay);
    }
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        goto Exit;
    }
    if (!identity_commit(req))
        goto Exit;
    cc_res_header(req, "location", location);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 201, out);
    out = NULL;
Exit:
    json_decref(out);
    free(scopes_text);
    cc_wipe(secret, strlen(secret));
    free(secret);
}

void identity_handle_api_client_list(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"tenant_id", NULL}) != 0)
        return;
    const char *tenant_id = cc_req_query(req, "tenant_id", &failed);
    if (failed)
        return;
    if (tenant_id != NULL && !cc_is_uuid(tenant_id)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "tenant_id must be an account id.");
        return;
    }
    /* one account's clients (404 when the caller cannot see it, as every list filtered by
     * an account), or those of every account of the caller's root account that it sees */
    PGresult *res, *tenant;
    const char *pp[] = {req->principal->msp_id, tenant_id ? tenant_id : ""};
    cc_db_step_t steps[] = {{&q_tenant_path, pp + 1, &tenant}, {&q_list, pp, &res}};
    int rc = cc_db_read_many(req->db, req->pool, &identity_system_scope, steps, 2);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (tenant_id != NULL &&
        (PQntuples(tenant) == 0 || !cc_authz_sees(req->authz, PQgetvalue(tenant, 0, 0)))) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return;
    }
    json_t *items = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        const char *path = PQgetvalue(res, r, 8);
        if (!cc_authz_can(req->authz, "tenants:read", path))
            continue; /* only the clients of accounts the caller sees */
        json_t *scopes = json_loads(PQgetvalue(res, r, 5), 0, NULL);
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s?}", "id",
                                        PQgetvalue(res, r, 0), "client_id", PQgetvalue(res, r, 1),
                                        "name", PQgetvalue(res, r, 2), "tenant_id",
                                        PQgetvalue(res, r, 3), "role", PQgetvalue(res, r, 4),
                                        "scopes", scopes ? scopes : json_array(), "created_at",
                                        PQgetvalue(res, r, 6), "created_by", cc_db_get(res, r, 7)));
    }
    cc_res_json(req, 200,
                json_pack("{s:o, s:n, s:I}", "items", items, "next_cursor", "total",
                          (json_int_t)json_array_size(items)));
}

void identity_handle_api_client_delete(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    const char *id = cc_req_param(req, "id");
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such API client.");
        return;
    }
    if (!identity_begin(req))
        return;
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_get, (const char *[]){id}, &res);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    const char *path = PQntuples(res) ? PQgetvalue(res, 0, 4) : NULL;
    if (path == NULL || !cc_authz_can(req->authz, "tenants:read", path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such API client.");
        return;
    }
    if (req->principal->act_sub != NULL ||
        !cc_authz_may_grant(req->authz, PQgetvalue(res, 0, 6), cc_db_get(res, 0, 7), path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Removing API clients needs access:manage on the account (users:manage "
                       "for a customer role on a customer account).");
        return;
    }
    const char *tenant = PQgetvalue(res, 0, 1), *msp = PQgetvalue(res, 0, 2);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "client_id", PQgetvalue(res, 0, 5),
                           "tenant_id", tenant, "msp_id", msp);
    rc = cc_db_query(req->db, req->pool, &q_revoke, (const char *[]){id}, NULL);
    if (rc == 0)
        rc = cc_outbox_emit(req->db, req->pool, "api_client.deleted", id, ev);
    if (rc == 0) {
        cc_audit_t a = {.action = "api_client.deleted",
                        .target_type = "api_client",
                        .target_id = id,
                        .tenant_id = tenant,
                        .msp_id = msp,
                        .details = ev};
        rc = cc_audit_write(req, &a);
    }
    json_decref(ev);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (identity_commit(req))
        cc_res_json(req, 204, NULL);
}
