/*
 * POST /api/v1/users/{id}/unlock: an administrator ends a user's lockout (ten failed
 * sign-ins in fifteen minutes lock an account for fifteen minutes, services/identity/
 * authn.c) and clears the failure count. Needs users:manage on the user's tenant; a user
 * the caller cannot see answers 404. Audited.
 */
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/log.h"
#include "identity.h"

static const cc_stmt_t q_user_path =
    CC_STMT("identity_unlock_user",
            "SELECT u.tenant_id, u.msp_id, t.path::text FROM users.sign_in_profiles u"
            " JOIN tenants.tenant_tree t ON t.id = u.tenant_id WHERE u.id = $1::uuid",
            1);
static const cc_stmt_t q_unlock =
    CC_STMT("identity_unlock",
            "UPDATE credentials SET locked_until = NULL, failed_count = 0, failed_since = NULL,"
            " updated_at = now() WHERE user_id = $1::uuid",
            1);
static const cc_stmt_t q_was_locked = CC_STMT(
    "identity_unlock_was",
    "SELECT coalesce(locked_until > now(), false) FROM credentials WHERE user_id = $1::uuid "
    "FOR UPDATE",
    1);

bool identity_user_admin_begin(cc_req_t *req, const char *id, const char *forbidden,
                               const char **tenant_id, const char **msp_id)
{
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
        return false;
    }
    if (!identity_begin(req))
        return false;
    PGresult *u;
    int rc = cc_db_query(req->db, req->pool, &q_user_path, (const char *[]){id}, &u);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return false;
    }
    const char *path = PQntuples(u) ? PQgetvalue(u, 0, 2) : NULL;
    if (path == NULL || !cc_authz_can(req->authz, "tenants:read", path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
        return false;
    }
    if (!cc_authz_can(req->authz, "users:manage", path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "%s", forbidden);
        return false;
    }
    *tenant_id = PQgetvalue(u, 0, 0);
    *msp_id = PQgetvalue(u, 0, 1);
    return true;
}

void identity_handle_user_unlock(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    const char *id = cc_req_param(req, "id"), *tenant_id, *msp_id;
    if (!identity_user_admin_begin(req, id, "Unlocking users needs users:manage on their account.",
                                   &tenant_id, &msp_id))
        return;
    PGresult *was;
    int rc;
    if ((rc = cc_db_query(req->db, req->pool, &q_was_locked, (const char *[]){id}, &was)) != 0)
        goto DbError;
    bool locked = PQntuples(was) == 1 && strcmp(PQgetvalue(was, 0, 0), "t") == 0;
    if (PQntuples(was) == 1 &&
        (rc = cc_db_query(req->db, req->pool, &q_unlock, (const char *[]){id}, NULL)) != 0)
        goto DbError;
    json_t *d = json_pack("{s:b}", "was_locked", locked);
    rc = identity_audit(req, "user.unlocked", id, tenant_id, msp_id, d);
    json_decref(d);
    if (rc != 0)
        goto DbError;
    if (identity_commit(req))
        cc_res_json(req, 200,
                    json_pack("{s:s, s:b, s:b}", "id", id, "locked", 0, "was_locked", locked));
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}
