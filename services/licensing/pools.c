/*
 * License pools (FAQ 2.22, 3.4): an order line's licenses sit in Default (Unassigned
 * Licenses) until a pool takes them: a server's pool at activation, or a pool made in the
 * portal (an MSP sub-allocating to one of its customers). Pools are renamed and resized
 * within the order's totals; releasing one returns its licenses to Default. Default's
 * own count is what the other pools leave, so the CHECK (quantity >= 0) on it refuses
 * every over-allocation (409 no_licenses_available), whatever the interleaving.
 *
 * Also here: the activation views (which method activated each server, the fulfillment
 * numbers in use, the check-in state and messages), product keys and usage per customer.
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

#define POOL_COLS                                                                                  \
    "p.id, o.order_number, p.line_id, l.product, l.edition, p.name, p.quantity, p.is_default,"     \
    " p.activation_id, a.computer_name, p.tenant_id, p.tenant_path::text, p.version, o.id,"        \
    " a.method, o.tenant_path::text"
#define POOL_FROM                                                                                  \
    " FROM pools p JOIN orders o ON o.id = p.order_id JOIN order_lines l ON l.id = p.line_id"      \
    " LEFT JOIN activations a ON a.id = p.activation_id"
/* the pools allocated to an account or under it, by order, line, Default first */
static const cc_stmt_t q_pool_list = CC_STMT(
    "lic_pool_list",
    "WITH m AS (SELECT p.id, o.order_number AS k1, l.position AS k2, NOT p.is_default AS k3,"
    " p.created_at AS k4 FROM pools p JOIN orders o ON o.id = p.order_id JOIN order_lines l"
    " ON l.id = p.line_id WHERE p.tenant_path <@ $1::ltree AND ($2::text IS NULL OR"
    " o.order_number = $2)) SELECT " POOL_COLS ", m.k2, (m.k4 AT TIME ZONE 'UTC'),"
    " (SELECT count(*) FROM m) FROM m JOIN pools p ON p.id = m.id JOIN orders o"
    " ON o.id = p.order_id JOIN order_lines l ON l.id = p.line_id LEFT JOIN activations a"
    " ON a.id = p.activation_id WHERE ($3::text IS NULL OR (m.k1, m.k2, m.k3, m.k4, m.id) >"
    " ($3, $4::int, $5::boolean, $6::timestamp AT TIME ZONE 'UTC', $7::uuid))"
    " ORDER BY m.k1, m.k2, m.k3, m.k4, m.id LIMIT $8::int + 1",
    8);
static const cc_stmt_t q_pool_lock = CC_STMT(
    "lic_pool_lock", "SELECT " POOL_COLS POOL_FROM " WHERE p.id = $1::uuid FOR UPDATE OF p", 1);
static const cc_stmt_t q_pool_get =
    CC_STMT("lic_pool_get", "SELECT " POOL_COLS POOL_FROM " WHERE p.id = $1::uuid", 1);
static const cc_stmt_t q_line_of = CC_STMT(
    "lic_line_of",
    "SELECT l.id, o.tenant_path::text, o.msp_id, o.id FROM order_lines l JOIN orders o"
    " ON o.id = l.order_id WHERE o.order_number = $1 AND ($2::uuid IS NULL OR l.id = $2::uuid)"
    " AND ($3::text IS NULL OR l.product = $3) ORDER BY l.position",
    3);
static const cc_stmt_t q_order_tenant =
    CC_STMT("lic_order_tenant", "SELECT tenant_id::text FROM orders WHERE order_number = $1", 1);
static const cc_stmt_t q_customer = CC_STMT(
    "lic_customer",
    "SELECT t.path::text FROM tenants.tenant_tree t WHERE t.id = $1::uuid AND t.status <> 'deleted'"
    " AND t.path <@ $2::ltree",
    2);
/* takes quantity from Default into a new pool; the CHECK on Default refuses too much */
static const cc_stmt_t q_pool_insert = CC_STMT(
    "lic_pool_insert",
    "WITH d AS (UPDATE pools SET quantity = quantity - $4::int, updated_at = licensing_now(),"
    " version = version + 1 WHERE line_id = $2::uuid AND is_default RETURNING order_id, msp_id)"
    " INSERT INTO pools (id, order_id, line_id, msp_id, tenant_id, tenant_path, name, quantity)"
    " SELECT $1::uuid, d.order_id, $2::uuid, d.msp_id, $3::uuid, t.path, $5, $4::int FROM d,"
    " tenants.tenant_tree t WHERE t.id = $3::uuid",
    5);
static const cc_stmt_t q_pool_resize = CC_STMT(
    "lic_pool_resize",
    "WITH d AS (UPDATE pools SET quantity = quantity - ($2::int - (SELECT quantity FROM pools"
    " WHERE id = $1::uuid)), updated_at = licensing_now(), version = version + 1"
    " WHERE line_id = (SELECT line_id FROM pools WHERE id = $1::uuid) AND is_default"
    " RETURNING 1) UPDATE pools SET quantity = $2::int, name = coalesce($3, name),"
    " updated_at = licensing_now(), version = version + 1 WHERE id = $1::uuid"
    " AND EXISTS (SELECT 1 FROM d)",
    3);
static const cc_stmt_t q_pool_rename =
    CC_STMT("lic_pool_rename",
            "UPDATE pools SET name = $2, updated_at = licensing_now(), version = version + 1"
            " WHERE id = $1::uuid",
            2);
static const cc_stmt_t q_pool_move = CC_STMT(
    "lic_pool_move",
    "UPDATE pools p SET tenant_id = t.id, tenant_path = t.path, updated_at = licensing_now(),"
    " version = p.version + 1 FROM tenants.tenant_tree t WHERE p.id = $1::uuid AND t.id = $2::uuid",
    2);
/* each account's licenses: allocated to it (its own pools), in use by its servers */
static const cc_stmt_t q_usage = CC_STMT(
    "lic_usage",
    "WITH g AS (SELECT t.id, t.name, l.product, coalesce(sum(p.quantity) FILTER (WHERE"
    " p.activation_id IS NULL), 0) AS allocated, coalesce(sum(p.quantity) FILTER (WHERE"
    " p.activation_id IS NOT NULL), 0) AS in_use FROM pools p JOIN order_lines l"
    " ON l.id = p.line_id JOIN tenants.tenant_tree t ON t.id = p.tenant_id WHERE NOT p.is_default"
    " AND p.tenant_path <@ $1::ltree GROUP BY t.id, t.name, l.product)"
    " SELECT g.id, g.name, g.product, g.allocated, g.in_use, (SELECT count(*) FROM g) FROM g"
    " WHERE ($2::text IS NULL OR (g.name, g.id, g.product) > ($2, $3::uuid, $4))"
    " ORDER BY g.name, g.id, g.product LIMIT $5::int + 1",
    5);
static const cc_stmt_t q_pool_release =
    CC_STMT("lic_pool_release",
            "WITH rel AS (DELETE FROM pools WHERE id = $1::uuid AND NOT is_default"
            " RETURNING line_id, quantity) UPDATE pools d SET quantity = d.quantity + rel.quantity,"
            " updated_at = licensing_now(), version = d.version + 1 FROM rel WHERE d.line_id ="
            " rel.line_id AND d.is_default RETURNING rel.quantity",
            1);

static bool sqlstate_is(cc_req_t *req, int rc, const char *state)
{
    return rc == CC_EDB && strcmp(cc_db_sqlstate(req->db), state) == 0;
}

static void res_db(cc_req_t *req, int rc)
{
    cc_db_rollback(req->db);
    if (sqlstate_is(req, rc, "23514"))
        cc_res_problem(req, CC_ERR_NO_LICENSES_AVAILABLE,
                       "Not enough unassigned licenses in Default (Unassigned Licenses) for this; "
                       "release licenses from another pool first.");
    else
        cc_res_db_error(req, rc);
}

static json_t *pool_json(const PGresult *res, int i)
{
    bool is_default = strcmp(PQgetvalue(res, i, 7), "t") == 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:b, s:s?, s:s?, s:s, s:s?, s:i}", "id",
                     PQgetvalue(res, i, 0), "order_id", PQgetvalue(res, i, 1), "line_id",
                     PQgetvalue(res, i, 2), "product", PQgetvalue(res, i, 3), "edition",
                     PQgetvalue(res, i, 4), "name", PQgetvalue(res, i, 5), "quantity",
                     atoi(PQgetvalue(res, i, 6)), "default", is_default, "activation_id",
                     cc_db_get(res, i, 8), "computer_name", cc_db_get(res, i, 9), "tenant_id",
                     PQgetvalue(res, i, 10), "method", cc_db_get(res, i, 14), "version",
                     atoi(PQgetvalue(res, i, 12)));
}

static void res_pool(cc_req_t *req, int status, const PGresult *res)
{
    char etag[32];
    snprintf(etag, sizeof(etag), "\"%s\"", PQgetvalue(res, 0, 12));
    cc_res_header(req, "etag", etag);
    cc_res_json(req, status, pool_json(res, 0));
}

void lic_handle_pool_list(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(
            req, (const char *const[]){"order_id", "tenant_id", "limit", "cursor", NULL}) != 0)
        return;
    const char *order = cc_req_query(req, "order_id", &failed);
    const char *tenant = failed ? NULL : cc_req_query(req, "tenant_id", &failed);
    if (failed)
        return;
    if ((order && strlen(order) > 64) || (tenant && !cc_is_uuid(tenant))) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "order_id is an Order ID and tenant_id an account id.");
        return;
    }
    const char *path, *k[5];
    int limit;
    const char *bind = lic_page_bind(req, "pools", (const char *const[]){order, tenant}, 2);
    if (!lic_page(req, bind, 5, &limit, k) || !lic_view_resolve(req, tenant, order, &path))
        return;
    if (k[0] != NULL &&
        (!cc_is_uuid(k[4]) || strspn(k[1], "0123456789") != strlen(k[1]) || !*k[1] ||
         strlen(k[1]) > 9 || (strcmp(k[2], "t") && strcmp(k[2], "f")) || strlen(k[3]) > 32)) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    PGresult *res;
    int rc =
        cc_db_read(req->db, req->pool, cc_req_scope(req), &q_pool_list,
                   (const char *const[]){path, order, k[0], k[1], k[2], k[3], k[4], lim}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    json_t *items = json_array(), *next = NULL;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(items, pool_json(res, i));
    if (n > limit) {
        int i = limit - 1;
        next = json_pack("[s, s, s, s, s]", PQgetvalue(res, i, 1), PQgetvalue(res, i, 16),
                         strcmp(PQgetvalue(res, i, 7), "t") == 0 ? "f" : "t",
                         PQgetvalue(res, i, 17), PQgetvalue(res, i, 0));
    }
    lic_res_page(req, items, next, bind, n > 0 ? atoll(PQgetvalue(res, 0, 18)) : 0);
}

void lic_handle_pool_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"order_id", "line_id", "product", "name", "quantity",
                                      "tenant_id", NULL});
    const char *order = cc_v_string(&v, body, "order_id", true, 1, 64, true);
    const char *line = cc_v_uuid(&v, body, "line_id", false);
    const char *product = cc_v_string(&v, body, "product", false, 1, 128, true);
    const char *name = cc_v_string(&v, body, "name", true, 1, 128, true);
    bool present;
    int64_t qty = cc_v_int(&v, body, "quantity", true, 1, 1000000, &present);
    const char *tenant = cc_v_uuid(&v, body, "tenant_id", false);
    if (name && strcmp(name, "Default (Unassigned Licenses)") == 0)
        cc_v_add(&v, "name", "reserved", "This name belongs to the Default pool.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (cc_idem_replay(req) != 0)
        return;
    PGresult *res;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_line_of,
                         (const char *const[]){order, line, product}, &res);
    if (rc != 0)
        return res_db(req, rc);
    if (PQntuples(res) > 0 && cc_authz_sees(req->authz, PQgetvalue(res, 0, 1)) &&
        !cc_authz_can(req->authz, PERM, PQgetvalue(res, 0, 1))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing licenses here.");
        return;
    }
    if (PQntuples(res) == 0 || !cc_authz_can(req->authz, PERM, PQgetvalue(res, 0, 1))) {
        bool order_seen = PQntuples(res) > 0;
        cc_db_rollback(req->db);
        if (order_seen || (line == NULL && product == NULL))
            cc_res_problem(req, CC_ERR_ORDER_NOT_FOUND, "No such order.");
        else
            cc_res_problem(req, CC_ERR_ORDER_NOT_FOUND,
                           "No such order, or it has no such line or product.");
        return;
    }
    if (PQntuples(res) > 1 && line == NULL) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_VALIDATION_FAILED,
                       "The order has several lines%s: name one with line_id.",
                       product ? " for this product" : "");
        return;
    }
    const char *line_id = PQgetvalue(res, 0, 0), *order_path = PQgetvalue(res, 0, 1);
    const char *msp_id = PQgetvalue(res, 0, 2);
    const char *order_tenant = NULL;
    if (tenant != NULL) {
        PGresult *t;
        rc = cc_db_query(req->db, req->pool, &q_customer, (const char *const[]){tenant, order_path},
                         &t);
        if (rc != 0)
            return res_db(req, rc);
        if (PQntuples(t) == 0 || !cc_authz_can(req->authz, PERM, PQgetvalue(t, 0, 0))) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_NOT_FOUND,
                           "No such account under the order's account (tenant_id).");
            return;
        }
        order_tenant = tenant;
    } else {
        /* the order's own account */
        PGresult *d;
        rc = cc_db_query(req->db, req->pool, &q_order_tenant, (const char *const[]){order}, &d);
        if (rc != 0)
            return res_db(req, rc);
        order_tenant = PQntuples(d) ? PQgetvalue(d, 0, 0) : NULL;
    }
    char id[37], q[16];
    cc_uuid_new(id);
    snprintf(q, sizeof(q), "%lld", (long long)qty);
    rc = cc_db_query(req->db, req->pool, &q_pool_insert,
                     (const char *const[]){id, line_id, order_tenant, q, name}, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_pool_get, (const char *const[]){id}, &res);
    if (rc != 0)
        return res_db(req, rc);
    json_t *out = pool_json(res, 0);
    char loc[80];
    snprintf(loc, sizeof(loc), "/api/v1/licensing/pools/%s", id);
    if ((rc = lic_audit(req, "pool.created", "pool", id, msp_id,
                        json_pack("{s:s, s:I, s:s}", "order_id", order, "quantity", (json_int_t)qty,
                                  "tenant_id", order_tenant))) != 0 ||
        (rc = cc_idem_remember(req, 201, out, loc, NULL)) != 0 ||
        (rc = cc_db_commit(req->db)) != 0) {
        json_decref(out);
        return res_db(req, rc);
    }
    cc_res_header(req, "location", loc);
    cc_res_json(req, 201, out);
}

/* Opens the transaction and locks pool {id} for a change by the caller; answers 404/409. */
static bool begin_pool(cc_req_t *req, const char *id, PGresult **res)
{
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such pool.");
        return false;
    }
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_pool_lock, (const char *const[]){id}, res);
    if (rc != 0) {
        res_db(req, rc);
        return false;
    }
    if (PQntuples(*res) == 0 || !cc_authz_sees(req->authz, PQgetvalue(*res, 0, 11))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such pool.");
        return false;
    }
    if (!cc_authz_can(req->authz, PERM, PQgetvalue(*res, 0, 11))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing licenses here.");
        return false;
    }
    if (strcmp(PQgetvalue(*res, 0, 7), "t") == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_POOL_IS_DEFAULT,
                       "Default (Unassigned Licenses) holds what the other pools leave; change "
                       "those pools instead.");
        return false;
    }
    return true;
}

void lic_handle_pool_patch(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    /* PATCH /pools/{id}, or PATCH /pools with the pool's id in the body (API.md) */
    const char *id = cc_req_param(req, "id");
    cc_v_object(&v, body,
                id ? (const char *const[]){"name", "quantity", "tenant_id", NULL}
                   : (const char *const[]){"id", "name", "quantity", "tenant_id", NULL});
    if (id == NULL)
        id = cc_v_uuid(&v, body, "id", true);
    const char *name = cc_v_string(&v, body, "name", false, 1, 128, true);
    const char *tenant = cc_v_uuid(&v, body, "tenant_id", false);
    bool has_qty;
    int64_t qty = cc_v_int(&v, body, "quantity", false, 1, 1000000, &has_qty);
    if (name && strcmp(name, "Default (Unassigned Licenses)") == 0)
        cc_v_add(&v, "name", "reserved", "This name belongs to the Default pool.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    PGresult *res;
    if (!begin_pool(req, id, &res))
        return;
    if (!cc_req_if_match(req, atoi(PQgetvalue(res, 0, 12)))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRECONDITION_FAILED,
                       "The pool changed since you read it; read it again.");
        return;
    }
    int before = atoi(PQgetvalue(res, 0, 6));
    if (tenant != NULL) {
        /* sub-allocation: the pool moves to an account at or below the order's */
        PGresult *t;
        int trc = cc_db_query(req->db, req->pool, &q_customer,
                              (const char *const[]){tenant, PQgetvalue(res, 0, 15)}, &t);
        if (trc != 0)
            return res_db(req, trc);
        if (PQntuples(t) == 0 || !cc_authz_can(req->authz, PERM, PQgetvalue(t, 0, 0))) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_NOT_FOUND,
                           "No such account under the order's account (tenant_id).");
            return;
        }
        trc =
            cc_db_query(req->db, req->pool, &q_pool_move, (const char *const[]){id, tenant}, NULL);
        if (trc != 0)
            return res_db(req, trc);
    }
    char q[16];
    snprintf(q, sizeof(q), "%lld", (long long)qty);
    int rc = 0;
    if (has_qty && qty != before)
        rc = cc_db_query(req->db, req->pool, &q_pool_resize, (const char *const[]){id, q, name},
                         NULL);
    else if (name != NULL)
        rc = cc_db_query(req->db, req->pool, &q_pool_rename, (const char *const[]){id, name}, NULL);
    if (rc == 0)
        rc = lic_audit(req, "pool.changed", "pool", id, NULL,
                       json_pack("{s:s?, s:i, s:I, s:s?}", "name", name, "from", before, "to",
                                 (json_int_t)(has_qty ? qty : before), "tenant_id", tenant));
    PGresult *out;
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_pool_get, (const char *const[]){id}, &out);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    res_pool(req, 200, out);
}

void lic_handle_pool_release(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    PGresult *res;
    if (!begin_pool(req, cc_req_param(req, "id"), &res))
        return;
    const char *id = PQgetvalue(res, 0, 0);
    PGresult *r;
    int rc = cc_db_query(req->db, req->pool, &q_pool_release, (const char *const[]){id}, &r);
    long long released = rc == 0 && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    if (rc == 0) /* the order may be free for either method again */
        rc = lic_order_method_reset(req, PQgetvalue(res, 0, 13));
    if (rc == 0)
        rc = lic_audit(req, "pool.released", "pool", id, NULL,
                       json_pack("{s:I, s:s?}", "released", (json_int_t)released, "activation_id",
                                 cc_db_get(res, 0, 8)));
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    cc_res_json(req, 200,
                json_pack("{s:s, s:I, s:s}", "id", id, "released", (json_int_t)released, "to",
                          "Default (Unassigned Licenses)"));
}

/* ---- activation views (FAQ 3.8, 5.8) ---- */

/* the servers of an account's orders, and those using licenses allocated to it */
static const cc_stmt_t q_act_list = CC_STMT(
    "lic_act_list",
    "WITH m AS (SELECT a.id FROM activations a JOIN orders o ON o.id = a.order_id"
    " WHERE (a.tenant_path <@ $4::ltree OR EXISTS (SELECT 1 FROM pools y"
    " WHERE y.activation_id = a.id AND y.tenant_path <@ $4::ltree))"
    " AND ($1::text IS NULL OR a.method = $1) AND ($2::text IS NULL OR o.order_number = $2"
    " OR EXISTS (SELECT 1 FROM pools x JOIN orders xo ON xo.id = x.order_id"
    " WHERE x.activation_id = a.id AND xo.order_number = $2))"
    " AND ($3::boolean OR a.status IN ('active', 'pending_approval')))"
    " SELECT a.id, o.order_number, o.fulfillment_number, a.method, a.status, a.email,"
    " a.computer_name, extract(epoch FROM a.last_check_in_at)::bigint,"
    " extract(epoch FROM licensing_now())::bigint, (a.created_at AT TIME ZONE 'UTC'),"
    " a.tenant_path::text, a.registered_at IS NOT NULL, (SELECT "
    "coalesce(json_agg(json_build_object("
    "'pool_id', p.id, 'order_id', po.order_number, 'product', l.product, 'edition', l.edition,"
    " 'quantity', p.quantity) ORDER BY po.order_number, l.position), '[]') FROM pools p"
    " JOIN order_lines l ON l.id = p.line_id JOIN orders po ON po.id = p.order_id"
    " WHERE p.activation_id = a.id)::text, (SELECT coalesce(json_agg(DISTINCT"
    " po.fulfillment_number), '[]') FROM pools p JOIN orders po ON po.id = p.order_id"
    " WHERE p.activation_id = a.id)::text, (SELECT count(*) FROM m),"
    " (SELECT x.status FROM tenants.tenant_tree x WHERE x.path @> a.tenant_path"
    " AND x.status <> 'active' ORDER BY nlevel(x.path) DESC LIMIT 1)"
    " FROM m JOIN activations a ON a.id = m.id JOIN orders o ON o.id = a.order_id"
    " WHERE ($5::text IS NULL OR (a.computer_name, a.created_at, a.id) > ($5,"
    " $6::timestamp AT TIME ZONE 'UTC', $7::uuid))"
    " ORDER BY a.computer_name, a.created_at, a.id LIMIT $8::int + 1",
    8);

void lic_handle_activation_list(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"method", "order_id", "all", "tenant_id",
                                                        "limit", "cursor", NULL}) != 0)
        return;
    const char *method = cc_req_query(req, "method", &failed);
    const char *order = failed ? NULL : cc_req_query(req, "order_id", &failed);
    const char *all = failed ? NULL : cc_req_query(req, "all", &failed);
    const char *tenant = failed ? NULL : cc_req_query(req, "tenant_id", &failed);
    if (failed)
        return;
    if ((method && strcmp(method, "online") != 0 && strcmp(method, "offline") != 0) ||
        (order && strlen(order) > 64) || (tenant && !cc_is_uuid(tenant)) ||
        (all && strcmp(all, "true") != 0 && strcmp(all, "false") != 0)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "method is online or offline, order_id an Order ID, tenant_id an account "
                       "id, all true or false.");
        return;
    }
    const char *all_s = all && strcmp(all, "true") == 0 ? "true" : "false";
    const char *path, *k[3];
    int limit;
    const char *bind =
        lic_page_bind(req, "activations", (const char *const[]){method, order, all_s, tenant}, 4);
    if (!lic_page(req, bind, 3, &limit, k) || !lic_view_resolve(req, tenant, order, &path))
        return;
    if (k[0] != NULL && (!cc_is_uuid(k[2]) || strlen(k[1]) > 32)) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    PGresult *res;
    int rc =
        cc_db_read(req->db, req->pool, cc_req_scope(req), &q_act_list,
                   (const char *const[]){method, order, all_s, path, k[0], k[1], k[2], lim}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    json_t *items = json_array(), *next = NULL;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++) {
        int64_t last = atoll(PQgetvalue(res, i, 7)), now = atoll(PQgetvalue(res, i, 8));
        const char *status = PQgetvalue(res, i, 4), *m = PQgetvalue(res, i, 3);
        bool online_live = strcmp(status, "active") == 0 && strcmp(m, "online") == 0;
        json_t *it = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:o}", "id", PQgetvalue(res, i, 0),
            "order_id", PQgetvalue(res, i, 1), "fulfillment_number", PQgetvalue(res, i, 2),
            "method", m, "status", status, "email", PQgetvalue(res, i, 5), "computer_name",
            PQgetvalue(res, i, 6), "created_at", cc_db_get_time(req->pool, res, i, 9), "registered",
            strcmp(PQgetvalue(res, i, 11), "t") == 0, "licenses",
            json_loads(PQgetvalue(res, i, 12), 0, NULL));
        /* FAQ 5.8: the fulfillment numbers a server uses (its own order and those added) */
        json_t *fns = json_loads(PQgetvalue(res, i, 13), 0, NULL);
        json_object_set_new(it, "fulfillment_numbers", fns ? fns : json_array());
        if (online_live && !PQgetisnull(res, i, 15)) {
            /* the account is suspended or deleted: so is the license, whatever the check-ins */
            json_object_set_new(it, "state", json_string("suspended"));
            json_object_set_new(it, "last_check_in_at", json_string(lic_time(req->pool, last)));
            json_object_set_new(it, "messages",
                                json_pack("[o]", lic_account_message(PQgetvalue(res, i, 15))));
        } else if (online_live) {
            json_object_set_new(it, "state", json_string(lic_state_name(lic_state_at(last, now))));
            json_object_set_new(it, "last_check_in_at", json_string(lic_time(req->pool, last)));
            json_object_set_new(it, "messages", lic_messages(last, now));
        } else {
            json_object_set_new(it, "state", json_string(status));
        }
        json_array_append_new(items, it);
    }
    if (n > limit)
        next = json_pack("[s, s, s]", PQgetvalue(res, limit - 1, 6), PQgetvalue(res, limit - 1, 9),
                         PQgetvalue(res, limit - 1, 0));
    lic_res_page(req, items, next, bind, n > 0 ? atoll(PQgetvalue(res, 0, 14)) : 0);
}

/* ---- the MSP's view: license use per customer account ---- */

void lic_handle_usage(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"parent_id", "limit", "cursor", NULL}) != 0)
        return;
    const char *parent = cc_req_query(req, "parent_id", &failed);
    if (failed)
        return;
    if (parent != NULL && !cc_is_uuid(parent)) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER, "parent_id must be an account id.");
        return;
    }
    const char *path, *k[3];
    int limit;
    const char *bind = lic_page_bind(req, "usage", (const char *const[]){parent}, 1);
    if (!lic_page(req, bind, 3, &limit, k) || !lic_view_resolve(req, parent, NULL, &path))
        return;
    if (k[0] != NULL && !cc_is_uuid(k[1])) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_usage,
                        (const char *const[]){path, k[0], k[1], k[2], lim}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    json_t *items = json_array(), *next = NULL;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(
            items, json_pack("{s:s, s:s, s:s, s:I, s:I}", "tenant_id", PQgetvalue(res, i, 0),
                             "tenant_name", PQgetvalue(res, i, 1), "product", PQgetvalue(res, i, 2),
                             "allocated", (json_int_t)atoll(PQgetvalue(res, i, 3)), "in_use",
                             (json_int_t)atoll(PQgetvalue(res, i, 4))));
    if (n > limit)
        next = json_pack("[s, s, s]", PQgetvalue(res, limit - 1, 1), PQgetvalue(res, limit - 1, 0),
                         PQgetvalue(res, limit - 1, 2));
    lic_res_page(req, items, next, bind, n > 0 ? atoll(PQgetvalue(res, 0, 5)) : 0);
}
