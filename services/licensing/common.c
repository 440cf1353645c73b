/*
 * Helpers shared by the licensing handlers: the product's proof checks, the license
 * document of an activation, mail, and the answers of failed store calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/brand.h"
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

/* Appends text's paragraphs (separated by blank lines) as HTML paragraphs. */
static void html_paragraphs(cc_buf_t *out, const char *text)
{
    while (*text) {
        const char *end = strstr(text, "\n\n");
        size_t n = end ? (size_t)(end - text) : strlen(text);
        char *para = cc_strndup(text, n);
        cc_buf_puts(out, "<p>");
        cc_buf_html(out, para);
        cc_buf_puts(out, "</p>");
        free(para);
        text += n;
        while (*text == '\n')
            text++;
    }
}

/* text with its line ends as CRLF (the mail's plain-text part). */
static char *crlf(cc_pool_t *pool, const char *text)
{
    cc_buf_t b;
    cc_buf_init(&b);
    for (const char *c = text; *c; c++) {
        if (*c == '\n')
            cc_buf_puts(&b, "\r");
        cc_buf_printf(&b, "%c", *c);
    }
    char *out = cc_pool_strdup(pool, b.data ? b.data : "");
    cc_buf_free(&b);
    return out;
}

int lic_send_mail(cc_req_t *req, const char *tenant_id, const char *language, const char *to,
                  const lic_mail_t *m)
{
    lic_app_t *app = req->app;
    /* the mail wears the brand of the account that owns the order (its MSP's, or the
     * platform's over the defaults): sender name, Reply-To its support address, its name
     * in the subject; on a failed read the defaults still make a mail */
    cc_brand_t brand;
    int rc = cc_brand_for_tenant(req->db, req->pool, tenant_id, &brand);
    if (rc != 0)
        cc_log_warn("the brand of a licensing mail could not be read: %s", cc_strerror(rc));
    /* in the order's language, else the brand's default language */
    const char *lang = cc_brand_language(&brand, language);
    int l = strcmp(lang, "ja") == 0 ? 1 : 0;
    cc_buf_t html;
    cc_buf_init(&html);
    html_paragraphs(&html, m->body[l]);
    const char *text = cc_pool_printf(req->pool, "%s\r\n", crlf(req->pool, m->body[l]));
    if (m->link != NULL) {
        cc_buf_puts(&html, "<p><a href=\"");
        cc_buf_html(&html, m->link);
        cc_buf_puts(&html, "\">");
        cc_buf_html(&html, m->link_text[l]);
        cc_buf_puts(&html, "</a></p>");
        text = cc_pool_printf(req->pool, "%s\r\n%s\r\n%s\r\n", text, m->link_text[l], m->link);
    }
    cc_brand_message_t bm = {
        .to = to,
        .lang = lang,
        .subject = m->subject[l],
        .text = text,
        .html = cc_pool_strdup(req->pool, html.data ? html.data : ""),
    };
    cc_buf_free(&html);
    rc = cc_brand_mail_send(&app->svc->mail, &brand, app->svc->env.public_url, &bm);
    if (rc != 0)
        cc_log_error("licensing mail could not be sent: %s", cc_strerror(rc));
    return rc;
}

static const cc_stmt_t q_account_inactive =
    CC_STMT("lic_account_inactive",
            "SELECT x.status FROM tenants.tenant_tree x WHERE x.path @> $1::ltree"
            " AND x.status <> 'active' ORDER BY nlevel(x.path) DESC LIMIT 1",
            1);

int lic_account_inactive(cc_req_t *req, const char *tenant_path, const char **status)
{
    PGresult *res;
    *status = NULL;
    int rc = cc_db_query(req->db, req->pool, &q_account_inactive,
                         (const char *const[]){tenant_path}, &res);
    if (rc == 0 && PQntuples(res) > 0)
        *status = PQgetvalue(res, 0, 0);
    return rc;
}

bool lic_account_blocked(cc_req_t *req, const char *tenant_path)
{
    const char *status;
    int rc = lic_account_inactive(req, tenant_path, &status);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return true;
    }
    if (status == NULL)
        return false;
    bool deleted = strcmp(status, "deleted") == 0;
    cc_db_rollback(req->db);
    cc_res_problem(req, CC_ERR_ACCOUNT_INACTIVE,
                   "The account this order belongs to is %s; its licenses cannot be activated "
                   "until it is %s.",
                   deleted ? "deleted" : "suspended", deleted ? "restored" : "resumed");
    return true;
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

bool lic_can_read(cc_req_t *req, const char *path)
{
    return cc_authz_can(req->authz, LIC_PERM_READ, path) ||
           cc_authz_can(req->authz, LIC_PERM_MANAGE, path);
}

static const cc_stmt_t q_account =
    CC_STMT("lic_account", "SELECT path::text FROM tenants.tenant_tree WHERE id = $1::uuid", 1);
static const cc_stmt_t q_order_path =
    CC_STMT("lic_order_path", "SELECT tenant_path::text FROM orders WHERE order_number = $1", 1);

bool lic_view_resolve(cc_req_t *req, const char *tenant_id, const char *order_number,
                      const char **path)
{
    PGresult *res;
    int rc;
    *path = NULL;
    if (order_number != NULL) {
        /* the order must be one the caller sees (its own, or one with licenses
         * sub-allocated to an account it sees) */
        rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_order_path,
                        (const char *const[]){order_number}, &res);
        if (rc != 0) {
            cc_res_db_error(req, rc);
            return false;
        }
        if (PQntuples(res) == 0) {
            cc_res_problem(req, CC_ERR_NOT_FOUND, "No such order.");
            return false;
        }
        if (tenant_id == NULL) {
            *path = PQgetvalue(res, 0, 0);
            if (!lic_can_read(req, *path)) {
                cc_res_problem(req, CC_ERR_FORBIDDEN,
                               "Your roles do not allow reading this order's licensing; ask with "
                               "tenant_id for the licenses allocated to your account.");
                return false;
            }
            return true;
        }
    }
    if (tenant_id == NULL)
        tenant_id = req->principal->tenant_id;
    rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_account,
                    (const char *const[]){tenant_id}, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    if (PQntuples(res) == 0 || !cc_authz_sees(req->authz, PQgetvalue(res, 0, 0))) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return false;
    }
    *path = PQgetvalue(res, 0, 0);
    if (!lic_can_read(req, *path)) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Your roles do not allow reading this account's licensing.");
        return false;
    }
    return true;
}

bool lic_page(cc_req_t *req, const char *bind, size_t nkeys, int *limit, const char **after)
{
    json_t *keys = NULL; /* borrowed: registered on the request's pool */
    for (size_t i = 0; i < nkeys; i++)
        after[i] = NULL;
    if (cc_req_page(req, limit, &keys) != 0)
        return false;
    if (keys == NULL)
        return true;
    /* [key..., bind]: issued by this list for the same filters */
    bool ok = json_is_array(keys) && json_array_size(keys) == nkeys + 1;
    for (size_t i = 0; ok && i <= nkeys; i++) {
        json_t *k = json_array_get(keys, i);
        ok = json_is_string(k) && json_string_length(k) <= 512;
    }
    if (ok)
        ok = strcmp(json_string_value(json_array_get(keys, nkeys)), bind) == 0;
    if (!ok) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return false;
    }
    for (size_t i = 0; i < nkeys; i++)
        after[i] = json_string_value(json_array_get(keys, i)); /* keys live in the pool */
    return true;
}

const char *lic_page_bind(cc_req_t *req, const char *list, const char *const *filters, size_t n)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, list);
    for (size_t i = 0; i < n; i++) {
        cc_buf_puts(&b, "\n");
        cc_buf_puts(&b, filters[i] ? filters[i] : "\x01");
    }
    char hex[65];
    cc_sha256_hex(b.data, b.len, hex);
    cc_buf_free(&b);
    return cc_pool_strndup(req->pool, hex, 16);
}

void lic_res_page(cc_req_t *req, json_t *items, json_t *next_keys, const char *bind,
                  long long total)
{
    const char *next = NULL;
    if (next_keys != NULL) {
        json_array_append_new(next_keys, json_string(bind));
        next = cc_cursor_encode(req->pool, next_keys);
        json_decref(next_keys);
    }
    cc_res_json(req, 200,
                json_pack("{s:o, s:s?, s:I}", "items", items, "next_cursor", next, "total",
                          (json_int_t)total));
}
