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
 * Records of no account (system events) or of an account since purged belong to the
 * platform's log only.
 *
 * Needs audit:read on the account asked for (tenant_id, default the caller's own), which
 * covers its descendants; newest first, keyset pages on (at, id).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/authz.h"
#include "console/csv.h"
#include "console/json.h"
#include "console/log.h"
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
    " LEFT JOIN tenants.tenant_tree t ON t.id = e.tenant_id"                                       \
    " WHERE (t.path <@ (SELECT p.path FROM tenants.tenant_tree p WHERE p.id = $1::uuid)"           \
    "  OR (t.id IS NULL AND EXISTS (SELECT FROM tenants.tenant_tree p"                             \
    "      WHERE p.id = $1::uuid AND p.kind = 'platform')))"                                       \
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

/* The filters of the log and of its export, read from the query and checked. */
typedef struct {
    const char *tenant_id, *actor, *action, *since, *until;
} audit_filter_t;

static int filter_from_query(cc_req_t *req, const char *const *allowed, audit_filter_t *f)
{
    if (cc_req_query_allowed(req, allowed) != 0)
        return -1;
    bool failed = false;
    f->tenant_id = cc_req_query(req, "tenant_id", &failed);
    f->actor = failed ? NULL : cc_req_query(req, "actor", &failed);
    f->action = failed ? NULL : cc_req_query(req, "action", &failed);
    f->since = failed ? NULL : cc_req_query(req, "since", &failed);
    f->until = failed ? NULL : cc_req_query(req, "until", &failed);
    if (failed)
        return -1;
    if (f->tenant_id == NULL)
        f->tenant_id = req->principal->tenant_id;
    const char *bad = !cc_is_uuid(f->tenant_id)                ? "tenant_id must be an account id."
                      : f->actor && !plain_text(f->actor, 256) ? "actor must be an actor id."
                      : f->action && !plain_text(f->action, 128) ? "action must be an action name."
                      : f->since && !rfc3339(f->since)           ? "since must be an RFC 3339 time."
                      : f->until && !rfc3339(f->until)           ? "until must be an RFC 3339 time."
                                                                 : NULL;
    if (bad != NULL) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "%s", bad);
        return -1;
    }
    return 0;
}

/* 404 for an account the caller cannot see, 403 without audit:read on it. */
static int may_read(cc_req_t *req, const audit_filter_t *f)
{
    user_tenant_t t;
    int rc = users_tenant_get(req->db, req->pool, cc_req_scope(req), f->tenant_id, &t);
    if (rc == CC_ENOENT)
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
    else if (rc != 0)
        cc_res_db_error(req, rc);
    else if (!cc_authz_can(req->authz, "audit:read", t.path))
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Reading the audit log needs audit:read here.");
    else
        return 0;
    return -1;
}

/* One page of events after (after_at, after_id), newest first; limit + 1 rows read. */
static int read_page(cc_req_t *req, cc_pool_t *pool, const audit_filter_t *f, const char *after_at,
                     const char *after_id, int limit, PGresult **rows, PGresult **count)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit + 1);
    const char *pp[] = {f->tenant_id, f->actor, f->action, f->since,
                        f->until,     after_at, after_id,  lim};
    cc_db_step_t steps[] = {{&q_page, pp, rows}, {&q_count, pp, count}};
    return cc_db_read_many(req->db, pool, cc_req_scope(req), steps, count ? 2 : 1);
}

static const char *const columns[] = {"id",          "source",     "at",         "actor",
                                      "actor_kind",  "acting_as",  "tenant_id",  "action",
                                      "target_type", "target_id",  "request_id", "details",
                                      "client_addr", "user_agent", NULL};

/* Row r as a JSON object into b (the list's item and the JSON export's element). */
static void event_json(cc_buf_t *b, PGresult *rows, int r)
{
    cc_buf_putc(b, '{');
    for (int c = 0; columns[c]; c++) {
        if (c == 11) { /* details: the stored JSON text as is */
            cc_jw_key(b, columns[c], false);
            cc_buf_puts(b, PQgetisnull(rows, r, c) ? "{}" : PQgetvalue(rows, r, c));
        } else {
            cc_jw_kv_str(b, columns[c], cc_db_get(rows, r, c), c == 0);
        }
    }
    cc_buf_putc(b, '}');
}

static void event_csv(cc_buf_t *b, PGresult *rows, int r)
{
    for (int c = 0; columns[c]; c++)
        cc_csv_text(b, cc_db_get(rows, r, c), c == 0);
    cc_csv_end(b);
}

void users_handle_audit_events(cc_req_t *req)
{
    static const char *const allowed[] = {"tenant_id", "actor", "action", "since",
                                          "until",     "limit", "cursor", NULL};
    audit_filter_t f;
    if (filter_from_query(req, allowed, &f) != 0)
        return;
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
            !cc_is_uuid(json_string_value(i)) || strcmp(json_string_value(t), f.tenant_id) != 0) {
            cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
            return;
        }
        after_at = json_string_value(a);
        after_id = json_string_value(i);
    }
    if (may_read(req, &f) != 0)
        return;
    PGresult *rows, *count;
    int rc = read_page(req, req->pool, &f, after_at, after_id, limit, &rows, &count);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    int n = PQntuples(rows), shown = n > limit ? limit : n;
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "{\"items\":[");
    for (int r = 0; r < shown; r++) {
        if (r > 0)
            cc_buf_putc(&b, ',');
        event_json(&b, rows, r);
    }
    cc_buf_puts(&b, "],\"next_cursor\":");
    const char *next = NULL;
    if (n > limit) {
        json_t *k = json_pack("[s, s, s]", PQgetvalue(rows, shown - 1, 2),
                              PQgetvalue(rows, shown - 1, 0), f.tenant_id);
        next = cc_cursor_encode(req->pool, k);
        json_decref(k);
    }
    cc_jw_str(&b, next);
    cc_buf_puts(&b, ",\"total\":");
    cc_buf_puts(&b, PQgetvalue(count, 0, 0));
    cc_buf_putc(&b, '}');
    cc_res_text(req, 200, "application/json", b.data, b.len);
    cc_buf_free(&b);
}

/*
 * GET /api/v1/audit-events/export: the same filters, the whole log streamed as CSV (the
 * list's fields as columns, details as its JSON text) or a JSON array, read in keyset
 * pages of 500 so that memory stays flat and no transaction stays open.
 */
void users_handle_audit_export(cc_req_t *req)
{
    static const char *const allowed[] = {"tenant_id", "actor",  "action", "since",
                                          "until",     "format", "bom",    NULL};
    audit_filter_t f;
    cc_export_t e;
    if (filter_from_query(req, allowed, &f) != 0 || cc_req_export(req, &e) != 0 ||
        may_read(req, &f) != 0)
        return;
    enum { BATCH = 500 };
    PGresult *rows;
    int rc = read_page(req, req->pool, &f, NULL, NULL, BATCH, &rows, NULL);
    if (rc != 0) {
        cc_res_db_error(req, rc); /* before the head: still a problem document */
        return;
    }
    cc_buf_t b;
    cc_buf_init(&b);
    if (cc_res_export_start(req, &e, "audit-events", columns, &b) != 0) {
        cc_buf_free(&b);
        return;
    }
    long long written = 0;
    cc_pool_t *page = NULL; /* holds the rows after the first page */
    for (;;) {
        int n = PQntuples(rows), shown = n > BATCH ? BATCH : n;
        for (int r = 0; r < shown; r++, written++) {
            if (e.csv) {
                event_csv(&b, rows, r);
            } else {
                if (written > 0)
                    cc_buf_puts(&b, ",\n");
                event_json(&b, rows, r);
            }
        }
        if (b.len > 0 && cc_res_stream_write(req, b.data, b.len) != 0)
            break; /* the client went away */
        b.len = 0;
        if (n <= BATCH)
            break;
        cc_pool_t *next = cc_pool_new();
        const char *at = cc_pool_strdup(next, PQgetvalue(rows, shown - 1, 2));
        const char *id = cc_pool_strdup(next, PQgetvalue(rows, shown - 1, 0));
        rc = read_page(req, next, &f, at, id, BATCH, &rows, NULL);
        if (page != NULL)
            cc_pool_free(page);
        page = next;
        if (rc != 0) {
            cc_log_error("audit export: a page failed after %lld rows: %s", written,
                         cc_strerror(rc));
            break;
        }
    }
    if (page != NULL)
        cc_pool_free(page);
    cc_res_export_end(req, &e, &b, rc == 0);
    cc_buf_free(&b);
}
