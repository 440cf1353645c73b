/*
 * The licensing portal (API.md, Licensing), for callers with a bearer token: orders
 * (added by the platform operator, listed as the order history of an account), license
 * pools (Default (Unassigned Licenses) and one pool per server or per customer), the
 * activation views (which method activated each server, the fulfillment numbers in use),
 * product keys, and the MSP's usage per customer.
 *
 * Visibility: row-level security confines every statement to the caller's subtrees; the
 * handlers add the licensing:manage check on the order's account. An order the caller
 * cannot see answers 404 like one that does not exist.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "console/log.h"
#include "licensing.h"

#define PERM "licensing:manage"
#define TS(col) "(" col " AT TIME ZONE 'UTC')"

static const cc_stmt_t q_tenant =
    CC_STMT("lic_tenant",
            "SELECT id, path::text, msp_id, kind, status FROM tenants.tenant_tree"
            " WHERE id = $1::uuid",
            1);
static const cc_stmt_t q_order_insert = CC_STMT(
    "lic_order_insert",
    "INSERT INTO orders (id, tenant_id, msp_id, tenant_path, order_number, fulfillment_number,"
    " end_user_email, renews_order, created_by, language) VALUES ($1::uuid, $2::uuid, $3::uuid,"
    " $4::ltree, $5, $6, $7, $8::uuid, $9, $10)",
    10);
/* a renewal (FAQ 3.9) extends the term from the renewed line's end (or from now when it
 * has lapsed) */
static const cc_stmt_t q_line_insert = CC_STMT(
    "lic_line_insert",
    "WITH l AS (INSERT INTO order_lines (id, order_id, msp_id, tenant_path, position, product,"
    " edition, quantity, license_type, term_months, unit, agents_per_unit, keys_capped,"
    " expires_at) SELECT gen_random_uuid(), o.id, o.msp_id, o.tenant_path, $2::int, $3, $4,"
    " $5::int, $6, $7::int, $8, $9::int, $10::boolean,"
    " CASE WHEN $6 = 'subscription' THEN greatest(licensing_now(), coalesce((SELECT"
    " max(r.expires_at) FROM order_lines r WHERE r.order_id = o.renews_order AND r.product = $3"
    " AND r.edition = $4), licensing_now())) + make_interval(months => $7::int) END"
    " FROM orders o WHERE o.id = $1::uuid RETURNING *)"
    " INSERT INTO pools (id, order_id, line_id, msp_id, tenant_id, tenant_path, name, quantity,"
    " is_default) SELECT gen_random_uuid(), l.order_id, l.id, l.msp_id, o.tenant_id,"
    " l.tenant_path, 'Default (Unassigned Licenses)', l.quantity, true FROM l JOIN orders o"
    " ON o.id = l.order_id",
    10);
#define ORDER_COLS                                                                                 \
    "o.id, o.order_number, o.fulfillment_number, o.end_user_email, o.account_email, o.method,"     \
    " o.tenant_id, " TS(                                                                           \
        "o.created_at") ", o.tenant_path::text, r.order_number,"                                   \
                        " (SELECT coalesce(json_agg(json_build_object('id', l.id, 'product', "     \
                        "l.product, 'edition',"                                                    \
                        " l.edition, 'quantity', l.quantity, 'license_type', l.license_type, "     \
                        "'term_months',"                                                           \
                        " l.term_months, 'unit', l.unit, 'agents_per_unit', l.agents_per_unit, "   \
                        "'keys_capped',"                                                           \
                        " l.keys_capped, 'expires_at', to_char(l.expires_at AT TIME ZONE 'UTC',"   \
                        " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), 'unassigned', (SELECT d.quantity "    \
                        "FROM pools d"                                                             \
                        " WHERE d.line_id = l.id AND d.is_default)) ORDER BY l.position), "        \
                        "'[]')::text"                                                              \
                        " FROM order_lines l WHERE l.order_id = o.id), o.language"
static const cc_stmt_t q_order_get =
    CC_STMT("lic_order_get",
            "SELECT " ORDER_COLS " FROM orders o LEFT JOIN orders r ON r.id = o.renews_order"
            " WHERE o.id = $1::uuid",
            1);
static const cc_stmt_t q_order_by_number =
    CC_STMT("lic_order_by_number",
            "SELECT " ORDER_COLS " FROM orders o LEFT JOIN orders r ON r.id = o.renews_order"
            " WHERE o.order_number = $1",
            1);
/* the order history of an account: its own orders and those with licenses sub-allocated to
 * it (or to an account under it), newest first */
static const cc_stmt_t q_order_list = CC_STMT(
    "lic_order_list",
    "WITH m AS (SELECT o.id FROM orders o WHERE (o.tenant_path <@ $1::ltree OR EXISTS (SELECT 1"
    " FROM pools p WHERE p.order_id = o.id AND NOT p.is_default AND p.tenant_path <@ $1::ltree))"
    " AND ($2::text IS NULL OR lower(o.account_email) = lower($2)))"
    " SELECT " ORDER_COLS ", (SELECT count(*) FROM m) FROM m JOIN orders o ON o.id = m.id"
    " LEFT JOIN orders r ON r.id = o.renews_order"
    " WHERE ($3::text IS NULL OR (o.created_at, o.id) < ($3::timestamp AT TIME ZONE 'UTC',"
    " $4::uuid)) ORDER BY o.created_at DESC, o.id DESC LIMIT $5::int + 1",
    5);

static const char *const order_fields[] = {
    "order_id", "fulfillment_number", "end_user_email", "tenant_id", "renews", "lines", "language",
    NULL};
static const char *const line_fields[] = {"product",         "edition",     "quantity",
                                          "license_type",    "term_months", "unit",
                                          "agents_per_unit", "keys_capped", NULL};

static bool id_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

static void res_db(cc_req_t *req, int rc)
{
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

/* The JSON of an order row. */
static json_t *order_json(const PGresult *res, int i, cc_pool_t *pool)
{
    json_t *lines = json_loads(PQgetvalue(res, i, 10), 0, NULL);
    return json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:o, s:s?}", "id",
                     PQgetvalue(res, i, 0), "order_id", PQgetvalue(res, i, 1), "fulfillment_number",
                     PQgetvalue(res, i, 2), "end_user_email", cc_db_get(res, i, 3), "account_email",
                     cc_db_get(res, i, 4), "method", cc_db_get(res, i, 5), "tenant_id",
                     PQgetvalue(res, i, 6), "created_at", cc_db_get_time(pool, res, i, 7), "renews",
                     cc_db_get(res, i, 9), "lines", lines ? lines : json_array(), "language",
                     cc_db_get(res, i, 11));
}

/* ---- orders ---- */

void lic_handle_order_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, order_fields);
    const char *number = cc_v_string(&v, body, "order_id", true, 1, 64, true);
    const char *fulfillment = cc_v_string(&v, body, "fulfillment_number", true, 1, 64, true);
    const char *end_user = cc_v_string(&v, body, "end_user_email", false, 3, 254, true);
    const char *tenant_id = cc_v_uuid(&v, body, "tenant_id", true);
    const char *renews = cc_v_string(&v, body, "renews", false, 1, 64, true);
    /* the buyer's language for the order's mails; absent: the brand's default language */
    const char *language =
        cc_v_enum(&v, body, "language", false, (const char *const[]){"en", "ja", NULL});
    if (number && !id_ok(number))
        cc_v_add(&v, "order_id", "format", "order_id takes letters, digits and . _ - only.");
    if (fulfillment && !id_ok(fulfillment))
        cc_v_add(&v, "fulfillment_number", "format",
                 "fulfillment_number takes letters, digits and . _ - only.");
    if (end_user && !cc_email_valid(end_user))
        cc_v_add(&v, "end_user_email", "format", "end_user_email is not an e-mail address.");
    json_t *lines = json_object_get(body, "lines");
    if (!json_is_array(lines) || json_array_size(lines) < 1 || json_array_size(lines) > 100)
        cc_v_add(&v, "lines", json_is_array(lines) ? "range" : "required",
                 "lines must be an array of 1 to 100 order lines.");
    size_t nlines = json_is_array(lines) ? json_array_size(lines) : 0;
    if (nlines > 100)
        nlines = 0;
    struct line {
        const char *product, *edition, *type, *unit;
        char qty[16], term[16], agents[16];
        bool has_term, has_agents, capped;
    } *ls = cc_pool_alloc(req->pool, sizeof(*ls) * (nlines ? nlines : 1));
    for (size_t i = 0; i < nlines; i++) {
        json_t *l = json_array_get(lines, i);
        cc_validator_t lv;
        cc_v_init(&lv, req->pool);
        if (!cc_v_object(&lv, l, line_fields)) {
            cc_v_add(&v, cc_pool_printf(req->pool, "lines[%zu]", i), "type",
                     "an order line is an object.");
            continue;
        }
        ls[i].product = cc_v_string(&lv, l, "product", true, 1, 128, true);
        ls[i].edition = cc_v_string(&lv, l, "edition", true, 1, 64, true);
        bool present;
        int64_t q = cc_v_int(&lv, l, "quantity", true, 1, 1000000, &present);
        ls[i].type = cc_v_enum(&lv, l, "license_type", true,
                               (const char *const[]){"perpetual", "subscription", NULL});
        int64_t term = cc_v_int(&lv, l, "term_months", false, 1, 120, &ls[i].has_term);
        ls[i].unit = cc_v_enum(&lv, l, "unit", false,
                               (const char *const[]){"server", "socket", "host", NULL});
        int64_t agents = cc_v_int(&lv, l, "agents_per_unit", false, 1, 100000, &ls[i].has_agents);
        ls[i].capped = cc_v_bool(&lv, l, "keys_capped", false, false);
        if (ls[i].type && (strcmp(ls[i].type, "subscription") == 0) != ls[i].has_term)
            cc_v_add(&lv, "term_months", ls[i].has_term ? "forbidden" : "required",
                     "term_months is given for a subscription, and only for one.");
        snprintf(ls[i].qty, sizeof(ls[i].qty), "%lld", (long long)q);
        snprintf(ls[i].term, sizeof(ls[i].term), "%lld", (long long)term);
        snprintf(ls[i].agents, sizeof(ls[i].agents), "%lld", (long long)agents);
        if (ls[i].unit == NULL)
            ls[i].unit = "server";
        size_t k;
        json_t *e;
        json_array_foreach(lv.errors, k, e)
        {
            cc_v_add(&v,
                     cc_pool_printf(req->pool, "lines[%zu].%s", i,
                                    json_string_value(json_object_get(e, "field"))),
                     json_string_value(json_object_get(e, "code")), "%s",
                     json_string_value(json_object_get(e, "message")));
        }
        if (lv.unknown_field && !v.unknown_field)
            v.unknown_field = cc_pool_printf(req->pool, "lines[%zu].%s", i, lv.unknown_field);
    }
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (!req->authz->platform) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Only the platform operator adds orders.");
        return;
    }
    if (cc_idem_replay(req) != 0)
        return;
    PGresult *res;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_tenant, (const char *const[]){tenant_id}, &res);
    if (rc != 0)
        return res_db(req, rc);
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 4), "deleted") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such account.");
        return;
    }
    const char *path = PQgetvalue(res, 0, 1), *msp_id = PQgetvalue(res, 0, 2);
    const char *renews_ref = NULL;
    if (renews != NULL) {
        PGresult *r;
        if ((rc = cc_db_query(req->db, req->pool, &q_order_by_number, (const char *const[]){renews},
                              &r)) != 0)
            return res_db(req, rc);
        if (PQntuples(r) == 0 || strcmp(PQgetvalue(r, 0, 6), tenant_id) != 0) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_ORDER_NOT_FOUND, "renews names no order of this account.");
            return;
        }
        renews_ref = PQgetvalue(r, 0, 0);
    }
    char id[37];
    cc_uuid_new(id);
    const char *p[] = {
        id,         tenant_id,           msp_id,  path, number, fulfillment, end_user,
        renews_ref, req->principal->sub, language};
    rc = cc_db_query(req->db, req->pool, &q_order_insert, p, NULL);
    if (rc == CC_EDB && strcmp(cc_db_sqlstate(req->db), "23505") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_ORDER_EXISTS, "Order %s is already registered.", number);
        return;
    }
    for (size_t i = 0; rc == 0 && i < nlines; i++) {
        char pos[16];
        snprintf(pos, sizeof(pos), "%zu", i);
        const char *lp[] = {id,
                            pos,
                            ls[i].product,
                            ls[i].edition,
                            ls[i].qty,
                            ls[i].type,
                            ls[i].has_term ? ls[i].term : NULL,
                            ls[i].unit,
                            ls[i].has_agents ? ls[i].agents : NULL,
                            ls[i].capped ? "true" : "false"};
        rc = cc_db_query(req->db, req->pool, &q_line_insert, lp, NULL);
    }
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_order_get, (const char *const[]){id}, &res);
    if (rc != 0)
        return res_db(req, rc);
    json_t *out = order_json(res, 0, req->pool);
    char loc[80];
    snprintf(loc, sizeof(loc), "/api/v1/licensing/orders/%s", id);
    if ((rc = lic_audit(
             req, "order.created", "order", id, msp_id,
             json_pack("{s:s, s:I}", "order_id", number, "lines", (json_int_t)nlines))) != 0 ||
        (rc = cc_idem_remember(req, 201, out, loc, NULL)) != 0 ||
        (rc = cc_db_commit(req->db)) != 0) {
        json_decref(out);
        if (rc == CC_ECONFLICT) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_CONFLICT, "A concurrent request used this key; retry.");
            return;
        }
        return res_db(req, rc);
    }
    cc_res_header(req, "location", loc);
    cc_res_json(req, 201, out);
}

void lic_handle_order_get(cc_req_t *req)
{
    const char *id = cc_req_param(req, "id");
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    PGresult *res = NULL;
    int rc = 0;
    if (id != NULL && cc_is_uuid(id))
        rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_order_get,
                        (const char *const[]){id}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    if (res == NULL || PQntuples(res) == 0 || !cc_authz_sees(req->authz, PQgetvalue(res, 0, 8))) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such order.");
        return;
    }
    if (!lic_can_read(req, PQgetvalue(res, 0, 8))) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow reading this order.");
        return;
    }
    cc_res_json(req, 200, order_json(res, 0, req->pool));
}

/* The order history of an account, newest first (FAQ 5.8). */
void lic_handle_order_list(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(
            req, (const char *const[]){"tenant_id", "account_email", "limit", "cursor", NULL}) != 0)
        return;
    const char *tenant_id = cc_req_query(req, "tenant_id", &failed);
    const char *email = failed ? NULL : cc_req_query(req, "account_email", &failed);
    if (failed)
        return;
    if (tenant_id != NULL && !cc_is_uuid(tenant_id)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "tenant_id must be an account id.");
        return;
    }
    if (email != NULL && strlen(email) > 254) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "account_email is too long.");
        return;
    }
    const char *path, *after[2];
    int limit;
    const char *bind = lic_page_bind(req, "orders", (const char *const[]){tenant_id, email}, 2);
    if (!lic_page(req, bind, 2, &limit, after) || !lic_view_resolve(req, tenant_id, NULL, &path))
        return;
    if (after[1] != NULL && (!cc_is_uuid(after[1]) || strlen(after[0]) != 27)) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_order_list,
                        (const char *const[]){path, email, after[0], after[1], lim}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    json_t *items = json_array(), *next = NULL;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(items, order_json(res, i, req->pool));
    if (n > limit)
        next = json_pack("[s, s]", cc_db_get_time(req->pool, res, limit - 1, 7),
                         PQgetvalue(res, limit - 1, 0));
    lic_res_page(req, items, next, bind, n > 0 ? atoll(PQgetvalue(res, 0, 12)) : 0);
}
