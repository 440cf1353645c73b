/*
 * The users API (API.md, Users and roles). Every handler: validate the query and body,
 * check the permission from the caller's grants (console/authz.h), act in one
 * transaction scoped by row-level security, and write the audit record and the outbox
 * event in that same transaction.
 *
 * Who may do what: reading and changing a user needs users:manage (or access:manage) on
 * the user's home account, from a grant on it or above it. A user whose account the
 * caller cannot see answers 404; one it sees but may not manage answers 403.
 *
 * Super admins (a role holding access:manage, or the platform's "*"): a super admin
 * cannot change, deactivate or reactivate another super admin of the same level (one
 * whose super-admin grant is not strictly below one of the caller's: 403
 * super_admin_protected), and nobody deactivates the last active user holding a
 * super-admin role on an account (409 last_super_admin), nor themselves. Such changes of
 * one root account are serialized by a transaction-level advisory lock shared with the
 * roles service's grant changes.
 */
#include <stdio.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "users.h"

/* ---- helpers ---- */

static void etag_of(const user_t *u, char etag[32])
{
    snprintf(etag, 32, "\"%d\"", u->version);
}

static void res_user(cc_req_t *req, int status, const user_t *u)
{
    char etag[32];
    etag_of(u, etag);
    cc_res_header(req, "etag", etag);
    cc_res_json(req, status, users_json(u));
}

static void res_store_error(cc_req_t *req, int rc)
{
    if (rc == CC_ENOENT)
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
    else if (rc == CC_ECONFLICT)
        cc_res_problem(req, CC_ERR_USERNAME_TAKEN,
                       "This username is taken (usernames are unique across the platform).");
    else
        cc_res_db_error(req, rc);
}

static bool may_manage(const cc_req_t *req, const char *path)
{
    return cc_authz_can(req->authz, "users:manage", path) ||
           cc_authz_can(req->authz, "access:manage", path);
}

/* The audit record and the outbox event of a change, in the open transaction. */
static int record(cc_req_t *req, const char *action, const user_t *u, json_t *details)
{
    cc_audit_t a = {
        .action = action,
        .target_type = "user",
        .target_id = u->id,
        .tenant_id = u->tenant_id,
        .msp_id = u->msp_id,
        .details = details,
    };
    int rc = cc_audit_write(req, &a);
    if (rc == 0) {
        json_t *ev =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "id", u->id, "tenant_id", u->tenant_id,
                      "msp_id", u->msp_id, "status", u->status, "username", u->p.username,
                      "primary_email", u->p.primary_email, "language", u->p.language);
        rc = cc_outbox_emit(req->db, req->pool, action, u->id, ev);
        json_decref(ev);
    }
    json_decref(details);
    return rc;
}

static int commit(cc_req_t *req)
{
    int rc = cc_db_commit(req->db);
    if (rc != 0)
        cc_res_db_error(req, rc);
    return rc;
}

static const char *path_id(cc_req_t *req)
{
    const char *id = cc_req_param(req, "id");
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
        return NULL;
    }
    return id;
}

/* An empty body, or {} (actions take no fields). Answers and returns false otherwise. */
static bool empty_body(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return false;
    if (req->body_len > 0 && strspn(req->body, " \t\r\n") != req->body_len) {
        json_t *body;
        if (cc_req_json(req, &body) != 0)
            return false;
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        if (!cc_v_object(&v, body, (const char *const[]){NULL}) || !cc_v_ok(&v)) {
            cc_res_invalid(req, &v);
            return false;
        }
    }
    return true;
}

/*
 * Whether u is a super admin the caller may not touch: u holds a super-admin role on a
 * tenant, and the caller holds users:manage / access:manage on no proper ancestor of it.
 */
static int is_protected(cc_req_t *req, const user_t *u, bool *prot)
{
    const char **paths;
    int n;
    *prot = false;
    int rc = users_super_paths(req->db, req->pool, u->id, &paths, &n);
    for (int i = 0; rc == 0 && i < n && !*prot; i++)
        *prot = !cc_authz_can_above(req->authz, "users:manage", paths[i]) &&
                !cc_authz_can_above(req->authz, "access:manage", paths[i]);
    return rc;
}

/* Opens the transaction and locks the user {id}: 404 unseen, 403 not manageable. */
static bool begin_user(cc_req_t *req, bool protect, user_t *u)
{
    const char *id = path_id(req);
    if (id == NULL)
        return false;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = users_lock(req->db, req->pool, id, u);
    if (rc != 0) {
        cc_db_rollback(req->db);
        res_store_error(req, rc);
        return false;
    }
    if (!may_manage(req, u->tenant_path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing this user.");
        return false;
    }
    bool prot = false;
    if (protect && strcmp(u->id, req->principal->sub) != 0 &&
        (rc = is_protected(req, u, &prot)) != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return false;
    }
    if (prot) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_SUPER_ADMIN_PROTECTED,
                       "This user is a super admin of your level; only someone above the "
                       "account can change them.");
        return false;
    }
    return true;
}

/* ---- create ---- */

static void handle_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, users_create_fields);
    const char *tenant_id = cc_v_uuid(&v, body, "tenant_id", false);
    user_profile_t p;
    users_validate_profile(&v, body, true, &p);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (tenant_id == NULL)
        tenant_id = req->principal->tenant_id;
    if (cc_idem_replay(req) != 0)
        return;
    user_tenant_t t;
    user_t u;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = users_tenant_tx(req->db, req->pool, tenant_id, &t);
    if (rc != 0) {
        cc_db_rollback(req->db);
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    if (!cc_authz_can(req->authz, "users:manage", t.path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow adding users here.");
        return;
    }
    if (strcmp(t.status, "deleted") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_TENANT_DELETED, "The account is in the recycle bin.");
        return;
    }
    char id[37];
    cc_uuid_new(id);
    rc = users_insert(req->db, req->pool, id, &t, &p, req->principal->sub, cc_audit_actor_name(req),
                      &u);
    if (rc == 0)
        rc = record(req, "user.created", &u,
                    json_pack("{s:s, s:s}", "username", u.p.username, "tenant_id", u.tenant_id));
    json_t *out = NULL;
    char etag[32] = "";
    const char *location = NULL;
    if (rc == 0) {
        out = users_json(&u);
        etag_of(&u, etag);
        location = cc_pool_printf(req->pool, "/api/v1/users/%s", u.id);
        rc = cc_idem_remember(req, 201, out, location, etag);
    }
    if (rc != 0) {
        cc_db_rollback(req->db);
        json_decref(out);
        if (rc == CC_ECONFLICT && cc_req_header(req, "idempotency-key") != NULL &&
            strcmp(cc_db_sqlstate(req->db), "23505") != 0)
            cc_res_problem(req, CC_ERR_CONFLICT,
                           "A request with this Idempotency-Key completed meanwhile; retry it "
                           "to get its answer.");
        else
            res_store_error(req, rc);
        return;
    }
    if (commit(req) != 0) {
        json_decref(out);
        return;
    }
    cc_res_header(req, "location", location);
    cc_res_header(req, "etag", etag);
    cc_res_json(req, 201, out);
}

/* ---- read ---- */

static void handle_get(cc_req_t *req)
{
    const char *id = path_id(req);
    if (id == NULL || cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    user_t u;
    int rc = users_get(req->db, req->pool, cc_req_scope(req), id, &u);
    if (rc != 0) {
        res_store_error(req, rc);
        return;
    }
    if (!may_manage(req, u.tenant_path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow reading this user.");
        return;
    }
    res_user(req, 200, &u);
}

static const char *const list_params[] = {"tenant_id", "q", "sort", "limit", "cursor", NULL};

static int filter_from_query(cc_req_t *req, user_filter_t *f)
{
    bool failed = false;
    memset(f, 0, sizeof(*f));
    f->tenant_id = cc_req_query(req, "tenant_id", &failed);
    const char *q = failed ? NULL : cc_req_query(req, "q", &failed);
    const char *sort = failed ? NULL : cc_req_query(req, "sort", &failed);
    if (failed)
        return -1;
    if (f->tenant_id == NULL)
        f->tenant_id = req->principal->tenant_id;
    if (!cc_is_uuid(f->tenant_id)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "tenant_id must be an account id.");
        return -1;
    }
    f->sort = USORT_NAME;
    if (sort != NULL) {
        int s = users_sort_parse(sort);
        if (s < 0) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                           "sort must be name, email, username or created_at (- for descending).");
            return -1;
        }
        f->sort = (user_sort_t)s;
    }
    if (q != NULL) {
        size_t len = strlen(q);
        while (len > 0 && (q[len - 1] == ' ' || q[len - 1] == '\t'))
            len--;
        while (*q == ' ' || *q == '\t')
            q++, len = len ? len - 1 : 0;
        if (cc_utf8_length(q, len) > 128) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "q is longer than 128 characters.");
            return -1;
        }
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f) {
                cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "q holds a control character.");
                return -1;
            }
        f->q = len ? cc_pool_strndup(req->pool, q, len) : NULL;
    }
    json_t *keys = NULL;
    if (cc_req_page(req, &f->limit, &keys) != 0)
        return -1;
    if (keys != NULL) {
        /* [sort, key, id, tenant_id]: issued by this list, for this sort and account */
        json_t *s = json_array_get(keys, 0), *k = json_array_get(keys, 1),
               *i = json_array_get(keys, 2), *t = json_array_get(keys, 3);
        bool ok = json_array_size(keys) == 4 && json_is_string(s) && json_is_string(k) &&
                  json_is_string(i) && json_is_string(t) &&
                  strcmp(json_string_value(s), users_sort_name(f->sort)) == 0 &&
                  cc_is_uuid(json_string_value(i)) &&
                  strcmp(json_string_value(t), f->tenant_id) == 0 && json_string_length(k) <= 1024;
        if (!ok) {
            cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
            return -1;
        }
        f->after_key = json_string_value(k);
        f->after_id = json_string_value(i);
    }
    return 0;
}

static void handle_list(cc_req_t *req)
{
    user_filter_t f;
    if (cc_req_query_allowed(req, list_params) != 0 || filter_from_query(req, &f) != 0)
        return;
    user_tenant_t t;
    int rc = users_tenant_get(req->db, req->pool, cc_req_scope(req), f.tenant_id, &t);
    if (rc != 0) {
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    if (!may_manage(req, t.path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Your roles do not allow listing this account's users.");
        return;
    }
    user_t *items;
    int n;
    long long total;
    if ((rc = users_list(req->db, req->pool, cc_req_scope(req), &f, &items, &n, &total)) != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *arr = json_array();
    int shown = n > f.limit ? f.limit : n;
    for (int i = 0; i < shown; i++)
        json_array_append_new(arr, users_json(&items[i]));
    json_t *next = json_null();
    if (n > f.limit) {
        const user_t *last = &items[shown - 1];
        json_t *keys = json_pack("[s, s, s, s]", users_sort_name(f.sort), last->sort_key, last->id,
                                 f.tenant_id);
        char *c = cc_cursor_encode(req->pool, keys);
        json_decref(keys);
        json_decref(next);
        next = c ? json_string(c) : json_null();
    }
    cc_res_json(req, 200,
                json_pack("{s:o, s:o, s:I}", "items", arr, "next_cursor", next, "total",
                          (json_int_t)total));
}

/* ---- changes ---- */

/* old, unless a new value was given ("" clears an optional field) */
static const char *merged(const char *old, const char *given, json_t *changed, const char *name)
{
    if (given == NULL)
        return old;
    const char *now = *given ? given : NULL;
    if ((old == NULL) != (now == NULL) || (old && strcmp(old, now) != 0))
        json_array_append_new(changed, json_string(name));
    return now;
}

static void handle_patch(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, users_patch_fields);
    user_profile_t g;
    users_validate_profile(&v, body, false, &g);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    user_t u, out;
    if (!begin_user(req, true, &u))
        return;
    if (!cc_req_if_match(req, u.version)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The user changed since you read them (ETag \"%d\"); read again.",
                       u.version);
        return;
    }
    json_t *changed = json_array();
    user_profile_t p = u.p;
#define MERGE(f) p.f = merged(u.p.f, g.f, changed, #f)
    MERGE(title);
    MERGE(first_name);
    MERGE(last_name);
    MERGE(preferred_currency);
    MERGE(language);
    MERGE(primary_email);
    MERGE(username);
    MERGE(secondary_email);
    MERGE(phone);
    MERGE(mobile);
    MERGE(street);
    MERGE(city);
    MERGE(state);
    MERGE(country);
    MERGE(postal_code);
    MERGE(time_zone);
#undef MERGE
    if (json_array_size(changed) == 0) {
        json_decref(changed);
        cc_db_rollback(req->db);
        res_user(req, 200, &u);
        return;
    }
    int rc = users_update(req->db, req->pool, u.id, &p, &out);
    if (rc == 0)
        rc = record(req, "user.updated", &out, json_pack("{s:o}", "changed", changed));
    else
        json_decref(changed);
    if (rc != 0) {
        cc_db_rollback(req->db);
        res_store_error(req, rc);
        return;
    }
    if (commit(req) == 0)
        res_user(req, 200, &out);
}

static void handle_resend(cc_req_t *req)
{
    if (!empty_body(req))
        return;
    user_t u;
    if (!begin_user(req, false, &u))
        return;
    if (strcmp(u.status, "staged") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_USER_NOT_STAGED,
                       "The user is %s: there is no activation to resend.", u.status);
        return;
    }
    int rc = record(req, "user.activation_requested", &u, NULL);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (commit(req) == 0)
        res_user(req, 202, &u);
}

static void set_status(cc_req_t *req, bool deactivate)
{
    if (!empty_body(req))
        return;
    user_t u, out;
    if (!begin_user(req, true, &u))
        return;
    bool already = (strcmp(u.status, "deactivated") == 0) == deactivate;
    if (already) { /* idempotent */
        cc_db_rollback(req->db);
        res_user(req, 200, &u);
        return;
    }
    int rc = 0;
    if (deactivate) {
        if (strcmp(u.id, req->principal->sub) == 0) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_CONFLICT, "You cannot deactivate yourself.");
            return;
        }
        bool last = false;
        rc = users_lock_super_admins(req->db, req->pool, u.msp_id);
        if (rc == 0)
            rc = users_is_last_super_admin(req->db, req->pool, u.id, &last);
        if (rc == 0 && last) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_LAST_SUPER_ADMIN,
                           "The user is the last active super admin of an account; make "
                           "someone else super admin first.");
            return;
        }
    }
    if (rc == 0)
        rc =
            users_set_status(req->db, req->pool, u.id, deactivate ? "deactivated" : "active", &out);
    if (rc == 0)
        rc = record(req, deactivate ? "user.deactivated" : "user.reactivated", &out,
                    json_pack("{s:s, s:s}", "from", u.status, "to", out.status));
    if (rc != 0) {
        cc_db_rollback(req->db);
        res_store_error(req, rc);
        return;
    }
    if (commit(req) == 0)
        res_user(req, 200, &out);
}

static void handle_deactivate(cc_req_t *req)
{
    set_status(req, true);
}

static void handle_reactivate(cc_req_t *req)
{
    set_status(req, false);
}

/*
 * DELETE /api/v1/users/{id}?confirm=<username>: the platform operator's act (the guide
 * sends MSPs to support for it; they deactivate instead). Not oneself, not the last
 * super admin of an account, and only with the user's exact username as confirmation.
 * The row goes with its audit record and a user.deleted event in one transaction;
 * identity then deletes the user's credentials, factors and links and revokes its
 * sessions, and roles removes its grants. Audit records keep the id as it was.
 */
static void handle_delete(cc_req_t *req)
{
    static const char *const allowed[] = {"confirm", NULL};
    bool failed = false;
    if (cc_req_query_allowed(req, allowed) != 0)
        return;
    const char *confirm = cc_req_query(req, "confirm", &failed);
    if (failed)
        return;
    user_t u;
    if (!begin_user(req, false, &u))
        return;
    if (!req->authz->platform || req->principal->act_sub != NULL) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Deleting a user is done by the platform operator (support); deactivate "
                       "the user instead.");
        return;
    }
    if (strcmp(u.id, req->principal->sub) == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_CONFLICT, "You cannot delete yourself.");
        return;
    }
    if (confirm == NULL || strcmp(confirm, u.p.username) != 0) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_CONFIRMATION_REQUIRED,
                           json_pack("{s:s}", "confirm_with", "the user's exact username"),
                           confirm == NULL
                               ? "Deleting a user needs ?confirm= with its exact username."
                               : "The confirmation does not match the user's username exactly.");
        return;
    }
    bool last = false;
    int rc = users_lock_super_admins(req->db, req->pool, u.msp_id);
    if (rc == 0)
        rc = users_is_last_super_admin(req->db, req->pool, u.id, &last);
    if (rc == 0 && last) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_LAST_SUPER_ADMIN,
                       "The user is the last active super admin of an account; make someone "
                       "else super admin first.");
        return;
    }
    if (rc == 0)
        rc = users_delete(req->db, req->pool, u.id);
    if (rc == 0)
        rc = record(req, "user.deleted", &u,
                    json_pack("{s:s, s:s}", "username", u.p.username, "status", u.status));
    if (rc != 0) {
        cc_db_rollback(req->db);
        res_store_error(req, rc);
        return;
    }
    if (commit(req) == 0)
        cc_res_json(req, 204, NULL);
}

/* ---- the route table ---- */

const cc_route_t users_routes[] = {
    {"POST", "/api/v1/users", handle_create, 0, 0},
    {"GET", "/api/v1/users", handle_list, 0, 0},
    {"GET", "/api/v1/users/{id}", handle_get, 0, 0},
    {"PATCH", "/api/v1/users/{id}", handle_patch, 0, 0},
    {"DELETE", "/api/v1/users/{id}", handle_delete, 0, 0},
    {"POST", "/api/v1/users/{id}/resend-activation", handle_resend, 0, 0},
    {"POST", "/api/v1/users/{id}/deactivate", handle_deactivate, 0, 0},
    {"POST", "/api/v1/users/{id}/reactivate", handle_reactivate, 0, 0},
    {"GET", "/api/v1/audit-events", users_handle_audit_events, 0, 0},
    {"GET", "/api/v1/audit-events/export", users_handle_audit_export, 0, 0},
};
const size_t users_nroutes = CC_ARRAY_SIZE(users_routes);
