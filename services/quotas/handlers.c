/*
 * The quotas API (API.md): GET /api/v1/tenants/{id}/quotas and
 * PUT /api/v1/tenants/{id}/quotas/{resource} (cloud_storage | datastore)
 * {limit_bytes, enforcement: track|hard, alert_thresholds_pct, grace_period_hours}.
 *
 * Reading needs tenants:read on the account, setting quotas:manage. A change is one
 * transaction: the quota, its audit record and quota.updated event, and the alert state
 * evaluated against the current usage (lowering a limit below the usage alerts at once).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/json.h"
#include "console/log.h"
#include "quotas.h"

static const cc_stmt_t q_tenant =
    CC_STMT("quotas_tenant",
            "SELECT id, kind, path::text, msp_id, status FROM tenants.tenant_tree"
            " WHERE id = $1::uuid",
            1);

#define QUOTA_JSON                                                                                 \
    "json_build_object('resource', r.resource, 'limit_bytes', q.limit_bytes, 'enforcement',"       \
    " coalesce(q.enforcement, 'track'), 'alert_thresholds_pct',"                                   \
    " coalesce(q.alert_thresholds_pct, '{80,95,100}'), 'grace_period_hours',"                      \
    " q.grace_period_hours, 'used_bytes', coalesce(u.used_bytes, 0), 'used_pct',"                  \
    " round(coalesce(u.used_bytes, 0) * 100.0 / nullif(q.limit_bytes, 0), 2),"                     \
    " 'alert_level_pct', coalesce(q.alert_level, 0), 'exceeded_since',"                            \
    " to_char(q.exceeded_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"             \
    " 'version', coalesce(q.version, 0))"

/* Both resources of the tenant, a default (unlimited, track) where none is set. */
static const cc_stmt_t q_list =
    CC_STMT("quotas_list",
            "SELECT " QUOTA_JSON "::text FROM (VALUES ('cloud_storage'), ('datastore')) r(resource)"
            " LEFT JOIN quotas q ON q.tenant_id = $1::uuid AND q.resource = r.resource"
            " LEFT JOIN usage.current_usage u ON u.tenant_id = $1::uuid AND u.resource = r.resource"
            " ORDER BY r.resource",
            1);
static const cc_stmt_t q_one = CC_STMT(
    "quotas_one",
    "SELECT " QUOTA_JSON "::text FROM (VALUES ($2)) r(resource)"
    " LEFT JOIN quotas q ON q.tenant_id = $1::uuid AND q.resource = r.resource"
    " LEFT JOIN usage.current_usage u ON u.tenant_id = $1::uuid AND u.resource = r.resource",
    2);
static const cc_stmt_t q_lock = CC_STMT(
    "quotas_lock",
    "SELECT version FROM quotas WHERE tenant_id = $1::uuid AND resource = $2 FOR UPDATE", 2);
static const cc_stmt_t q_put = CC_STMT(
    "quotas_put",
    "INSERT INTO quotas AS q (tenant_id, resource, msp_id, limit_bytes, enforcement,"
    " alert_thresholds_pct, grace_period_hours, updated_by)"
    " VALUES ($1::uuid, $2, $3::uuid, $4::bigint, $5,"
    " ARRAY(SELECT DISTINCT x::integer FROM json_array_elements_text($6::json) x ORDER BY 1),"
    " $7::integer, $8)"
    " ON CONFLICT (tenant_id, resource) DO UPDATE SET limit_bytes = excluded.limit_bytes,"
    " enforcement = excluded.enforcement, alert_thresholds_pct = excluded.alert_thresholds_pct,"
    " grace_period_hours = excluded.grace_period_hours, updated_by = excluded.updated_by,"
    " updated_at = now(), version = q.version + 1",
    8);

typedef struct tenant {
    const char *id, *kind, *path, *msp_id, *status;
} tenant_t;

/* The tenant {id} as the caller sees it, with perm on it; answers and returns false. */
static bool tenant_of(cc_req_t *req, const char *perm, tenant_t *t)
{
    const char *id = cc_req_param(req, "id");
    PGresult *res = NULL;
    int rc = id && cc_is_uuid(id) ? cc_db_read(req->db, req->pool, cc_req_scope(req), &q_tenant,
                                               (const char *[]){id}, &res)
                                  : 0;
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    if (res == NULL || PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 1), "platform") == 0) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return false;
    }
    t->id = cc_db_get(res, 0, 0);
    t->kind = cc_db_get(res, 0, 1);
    t->path = cc_db_get(res, 0, 2);
    t->msp_id = cc_db_get(res, 0, 3);
    t->status = cc_db_get(res, 0, 4);
    if (!cc_authz_can(req->authz, perm, t->path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow this on this account.");
        return false;
    }
    return true;
}

void quotas_handle_list(cc_req_t *req)
{
    tenant_t t;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 ||
        !tenant_of(req, "tenants:read", &t))
        return;
    PGresult *res;
    int rc =
        cc_db_read(req->db, req->pool, cc_req_scope(req), &q_list, (const char *[]){t.id}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "{\"items\":[");
    for (int r = 0; r < PQntuples(res); r++) {
        if (r)
            cc_buf_putc(&b, ',');
        cc_buf_puts(&b, PQgetvalue(res, r, 0));
    }
    cc_buf_printf(&b, "],\"next_cursor\":null,\"total\":%d}", PQntuples(res));
    cc_res_text(req, 200, "application/json", b.data, b.len);
    cc_buf_free(&b);
}

void quotas_handle_put(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    const char *resource = cc_req_param(req, "resource");
    if (resource == NULL ||
        (strcmp(resource, "cloud_storage") != 0 && strcmp(resource, "datastore") != 0)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "The resources are cloud_storage and datastore.");
        return;
    }
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"limit_bytes", "enforcement", "alert_thresholds_pct",
                                      "grace_period_hours", NULL});
    json_t *limit = json_object_get(body, "limit_bytes");
    if (limit == NULL)
        cc_v_add(&v, "limit_bytes", "required", "limit_bytes is required (null = unlimited).");
    else if (!json_is_null(limit) && (!json_is_integer(limit) || json_integer_value(limit) < 0 ||
                                      json_integer_value(limit) > (1LL << 60)))
        cc_v_add(&v, "limit_bytes", "range",
                 "limit_bytes is an integer number of bytes from 0 to 2^60, or null.");
    const char *enforcement =
        cc_v_enum(&v, body, "enforcement", false, (const char *const[]){"track", "hard", NULL});
    bool grace_given = false;
    int64_t grace = cc_v_int(&v, body, "grace_period_hours", false, 0, 8760, &grace_given);
    json_t *th = json_object_get(body, "alert_thresholds_pct");
    json_t *thresholds = json_pack("[i, i, i]", 80, 95, 100);
    if (th != NULL && !json_is_null(th)) {
        bool ok = json_is_array(th) && json_array_size(th) <= 10;
        size_t i;
        json_t *x;
        json_array_foreach(th, i, x) ok =
            ok && json_is_integer(x) && json_integer_value(x) >= 1 && json_integer_value(x) <= 1000;
        if (ok) {
            json_decref(thresholds);
            thresholds = json_incref(th);
        } else {
            cc_v_add(&v, "alert_thresholds_pct", "range",
                     "alert_thresholds_pct is an array of at most 10 integers from 1 to 1000.");
        }
    }
    cc_json_on_pool(req->pool, thresholds);
    if (enforcement == NULL)
        enforcement = "track";
    if (grace_given && strcmp(enforcement, "hard") != 0)
        cc_v_add(&v, "grace_period_hours", "not_applicable",
                 "A grace period applies to hard enforcement only.");
    if (strcmp(enforcement, "hard") == 0 && limit != NULL && json_is_null(limit))
        cc_v_add(&v, "limit_bytes", "required", "Hard enforcement needs a limit.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    tenant_t t;
    if (!tenant_of(req, "quotas:manage", &t))
        return;
    if (strcmp(t.kind, "customer") != 0 && strcmp(t.kind, "direct") != 0) {
        cc_res_problem(req, CC_ERR_CONFLICT, "Quotas apply to customer and direct accounts.");
        return;
    }
    if (strcmp(t.status, "deleted") == 0) {
        cc_res_problem(req, CC_ERR_TENANT_DELETED, "The account is in the recycle bin.");
        return;
    }
    char *limit_text = json_is_integer(limit)
                           ? cc_pool_printf(req->pool, "%lld", (long long)json_integer_value(limit))
                           : NULL;
    char *grace_text = grace_given ? cc_pool_printf(req->pool, "%lld", (long long)grace) : NULL;
    char *th_text = json_dumps(thresholds, JSON_COMPACT);
    cc_pool_defer(req->pool, free, th_text);

    PGresult *res;
    int crossed = 0;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_lock, (const char *[]){t.id, resource}, &res);
    if (rc == 0 && PQntuples(res) == 1 && !cc_req_if_match(req, atoi(PQgetvalue(res, 0, 0)))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The quota changed since you read it; read it again.");
        return;
    }
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_put,
                         (const char *[]){t.id, resource, t.msp_id, limit_text, enforcement,
                                          th_text, grace_text, req->principal->sub},
                         NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_one, (const char *[]){t.id, resource}, &res);
    json_t *out = rc == 0 ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    if (rc == 0) {
        cc_audit_t a = {.action = "quota.updated",
                        .target_type = "quota",
                        .target_id = t.id,
                        .tenant_id = t.id,
                        .msp_id = t.msp_id,
                        .details = out};
        rc = cc_audit_write(req, &a);
    }
    if (rc == 0) {
        json_t *ev =
            json_pack("{s:s, s:s, s:O}", "tenant_id", t.id, "msp_id", t.msp_id, "quota", out);
        rc = cc_outbox_emit(req->db, req->pool, "quota.updated", t.id, ev);
        json_decref(ev);
    }
    if (rc == 0)
        rc = quotas_evaluate(req->db, req->pool, req, t.id, resource, &crossed);
    if (rc == 0 && crossed > 0) /* the answer shows the state after the evaluation */
        rc = cc_db_query(req->db, req->pool, &q_one, (const char *[]){t.id, resource}, &res);
    if (rc == 0 && crossed > 0) {
        json_decref(out);
        out = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    }
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        json_decref(out);
        cc_res_db_error(req, rc);
        return;
    }
    cc_res_header(req, "etag",
                  cc_pool_printf(req->pool, "\"%lld\"",
                                 (long long)json_integer_value(json_object_get(out, "version"))));
    cc_res_json(req, 200, out);
}

const cc_route_t quotas_routes[] = {
    {"GET", "/api/v1/tenants/{id}/quotas", quotas_handle_list, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/quotas/{resource}", quotas_handle_put, 0, 0},
};
const size_t quotas_nroutes = CC_ARRAY_SIZE(quotas_routes);
