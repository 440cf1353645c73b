/*
 * Helpers shared by the licensing handlers: the product's proof checks, the license
 * document of an activation, mail, and the answers of failed store calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/crypto.h"
#include "console/log.h"
#include "console/mail.h"
#include "licensing.h"

static const cc_stmt_t q_now =
    CC_STMT("lic_now", "SELECT extract(epoch FROM licensing_now())::bigint", 0);
static const cc_stmt_t q_license_lines = CC_STMT(
    "lic_license_lines",
    "SELECT l.product, l.edition, l.license_type, l.unit, l.agents_per_unit, p.quantity,"
    " extract(epoch FROM l.expires_at)::bigint, l.id, o.order_number"
    " FROM pools p JOIN order_lines l ON l.id = p.line_id JOIN orders o ON o.id = l.order_id"
    " WHERE p.activation_id = $1::uuid AND p.quantity > 0 ORDER BY l.position, p.created_at",
    1);
static const cc_stmt_t q_fail_count =
    CC_STMT("lic_fail_count",
            "SELECT failures FROM proof_failures WHERE key_hash = $1"
            " AND window_start > licensing_now() - interval '15 minutes'",
            1);
static const cc_stmt_t q_fail_add =
    CC_STMT("lic_fail_add",
            "INSERT INTO proof_failures AS f (key_hash, window_start, failures)"
            " VALUES ($1, licensing_now(), 1) ON CONFLICT (key_hash) DO UPDATE SET"
            " failures = CASE WHEN f.window_start > licensing_now() - interval '15 minutes'"
            "  THEN f.failures + 1 ELSE 1 END,"
            " window_start = CASE WHEN f.window_start > licensing_now() - interval '15 minutes'"
            "  THEN f.window_start ELSE licensing_now() END",
            1);

int lic_now(cc_db_t *db, cc_pool_t *pool, int64_t *now)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_now, NULL, &res);
    if (rc == 0)
        *now = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    return rc;
}

/* The keys of an order number in proof_failures, case-folded and hashed (never stored):
 * one per client address, one for the order whatever the address. */
static void proof_key(cc_req_t *req, const char *order_number, bool per_client, char out[65])
{
    size_t n = strlen(order_number);
    if (n > 64)
        n = 64;
    char *buf = cc_pool_printf(req->pool, "%.*s\n%s", (int)n, order_number,
                               per_client ? (cc_req_client(req) ? cc_req_client(req) : "?") : "*");
    for (char *c = buf; *c && *c != '\n'; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
    cc_sha256_hex(buf, strlen(buf), out);
}

bool lic_proof_blocked(cc_req_t *req, const char *order_number)
{
    for (int scope = 0; scope < 2; scope++) {
        char key[65];
        proof_key(req, order_number, scope == 0, key);
        PGresult *res;
        int rc = cc_db_query(req->db, req->pool, &q_fail_count, (const char *const[]){key}, &res);
        if (rc != 0) {
            cc_db_rollback(req->db);
            cc_res_db_error(req, rc);
            return true;
        }
        int limit = scope == 0 ? LIC_PROOF_FAILURES : LIC_PROOF_FAILURES_ORDER;
        if (PQntuples(res) > 0 && atoi(PQgetvalue(res, 0, 0)) >= limit) {
            cc_db_rollback(req->db);
            cc_res_header(req, "retry-after", "900");
            cc_res_problem(req, CC_ERR_TOO_MANY_ATTEMPTS,
                           "Too many attempts with a wrong Order ID or Fulfillment Number; try "
                           "again in 15 minutes.");
            return true;
        }
    }
    return false;
}

void lic_proof_failed(cc_req_t *req, const char *order_number)
{
    /* the failure is counted whatever happens to the request's own transaction */
    cc_db_rollback(req->db);
    cc_scope_t system = {.system = true};
    int rc = cc_db_begin(req->db, &system);
    for (int scope = 0; rc == 0 && scope < 2; scope++) {
        char key[65];
        proof_key(req, order_number, scope == 0, key);
        rc = cc_db_query(req->db, req->pool, &q_fail_add, (const char *const[]){key}, NULL);
    }
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_log_warn("could not count a failed order proof: %s", cc_strerror(rc));
    }
    cc_res_problem(req, CC_ERR_ORDER_NOT_FOUND,
                   "No order has this Order ID and Fulfillment Number.");
}

json_t *lic_license_payload(cc_req_t *req, const lic_activation_t *a, int64_t now, int *rc)
{
    PGresult *res;
    const char *params[] = {a->id};
    *rc = cc_db_query(req->db, req->pool, &q_license_lines, params, &res);
    if (*rc != 0)
        return NULL;
    json_t *products = json_array();
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *p =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "order_id", PQgetvalue(res, i, 8),
                      "product", PQgetvalue(res, i, 0), "edition", PQgetvalue(res, i, 1),
                      "license_type", PQgetvalue(res, i, 2), "unit", PQgetvalue(res, i, 3),
                      "quantity", atoi(PQgetvalue(res, i, 5)), "line_id", PQgetvalue(res, i, 7));
        if (!PQgetisnull(res, i, 4))
            json_object_set_new(p, "agents",
                                json_integer((json_int_t)atoi(PQgetvalue(res, i, 4)) *
                                             atoi(PQgetvalue(res, i, 5))));
        if (!PQgetisnull(res, i, 6))
            json_object_set_new(
                p, "expires_at",
                json_string(lic_time(req->pool, strtoll(PQgetvalue(res, i, 6), NULL, 10))));
        json_array_append_new(products, p);
    }
    lic_app_t *app = req->app;
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:i}", "iss",
                            app->svc->env.public_url, "activation_id", a->id, "order_id",
                            a->order_number, "fulfillment_number", a->fulfillment_number, "method",
                            a->method, "email", a->email, "computer_name", a->computer_name,
                            "fingerprint", json_deep_copy(a->fingerprint), "products", products,
                            "issued_at", lic_time(req->pool, now), "iat", (json_int_t)now);
    if (strcmp(a->method, "online") == 0) {
        json_object_set_new(out, "check_in_due_at",
                            json_string(lic_time(req->pool, now + LIC_CHECK_IN_DAYS * LIC_DAY)));
        json_object_set_new(
            out, "grace_ends_at",
            json_string(lic_time(req->pool, now + (LIC_CHECK_IN_DAYS + LIC_GRACE_DAYS) * LIC_DAY)));
    }
    return out;
}

int lic_send_mail(cc_req_t *req, const char *to, const char *subject, const char *intro,
                  const char *link, const char *link_text)
{
    lic_app_t *app = req->app;
    cc_buf_t text, html;
    cc_buf_init(&text);
    cc_buf_init(&html);
    cc_buf_printf(&text, "%s\r\n\r\n%s\r\n%s\r\n", intro, link_text, link);
    cc_buf_puts(&html, "<!doctype html><html><body><p>");
    cc_buf_html(&html, intro);
    cc_buf_puts(&html, "</p><p><a href=\"");
    cc_buf_html(&html, link);
    cc_buf_puts(&html, "\">");
    cc_buf_html(&html, link_text);
    cc_buf_puts(&html, "</a></p></body></html>");
    cc_mail_t m = {.from_name = "Console Registration",
                   .to = to,
                   .subject = subject,
                   .text = text.data,
                   .html = html.data};
    int rc = cc_mail_send(&app->svc->mail, &m);
    if (rc != 0)
        cc_log_error("licensing mail could not be sent: %s", cc_strerror(rc));
    cc_buf_free(&text);
    cc_buf_free(&html);
    return rc;
}

const char *lic_platform_address(cc_req_t *req)
{
    lic_app_t *app = req->app;
    const char *from = app->svc->mail.envelope_from;
    return from && *from ? from : "licensing@localhost";
}

int lic_audit(cc_req_t *req, const char *action, const char *type, const char *id,
              const char *msp_id, json_t *details)
{
    cc_audit_t a = {.action = action,
                    .target_type = type,
                    .target_id = id,
                    .tenant_id = NULL,
                    .msp_id = msp_id,
                    .details = details};
    int rc = cc_audit_write(req, &a);
    json_decref(details);
    return rc;
}

void lic_res_items(cc_req_t *req, json_t *items)
{
    size_t total = json_array_size(items);
    cc_res_json(
        req, 200,
        json_pack("{s:o, s:n, s:I}", "items", items, "next_cursor", "total", (json_int_t)total));
}
