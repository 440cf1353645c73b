/*
 * The second-factor policy of an account (API.md-style: GET|PUT|DELETE
 * /api/v1/tenants/{id}/mfa-policy) and the list of its users with their enrolment
 * (GET /api/v1/tenants/{id}/mfa-enrollment). A customer without a policy of its own
 * inherits its MSP's; without either, the built-in default holds: every factor type, MFA
 * required, remember-device off (30 days when turned on). The authentication steps (authn.c) and
 * /api/v1/me/factors ask identity_mfa_policy_for at enrolment and at sign-in.
 *
 * Who: the policy is the sign-in of the account, so access:manage on it (the account's
 * super admin, or above it); the enrolment list, users:manage. Other accounts: 404.
 */
#include <stdio.h>
#include <string.h>

#include "console/audit.h"
#include "console/log.h"
#include "identity.h"
#include "policy.h"

static const char *const all_types[] = {"totp", "email", "webauthn", "sms", "voice", NULL};

static const cc_stmt_t q_effective = CC_STMT(
    "idn_mfa_effective",
    "SELECT p.tenant_id, array_to_json(p.allowed_factors)::text, p.mfa_required,"
    " p.remember_device, p.version,"
    " to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), p.updated_by,"
    " p.remember_device_days"
    " FROM tenants.tenant_tree t JOIN mfa_policies p ON p.tenant_id = t.id OR p.tenant_id = "
    "t.msp_id"
    " WHERE t.id = $1::uuid ORDER BY p.tenant_id = t.id DESC LIMIT 1",
    1);
static const cc_stmt_t q_upsert = CC_STMT(
    "idn_mfa_upsert",
    "INSERT INTO mfa_policies (tenant_id, msp_id, allowed_factors, mfa_required, remember_device,"
    " updated_by, remember_device_days) VALUES ($1, $2,"
    " ARRAY(SELECT json_array_elements_text($3::json)), $4, $5, $6, $7::int)"
    " ON CONFLICT (tenant_id) DO UPDATE SET allowed_factors = EXCLUDED.allowed_factors,"
    " mfa_required = EXCLUDED.mfa_required, remember_device = EXCLUDED.remember_device,"
    " remember_device_days = EXCLUDED.remember_device_days,"
    " updated_by = EXCLUDED.updated_by, updated_at = now(), version = mfa_policies.version + 1",
    7);
static const cc_stmt_t q_delete =
    CC_STMT("idn_mfa_delete", "DELETE FROM mfa_policies WHERE tenant_id = $1 RETURNING version", 1);
/* the users of one account (not deactivated), by username, with their usable factors */
static const cc_stmt_t q_enrollment = CC_STMT(
    "idn_mfa_enrollment",
    "WITH u AS (SELECT p.id, p.username, p.primary_email, p.first_name, p.last_name, p.status,"
    " coalesce((SELECT json_agg(DISTINCT f.type) FROM factors f WHERE f.user_id = p.id"
    " AND f.status = 'active' AND f.type IN (SELECT json_array_elements_text($2::json))),"
    " '[]'::json) AS types FROM users.sign_in_profiles p"
    " WHERE p.tenant_id = $1::uuid AND p.status <> 'deactivated'),"
    " f AS (SELECT * FROM u WHERE $3::boolean IS NULL OR (json_array_length(types) > 0) = $3)"
    " SELECT id, username, primary_email, first_name, last_name, status, types::text,"
    " (SELECT count(*) FROM f), (SELECT count(*) FROM u WHERE json_array_length(types) > 0),"
    " (SELECT count(*) FROM u WHERE json_array_length(types) = 0), lower(username)"
    " FROM f WHERE $4::text IS NULL OR lower(username) > $4 ORDER BY lower(username) LIMIT $5",
    5);

int identity_mfa_policy_for(cc_db_t *db, cc_pool_t *pool, const char *tenant_id,
                            identity_mfa_policy_t *p)
{
    PGresult *res = NULL;
    memset(p, 0, sizeof(*p));
    p->mfa_required = true;
    p->remember_device_days = IDENTITY_REMEMBER_DAYS_DEFAULT;
    int rc = cc_db_query(db, pool, &q_effective, (const char *[]){tenant_id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        p->source_tenant_id = cc_db_get(res, 0, 0);
        p->allowed = cc_json_on_pool(pool, json_loads(PQgetvalue(res, 0, 1), 0, NULL));
        p->mfa_required = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
        p->remember_device = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        p->version = atoi(PQgetvalue(res, 0, 4));
        p->updated_at = cc_db_get(res, 0, 5);
        p->updated_by = cc_db_get(res, 0, 6);
        p->remember_device_days = atoi(PQgetvalue(res, 0, 7));
    }
    if (p->allowed == NULL) {
        p->allowed = cc_json_on_pool(pool, json_array());
        for (size_t i = 0; all_types[i]; i++)
            json_array_append_new(p->allowed, json_string(all_types[i]));
    }
    return 0;
}

bool identity_mfa_policy_allows(const identity_mfa_policy_t *p, const char *type)
{
    return identity_json_has(p->allowed, type);
}

static json_t *policy_json(const identity_tenant_t *t, const identity_mfa_policy_t *p)
{
    const char *source = p->source_tenant_id == NULL               ? "default"
                         : strcmp(p->source_tenant_id, t->id) == 0 ? "tenant"
                                                                   : "msp";
    bool own = strcmp(source, "tenant") == 0;
    return json_pack(
        "{s:s, s:O, s:b, s:b, s:i, s:s, s:s?, s:s?, s:s?}", "tenant_id", t->id, "allowed_factors",
        p->allowed, "mfa_required", p->mfa_required, "remember_device", p->remember_device,
        "remember_device_days", p->remember_device_days, "source", source, "inherited_from",
        own ? NULL : p->source_tenant_id, "updated_at", p->updated_at, "updated_by", p->updated_by);
}

static void answer_policy(cc_req_t *req, const identity_tenant_t *t, const identity_mfa_policy_t *p,
                          int status)
{
    bool own = p->source_tenant_id && strcmp(p->source_tenant_id, t->id) == 0;
    char etag[24];
    snprintf(etag, sizeof(etag), "\"%d\"", own ? p->version : 0);
    cc_res_header(req, "etag", etag);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, status, policy_json(t, p));
}

static bool policy_tenant(cc_req_t *req, identity_tenant_t *t)
{
    return identity_tenant_admin(
        req, "access:manage", "Your roles do not allow managing the sign-in of this account.", t);
}

void identity_handle_mfa_policy_get(cc_req_t *req)
{
    identity_tenant_t t;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || !policy_tenant(req, &t) ||
        !identity_begin(req))
        return;
    identity_mfa_policy_t p;
    int rc = identity_mfa_policy_for(req->db, req->pool, t.id, &p);
    cc_db_rollback(req->db);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    answer_policy(req, &t, &p, 200);
}

static json_t *audit_details(const identity_mfa_policy_t *old, bool own, json_t *allowed,
                             bool required, bool remember, int days)
{
    json_t *d = json_pack("{s:O, s:b, s:b, s:i}", "allowed_factors", allowed, "mfa_required",
                          required, "remember_device", remember, "remember_device_days", days);
    if (own)
        json_object_set_new(d, "previous",
                            json_pack("{s:O, s:b, s:b, s:i}", "allowed_factors", old->allowed,
                                      "mfa_required", old->mfa_required, "remember_device",
                                      old->remember_device, "remember_device_days",
                                      old->remember_device_days));
    return d;
}

void identity_handle_mfa_policy_put(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"allowed_factors", "mfa_required", "remember_device",
                                      "remember_device_days", NULL});
    json_t *allowed = json_object_get(body, "allowed_factors");
    if (allowed == NULL || !json_is_array(allowed) || json_array_size(allowed) < 1 ||
        json_array_size(allowed) > 5) {
        cc_v_add(&v, "allowed_factors", allowed ? "type" : "required",
                 "allowed_factors is an array of 1 to 5 factor types (totp, email, webauthn, "
                 "sms, voice).");
        allowed = NULL;
    } else {
        size_t i, j;
        json_t *x, *y;
        json_array_foreach(allowed, i, x)
        {
            const char *s = json_string_value(x);
            bool dup = false;
            json_array_foreach(allowed, j, y) if (j < i && json_equal(x, y)) dup = true;
            if (s == NULL || !identity_factor_type_known(s) || dup)
                cc_v_add(&v, cc_pool_printf(req->pool, "allowed_factors[%zu]", i),
                         dup ? "duplicate" : "enum",
                         dup ? "This factor type is repeated."
                             : "One of totp, email, webauthn, sms, voice.");
        }
    }
    bool required = cc_v_bool(&v, body, "mfa_required", true, true);
    bool remember = cc_v_bool(&v, body, "remember_device", false, false);
    bool days_given = false;
    int64_t days = cc_v_int(&v, body, "remember_device_days", false, 1, 90, &days_given);
    if (!days_given)
        days = IDENTITY_REMEMBER_DAYS_DEFAULT;
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_tenant_t t;
    if (!policy_tenant(req, &t))
        return;
    if (!required && strcmp(t.kind, "platform") == 0) {
        cc_v_add(&v, "mfa_required", "platform",
                 "The platform's own staff always sign in with a second factor.");
        cc_res_invalid(req, &v);
        return;
    }
    if (remember && strcmp(t.kind, "platform") == 0) {
        cc_v_add(&v, "remember_device", "platform",
                 "The platform's own staff verify a second factor at every sign-in.");
        cc_res_invalid(req, &v);
        return;
    }
    if (!identity_begin(req))
        return;
    identity_mfa_policy_t old;
    int rc = identity_mfa_policy_for(req->db, req->pool, t.id, &old);
    if (rc != 0)
        goto DbError;
    bool own = old.source_tenant_id && strcmp(old.source_tenant_id, t.id) == 0;
    if (!cc_req_if_match(req, own ? old.version : 0)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The policy changed since it was read; read it again.");
        return;
    }
    char *list = json_dumps(allowed, JSON_COMPACT);
    char daybuf[16];
    snprintf(daybuf, sizeof(daybuf), "%d", (int)days);
    const char *pu[] = {t.id,
                        t.msp_id ? t.msp_id : t.id,
                        cc_pool_strdup(req->pool, list),
                        required ? "true" : "false",
                        remember ? "true" : "false",
                        cc_audit_actor_name(req),
                        daybuf};
    free(list);
    json_t *d = audit_details(&old, own, allowed, required, remember, (int)days);
    cc_audit_t a = {.action = "tenant.mfa_policy_updated",
                    .target_type = "tenant",
                    .target_id = t.id,
                    .tenant_id = t.id,
                    .msp_id = t.msp_id,
                    .details = d};
    if ((rc = cc_db_query(req->db, req->pool, &q_upsert, pu, NULL)) == 0)
        rc = cc_audit_write(req, &a);
    json_decref(d);
    identity_mfa_policy_t now;
    if (rc == 0)
        rc = identity_mfa_policy_for(req->db, req->pool, t.id, &now);
    if (rc != 0)
        goto DbError;
    if (!identity_commit(req))
        return;
    cc_log_info("tenant %s: second-factor policy set", t.id);
    answer_policy(req, &t, &now, 200);
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

void identity_handle_mfa_policy_delete(cc_req_t *req)
{
    identity_tenant_t t;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || !policy_tenant(req, &t) ||
        !identity_begin(req))
        return;
    PGresult *res = NULL;
    int rc = cc_db_query(req->db, req->pool, &q_delete, (const char *[]){t.id}, &res);
    if (rc != 0)
        goto DbError;
    if (PQntuples(res) != 1) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND,
                       "This account has no policy of its own (it inherits one).");
        return;
    }
    if (!cc_req_if_match(req, atoi(PQgetvalue(res, 0, 0)))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The policy changed since it was read; read it again.");
        return;
    }
    cc_audit_t a = {.action = "tenant.mfa_policy_deleted",
                    .target_type = "tenant",
                    .target_id = t.id,
                    .tenant_id = t.id,
                    .msp_id = t.msp_id};
    if ((rc = cc_audit_write(req, &a)) != 0)
        goto DbError;
    if (identity_commit(req))
        cc_res_json(req, 204, NULL);
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

void identity_handle_mfa_enrollment(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){"enrolled", "limit", "cursor", NULL}) != 0)
        return;
    bool failed = false;
    const char *enrolled = cc_req_query(req, "enrolled", &failed);
    if (failed)
        return;
    if (enrolled && strcmp(enrolled, "true") != 0 && strcmp(enrolled, "false") != 0) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "enrolled is true or false.");
        return;
    }
    int limit = 50;
    json_t *keys = NULL;
    if (cc_req_page(req, &limit, &keys) != 0)
        return;
    const char *after = NULL;
    if (keys != NULL) {
        after = json_string_value(json_array_get(keys, 0));
        if (!json_is_array(keys) || json_array_size(keys) != 1 || after == NULL) {
            cc_res_problem(req, CC_ERR_INVALID_CURSOR, "This cursor was not issued here.");
            return;
        }
    }
    identity_tenant_t t;
    if (!identity_tenant_admin(req, "users:manage",
                               "Your roles do not allow seeing the users of this account.", &t) ||
        !identity_begin(req))
        return;
    identity_mfa_policy_t p;
    PGresult *res = NULL;
    int rc = identity_mfa_policy_for(req->db, req->pool, t.id, &p);
    char *types = json_dumps(p.allowed, JSON_COMPACT);
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *pq[] = {t.id, cc_pool_strdup(req->pool, types), enrolled, after, lim};
    free(types);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_enrollment, pq, &res);
    cc_db_rollback(req->db);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    int n = PQntuples(res);
    json_t *items = json_array();
    for (int i = 0; i < n && i < limit; i++) {
        json_t *ft = json_loads(PQgetvalue(res, i, 6), 0, NULL);
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:b, s:o}", "id",
                             PQgetvalue(res, i, 0), "username", PQgetvalue(res, i, 1), "email",
                             cc_db_get(res, i, 2), "first_name", cc_db_get(res, i, 3), "last_name",
                             cc_db_get(res, i, 4), "status", PQgetvalue(res, i, 5), "enrolled",
                             json_array_size(ft) > 0, "factor_types", ft ? ft : json_array()));
    }
    json_t *next = json_null();
    if (n > limit) {
        json_t *k = json_pack("[s]", PQgetvalue(res, limit - 1, 10));
        next = json_string(cc_cursor_encode(req->pool, k));
        json_decref(k);
    }
    json_int_t total = n ? strtoll(PQgetvalue(res, 0, 7), NULL, 10) : 0;
    json_int_t yes = n ? strtoll(PQgetvalue(res, 0, 8), NULL, 10) : 0;
    json_int_t no = n ? strtoll(PQgetvalue(res, 0, 9), NULL, 10) : 0;
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200,
                json_pack("{s:o, s:o, s:I, s:I, s:I, s:O, s:b}", "items", items, "next_cursor",
                          next, "total", total, "enrolled_total", yes, "not_enrolled_total", no,
                          "allowed_factors", p.allowed, "mfa_required", p.mfa_required));
}
