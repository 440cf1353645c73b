/*
 * Billing (API.md; the arithmetic is docs/billing.md and schemas/usage/0002_billing.sql):
 *   GET|PUT /api/v1/tenants/{id}/billing-plan
 *   GET /api/v1/billing/export?period=YYYY-MM|YYYY&parent_id=&format=csv|json&bom=true
 *
 * A plan on a customer applies to it; one on an MSP is its customers' default. An export
 * lists one line per customer (with a plan of that period kind: YYYY-MM for monthly
 * plans, YYYY for yearly ones) and resource. An open period is computed on each fetch and
 * marked provisional; once a period has ended and USAGE_SETTLE_DAYS have passed, the
 * first fetch freezes the lines of every customer of the root account (figures, names,
 * plan version) and every fetch then serves the stored lines: the same bytes each time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/csv.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "usage.h"

/* ---- plans ---- */

#define PLAN_COLS                                                                                  \
    "tenant_id, unit, period, price_per_unit::text, currency, measure, tax_rate_pct::text,"        \
    " discount_pct::text, version, updated_at AT TIME ZONE 'UTC'"

static const cc_stmt_t q_plan_get =
    CC_STMT("usage_plan_get",
            "SELECT " PLAN_COLS " FROM billing_plans WHERE tenant_id IN ($1::uuid, $2::uuid)"
            " ORDER BY tenant_id = $1::uuid DESC LIMIT 1",
            2);
static const cc_stmt_t q_plan_lock =
    CC_STMT("usage_plan_lock",
            "SELECT version FROM billing_plans WHERE tenant_id = $1::uuid FOR UPDATE", 1);
static const cc_stmt_t q_plan_put = CC_STMT(
    "usage_plan_put",
    "INSERT INTO billing_plans AS b (tenant_id, msp_id, unit, period, price_per_unit, currency,"
    " measure, tax_rate_pct, discount_pct, updated_by)"
    " VALUES ($1::uuid, $2::uuid, $3, $4, $5::numeric, $6, $7, $8::numeric, $9::numeric, $10)"
    " ON CONFLICT (tenant_id) DO UPDATE SET unit = $3, period = $4, price_per_unit = $5::numeric,"
    " currency = $6, measure = $7, tax_rate_pct = $8::numeric, discount_pct = $9::numeric,"
    " version = b.version + 1, updated_at = now(), updated_by = $10"
    " RETURNING " PLAN_COLS,
    10);
static const cc_stmt_t q_plan_version =
    CC_STMT("usage_plan_version",
            "INSERT INTO billing_plan_versions (tenant_id, version, msp_id, plan, created_by)"
            " VALUES ($1::uuid, $2::integer, $3::uuid, $4::jsonb, $5)",
            5);
static const cc_stmt_t q_currency =
    CC_STMT("usage_currency", "SELECT minor_units FROM currencies WHERE code = $1", 1);

static json_t *plan_json(const PGresult *res, cc_pool_t *pool, const char *for_tenant)
{
    const char *owner = cc_db_get(res, 0, 0);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:i, s:s, s:s?}", "tenant_id",
                     for_tenant, "unit", cc_db_get(res, 0, 1), "period", cc_db_get(res, 0, 2),
                     "price_per_unit", cc_db_get(res, 0, 3), "currency", cc_db_get(res, 0, 4),
                     "measure", cc_db_get(res, 0, 5), "tax_rate_pct", cc_db_get(res, 0, 6),
                     "discount_pct", cc_db_get(res, 0, 7), "version", atoi(PQgetvalue(res, 0, 8)),
                     "updated_at", cc_db_get_time(pool, res, 0, 9), "inherited_from",
                     strcmp(owner, for_tenant) == 0 ? NULL : owner);
}

/* The tenant {id}, visible to the caller and holding perm; answers and returns false. */
static bool plan_tenant(cc_req_t *req, const char *perm, usage_tenant_t *t)
{
    const char *id = cc_req_param(req, "id");
    int rc = id && cc_is_uuid(id) ? usage_tenant_get(req, id, t) : CC_ENOENT;
    if (rc == CC_ENOENT || (rc == 0 && strcmp(t->kind, "platform") == 0)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return false;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    if (!cc_authz_can(req->authz, perm, t->path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow this on this account.");
        return false;
    }
    return true;
}

void usage_handle_plan_get(cc_req_t *req)
{
    usage_tenant_t t;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 ||
        !plan_tenant(req, "billing:read", &t))
        return;
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_plan_get,
                        (const char *[]){t.id, t.parent_id ? t.parent_id : t.id}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (PQntuples(res) == 0) {
        cc_res_problem(req, CC_ERR_NOT_FOUND,
                       "Neither this account nor its MSP has a billing plan.");
        return;
    }
    cc_res_header(req, "etag", cc_pool_printf(req->pool, "\"%s\"", PQgetvalue(res, 0, 8)));
    cc_res_json(req, 200, plan_json(res, req->pool, t.id));
}

/* A decimal string: digits, at most max_int before and max_frac after the point. */
static bool decimal_ok(const char *s, int max_int, int max_frac, int *frac)
{
    int i = 0, f = -1;
    for (; *s; s++) {
        if (*s == '.') {
            if (f >= 0 || i == 0)
                return false;
            f = 0;
        } else if (*s >= '0' && *s <= '9') {
            if (f >= 0)
                f++;
            else
                i++;
        } else {
            return false;
        }
    }
    *frac = f < 0 ? 0 : f;
    return i >= 1 && i <= max_int && f != 0 && *frac <= max_frac;
}

static const char *decimal_field(cc_validator_t *v, json_t *body, const char *field, bool required,
                                 int max_int, int max_frac)
{
    json_t *x = json_object_get(body, field);
    if (x == NULL || json_is_null(x)) {
        if (required)
            cc_v_add(v, field, "required", "%s is required.", field);
        return NULL;
    }
    int frac;
    if (!json_is_string(x)) {
        cc_v_add(v, field, "type", "%s is a decimal string such as \"12.50\".", field);
        return NULL;
    }
    if (!decimal_ok(json_string_value(x), max_int, 64, &frac)) {
        cc_v_add(v, field, "format",
                 "%s is a decimal string such as \"12.50\" (at most %d digits "
                 "before the point).",
                 field, max_int);
        return NULL;
    }
    if (frac > max_frac) {
        cc_v_add(v, field, "too_many_decimals", "%s has more than %d decimals.", field, max_frac);
        return NULL;
    }
    return json_string_value(x);
}

void usage_handle_plan_put(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"unit", "period", "price_per_unit", "currency", "measure",
                                      "tax_rate_pct", "discount_pct", NULL});
    const char *unit = cc_v_enum(&v, body, "unit", true, (const char *const[]){"GB", "TB", NULL});
    const char *period =
        cc_v_enum(&v, body, "period", true, (const char *const[]){"month", "year", NULL});
    const char *price = decimal_field(&v, body, "price_per_unit", true, 12, 6);
    const char *currency = cc_v_string(&v, body, "currency", true, 3, 3, false);
    const char *measure =
        cc_v_enum(&v, body, "measure", false, (const char *const[]){"peak", "average", NULL});
    const char *tax = decimal_field(&v, body, "tax_rate_pct", false, 3, 4);
    const char *discount = decimal_field(&v, body, "discount_pct", false, 3, 4);
    if (tax && atof(tax) > 100) /* format checked: a plain decimal; the bound only */
        cc_v_add(&v, "tax_rate_pct", "range", "tax_rate_pct is from 0 to 100.");
    if (discount && atof(discount) > 100)
        cc_v_add(&v, "discount_pct", "range", "discount_pct is from 0 to 100.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_currency,
                        (const char *[]){currency}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    if (PQntuples(res) == 0) {
        cc_v_add(&v, "currency", "currency",
                 "currency is not an ISO 4217 currency code we price in.");
        cc_res_invalid(req, &v);
        return;
    }
    usage_tenant_t t;
    if (!plan_tenant(req, "billing:manage", &t))
        return;
    if (measure == NULL)
        measure = "peak";
    rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_plan_lock, (const char *[]){t.id}, &res);
    if (rc == 0 && PQntuples(res) == 1 && !cc_req_if_match(req, atoi(PQgetvalue(res, 0, 0)))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The billing plan changed since you read it; read it again.");
        return;
    }
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_plan_put,
                         (const char *[]){t.id, t.msp_id, unit, period, price, currency, measure,
                                          tax, discount, req->principal->sub},
                         &res);
    json_t *out = rc == 0 ? plan_json(res, req->pool, t.id) : NULL;
    if (rc == 0) {
        char *text = json_dumps(out, JSON_COMPACT);
        rc = cc_db_query(
            req->db, req->pool, &q_plan_version,
            (const char *[]){t.id, PQgetvalue(res, 0, 8), t.msp_id, text, req->principal->sub},
            NULL);
        free(text);
    }
    if (rc == 0) {
        cc_audit_t a = {.action = "billing_plan.updated",
                        .target_type = "billing_plan",
                        .target_id = t.id,
                        .tenant_id = t.id,
                        .msp_id = t.msp_id,
                        .details = out};
        rc = cc_audit_write(req, &a);
    }
    if (rc == 0)
        rc = cc_outbox_emit(req->db, req->pool, "billing_plan.updated", t.id, out);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        json_decref(out);
        cc_res_db_error(req, rc);
        return;
    }
    cc_res_header(req, "etag", cc_pool_printf(req->pool, "\"%s\"", PQgetvalue(res, 0, 8)));
    cc_res_json(req, 200, out);
}

/* ---- export ---- */

#define LINE_COLS                                                                                  \
    "period, tenant_id, tenant_name, resource, billable_units::text, unit, unit_price::text,"      \
    " amount::text, currency, measure, usage_bytes::text, days, discount_pct::text,"               \
    " discount_amount::text, tax_rate_pct::text, tax_amount::text, total_amount::text,"            \
    " plan_version"
#define NLINE_COLS 18
static const char *const columns[NLINE_COLS + 1] = {
    "period",      "tenant_id",    "tenant_name",  "resource",        "billable_units",
    "unit",        "unit_price",   "amount",       "currency",        "measure",
    "usage_bytes", "days",         "discount_pct", "discount_amount", "tax_rate_pct",
    "tax_amount",  "total_amount", "plan_version", "provisional"};
/* text columns (the rest are numbers) */
static const bool is_text[NLINE_COLS] = {1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0};

#define ORDER " ORDER BY tenant_name, tenant_id, resource"
static const cc_stmt_t q_open =
    CC_STMT("usage_billing_open",
            "SELECT " LINE_COLS " FROM billing_compute($1, $2, $3::date, least($4::date,"
            " (now() AT TIME ZONE 'UTC')::date), $5::ltree)" ORDER,
            5);
/* the root accounts under a path not frozen yet for the period (each root's path by a key
 * lookup: a join of the two security-barrier views would not use the index) */
static const cc_stmt_t q_roots = CC_STMT(
    "usage_billing_roots",
    "SELECT x.msp_id, (SELECT r.path::text FROM tenants.tenant_tree r WHERE r.id = x.msp_id)"
    " FROM (SELECT DISTINCT t.msp_id FROM tenants.tenant_tree t WHERE t.path <@ $1::ltree"
    " AND t.kind IN ('customer', 'direct')) x"
    " WHERE NOT EXISTS (SELECT 1 FROM billing_frozen f WHERE f.msp_id = x.msp_id"
    " AND f.period = $2)",
    2);
static const cc_stmt_t q_freeze_lock =
    CC_STMT("usage_billing_freeze_lock",
            "SELECT pg_advisory_xact_lock(hashtext('console_billing'), hashtext($1 || $2)),"
            " EXISTS (SELECT 1 FROM billing_frozen WHERE msp_id = $1::uuid AND period = $2)",
            2);
static const cc_stmt_t q_freeze = CC_STMT(
    "usage_billing_freeze",
    "WITH l AS (INSERT INTO billing_lines SELECT * FROM billing_compute($1, $2, $3::date,"
    " $4::date, $5::ltree) ON CONFLICT DO NOTHING RETURNING 1)"
    " INSERT INTO billing_frozen (msp_id, period) SELECT $6::uuid, $1 FROM (SELECT count(*) FROM l)"
    " x",
    6);
/* served as stored, in the export's order (index billing_lines_export) */
static const cc_stmt_t q_frozen = CC_STMT(
    "usage_billing_frozen",
    "SELECT " LINE_COLS " FROM billing_lines WHERE period = $1 AND tenant_path <@ $2::ltree" ORDER,
    2);

typedef struct period {
    char text[8], kind[6], first[11], last[11];
    bool closed, future;
} period_t;

/* ?period=YYYY-MM (monthly plans) or YYYY (yearly); false when malformed. */
static bool period_parse(const char *s, period_t *p)
{
    int y, m = 0;
    char tail;
    size_t n = strlen(s);
    if (n == 7 && sscanf(s, "%4d-%2d%c", &y, &m, &tail) == 2 && s[4] == '-' && m >= 1 && m <= 12) {
        strcpy(p->kind, "month");
    } else if (n == 4 && sscanf(s, "%4d%c", &y, &tail) == 1) {
        strcpy(p->kind, "year");
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return false;
    if (y < 2000 || y > 9998)
        return false;
    snprintf(p->text, sizeof(p->text), "%s", s);
    struct tm first = {.tm_year = y - 1900, .tm_mon = m ? m - 1 : 0, .tm_mday = 1};
    struct tm next = first;
    if (m)
        next.tm_mon++;
    else
        next.tm_year++;
    time_t t_first = timegm(&first), t_next = timegm(&next), now = time(NULL);
    time_t t_last = t_next - 86400;
    struct tm a, b;
    gmtime_r(&t_first, &a);
    gmtime_r(&t_last, &b);
    strftime(p->first, sizeof(p->first), "%Y-%m-%d", &a);
    strftime(p->last, sizeof(p->last), "%Y-%m-%d", &b);
    p->future = t_first > now;
    p->closed = t_next + USAGE_SETTLE_DAYS * 86400 <= now;
    return true;
}

/* Freezes the lines of every root account under path that has none for the period yet,
 * in system scope (the whole root account's customers, whoever fetched first). */
static int freeze(cc_req_t *req, const period_t *p, const char *path)
{
    PGresult *roots;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_roots,
                        (const char *[]){path, p->text}, &roots);
    for (int r = 0; rc == 0 && r < PQntuples(roots); r++) {
        const char *msp = PQgetvalue(roots, r, 0), *root_path = PQgetvalue(roots, r, 1);
        const cc_scope_t system = {.system = true};
        PGresult *res;
        rc = cc_db_begin(req->db, &system);
        if (rc == 0)
            rc = cc_db_query(req->db, req->pool, &q_freeze_lock, (const char *[]){msp, p->text},
                             &res);
        if (rc == 0 && strcmp(PQgetvalue(res, 0, 1), "f") == 0)
            rc = cc_db_query(req->db, req->pool, &q_freeze,
                             (const char *[]){p->text, p->kind, p->first, p->last, root_path, msp},
                             NULL);
        if (rc == 0)
            rc = cc_db_commit(req->db);
        if (rc != 0) {
            cc_log_error("billing: freezing %s failed: %s", p->text, cc_db_errmsg(req->db));
            cc_db_rollback(req->db);
        }
    }
    return rc;
}

static void write_line(cc_buf_t *b, const PGresult *res, int r, bool csv, bool provisional,
                       bool first)
{
    if (!csv)
        cc_buf_puts(b, first ? "{" : ",\n{");
    for (int c = 0; c < NLINE_COLS; c++) {
        const char *v = cc_db_get(res, r, c);
        if (csv) {
            if (is_text[c])
                cc_csv_text(b, v, c == 0);
            else
                cc_csv_raw(b, v ? v : "", c == 0);
        } else if (is_text[c] || (c != 11 && c != 17)) {
            cc_jw_kv_str(b, columns[c], v, c == 0); /* decimals stay strings: exact */
        } else {
            cc_jw_key(b, columns[c], c == 0);
            cc_buf_puts(b, v ? v : "null");
        }
    }
    if (csv) {
        cc_csv_raw(b, provisional ? "true" : "false", false);
        cc_csv_end(b);
    } else {
        cc_buf_printf(b, ",\"provisional\":%s}", provisional ? "true" : "false");
    }
}

/* The export being streamed: lines are written in chunks of rows from a cursor, so the
 * service holds one chunk (EXPORT_CHUNK rows) and 64 KiB of output however long it is. */
#define EXPORT_CHUNK 2000
typedef struct export_stream {
    cc_req_t *req;
    const period_t *p;
    bool csv, bom, started;
    long long rows;
    cc_buf_t b;
} export_stream_t;

/* The head of the answer, once: headers, then the CSV header line or the JSON opening. */
static int export_start(export_stream_t *x)
{
    if (x->started)
        return 0;
    x->started = true;
    cc_req_t *req = x->req;
    cc_res_header(req, "content-disposition",
                  cc_pool_printf(req->pool, "attachment; filename=\"billing-%s.%s\"", x->p->text,
                                 x->csv ? "csv" : "json"));
    cc_res_header(req, "cache-control", "no-store");
    if (cc_res_stream_start(req, 200, x->csv ? "text/csv; charset=utf-8" : "application/json") != 0)
        return CC_ECLOSED;
    if (x->csv) {
        if (x->bom)
            cc_buf_puts(&x->b, CC_CSV_BOM);
        for (int c = 0; c <= NLINE_COLS; c++)
            cc_csv_raw(&x->b, columns[c], c == 0);
        cc_csv_end(&x->b);
    } else {
        cc_buf_printf(&x->b, "{\"period\":\"%s\",\"provisional\":%s,\"items\":[", x->p->text,
                      x->p->closed ? "false" : "true");
    }
    return 0;
}

static int export_chunk(const PGresult *res, void *arg)
{
    export_stream_t *x = arg;
    if (export_start(x) != 0)
        return CC_ECLOSED;
    for (int r = 0; r < PQntuples(res); r++, x->rows++) {
        write_line(&x->b, res, r, x->csv, !x->p->closed, x->rows == 0);
        if (x->b.len >= 64 * 1024) {
            if (cc_res_stream_write(x->req, x->b.data, x->b.len) != 0)
                return CC_ECLOSED; /* the client went away */
            x->b.len = 0;
        }
    }
    return 0;
}

void usage_handle_billing_export(cc_req_t *req)
{
    static const char *const allowed[] = {"period", "parent_id", "format", "bom", NULL};
    if (cc_req_query_allowed(req, allowed) != 0)
        return;
    bool failed = false;
    const char *ptext = cc_req_query(req, "period", &failed);
    if (failed)
        return;
    period_t p;
    if (ptext == NULL || !period_parse(ptext, &p)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "period must be YYYY-MM (monthly plans) or YYYY (yearly plans).");
        return;
    }
    if (p.future) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "The period %s has not started yet.", p.text);
        return;
    }
    export_stream_t x = {.req = req, .p = &p};
    usage_tenant_t parent;
    if (usage_format_query(req, "csv", &x.csv, &x.bom) != 0 ||
        usage_parent_query(req, "billing:read", &parent) != 0)
        return;
    int rc = p.closed ? freeze(req, &p, parent.path) : 0;
    if (rc == 0)
        rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0) {
        cc_buf_init(&x.b);
        if (p.closed)
            rc = cc_db_each(req->db, &q_frozen, (const char *[]){p.text, parent.path}, EXPORT_CHUNK,
                            export_chunk, &x);
        else
            rc = cc_db_each(req->db, &q_open,
                            (const char *[]){p.text, p.kind, p.first, p.last, parent.path},
                            EXPORT_CHUNK, export_chunk, &x);
        cc_db_rollback(req->db); /* read only: nothing to commit */
    }
    if (rc != 0 && rc != CC_ECLOSED)
        cc_log_error("billing export of %s failed after %lld lines: %s", p.text, x.rows,
                     cc_db_errmsg(req->db));
    if (!x.started) {
        if (rc != 0) {
            cc_buf_free(&x.b);
            cc_res_db_error(req, rc);
            return;
        }
        export_start(&x); /* no lines */
    }
    if (rc == CC_ECLOSED) { /* the client went away (or asked for the head only) */
        cc_buf_free(&x.b);
        cc_res_stream_end(req);
        return;
    }
    if (rc != 0) { /* never a short export that looks complete */
        cc_buf_free(&x.b);
        cc_res_stream_abort(req);
        return;
    }
    if (!x.csv)
        cc_buf_puts(&x.b, "]}\n");
    if (x.b.len > 0)
        cc_res_stream_write(req, x.b.data, x.b.len);
    cc_buf_free(&x.b);
    cc_res_stream_end(req);
}
