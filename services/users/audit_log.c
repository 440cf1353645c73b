/*
 * GET /api/v1/audit-events: the audit log of an account and the accounts below it.
 *
 * Every service writes its audit records into its own schema's audit_events table in
 * the transaction of the change (console/audit.h), so the log is read as one UNION ALL
 * over those tables, written into this statement rather than into a view: a view in one
 * schema over the others would make the users schema's migrations depend on every other
 * service having migrated first (each service migrates its own schema when it starts),
 * while a statement is only prepared once the services are up. Each table keeps its own
 * row-level security (root account), and the join with tenants.tenant_tree confines the
 * rows to the accounts the caller sees (subtrees for account admins and tenant roles).
 *
 * Needs audit:read on the account asked for (tenant_id, default the caller's own), which
 * covers its descendants; newest first, keyset pages on (at, id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/authz.h"
#include "console/json.h"
#include "users.h"

#define EVENTS                                                                                     \
    "(SELECT 'identity' AS source, a.* FROM identity.audit_events a"                               \
    " UNION ALL SELECT 'tenants' AS source, a.* FROM tenants.audit_events a"                       \
    " UNION ALL SELECT 'users' AS source, a.* FROM users.audit_events a"                           \
    " UNION ALL SELECT 'roles' AS source, a.* FROM roles.audit_events a"                           \
    " UNION ALL SELECT 'quotas' AS source, a.* FROM quotas.audit_events a"                         \
    " UNION ALL SELECT 'usage' AS source, a.* FROM usage.audit_events a"                           \
    " UNION ALL SELECT 'branding' AS source, a.* FROM branding.audit_events a"                     \
    " UNION ALL SELECT 'licensing' AS source, a.* FROM licensing.audit_events a"                   \
    ") e"
#define WHERE                                                                                      \
    " JOIN tenants.tenant_tree t ON t.id = e.tenant_id"                                            \
    " WHERE t.path <@ (SELECT p.path FROM tenants.tenant_tree p WHERE p.id = $1::uuid)"            \
    " AND ($2::text IS NULL OR e.actor_id = $2) AND ($3::text IS NULL OR e.action = $3)"           \
    " AND ($4::timestamptz IS NULL OR e.at >= $4::timestamptz)"                                    \
    " AND ($5::timestamptz IS NULL OR e.at < $5::timestamptz)"
#define AT "to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define PAGE_COLS                                                                                  \
    "e.id, e.source, " AT ", e.actor_id, e.actor_kind, e.acting_as, e.tenant_id, e.action,"        \
    " e.target_type, e.target_id, e.request_id, e.details::text, e.client_addr, e.user_agent"
#define AFTER " AND ($6::timestamptz IS NULL OR (e.at, e.id) < ($6::timestamptz, $7::uuid))"

static const cc_stmt_t q_page = CC_STMT(
    "audit_log_page",
    "SELECT " PAGE_COLS " FROM " EVENTS WHERE AFTER " ORDER BY e.at DESC, e.id DESC LIMIT $8", 8);
static const cc_stmt_t q_count =
    CC_STMT("audit_log_count", "SELECT count(*) FROM " EVENTS WHERE, 5);

/* RFC 3339 with a Z or an offset, as PostgreSQL then reads it exactly. */
static bool rfc3339(const char *s)
{
    const char *shape = "0000-00-00T00:00:00";
    size_t n = strlen(s);
    if (n < 20 || n > 35)
        return false;
    for (size_t i = 0; i < 19; i++)
        if (shape[i] == '0' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != shape[i])
            return false;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        int d = 0;
        while (*p >= '0' && *p <= '9')
            p++, d++;
        if (d < 1 || d > 6)
            return false;
    }
    if (strcmp(p, "Z") == 0)
        return true;
    return (p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':' && p[1] >= '0' &&
           p[1] <= '9' && p[2] >= '0' && p[2] <= '9' && p[4] >= '0' && p[4] <= '9' && p[5] >= '0' &&
           p[5] <= '9';
}

static bool plain_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

void users_handle_audit_events(cc_req_t *req)
{
    static const char *const params[] = {"tenant_id", "actor", "action", "since",
                                         "until",     "limit", "cursor", NULL};
    if (cc_req_query_allowed(req, params) != 0)
        return;
    bool failed = false;
    const char *tenant_id = cc_req_query(req, "tenant_id", &failed);
    const char *actor = failed ? NULL : cc_req_query(req, "actor", &failed);
    const char *action = failed ? NULL : cc_req_query(req, "action", &failed);
    const char *since = failed ? NULL : cc_req_query(req, "since", &failed);
    const char *until = failed ? NULL : cc_req_query(req, "until", &failed);
    if (failed)
        return;
    if (tenant_id == NULL)
        tenant_id = req->principal->tenant_id;
    const char *bad = !cc_is_uuid(tenant_id)               ? "tenant_id must be an account id."
                      : actor && !plain_text(actor, 256)   ? "actor must be an actor id."
                      : action && !plain_text(action, 128) ? "action must be an action name."
                      : since && !rfc3339(since)           ? "since must be an RFC 3339 time."
                      : until && !rfc3339(until)           ? "until must be an RFC 3339 time."
                                                           : NULL;
    if (bad != NULL) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "%s", bad);
        return;
    }
    int limit;
    json_t *keys = NULL;
    if (cc_req_page(req, &limit, &keys) != 0)
        return;
    const char *after_at = NULL, *after_id = NULL;
    if (keys != NULL) {
        json_t *a = json_array_get(keys, 0), *i = json_array_get(keys, 1),
               *t = json_array_get(keys, 2);
        if (json_array_size(keys) != 3 || !json_is_string(a) || !json_is_string(i) ||
            !json_is_string(t) || !rfc3339(json_string_value(a)) ||
            !cc_is_uuid(json_string_value(i)) || strcmp(json_string_value(t), tenant_id) != 0) {
            cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
            return;
        }
        after_at = json_string_value(a);
        after_id = json_string_value(i);
    }
    user_tenant_t t;
    int rc = users_tenant_get(req->db, req->pool, cc_req_scope(req), tenant_id, &t);
    if (rc != 0) {
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    if (!cc_authz_can(req->authz, "audit:read", t.path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Reading the audit log needs audit:read here.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *pp[] = {tenant_id, actor, action, since, until, after_at, after_id, lim};
    PGresult *rows, *count;
    cc_db_step_t steps[] = {{&q_page, pp, &rows}, {&q_count, pp, &count}};
    if ((rc = cc_db_read_many(req->db, req->pool, cc_req_scope(req), steps, 2)) != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    int n = PQntuples(rows), shown = n > limit ? limit : n;
    json_t *items = json_array();
    for (int r = 0; r < shown; r++) {
        json_t *details = json_loads(PQgetvalue(rows, r, 11), 0, NULL);
        json_array_append_new(
            items,
            json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s, s:s?, s:s?, s:s?, s:o, s:s?, "
                      "s:s?}",
                      "id", PQgetvalue(rows, r, 0), "source", PQgetvalue(rows, r, 1), "at",
                      PQgetvalue(rows, r, 2), "actor", cc_db_get(rows, r, 3), "actor_kind",
                      cc_db_get(rows, r, 4), "acting_as", cc_db_get(rows, r, 5), "tenant_id",
                      cc_db_get(rows, r, 6), "action", PQgetvalue(rows, r, 7), "target_type",
                      cc_db_get(rows, r, 8), "target_id", cc_db_get(rows, r, 9), "request_id",
                      cc_db_get(rows, r, 10), "details", details ? details : json_object(),
                      "client_addr", cc_db_get(rows, r, 12), "user_agent", cc_db_get(rows, r, 13)));
    }
    json_t *next = json_null();
    if (n > limit) {
        json_t *k = json_pack("[s, s, s]", PQgetvalue(rows, shown - 1, 2),
                              PQgetvalue(rows, shown - 1, 0), tenant_id);
        char *c = cc_cursor_encode(req->pool, k);
        json_decref(k);
        if (c != NULL) {
            json_decref(next);
            next = json_string(c);
        }
    }
    cc_res_json(req, 200,
                json_pack("{s:o, s:o, s:I}", "items", items, "next_cursor", next, "total",
                          (json_int_t)atoll(PQgetvalue(count, 0, 0))));
}
