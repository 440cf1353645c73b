/*
 * GET /api/v1/tenants/export?parent_id=&q=&status=&sort=&format=csv|json&bom=true
 *
 * Streamed: pages of 500 rows are read by keyset (each its own short read, so no
 * transaction stays open while a slow client drains), turned into CSV (RFC 4180, CRLF,
 * optional UTF-8 BOM for Excel) or a JSON array, and written to the response stream,
 * which blocks this worker while the client lags: memory stays flat whatever the size.
 * The list is consistent page by page, not one snapshot: a tenant renamed during a long
 * export may appear at its old or new place.
 */
#include <stdio.h>
#include <string.h>

#include "console/authz.h"
#include "console/csv.h"
#include "console/log.h"
#include "tenants.h"

#define BATCH 500

static const char *const columns[] = {
    "id",         "name",       "kind",          "parent_id",         "status",
    "created_at", "created_by", "sources_total", "cloud_usage_bytes", "datastore_usage_bytes",
    NULL};

static void csv_row(cc_buf_t *b, const tenant_t *t)
{
    cc_csv_raw(b, t->id, true);
    cc_csv_text(b, t->name, false);
    cc_csv_raw(b, t->kind, false);
    cc_csv_raw(b, t->parent_id, false);
    cc_csv_raw(b, t->status, false);
    cc_csv_raw(b, t->created_at, false);
    cc_csv_text(b, t->created_by_name, false);
    cc_buf_printf(b, ",%lld,%lld,%lld", t->sources_total, t->cloud_usage_bytes,
                  t->datastore_usage_bytes);
    cc_csv_end(b);
}

void tenants_handle_export(cc_req_t *req)
{
    static const char *const allowed[] = {"parent_id", "q",      "prefix", "status",
                                          "sort",      "format", "bom",    NULL};
    tenant_filter_t f;
    if (cc_req_query_allowed(req, allowed) != 0 || tenants_filter_from_query(req, &f, false) != 0)
        return;
    cc_export_t e;
    if (cc_req_export(req, &e) != 0)
        return;
    /* the first page before the head, so that a database failure is still a problem */
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
    cc_buf_t b;
    cc_buf_init(&b);
    if (cc_res_export_start(req, &e, "tenants", columns, &b) != 0) {
        cc_buf_free(&b);
        return;
    }
    long long rows = 0;
    cc_pool_t *page = NULL; /* holds items after the first page */
    for (;;) {
        int shown = n > f.limit ? f.limit : n;
        for (int i = 0; i < shown; i++, rows++) {
            if (e.csv) {
                csv_row(&b, &items[i]);
            } else {
                if (rows > 0)
                    cc_buf_puts(&b, ",\n");
                tenants_json_write(&b, &items[i]);
            }
        }
        if (b.len > 0 && cc_res_stream_write(req, b.data, b.len) != 0)
            break; /* the client went away */
        b.len = 0;
        if (n <= f.limit)
            break;
        /* the next page after the last row shown, into a fresh pool; the previous
         * page's pool goes once its rows are no longer needed */
        const tenant_t *last = &items[shown - 1];
        cc_pool_t *next = cc_pool_new();
        f.after_key = cc_pool_strdup(next, last->sort_key);
        f.after_id = cc_pool_strdup(next, last->id);
        rc = tenants_list(req->db, next, cc_req_scope(req), &f, &items, &n, NULL, NULL);
        if (page != NULL)
            cc_pool_free(page);
        page = next;
        if (rc != 0) {
            cc_log_error("export: a page failed after %lld rows: %s", rows, cc_strerror(rc));
            break; /* the stream ends short: no closing bracket, or a cut CSV */
        }
    }
    if (page != NULL)
        cc_pool_free(page);
    cc_res_export_end(req, &e, &b, rc == 0);
    cc_buf_free(&b);
}
