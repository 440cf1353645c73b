/*
 * Grants: a role held by a user on a tenant (API.md, Users and roles).
 *
 * PUT /api/v1/users/{id}/grants [{role, tenant_ids}] replaces the user's grants on the
 * accounts the caller manages, in one transaction with its audit record (grant.changed)
 * and outbox event (grants.changed); grants on accounts the caller does not manage (or
 * cannot see) stay as they are. Each new grant is validated:
 * - the role exists (built-in, or a custom role of the user's root account: others are
 *   invisible under row-level security) and its account_kind is the account's kind
 *   (an MSP role on an MSP, customer roles on a customer, direct roles on a direct
 *   account, the platform role on the platform);
 * - the account is the user's home account or below it (a customer's user gets no grant
 *   on its MSP; the msp_account_* roles go to the MSP's own users only), visible to the
 *   caller (else 404) and not in the recycle bin;
 * - the caller manages grants there: access:manage on it (from a grant on it or above),
 *   or users:manage for customer roles on a customer account (a tenant admin manages the
 *   roles inside their customer), else 403 forbidden;
 * - no privilege escalation: the caller holds every permission of the role on that
 *   account, for a grant given and for one taken away (else 403 privilege_escalation).
 * A super admin (a role with access:manage) is regranted only from above their level
 * (403 super_admin_protected), and no account loses its last active super-admin user
 * (409 last_super_admin); both checks run under the per-account advisory lock the users
 * service takes for deactivations.
 *
 * Account admins (msp_account_admin / _monitor / _recovery) are grants of the MSP's users
 * on a customer: /api/v1/tenants/{id}/account-admins lists, adds and removes them with
 * the same rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "roles.h"

#define SUPER "ARRAY['access:manage', '*']"

static const cc_stmt_t q_user = CC_STMT(
    "grants_user",
    "SELECT u.id, u.tenant_id, u.msp_id, u.status, t.path::text, t.kind FROM users.user_directory u"
    " JOIN tenants.tenant_tree t ON t.id = u.tenant_id WHERE u.id = $1::uuid",
    1);
static const cc_stmt_t q_user_grants =
    CC_STMT("grants_of_user",
            "SELECT g.role, g.tenant_id::text, t.path::text, array_to_string(g.permissions, ' ')"
            " FROM principal_grants g JOIN tenants.tenant_tree t ON t.id = g.tenant_id"
            " WHERE g.principal_id = $1::uuid ORDER BY g.role, g.tenant_id",
            1);
static const cc_stmt_t q_tenant =
    CC_STMT("grants_tenant",
            "SELECT id, path::text, kind, status, coalesce(msp_id, id)"
            " FROM tenants.tenant_tree WHERE id = $1::uuid",
            1);
static const cc_stmt_t q_role = CC_STMT(
    "grants_role",
    "SELECT id, account_kind, array_to_string(permissions, ' '), msp_id FROM roles WHERE id = $1",
    1);
static const cc_stmt_t q_insert =
    CC_STMT("grants_insert",
            "INSERT INTO grants (id, principal_id, principal_kind, role, tenant_id, msp_id,"
            " created_by) VALUES ($1::uuid, $2::uuid, 'user', $3, $4::uuid, $5::uuid, $6)"
            " ON CONFLICT DO NOTHING",
            6);
static const cc_stmt_t q_delete = CC_STMT("grants_delete",
                                          "DELETE FROM grants WHERE principal_id = $1::uuid"
                                          " AND role = $2 AND tenant_id = $3::uuid",
                                          3);
static const cc_stmt_t q_super_lock =
    CC_STMT("grants_super_lock",
            "SELECT pg_advisory_xact_lock(hashtextextended('console.super_admins.' || $1, 0))", 1);
static const cc_stmt_t q_supers_left =
    CC_STMT("grants_supers_left",
            "SELECT count(*) FROM principal_grants o JOIN users.user_directory ou"
            " ON ou.id = o.principal_id WHERE o.tenant_id = $1::uuid AND o.permissions && " SUPER
            " AND ou.status <> 'deactivated'",
            1);
static const cc_stmt_t q_account_admins = CC_STMT(
    "grants_account_admins",
    "SELECT u.id, u.username, u.first_name, u.last_name, u.primary_email, u.status, g.role"
    " FROM grants g JOIN users.user_directory u ON u.id = g.principal_id"
    " WHERE g.tenant_id = $1::uuid AND g.role IN ('msp_account_admin', 'msp_account_monitor',"
    " 'msp_account_recovery') ORDER BY lower(u.username), g.role",
    1);

typedef struct guser {
    const char *id, *tenant_id, *msp_id, *status, *path, *kind;
} guser_t;

typedef struct gtenant {
    const char *id, *path, *kind, *status, *msp_id;
} gtenant_t;

typedef struct grole {
    const char *id, *account_kind, *perms, *msp_id;
} grole_t;

typedef struct grant_row {
    const char *role, *tenant_id, *path, *perms;
} grant_row_t;

static int read_user(cc_req_t *req, const char *id, guser_t *u)
{
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_user, (const char *[]){id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    *u = (guser_t){cc_db_get(res, 0, 0), cc_db_get(res, 0, 1), cc_db_get(res, 0, 2),
                   cc_db_get(res, 0, 3), cc_db_get(res, 0, 4), cc_db_get(res, 0, 5)};
    return 0;
}

static int read_tenant(cc_req_t *req, const char *id, gtenant_t *t)
{
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_tenant, (const char *[]){id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    *t = (gtenant_t){cc_db_get(res, 0, 0), cc_db_get(res, 0, 1), cc_db_get(res, 0, 2),
                     cc_db_get(res, 0, 3), cc_db_get(res, 0, 4)};
    return 0;
}

static int read_role(cc_req_t *req, const char *id, grole_t *r)
{
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_role, (const char *[]){id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    *r = (grole_t){cc_db_get(res, 0, 0), cc_db_get(res, 0, 1), cc_db_get(res, 0, 2),
                   cc_db_get(res, 0, 3)};
    return 0;
}

static int read_grants(cc_req_t *req, const char *user_id, grant_row_t **rows, int *n)
{
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_user_grants, (const char *[]){user_id}, &res);
    if (rc != 0)
        return rc;
    *n = PQntuples(res);
    *rows = cc_pool_alloc(req->pool, sizeof(grant_row_t) * (size_t)(*n ? *n : 1));
    for (int r = 0; r < *n; r++)
        (*rows)[r] = (grant_row_t){cc_db_get(res, r, 0), cc_db_get(res, r, 1), cc_db_get(res, r, 2),
                                   cc_db_get(res, r, 3)};
    return 0;
}

/* [{role, tenant_ids}] of rows (sorted by role, tenant). */
static json_t *grants_json(const grant_row_t *rows, int n)
{
    json_t *arr = json_array(), *cur = NULL;
    for (int i = 0; i < n; i++) {
        if (cur == NULL || strcmp(json_string_value(json_object_get(cur, "role")), rows[i].role)) {
            cur = json_pack("{s:s, s:[]}", "role", rows[i].role, "tenant_ids");
            json_array_append_new(arr, cur);
        }
        json_array_append_new(json_object_get(cur, "tenant_ids"), json_string(rows[i].tenant_id));
    }
    return arr;
}

static bool has_super(const char *perms)
{
    for (const char *p = perms; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if ((len == 1 && *p == '*') || (len == 13 && strncmp(p, "access:manage", 13) == 0))
            return true;
        p += len;
        while (*p == ' ')
            p++;
    }
    return false;
}

/* The first permission of perms (space-separated) the caller lacks on path, or NULL. */
static const char *missing_perm(cc_req_t *req, const char *perms, const char *path)
{
    for (const char *p = perms; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *perm = cc_pool_strndup(req->pool, p, len);
        if (len > 0 && !cc_authz_can(req->authz, perm, path))
            return perm;
        p += len;
        while (*p == ' ')
            p++;
    }
    return NULL;
}

static bool may_grant_on(cc_req_t *req, const char *kind, const char *role_kind, const char *path)
{
    return cc_authz_may_grant(req->authz, kind, role_kind, path);
}

static bool may_read_user(cc_req_t *req, const char *path)
{
    return cc_authz_can(req->authz, "users:manage", path) ||
           cc_authz_can(req->authz, "access:manage", path);
}

static bool path_within(const char *path, const char *root)
{
    size_t n = strlen(root);
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

static const char *user_param(cc_req_t *req, const char *name)
{
    const char *id = cc_req_param(req, name);
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
        return NULL;
    }
    return id;
}

/* The user is a super admin the caller may not regrant (not strictly below the caller). */
static bool protected_user(cc_req_t *req, const guser_t *u, const grant_row_t *rows, int n)
{
    if (strcmp(u->id, req->principal->sub) == 0)
        return false;
    for (int i = 0; i < n; i++)
        if (has_super(rows[i].perms) &&
            !cc_authz_can_above(req->authz, "users:manage", rows[i].path) &&
            !cc_authz_can_above(req->authz, "access:manage", rows[i].path))
            return true;
    return false;
}

/* Answers the problem of a failed step and rolls back. */
static void fail(cc_req_t *req, int rc)
{
    cc_db_rollback(req->db);
    if (rc == CC_ENOENT)
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
    else
        cc_res_db_error(req, rc);
}

static int record(cc_req_t *req, const guser_t *u, json_t *details, json_t *grants)
{
    cc_audit_t a = {.action = "grant.changed",
                    .target_type = "user",
                    .target_id = u->id,
                    .tenant_id = u->tenant_id,
                    .msp_id = u->msp_id,
                    .details = details};
    int rc = cc_audit_write(req, &a);
    if (rc == 0) {
        json_t *ev = json_pack("{s:s, s:s, s:s, s:O}", "user_id", u->id, "tenant_id", u->tenant_id,
                               "msp_id", u->msp_id, "grants", grants);
        rc = cc_outbox_emit(req->db, req->pool, "grants.changed", u->id, ev);
        json_decref(ev);
    }
    return rc;
}

/* ---- GET /api/v1/users/{id}/grants ---- */

void roles_handle_user_grants_get(cc_req_t *req)
{
    const char *id = user_param(req, "id");
    if (id == NULL || cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    guser_t u;
    grant_row_t *rows;
    int n;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = read_user(req, id, &u);
    if (rc == 0)
        rc = read_grants(req, id, &rows, &n);
    if (rc != 0) {
        fail(req, rc);
        return;
    }
    cc_db_rollback(req->db);
    if (!may_read_user(req, u.path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow reading this user's roles.");
        return;
    }
    cc_res_json(req, 200, grants_json(rows, n));
}

/* ---- PUT /api/v1/users/{id}/grants ---- */

typedef struct want {
    const char *role, *tenant_id;
} want_t;

static int parse_wanted(cc_req_t *req, json_t *body, want_t **out, size_t *nout)
{
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    if (!json_is_array(body) || json_array_size(body) > 100) {
        cc_v_add(&v, "", "type", "The body is an array of at most 100 {role, tenant_ids}.");
        cc_res_invalid(req, &v);
        return -1;
    }
    size_t cap = 0, n = 0, i;
    json_t *item;
    json_array_foreach(body, i, item) cap += json_array_size(json_object_get(item, "tenant_ids"));
    want_t *w = cc_pool_alloc(req->pool, sizeof(want_t) * (cap ? cap : 1));
    json_array_foreach(body, i, item)
    {
        char *f = cc_pool_printf(req->pool, "[%zu]", i);
        if (!json_is_object(item)) {
            cc_v_add(&v, f, "type", "Each grant is an object {role, tenant_ids}.");
            continue;
        }
        cc_v_object(&v, item, (const char *const[]){"role", "tenant_ids", NULL});
        const char *role = cc_v_string(&v, item, "role", true, 1, 64, false);
        json_t *ids = json_object_get(item, "tenant_ids");
        if (!json_is_array(ids) || json_array_size(ids) == 0 || json_array_size(ids) > 100) {
            cc_v_add(&v, cc_pool_printf(req->pool, "[%zu].tenant_ids", i), "type",
                     "tenant_ids is an array of 1 to 100 account ids.");
            continue;
        }
        size_t j;
        json_t *t;
        json_array_foreach(ids, j, t)
        {
            if (!json_is_string(t) || !cc_is_uuid(json_string_value(t))) {
                cc_v_add(&v, cc_pool_printf(req->pool, "[%zu].tenant_ids", i), "format",
                         "Each tenant id is a UUID.");
                continue;
            }
            if (role == NULL)
                continue;
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++)
                dup = strcmp(w[k].role, role) == 0 &&
                      strcmp(w[k].tenant_id, json_string_value(t)) == 0;
            if (dup)
                cc_v_add(&v, cc_pool_printf(req->pool, "[%zu].tenant_ids", i), "duplicate",
                         "%s on %s is listed twice.", role, json_string_value(t));
            else
                w[n++] = (want_t){role, cc_pool_strdup(req->pool, json_string_value(t))};
        }
    }
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return -1;
    }
    *out = w;
    *nout = n;
    return 0;
}

void roles_handle_user_grants_put(cc_req_t *req)
{
    const char *id = user_param(req, "id");
    json_t *body;
    if (id == NULL || cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 ||
        cc_req_json(req, &body) != 0)
        return;
    want_t *want;
    size_t nwant;
    if (parse_wanted(req, body, &want, &nwant) != 0)
        return;
    guser_t u;
    grant_row_t *cur;
    int ncur;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = read_user(req, id, &u);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_super_lock, (const char *[]){u.msp_id}, NULL);
    if (rc == 0)
        rc = read_grants(req, id, &cur, &ncur);
    if (rc != 0) {
        fail(req, rc);
        return;
    }
    if (!may_read_user(req, u.path) && !cc_authz_can(req->authz, "access:manage", u.path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing this user.");
        return;
    }
    if (protected_user(req, &u, cur, ncur)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_SUPER_ADMIN_PROTECTED,
                       "This user is a super admin of your level; only someone above the account "
                       "can change their roles.");
        return;
    }
    json_t *added = json_array(), *removed = json_array();
    cc_json_on_pool(req->pool, added);
    cc_json_on_pool(req->pool, removed);
    /* grants to add */
    for (size_t i = 0; i < nwant; i++) {
        bool have = false;
        for (int c = 0; c < ncur && !have; c++)
            have = strcmp(cur[c].role, want[i].role) == 0 &&
                   strcmp(cur[c].tenant_id, want[i].tenant_id) == 0;
        if (have)
            continue;
        gtenant_t t;
        grole_t r;
        if ((rc = read_tenant(req, want[i].tenant_id, &t)) != 0) {
            cc_db_rollback(req->db);
            if (rc == CC_ENOENT)
                cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account: %s.", want[i].tenant_id);
            else
                cc_res_db_error(req, rc);
            return;
        }
        if ((rc = read_role(req, want[i].role, &r)) != 0) {
            cc_db_rollback(req->db);
            if (rc == CC_ENOENT) {
                cc_validator_t v;
                cc_v_init(&v, req->pool);
                cc_v_add(&v, "role", "enum", "%s is not a role (GET /api/v1/roles).", want[i].role);
                cc_res_invalid(req, &v);
            } else {
                cc_res_db_error(req, rc);
            }
            return;
        }
        const char *why = NULL;
        if (r.msp_id != NULL && strcmp(r.msp_id, u.msp_id) != 0)
            why = "is a custom role of another account";
        else if (strcmp(r.account_kind, t.kind) != 0)
            why = cc_pool_printf(req->pool, "is a role for %s accounts, not for a %s account",
                                 r.account_kind, t.kind);
        else if (!path_within(t.path, u.path))
            why = "cannot be granted outside the user's own account and the accounts below it";
        else if (strncmp(r.id, "msp_account_", 12) == 0 && strcmp(u.kind, "msp") != 0)
            why = "is for the MSP's own users (account admins)";
        if (why != NULL) {
            cc_db_rollback(req->db);
            cc_validator_t v;
            cc_v_init(&v, req->pool);
            cc_v_add(&v, "role", "enum", "%s %s (account %s).", r.id, why, t.id);
            cc_res_invalid(req, &v);
            return;
        }
        if (strcmp(t.status, "deleted") == 0) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_TENANT_DELETED, "The account %s is in the recycle bin.",
                           t.id);
            return;
        }
        if (!may_grant_on(req, t.kind, r.account_kind, t.path)) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow granting roles on %s.",
                           t.id);
            return;
        }
        const char *lack = missing_perm(req, r.perms, t.path);
        if (lack != NULL) {
            cc_db_rollback(req->db);
            cc_res_problem_ext(
                req, CC_ERR_PRIVILEGE_ESCALATION,
                json_pack("{s:s, s:s, s:s}", "role", r.id, "tenant_id", t.id, "permission", lack),
                "You cannot grant %s: it carries %s, which you do not hold there.", r.id, lack);
            return;
        }
        char gid[37];
        cc_uuid_new(gid);
        rc = cc_db_query(req->db, req->pool, &q_insert,
                         (const char *[]){gid, u.id, r.id, t.id, t.msp_id, req->principal->sub},
                         NULL);
        if (rc != 0) {
            fail(req, rc);
            return;
        }
        json_array_append_new(added, json_pack("{s:s, s:s}", "role", r.id, "tenant_id", t.id));
    }
    /* grants to take away: those the caller manages that the body does not list */
    const char **check = cc_pool_alloc(req->pool, sizeof(char *) * (size_t)(ncur ? ncur : 1));
    int ncheck = 0;
    for (int c = 0; c < ncur; c++) {
        bool keep = false;
        for (size_t i = 0; i < nwant && !keep; i++)
            keep = strcmp(cur[c].role, want[i].role) == 0 &&
                   strcmp(cur[c].tenant_id, want[i].tenant_id) == 0;
        if (keep)
            continue;
        grole_t r;
        gtenant_t t;
        if ((rc = read_role(req, cur[c].role, &r)) != 0 ||
            (rc = read_tenant(req, cur[c].tenant_id, &t)) != 0) {
            fail(req, rc);
            return;
        }
        if (!may_grant_on(req, t.kind, r.account_kind, t.path))
            continue; /* not the caller's to manage: stays */
        const char *lack = missing_perm(req, cur[c].perms, cur[c].path);
        if (lack != NULL) {
            cc_db_rollback(req->db);
            cc_res_problem_ext(req, CC_ERR_PRIVILEGE_ESCALATION,
                               json_pack("{s:s, s:s, s:s}", "role", cur[c].role, "tenant_id",
                                         cur[c].tenant_id, "permission", lack),
                               "You cannot take %s away: it carries %s, which you do not hold "
                               "there.",
                               cur[c].role, lack);
            return;
        }
        rc = cc_db_query(req->db, req->pool, &q_delete,
                         (const char *[]){u.id, cur[c].role, cur[c].tenant_id}, NULL);
        if (rc != 0) {
            fail(req, rc);
            return;
        }
        if (has_super(cur[c].perms))
            check[ncheck++] = cur[c].tenant_id;
        json_array_append_new(
            removed, json_pack("{s:s, s:s}", "role", cur[c].role, "tenant_id", cur[c].tenant_id));
    }
    for (int i = 0; i < ncheck && strcmp(u.status, "deactivated") != 0; i++) {
        PGresult *res;
        rc = cc_db_query(req->db, req->pool, &q_supers_left, (const char *[]){check[i]}, &res);
        if (rc != 0) {
            fail(req, rc);
            return;
        }
        if (atoll(PQgetvalue(res, 0, 0)) == 0) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_LAST_SUPER_ADMIN,
                           "The account %s would be left without an active super admin.", check[i]);
            return;
        }
    }
    if (json_array_size(added) == 0 && json_array_size(removed) == 0) {
        cc_db_rollback(req->db);
        cc_res_json(req, 200, grants_json(cur, ncur));
        return;
    }
    grant_row_t *now;
    int nnow;
    rc = read_grants(req, id, &now, &nnow);
    json_t *out = rc == 0 ? grants_json(now, nnow) : NULL;
    if (rc == 0) {
        json_t *details = json_pack("{s:O, s:O}", "added", added, "removed", removed);
        rc = record(req, &u, details, out);
        json_decref(details);
    }
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        json_decref(out);
        fail(req, rc);
        return;
    }
    cc_authz_cache_clear();
    cc_res_json(req, 200, out);
}

/* ---- /api/v1/tenants/{id}/account-admins ---- */

static const char *const account_roles[] = {"msp_account_admin", "msp_account_monitor",
                                            "msp_account_recovery", NULL};

/* Opens the transaction, reads the customer {id}: 404 unseen or not a customer, 403. */
static bool begin_customer(cc_req_t *req, gtenant_t *t)
{
    const char *id = cc_req_param(req, "id");
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such customer account.");
        return false;
    }
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = read_tenant(req, id, t);
    if (rc == 0 && strcmp(t->kind, "customer") != 0)
        rc = CC_ENOENT;
    if (rc != 0) {
        cc_db_rollback(req->db);
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND,
                           "No such customer account (account admins are assigned on customers).");
        else
            cc_res_db_error(req, rc);
        return false;
    }
    if (!cc_authz_can(req->authz, "access:manage", t->path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Assigning account admins needs access:manage on the customer.");
        return false;
    }
    return true;
}

static json_t *admin_json(const PGresult *res, int r)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "user_id", PQgetvalue(res, r, 0),
                     "username", PQgetvalue(res, r, 1), "first_name", PQgetvalue(res, r, 2),
                     "last_name", PQgetvalue(res, r, 3), "primary_email", PQgetvalue(res, r, 4),
                     "status", PQgetvalue(res, r, 5), "role", PQgetvalue(res, r, 6));
}

void roles_handle_account_admins_list(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    gtenant_t t;
    if (!begin_customer(req, &t))
        return;
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_account_admins, (const char *[]){t.id}, &res);
    cc_db_rollback(req->db);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *items = json_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_array_append_new(items, admin_json(res, r));
    cc_res_json(req, 200,
                json_pack("{s:o, s:n, s:I}", "items", items, "next_cursor", "total",
                          (json_int_t)PQntuples(res)));
}

/* The account-admin change of user u on customer t, audited, in the open transaction. */
static int account_change(cc_req_t *req, const guser_t *u, const gtenant_t *t, const char *role,
                          bool add)
{
    json_t *details = json_pack("{s:[{s:s, s:s}], s:[]}", add ? "added" : "removed", "role", role,
                                "tenant_id", t->id, add ? "removed" : "added");
    grant_row_t *now;
    int nnow;
    int rc = read_grants(req, u->id, &now, &nnow);
    if (rc == 0) {
        json_t *grants = grants_json(now, nnow);
        rc = record(req, u, details, grants);
        json_decref(grants);
    }
    json_decref(details);
    return rc;
}

void roles_handle_account_admins_add(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"user_id", "role", NULL});
    const char *user_id = cc_v_uuid(&v, body, "user_id", true);
    const char *role = cc_v_enum(&v, body, "role", false, account_roles);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (role == NULL)
        role = "msp_account_admin";
    gtenant_t t;
    if (!begin_customer(req, &t))
        return;
    guser_t u;
    grole_t r;
    int rc = read_user(req, user_id, &u);
    if (rc == 0)
        rc = read_role(req, role, &r);
    if (rc != 0) {
        fail(req, rc);
        return;
    }
    if (strcmp(u.kind, "msp") != 0 || !path_within(t.path, u.path)) {
        cc_db_rollback(req->db);
        cc_v_add(&v, "user_id", "enum", "Account admins are users of the customer's MSP.");
        cc_res_invalid(req, &v);
        return;
    }
    const char *lack = missing_perm(req, r.perms, t.path);
    if (lack != NULL) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_PRIVILEGE_ESCALATION,
                           json_pack("{s:s, s:s}", "role", role, "permission", lack),
                           "You cannot grant %s: it carries %s, which you do not hold there.", role,
                           lack);
        return;
    }
    char gid[37];
    cc_uuid_new(gid);
    PGresult *res;
    rc = cc_db_query(req->db, req->pool, &q_insert,
                     (const char *[]){gid, u.id, role, t.id, t.msp_id, req->principal->sub}, &res);
    bool inserted = rc == 0 && strcmp(PQcmdTuples(res), "1") == 0;
    if (rc == 0 && inserted)
        rc = account_change(req, &u, &t, role, true);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_account_admins, (const char *[]){t.id}, &res);
    json_t *item = NULL;
    for (int i = 0; rc == 0 && i < PQntuples(res) && item == NULL; i++)
        if (strcmp(PQgetvalue(res, i, 0), u.id) == 0 && strcmp(PQgetvalue(res, i, 6), role) == 0)
            item = admin_json(res, i);
    if (rc == 0)
        rc = inserted ? cc_db_commit(req->db) : (cc_db_rollback(req->db), 0);
    if (rc != 0 || item == NULL) {
        json_decref(item);
        fail(req, rc ? rc : CC_EDB);
        return;
    }
    cc_authz_cache_clear();
    cc_res_json(req, inserted ? 201 : 200, item);
}

void roles_handle_account_admins_remove(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    const char *user_id = user_param(req, "user_id");
    if (user_id == NULL)
        return;
    gtenant_t t;
    if (!begin_customer(req, &t))
        return;
    guser_t u;
    grant_row_t *cur;
    int ncur, removed = 0;
    int rc = read_user(req, user_id, &u);
    if (rc == 0)
        rc = read_grants(req, user_id, &cur, &ncur);
    for (int c = 0; rc == 0 && c < ncur; c++) {
        bool account = false;
        for (int k = 0; account_roles[k]; k++)
            account = account || strcmp(cur[c].role, account_roles[k]) == 0;
        if (!account || strcmp(cur[c].tenant_id, t.id) != 0)
            continue;
        const char *lack = missing_perm(req, cur[c].perms, t.path);
        if (lack != NULL) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_PRIVILEGE_ESCALATION,
                           "You cannot take %s away: it carries %s, which you do not hold there.",
                           cur[c].role, lack);
            return;
        }
        rc = cc_db_query(req->db, req->pool, &q_delete, (const char *[]){u.id, cur[c].role, t.id},
                         NULL);
        if (rc == 0)
            rc = account_change(req, &u, &t, cur[c].role, false);
        removed++;
    }
    if (rc == 0 && removed == 0)
        rc = CC_ENOENT;
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "The user is not an account admin here.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    cc_authz_cache_clear();
    cc_res_json(req, 204, NULL);
}
