/*
 * Reports (API.md): GET /api/v1/reports/{account-details, jobs-24h, sources, protection,
 * data-transfer, stored-data}?parent_id=&q=&sort=&format=json|csv&bom=true
 *
 * A report is data in the table below: its columns and one SQL statement over the
 * rollups (never raw samples), for the customer and direct accounts at or under
 * parent_id (default: the caller's account) that the caller sees. The caller needs
 * reports:read on parent_id; row-level security confines every table to the caller's
 * root account and tenants.tenant_tree to its subtrees. One handler serves them all:
 * filter (q: a case-insensitive substring of the name), sort (any column, "-" for
 * descending, then by tenant id), JSON ({items, total}) or CSV (RFC 4180, ?bom=true).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/authz.h"
#include "console/csv.h"
#include "console/json.h"
#include "console/log.h"
#include "usage.h"

/* the accounts of a report: $1 parent, $2 search text ('' = all) */
#define CUSTOMERS                                                                                  \
    "WITH c AS (SELECT t.id, t.name, t.status, t.created_at FROM tenants.tenant_tree t"            \
    " WHERE t.path <@ (SELECT p.path FROM tenants.tenant_tree p WHERE p.id = $1::uuid)"            \
    " AND t.kind IN ('customer', 'direct') AND t.status <> 'deleted'"                              \
    " AND ($2 = '' OR strpos(lower(t.name), lower($2)) > 0)) "

typedef struct report_col {
    const char *name;
    char type; /* s: text, i: integer or decimal (unquoted), t: timestamp (UTC) */
} report_col_t;

#define MAX_COLS 14

typedef struct report {
    const char *path; /* the last segment of /api/v1/reports/... */
    const char *sql;  /* columns in order; the last one is the tenant id (order tie-break) */
    report_col_t cols[MAX_COLS];
    const char *default_sort;
} report_t;

static const report_t reports[] = {
    {"account-details",
     CUSTOMERS "SELECT c.name, c.status, coalesce(tt.cloud_usage_bytes, 0) AS cloud_usage_bytes,"
               " q.cloud AS cloud_quota_bytes,"
               " coalesce(tt.datastore_usage_bytes, 0) AS datastore_usage_bytes,"
               " q.datastore AS datastore_quota_bytes,"
               " round(greatest(coalesce(tt.cloud_usage_bytes, 0) * 100.0 / nullif(q.cloud, 0),"
               " coalesce(tt.datastore_usage_bytes, 0) * 100.0 / nullif(q.datastore, 0)), 2)"
               " AS quota_used_pct,"
               " c.created_at AT TIME ZONE 'UTC' AS created_at,"
               " coalesce(tt.agent_sources, 0) AS agent_sources,"
               " coalesce(tt.agentless_sources, 0) AS agentless_sources,"
               " coalesce(tt.unc_sources, 0) AS unc_sources, c.id AS tenant_id"
               " FROM c LEFT JOIN tenant_totals tt ON tt.tenant_id = c.id"
               /* both limits in one lookup of the quotas service's published view */
               " CROSS JOIN LATERAL (SELECT"
               " max(ql.limit_bytes) FILTER (WHERE ql.resource = 'cloud_storage') AS cloud,"
               " max(ql.limit_bytes) FILTER (WHERE ql.resource = 'datastore') AS datastore"
               " FROM quotas.quota_limits ql WHERE ql.tenant_id = c.id) q",
     {{"name", 's'},
      {"status", 's'},
      {"cloud_usage_bytes", 'i'},
      {"cloud_quota_bytes", 'i'},
      {"datastore_usage_bytes", 'i'},
      {"datastore_quota_bytes", 'i'},
      {"quota_used_pct", 'i'},
      {"created_at", 't'},
      {"agent_sources", 'i'},
      {"agentless_sources", 'i'},
      {"unc_sources", 'i'}},
     "name"},
    {"jobs-24h",
     CUSTOMERS "SELECT c.id AS tenant_id, c.name, j.completed, j.warning, j.failed, j.not_run,"
               " j.canceled, j.total, c.id"
               " FROM c CROSS JOIN LATERAL (SELECT"
               " count(*) FILTER (WHERE e.status = 'completed') AS completed,"
               " count(*) FILTER (WHERE e.status = 'warning') AS warning,"
               " count(*) FILTER (WHERE e.status = 'failed') AS failed,"
               " count(*) FILTER (WHERE e.status = 'not_run') AS not_run,"
               " count(*) FILTER (WHERE e.status = 'canceled') AS canceled, count(*) AS total"
               " FROM job_events e WHERE e.tenant_id = c.id"
               " AND e.finished_at > now() - interval '24 hours') j",
     {{"tenant_id", 's'},
      {"name", 's'},
      {"completed", 'i'},
      {"warning", 'i'},
      {"failed", 'i'},
      {"not_run", 'i'},
      {"canceled", 'i'},
      {"total", 'i'}},
     "name"},
    {"sources",
     CUSTOMERS
     "SELECT c.id AS tenant_id, c.name, coalesce(tt.agent_sources, 0) AS agent,"
     " coalesce(tt.agentless_sources, 0) AS agentless, coalesce(tt.unc_sources, 0) AS unc,"
     " coalesce(tt.sources_total - tt.agent_sources - tt.agentless_sources - tt.unc_sources, 0)"
     " AS unknown, coalesce(tt.sources_total, 0) AS total, c.id"
     " FROM c LEFT JOIN tenant_totals tt ON tt.tenant_id = c.id",
     {{"tenant_id", 's'},
      {"name", 's'},
      {"agent", 'i'},
      {"agentless", 'i'},
      {"unc", 'i'},
      {"unknown", 'i'},
      {"total", 'i'}},
     "name"},
    /* each source in one state: no policy (never a job), missed (its last job did not run,
     * or it has not finished one for 24 h), failed, canceled, protected (last job completed
     * or warning within 24 h) */
    {"protection",
     CUSTOMERS
     "SELECT c.id AS tenant_id, c.name, s.protected, s.no_policy, s.missed, s.failed,"
     " s.canceled, c.id"
     " FROM c CROSS JOIN LATERAL (SELECT"
     " count(*) FILTER (WHERE so.last_status IN ('completed', 'warning')"
     " AND so.last_job_at > now() - interval '24 hours') AS protected,"
     " count(*) FILTER (WHERE so.last_status IS NULL) AS no_policy,"
     " count(*) FILTER (WHERE so.last_status = 'not_run' OR (so.last_status IN ('completed',"
     " 'warning') AND so.last_job_at <= now() - interval '24 hours')) AS missed,"
     " count(*) FILTER (WHERE so.last_status = 'failed') AS failed,"
     " count(*) FILTER (WHERE so.last_status = 'canceled') AS canceled"
     " FROM sources so WHERE so.tenant_id = c.id) s",
     {{"tenant_id", 's'},
      {"name", 's'},
      {"protected", 'i'},
      {"no_policy", 'i'},
      {"missed", 'i'},
      {"failed", 'i'},
      {"canceled", 'i'}},
     "name"},
    /* the last 30 UTC days, today included */
    {"data-transfer",
     CUSTOMERS "SELECT c.id AS tenant_id, c.name, coalesce(j.bytes, 0) AS bytes_transferred_30d,"
               " coalesce(j.jobs, 0) AS jobs_30d, c.id"
               " FROM c CROSS JOIN LATERAL (SELECT sum(d.bytes_transferred) AS bytes,"
               " sum(d.completed + d.warning + d.failed + d.not_run + d.canceled) AS jobs"
               " FROM daily_jobs d WHERE d.tenant_id = c.id"
               " AND d.day > (now() AT TIME ZONE 'UTC')::date - 30) j",
     {{"tenant_id", 's'}, {"name", 's'}, {"bytes_transferred_30d", 'i'}, {"jobs_30d", 'i'}},
     "name"},
    /* now and the peak of the last 30 UTC days (from the daily rollup) */
    {"stored-data",
     CUSTOMERS
     "SELECT c.id AS tenant_id, c.name, coalesce(tt.cloud_usage_bytes, 0) AS cloud_usage_bytes,"
     " coalesce(tt.datastore_usage_bytes, 0) AS datastore_usage_bytes,"
     " coalesce(tt.cloud_usage_bytes, 0) + coalesce(tt.datastore_usage_bytes, 0) AS total_bytes,"
     /* the peak of the days: the value carried into the first day or a later change */
     " greatest(coalesce((SELECT d.used_bytes FROM daily_usage d WHERE d.tenant_id = c.id"
     " AND d.resource = 'cloud_storage' AND d.day <= (now() AT TIME ZONE 'UTC')::date - 29"
     " ORDER BY d.day DESC LIMIT 1), 0), (SELECT max(d.used_bytes) FROM daily_usage d"
     " WHERE d.tenant_id = c.id AND d.resource = 'cloud_storage'"
     " AND d.day > (now() AT TIME ZONE 'UTC')::date - 29))"
     " AS cloud_peak_30d_bytes, c.id"
     " FROM c LEFT JOIN tenant_totals tt ON tt.tenant_id = c.id",
     {{"tenant_id", 's'},
      {"name", 's'},
      {"cloud_usage_bytes", 'i'},
      {"datastore_usage_bytes", 'i'},
      {"total_bytes", 'i'},
      {"cloud_peak_30d_bytes", 'i'}},
     "name"},
};
#define NREPORTS (sizeof(reports) / sizeof(reports[0]))

static size_t ncols(const report_t *r)
{
    size_t n = 0;
    while (n < MAX_COLS && r->cols[n].name != NULL)
        n++;
    return n;
}

/* One statement per report, column and direction, built on first use (SQL text constant
 * per combination, so each is prepared once per connection). */
static cc_stmt_t stmts[NREPORTS][MAX_COLS][2];
static pthread_once_t stmts_once = PTHREAD_ONCE_INIT;

static void stmts_build(void)
{
    for (size_t r = 0; r < NREPORTS; r++)
        for (size_t c = 0; c < ncols(&reports[r]); c++)
            for (int d = 0; d < 2; d++) {
                stmts[r][c][d].name = cc_aprintf("usage_report_%zu_%zu_%d", r, c, d);
                /* sort by column number (the column names are the table's constants) */
                stmts[r][c][d].sql =
                    cc_aprintf("%s ORDER BY %zu %s NULLS LAST, %zu", reports[r].sql, c + 1,
                               d ? "DESC" : "ASC", ncols(&reports[r]) + 1);
                stmts[r][c][d].nparams = 2;
            }
}

static const cc_stmt_t q_tenant =
    CC_STMT("usage_tenant_get",
            "SELECT id, name, kind, path::text, msp_id, status, parent_id FROM tenants.tenant_tree"
            " WHERE id = $1::uuid",
            1);

int usage_tenant_get(cc_req_t *req, const char *id, usage_tenant_t *out)
{
    PGresult *res;
    int rc =
        cc_db_read(req->db, req->pool, cc_req_scope(req), &q_tenant, (const char *[]){id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    out->id = cc_db_get(res, 0, 0);
    out->name = cc_db_get(res, 0, 1);
    out->kind = cc_db_get(res, 0, 2);
    out->path = cc_db_get(res, 0, 3);
    out->msp_id = cc_db_get(res, 0, 4);
    out->status = cc_db_get(res, 0, 5);
    out->parent_id = cc_db_get(res, 0, 6);
    return 0;
}

int usage_format_query(cc_req_t *req, const char *default_format, bool *csv, bool *bom)
{
    bool failed = false;
    const char *format = cc_req_query(req, "format", &failed);
    const char *b = failed ? NULL : cc_req_query(req, "bom", &failed);
    if (failed)
        return -1;
    if (format == NULL)
        format = default_format;
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "format must be csv or json.");
        return -1;
    }
    if (b != NULL && strcmp(b, "true") != 0 && strcmp(b, "false") != 0) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "bom must be true or false.");
        return -1;
    }
    *csv = strcmp(format, "csv") == 0;
    *bom = b != NULL && strcmp(b, "true") == 0;
    return 0;
}

int usage_parent_query(cc_req_t *req, const char *perm, usage_tenant_t *parent)
{
    bool failed = false;
    const char *parent_id = cc_req_query(req, "parent_id", &failed);
    if (failed)
        return -1;
    if (parent_id == NULL)
        parent_id = req->principal->tenant_id;
    if (!cc_is_uuid(parent_id)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "parent_id must be an account id.");
        return -1;
    }
    int rc = usage_tenant_get(req, parent_id, parent);
    if (rc == CC_ENOENT) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return -1;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return -1;
    }
    if (!cc_authz_can(req->authz, perm, parent->path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow this on this account.");
        return -1;
    }
    return 0;
}

void usage_handle_report(cc_req_t *req)
{
    static const char *const allowed[] = {"parent_id", "q", "sort", "format", "bom", NULL};
    const char *name = strrchr(req->path, '/') + 1;
    const report_t *rep = NULL;
    size_t ri = 0;
    for (; ri < NREPORTS; ri++)
        if (strcmp(reports[ri].path, name) == 0) {
            rep = &reports[ri];
            break;
        }
    if (rep == NULL) {
        cc_res_problem(req, CC_ERR_ROUTE_NOT_FOUND, "No such report.");
        return;
    }
    if (cc_req_query_allowed(req, allowed) != 0)
        return;
    bool failed = false, csv, bom;
    const char *q = cc_req_query(req, "q", &failed);
    const char *sort = failed ? NULL : cc_req_query(req, "sort", &failed);
    if (failed || usage_format_query(req, "json", &csv, &bom) != 0)
        return;
    if (q == NULL)
        q = "";
    if (cc_utf8_length(q, strlen(q)) > 128) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "q is longer than 128 characters.");
        return;
    }
    for (const char *p = q; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "q holds a control character.");
            return;
        }
    if (sort == NULL)
        sort = rep->default_sort;
    bool desc = sort[0] == '-';
    size_t n = ncols(rep), col = n;
    for (size_t c = 0; c < n; c++)
        if (strcmp(rep->cols[c].name, sort + desc) == 0)
            col = c;
    if (col == n) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "sort must be one of the report's columns, optionally with a leading '-'.");
        return;
    }
    usage_tenant_t parent;
    if (usage_parent_query(req, "reports:read", &parent) != 0)
        return;
    pthread_once(&stmts_once, stmts_build);
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &stmts[ri][col][desc],
                        (const char *[]){parent.id, q}, &res);
    if (rc != 0) {
        cc_log_error("report %s failed: %s", rep->path, cc_db_errmsg(req->db));
        cc_res_db_error(req, rc);
        return;
    }
    cc_buf_t b;
    cc_buf_init(&b);
    int rows = PQntuples(res);
    if (csv) {
        if (bom)
            cc_buf_puts(&b, CC_CSV_BOM);
        for (size_t c = 0; c < n; c++)
            cc_csv_raw(&b, rep->cols[c].name, c == 0);
        cc_csv_end(&b);
    } else {
        cc_buf_puts(&b, "{\"items\":[");
    }
    for (int r = 0; r < rows; r++) {
        if (!csv)
            cc_buf_puts(&b, r ? ",{" : "{");
        for (size_t c = 0; c < n; c++) {
            const report_col_t *k = &rep->cols[c];
            const char *v = k->type == 't' ? cc_db_get_time(req->pool, res, r, (int)c)
                                           : cc_db_get(res, r, (int)c);
            if (csv) {
                if (k->type == 's')
                    cc_csv_text(&b, v, c == 0);
                else
                    cc_csv_raw(&b, v ? v : "", c == 0);
            } else if (k->type == 'i') {
                cc_jw_key(&b, k->name, c == 0);
                cc_buf_puts(&b, v ? v : "null");
            } else {
                cc_jw_kv_str(&b, k->name, v, c == 0);
            }
        }
        if (csv)
            cc_csv_end(&b);
        else
            cc_buf_putc(&b, '}');
    }
    if (!csv)
        cc_buf_printf(&b, "],\"next_cursor\":null,\"total\":%d}", rows);
    if (csv) {
        cc_res_header(req, "content-disposition",
                      cc_pool_printf(req->pool, "attachment; filename=\"%s.csv\"", rep->path));
        cc_res_text(req, 200, "text/csv; charset=utf-8", b.data, b.len);
    } else {
        cc_res_text(req, 200, "application/json", b.data, b.len);
    }
    cc_buf_free(&b);
}
