/*
 * console-roles: the role catalogue (built-in roles and custom roles per root account)
 * and the permission catalogue. Authorization itself is common/authz.c, which reads
 * grants and role permissions from this schema's published view in every service.
 *
 * Endpoints: GET /api/v1/permissions, GET and POST /api/v1/roles (here), and the grants
 * of users and the account admins of customers (grants.c).
 */
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "console/service.h"
#include "roles.h"

static const cc_stmt_t q_permissions =
    CC_STMT("roles_permissions", "SELECT id, description FROM permissions ORDER BY position", 0);
static const cc_stmt_t q_roles =
    CC_STMT("roles_list",
            "SELECT id, name, account_kind, builtin, array_to_json(permissions)::text,"
            " msp_id FROM roles WHERE ($1 = '' OR account_kind = $1)"
            " ORDER BY builtin DESC, account_kind, name",
            1);
static const cc_stmt_t q_root = CC_STMT(
    "roles_root", "SELECT kind, path::text FROM tenants.tenant_tree WHERE id = $1::uuid", 1);
static const cc_stmt_t q_insert = CC_STMT(
    "roles_insert",
    "INSERT INTO roles (id, name, account_kind, builtin, msp_id, permissions)"
    " VALUES ($1, $2, $3, false, $4::uuid, ARRAY(SELECT json_array_elements_text($5::json)))",
    5);

static json_t *role_json(const PGresult *res, int r)
{
    json_t *perms = json_loads(PQgetvalue(res, r, 4), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:s?}", "id", PQgetvalue(res, r, 0), "name",
                     PQgetvalue(res, r, 1), "account_kind", PQgetvalue(res, r, 2), "builtin",
                     strcmp(PQgetvalue(res, r, 3), "t") == 0, "permissions",
                     perms ? perms : json_array(), "msp_id", cc_db_get(res, r, 5));
}

static void handle_permissions(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_permissions, NULL, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *items = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(items, json_pack("{s:s, s:s}", "id", PQgetvalue(res, r, 0),
                                               "description", PQgetvalue(res, r, 1)));
    cc_res_json(req, 200,
                json_pack("{s:o, s:n, s:I}", "items", items, "next_cursor", "total",
                          (json_int_t)PQntuples(res)));
}

static void handle_list(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"account_kind", NULL}) != 0)
        return;
    const char *kind = cc_req_query(req, "account_kind", &failed);
    if (failed)
        return;
    if (kind != NULL && strcmp(kind, "platform") != 0 && strcmp(kind, "msp") != 0 &&
        strcmp(kind, "customer") != 0 && strcmp(kind, "direct") != 0) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "account_kind must be platform, msp, customer or direct.");
        return;
    }
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_roles,
                        (const char *[]){kind ? kind : ""}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *items = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(items, role_json(res, r));
    cc_res_json(req, 200,
                json_pack("{s:o, s:n, s:I}", "items", items, "next_cursor", "total",
                          (json_int_t)PQntuples(res)));
}

/*
 * POST /api/v1/roles {name, account_kind, permissions, msp_id?}: a custom role of a root
 * account (the caller's unless the platform names another). Needs access:manage on that
 * account, and no one defines a role with a permission they do not hold there.
 */
static void handle_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"name", "account_kind", "permissions", "msp_id", NULL});
    const char *name = cc_v_string(&v, body, "name", true, 1, 64, true);
    const char *kind = cc_v_enum(&v, body, "account_kind", true,
                                 (const char *const[]){"msp", "customer", "direct", NULL});
    const char *msp = cc_v_uuid(&v, body, "msp_id", false);
    json_t *perms = json_object_get(body, "permissions");
    if (!json_is_array(perms) || json_array_size(perms) == 0 || json_array_size(perms) > 64) {
        cc_v_add(&v, "permissions", "type",
                 "permissions must be a non-empty array of permission ids.");
    } else {
        size_t i;
        json_t *p;
        json_array_foreach(perms, i, p)
        {
            if (!json_is_string(p))
                cc_v_add(&v, "permissions", "type", "Each permission is a string.");
            for (size_t j = 0; j < i && json_is_string(p); j++)
                if (json_equal(p, json_array_get(perms, j)))
                    cc_v_add(&v, "permissions", "duplicate", "%s is listed twice.",
                             json_string_value(p));
        }
    }
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (msp == NULL)
        msp = req->principal->msp_id;
    if (cc_idem_replay(req) != 0)
        return;
    /* the root account: its kind decides which role kinds fit, its path the permission */
    const cc_scope_t system = {.system = true};
    PGresult *root, *catalogue;
    const char *rp[] = {msp};
    cc_db_step_t steps[] = {{&q_root, rp, &root}, {&q_permissions, NULL, &catalogue}};
    int rc = cc_db_read_many(req->db, req->pool, &system, steps, 2);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    size_t i;
    json_t *p;
    json_array_foreach(perms, i, p)
    {
        bool known = false;
        for (int r = 0; r < PQntuples(catalogue) && !known; r++)
            known = strcmp(PQgetvalue(catalogue, r, 0), json_string_value(p)) == 0;
        if (!known)
            cc_v_add(&v, "permissions", "enum", "%s is not a permission (GET /api/v1/permissions).",
                     json_string_value(p));
    }
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    const char *root_kind = PQntuples(root) ? PQgetvalue(root, 0, 0) : NULL;
    const char *root_path = PQntuples(root) ? PQgetvalue(root, 0, 1) : NULL;
    if (root_kind == NULL || !cc_authz_sees(req->authz, root_path)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return;
    }
    if (strcmp(root_kind, "msp") != 0 && strcmp(root_kind, "direct") != 0) {
        cc_res_problem(req, CC_ERR_VALIDATION_FAILED,
                       "Custom roles belong to an MSP or a direct account.");
        return;
    }
    if (!cc_authz_can(req->authz, "access:manage", root_path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Defining roles needs access:manage on the account.");
        return;
    }
    bool fits =
        strcmp(root_kind, "msp") == 0 ? strcmp(kind, "direct") != 0 : strcmp(kind, "direct") == 0;
    if (!fits) {
        cc_v_add(&v, "account_kind", "enum", "A %s account's roles are for %s.", root_kind,
                 strcmp(root_kind, "msp") == 0 ? "msp or customer accounts" : "direct accounts");
        cc_res_invalid(req, &v);
        return;
    }
    /* no privilege escalation: every permission must be the caller's own on the account */
    json_array_foreach(perms, i, p)
    {
        if (!cc_authz_can(req->authz, json_string_value(p), root_path)) {
            cc_res_problem_ext(req, CC_ERR_FORBIDDEN, json_pack("{s:O}", "permission", p),
                               "You cannot grant %s: you do not hold it on this account.",
                               json_string_value(p));
            return;
        }
    }
    char id[37];
    cc_uuid_new(id);
    char *perm_text = json_dumps(perms, JSON_COMPACT);
    rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_insert,
                         (const char *[]){id, name, kind, msp, perm_text}, NULL);
    free(perm_text);
    json_t *out = NULL;
    if (rc == 0) {
        out = json_pack("{s:s, s:s, s:s, s:b, s:O, s:s}", "id", id, "name", name, "account_kind",
                        kind, "builtin", 0, "permissions", perms, "msp_id", msp);
        cc_audit_t a = {.action = "role.created",
                        .target_type = "role",
                        .target_id = id,
                        .tenant_id = msp,
                        .msp_id = msp,
                        .details = out};
        rc = cc_audit_write(req, &a);
    }
    if (rc == 0)
        rc = cc_outbox_emit(req->db, req->pool, "role.created", id, out);
    const char *location = cc_pool_printf(req->pool, "/api/v1/roles/%s", id);
    if (rc == 0)
        rc = cc_idem_remember(req, 201, out, location, NULL);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        json_decref(out);
        if (rc == CC_EDB && strcmp(cc_db_sqlstate(req->db), "23505") == 0)
            cc_res_problem(req, CC_ERR_NAME_TAKEN, "The account already has a role of this name.");
        else if (rc == CC_EDB && strcmp(cc_db_sqlstate(req->db), "23514") == 0)
            cc_res_problem(req, CC_ERR_VALIDATION_FAILED,
                           "A permission is not in the catalogue (GET /api/v1/permissions).");
        else if (rc == CC_ECONFLICT)
            cc_res_problem(req, CC_ERR_CONFLICT,
                           "A request with this Idempotency-Key completed meanwhile.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    cc_res_header(req, "location", location);
    cc_res_json(req, 201, out);
}

static const cc_route_t routes[] = {
    {"GET", "/api/v1/permissions", handle_permissions, 0, 0},
    {"GET", "/api/v1/roles", handle_list, 0, 0},
    {"POST", "/api/v1/roles", handle_create, 0, 0},
    {"GET", "/api/v1/users/{id}/grants", roles_handle_user_grants_get, 0, 0},
    {"PUT", "/api/v1/users/{id}/grants", roles_handle_user_grants_put, 0, 0},
    {"GET", "/api/v1/tenants/{id}/account-admins", roles_handle_account_admins_list, 0, 0},
    {"POST", "/api/v1/tenants/{id}/account-admins", roles_handle_account_admins_add, 0, 0},
    {"DELETE", "/api/v1/tenants/{id}/account-admins/{user_id}", roles_handle_account_admins_remove,
     0, 0},
};

static cc_outbox_consumer_t *identity_events, *users_events;

static int on_start(cc_service_t *svc)
{
    int rc = cc_outbox_consumer_start(svc->env.database_url, "roles, public", "identity",
                                      "roles.api_client_grants", 10000, roles_on_identity_event,
                                      NULL, &identity_events);
    if (rc == 0)
        rc = cc_outbox_consumer_start(svc->env.database_url, "roles, public", "users",
                                      "roles.user_grants", 10000, roles_on_users_event, NULL,
                                      &users_events);
    return rc;
}

static void on_stop(cc_service_t *svc)
{
    (void)svc;
    cc_outbox_consumer_stop(identity_events);
    cc_outbox_consumer_stop(users_events);
    identity_events = users_events = NULL;
}

static const cc_service_def_t service = {
    .name = "roles",
    .schema = "roles",
    .routes = routes,
    .nroutes = CC_ARRAY_SIZE(routes),
    .on_start = on_start,
    .on_stop = on_stop,
};

int main(int argc, char **argv)
{
    return cc_service_main(&service, argc, argv);
}
