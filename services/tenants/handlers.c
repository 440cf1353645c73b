/*
 * The tenants API (API.md, Tenants). Every handler: validate, check the permission from
 * the caller's grants (console/authz.h), act in one transaction scoped by row-level
 * security, and write the audit record and the outbox event in that same transaction.
 *
 * Visibility and permission: a tenant the caller cannot see answers 404 (its existence
 * is not revealed); one it sees but may not change answers 403. The lifecycle of a tenant
 * (create under, suspend, resume, delete, restore) is managed from above it: the
 * permission must come from a grant on a proper ancestor, so no one suspends or deletes
 * the account that holds their own grant.
 */
#include <stdio.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "tenants.h"

/* ---- helpers ---- */

static void res_tenant(cc_req_t *req, int status, const tenant_t *t)
{
    char etag[32];
    snprintf(etag, sizeof(etag), "\"%d\"", t->version);
    cc_res_header(req, "etag", etag);
    cc_res_json(req, status, tenants_json(t));
}

/* Answers a failed store call: 404 for a missing row, the db error otherwise. */
static void res_store_error(cc_req_t *req, int rc)
{
    if (rc == CC_ENOENT)
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such tenant.");
    else if (rc == CC_ECONFLICT)
        cc_res_problem(req, CC_ERR_NAME_TAKEN,
                       "Another account under the same parent has this name.");
    else
        cc_res_db_error(req, rc);
}

static json_t *event_of(const tenant_t *t)
{
    return json_pack("{s:s, s:s?, s:s, s:s, s:s, s:s, s:s}", "id", t->id, "parent_id", t->parent_id,
                     "msp_id", t->msp_id, "path", t->path, "kind", t->kind, "name", t->name,
                     "status", t->status);
}

/* The audit record and the outbox event of a change, in the open transaction. */
static int record(cc_req_t *req, const char *action, const tenant_t *t, json_t *details)
{
    cc_audit_t a = {
        .action = action,
        .target_type = "tenant",
        .target_id = t->id,
        .tenant_id = t->id,
        .msp_id = strcmp(t->kind, "platform") == 0 ? NULL : t->msp_id,
        .details = details,
    };
    int rc = cc_audit_write(req, &a);
    if (rc == 0) {
        json_t *ev = event_of(t);
        rc = cc_outbox_emit(req->db, req->pool, action, t->id, ev);
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

/* The end of a change: rolls back and answers the error, or commits and answers the
 * tenant as it is now. */
static void finish(cc_req_t *req, int rc, int status, const tenant_t *out)
{
    if (rc != 0) {
        cc_db_rollback(req->db);
        res_store_error(req, rc);
    } else if (commit(req) == 0) {
        res_tenant(req, status, out);
    }
}

/* The path parameter {id}; answers 404 when it cannot be an id. */
static const char *path_id(cc_req_t *req)
{
    const char *id = cc_req_param(req, "id");
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such tenant.");
        return NULL;
    }
    return id;
}

/*
 * Opens the transaction and locks the tenant {id}; answers and returns false when it is
 * not visible (404), not changeable by the caller (403) or deleted (409, unless
 * allow_deleted).
 */
typedef enum { ON_ITSELF, FROM_ABOVE } reach_t;

static bool begin_locked(cc_req_t *req, const char *perm, reach_t reach, bool allow_deleted,
                         tenant_t *t)
{
    const char *id = path_id(req);
    if (id == NULL)
        return false;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = tenants_lock(req->db, req->pool, id, t);
    if (rc != 0) {
        cc_db_rollback(req->db);
        res_store_error(req, rc);
        return false;
    }
    bool ok = reach == FROM_ABOVE ? cc_authz_can_above(req->authz, perm, t->path)
                                  : cc_authz_can(req->authz, perm, t->path);
    if (!ok) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow this on this account.");
        return false;
    }
    if (!allow_deleted && strcmp(t->status, "deleted") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_TENANT_DELETED,
                       "The account is in the recycle bin; restore it first.");
        return false;
    }
    return true;
}

/* ---- create ---- */

void tenants_handle_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"name", "kind", "parent_id", NULL});
    const char *name = cc_v_string(&v, body, "name", true, 1, 128, true);
    const char *kind =
        cc_v_enum(&v, body, "kind", true, (const char *const[]){"msp", "customer", "direct", NULL});
    const char *parent_id = cc_v_uuid(&v, body, "parent_id", false);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (parent_id == NULL)
        parent_id = req->principal->tenant_id;
    if (cc_idem_replay(req) != 0)
        return;

    tenant_t parent, t = {0};
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = tenants_lock_parent(req->db, req->pool, parent_id, &parent);
    if (rc != 0) {
        cc_db_rollback(req->db);
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such parent account.");
        else
            res_store_error(req, rc);
        return;
    }
    if (!cc_authz_can(req->authz, "tenants:write", parent.path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow adding accounts here.");
        return;
    }
    if (strcmp(parent.status, "deleted") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_TENANT_DELETED, "The parent account is in the recycle bin.");
        return;
    }
    /* platform -> msp | direct; msp -> customer. A direct account has no customers. */
    bool fits = strcmp(kind, "customer") == 0 ? strcmp(parent.kind, "msp") == 0
                                              : strcmp(parent.kind, "platform") == 0;
    if (!fits) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_INVALID_PARENT,
                           json_pack("{s:s, s:s}", "kind", kind, "parent_kind", parent.kind),
                           "A %s account cannot be placed under a %s account%s.", kind, parent.kind,
                           strcmp(kind, "customer") == 0
                               ? " (only an MSP has customers)"
                               : " (MSP and direct accounts sit under the platform)");
        return;
    }
    char id[37];
    cc_uuid_new(id);
    rc = tenants_insert(req->db, req->pool, &parent, id, kind, name, req->principal->sub,
                        cc_audit_actor_name(req), &t);
    if (rc == 0)
        rc = record(req, "tenant.created", &t, json_pack("{s:s}", "name", t.name));
    json_t *out = NULL;
    char etag[32] = "";
    const char *location = NULL;
    if (rc == 0) {
        out = tenants_json(&t);
        snprintf(etag, sizeof(etag), "\"%d\"", t.version);
        location = cc_pool_printf(req->pool, "/api/v1/tenants/%s", t.id);
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

void tenants_handle_get(cc_req_t *req)
{
    const char *id = path_id(req);
    if (id == NULL || cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    tenant_t t;
    int rc = tenants_get(req->db, req->pool, cc_req_scope(req), id, &t);
    if (rc != 0) {
        res_store_error(req, rc);
        return;
    }
    res_tenant(req, 200, &t);
}

bool tenants_may_list_under(cc_req_t *req, const char *parent_id, bool parent_visible)
{
    const cc_authz_t *a = req->authz;
    if (parent_visible)
        return true;
    if (a == NULL || a->platform || a->scope.msp_wide)
        return false; /* they would see it if it existed in their tree */
    /* an ancestor of a grant: ltree labels are ids without hyphens */
    char label[33];
    size_t n = 0;
    for (const char *p = parent_id; *p && n < 32; p++)
        if (*p != '-')
            label[n++] = *p;
    label[n] = '\0';
    for (size_t i = 0; i < a->ngrants; i++) {
        const char *path = a->grants[i].path;
        for (const char *p = strstr(path, label); p; p = strstr(p + 1, label))
            if ((p == path || p[-1] == '.') && (p[n] == '\0' || p[n] == '.'))
                return true;
    }
    return false;
}

/* A quota_used_pct sort key as the list emits it: -1, or digits with up to 2 decimals. */
static bool pct_key_ok(const char *k)
{
    if (*k == '-')
        k++;
    size_t i = strspn(k, "0123456789");
    if (i == 0 || i > 20)
        return false;
    if (k[i] == '\0')
        return true;
    size_t f = k[i] == '.' ? strspn(k + i + 1, "0123456789") : 0;
    return f > 0 && f <= 2 && k[i + 1 + f] == '\0';
}

int tenants_filter_from_query(cc_req_t *req, tenant_filter_t *f, bool paged)
{
    bool failed = false;
    memset(f, 0, sizeof(*f));
    f->parent_id = cc_req_query(req, "parent_id", &failed);
    const char *q = failed ? NULL : cc_req_query(req, "q", &failed);
    const char *prefix = failed ? NULL : cc_req_query(req, "prefix", &failed);
    const char *status = failed ? NULL : cc_req_query(req, "status", &failed);
    const char *sort = failed ? NULL : cc_req_query(req, "sort", &failed);
    if (failed)
        return -1;
    if (f->parent_id == NULL)
        f->parent_id = req->principal->tenant_id;
    if (!cc_is_uuid(f->parent_id)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "parent_id must be an account id.");
        return -1;
    }
    f->status = "";
    if (status != NULL) {
        if (strcmp(status, "active") != 0 && strcmp(status, "suspended") != 0 &&
            strcmp(status, "deleted") != 0) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                           "status must be active, suspended or deleted.");
            return -1;
        }
        f->status = status;
    }
    f->sort = SORT_NAME;
    if (sort != NULL) {
        int s = tenants_sort_parse(sort);
        if (s < 0) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                           "sort must be name, -name, created_at, -created_at, quota_used_pct or "
                           "-quota_used_pct.");
            return -1;
        }
        f->sort = (tenant_sort_t)s;
    }
    if (q != NULL && prefix != NULL) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "Give q (anywhere in the name) or prefix, not both.");
        return -1;
    }
    f->search = q != NULL ? SEARCH_SUBSTRING : SEARCH_PREFIX;
    if (q == NULL)
        q = prefix;
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
        f->pattern = len ? cc_pool_strndup(req->pool, q, len) : NULL;
    }
    if (!paged) {
        f->limit = 500;
        return 0;
    }
    json_t *keys = NULL;
    if (cc_req_page(req, &f->limit, &keys) != 0)
        return -1;
    if (keys != NULL) {
        /* [sort, key, id, parent]: issued by this list, for this sort and parent */
        json_t *s = json_array_get(keys, 0), *k = json_array_get(keys, 1),
               *i = json_array_get(keys, 2), *p = json_array_get(keys, 3);
        bool ok = json_array_size(keys) == 4 && json_is_string(s) && json_is_string(k) &&
                  json_is_string(i) && json_is_string(p) &&
                  strcmp(json_string_value(s), tenants_sort_name(f->sort)) == 0 &&
                  cc_is_uuid(json_string_value(i)) &&
                  strcmp(json_string_value(p), f->parent_id) == 0 && json_string_length(k) <= 1024;
        if (ok && (f->sort == SORT_CREATED || f->sort == SORT_CREATED_DESC)) {
            /* exactly what the list emits: 2026-11-23T07:12:46.123456Z */
            const char *t = json_string_value(k);
            ok = strlen(t) == 27;
            for (int c = 0; ok && c < 27; c++) {
                char x = t[c], want = "0000-00-00T00:00:00.000000Z"[c];
                ok = want == '0' ? (x >= '0' && x <= '9') : x == want;
            }
        }
        if (ok && (f->sort == SORT_QUOTA || f->sort == SORT_QUOTA_DESC))
            ok = pct_key_ok(json_string_value(k)); /* -1 or a percentage, 2 decimals */
        if (!ok) {
            cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
            return -1;
        }
        f->after_key = json_string_value(k);
        f->after_id = json_string_value(i);
    }
    return 0;
}

static const char *const list_params[] = {"parent_id", "q",     "prefix", "status",
                                          "sort",      "limit", "cursor", NULL};

void tenants_handle_list(cc_req_t *req)
{
    tenant_filter_t f;
    if (cc_req_query_allowed(req, list_params) != 0 ||
        tenants_filter_from_query(req, &f, true) != 0)
        return;
    tenant_t *items;
    int n;
    long long total;
    bool parent_visible = false;
    int rc = tenants_list(req->db, req->pool, cc_req_scope(req), &f, &items, &n, &total,
                          &parent_visible);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (!tenants_may_list_under(req, f.parent_id, parent_visible)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such parent account.");
        return;
    }
    int shown = n > f.limit ? f.limit : n;
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "{\"items\":[");
    for (int i = 0; i < shown; i++) {
        if (i > 0)
            cc_buf_putc(&b, ',');
        tenants_json_write(&b, &items[i]);
    }
    cc_buf_puts(&b, "],\"next_cursor\":");
    const char *next = NULL;
    if (n > f.limit) {
        const tenant_t *last = &items[shown - 1];
        json_t *keys = json_pack("[s, s, s, s]", tenants_sort_name(f.sort), last->sort_key,
                                 last->id, f.parent_id);
        next = cc_cursor_encode(req->pool, keys);
        json_decref(keys);
    }
    cc_jw_str(&b, next);
    cc_buf_printf(&b, ",\"total\":%lld}", total);
    cc_res_text(req, 200, "application/json", b.data, b.len);
    cc_buf_free(&b);
}

void tenants_handle_summary(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"parent_id", NULL}) != 0)
        return;
    const char *parent_id = cc_req_query(req, "parent_id", &failed);
    if (failed)
        return;
    if (parent_id == NULL)
        parent_id = req->principal->tenant_id;
    if (!cc_is_uuid(parent_id)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "parent_id must be an account id.");
        return;
    }
    json_t *out;
    bool parent_visible = false;
    int rc =
        tenants_summary(req->db, req->pool, cc_req_scope(req), parent_id, &out, &parent_visible);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (!tenants_may_list_under(req, parent_id, parent_visible)) {
        json_decref(out);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such parent account.");
        return;
    }
    cc_res_json(req, 200, out);
}

/* ---- changes ---- */

void tenants_handle_patch(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"name", "allow_msp_access", NULL});
    const char *name = cc_v_string(&v, body, "name", false, 1, 128, true);
    json_t *access = json_object_get(body, "allow_msp_access");
    if (access != NULL && !json_is_boolean(access))
        cc_v_add(&v, "allow_msp_access", "type", "allow_msp_access must be true or false.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    tenant_t t, out;
    if (!begin_locked(req, "tenants:read", ON_ITSELF, false, &t))
        return;
    if (name != NULL && !cc_authz_can(req->authz, "tenants:write", t.path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow renaming this account.");
        return;
    }
    /* the consent is the customer's own: its administrators (a grant on it, signed in as
     * themselves), never its MSP and never someone acting as its admin */
    if (access != NULL && (strcmp(t.kind, "customer") != 0 || req->principal->act_sub != NULL ||
                           strcmp(req->principal->tenant_id, t.id) != 0 ||
                           !cc_authz_can(req->authz, "users:manage", t.path))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Only the customer's own administrators decide whether its MSP may view "
                       "its console as its admin.");
        return;
    }
    if (!cc_req_if_match(req, t.version)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The account changed since you read it (ETag \"%d\"); read it again.",
                       t.version);
        return;
    }
    bool rename = name != NULL && strcmp(name, t.name) != 0;
    bool consent = access != NULL && json_is_true(access) != t.allow_msp_access;
    if (!rename && !consent) { /* nothing to change */
        cc_db_rollback(req->db);
        res_tenant(req, 200, &t);
        return;
    }
    int rc = tenants_update(req->db, req->pool, t.id, rename ? name : NULL,
                            consent ? (json_is_true(access) ? "true" : "false") : NULL,
                            req->principal->sub, &out);
    if (rc == 0 && rename)
        rc = record(req, "tenant.renamed", &out,
                    json_pack("{s:s, s:s}", "from", t.name, "to", name));
    if (rc == 0 && consent)
        rc = record(req, "tenant.msp_access_changed", &out,
                    json_pack("{s:b}", "allow_msp_access", out.allow_msp_access));
    finish(req, rc, 200, &out);
}

static void set_status(cc_req_t *req, const char *status, const char *action)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    if (req->body_len > 0 && strspn(req->body, " \t\r\n") != req->body_len) {
        json_t *body;
        if (cc_req_json(req, &body) != 0)
            return;
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        if (!cc_v_object(&v, body, (const char *const[]){NULL}) || !cc_v_ok(&v)) {
            cc_res_invalid(req, &v);
            return;
        }
    }
    tenant_t t, out;
    if (!begin_locked(req, "tenants:write", FROM_ABOVE, false, &t))
        return;
    if (strcmp(t.status, status) == 0) { /* idempotent: already so */
        cc_db_rollback(req->db);
        res_tenant(req, 200, &t);
        return;
    }
    int rc = tenants_set_status(req->db, req->pool, t.id, status, req->principal->sub, &out);
    if (rc == 0)
        rc = record(req, action, &out, NULL);
    finish(req, rc, 200, &out);
}

void tenants_handle_suspend(cc_req_t *req)
{
    set_status(req, "suspended", "tenant.suspended");
}

void tenants_handle_resume(cc_req_t *req)
{
    set_status(req, "active", "tenant.resumed");
}

void tenants_handle_delete(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"confirm", NULL}) != 0)
        return;
    const char *confirm = cc_req_query(req, "confirm", &failed);
    if (failed)
        return;
    tenant_t t, out;
    if (!begin_locked(req, "tenants:delete", FROM_ABOVE, false, &t))
        return;
    if (confirm == NULL || strcmp(confirm, t.name) != 0) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_CONFIRMATION_REQUIRED,
                           json_pack("{s:s}", "confirm_with", "the account's exact name"),
                           confirm == NULL
                               ? "Deleting an account needs ?confirm= with its exact name."
                               : "The confirmation does not match the account's name exactly.");
        return;
    }
    long long children = 0;
    int rc = tenants_live_children(req->db, req->pool, t.id, &children);
    if (rc == 0 && children > 0) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(
            req, CC_ERR_TENANT_NOT_EMPTY, json_pack("{s:I}", "children", (json_int_t)children),
            "The account still has %lld account(s) under it; delete them first.", children);
        return;
    }
    tenants_app_t *app = req->app;
    if (rc == 0)
        rc = tenants_soft_delete(req->db, req->pool, t.id, app->retention_days, req->principal->sub,
                                 cc_audit_actor_name(req), &out);
    if (rc == 0)
        rc = record(req, "tenant.deleted", &out,
                    json_pack("{s:s, s:s}", "name", out.name, "purge_at", out.purge_at));
    finish(req, rc, 202, &out);
}

void tenants_handle_restore(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    tenant_t t, out, parent;
    if (!begin_locked(req, "tenants:delete", FROM_ABOVE, true, &t))
        return;
    if (strcmp(t.status, "deleted") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_CONFLICT, "The account is not in the recycle bin.");
        return;
    }
    int rc = tenants_lock_parent(req->db, req->pool, t.parent_id, &parent);
    if (rc == 0 && strcmp(parent.status, "deleted") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_TENANT_DELETED,
                       "The parent account is in the recycle bin; restore it first.");
        return;
    }
    if (rc == 0)
        rc = tenants_restore(req->db, req->pool, t.id, req->principal->sub, &out);
    if (rc == 0)
        rc = record(req, "tenant.restored", &out, NULL);
    finish(req, rc, 200, &out);
}

/* ---- the route table ---- */

const cc_route_t tenants_routes[] = {
    {"POST", "/api/v1/tenants", tenants_handle_create, 0, 0},
    {"GET", "/api/v1/tenants", tenants_handle_list, 0, 0},
    {"GET", "/api/v1/tenants/summary", tenants_handle_summary, 0, 0},
    {"GET", "/api/v1/tenants/export", tenants_handle_export, 0, 0},
    {"GET", "/api/v1/tenants/{id}", tenants_handle_get, 0, 0},
    {"PATCH", "/api/v1/tenants/{id}", tenants_handle_patch, 0, 0},
    {"DELETE", "/api/v1/tenants/{id}", tenants_handle_delete, 0, 0},
    {"POST", "/api/v1/tenants/{id}/suspend", tenants_handle_suspend, 0, 0},
    {"POST", "/api/v1/tenants/{id}/resume", tenants_handle_resume, 0, 0},
    {"POST", "/api/v1/tenants/{id}/restore", tenants_handle_restore, 0, 0},
};
const size_t tenants_nroutes = CC_ARRAY_SIZE(tenants_routes);
