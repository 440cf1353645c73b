/*
 * Product keys for agent products (FAQ 1.8, 4.2, 4.8, 4.9): generated on demand per
 * order, product, version and quantity; repeatable (a virtual host may run the product
 * in every guest), except for lines marked keys_capped (the FAQ's Arcserve RHA 18.0):
 * those stop at the purchased count, 100 guest keys per virtual-host license. Every key
 * generated stays listed ("キーのダウンロード" shows them again at any time).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/authz.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "licensing.h"

#define PERM "licensing:manage"
#define GUESTS_PER_HOST 100

static const cc_stmt_t q_key_line =
    CC_STMT("lic_key_line",
            "SELECT l.id, o.tenant_path::text, o.msp_id, o.id, l.quantity, l.unit, l.keys_capped,"
            " (SELECT count(*) FROM product_keys k WHERE k.line_id = l.id)"
            " FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.order_number = $1"
            " AND l.product = $2 ORDER BY l.position LIMIT 1 FOR UPDATE OF l",
            2);
static const cc_stmt_t q_serial =
    CC_STMT("lic_key_serial", "SELECT nextval('product_key_serial')", 0);
static const cc_stmt_t q_key_insert = CC_STMT(
    "lic_key_insert",
    "INSERT INTO product_keys (serial, order_id, line_id, msp_id, tenant_path, version,"
    " product_key, created_by) SELECT $1::bigint, o.id, $2::uuid, o.msp_id, o.tenant_path, $3,"
    " $4, $5 FROM orders o WHERE o.id = $6::uuid",
    6);
static const cc_stmt_t q_key_list = CC_STMT(
    "lic_key_list",
    "WITH m AS (SELECT k.serial FROM product_keys k JOIN orders o ON o.id = k.order_id"
    " WHERE k.tenant_path <@ $1::ltree AND ($2::text IS NULL OR o.order_number = $2))"
    " SELECT k.product_key, l.product, k.version, o.order_number, (k.created_at AT TIME ZONE"
    " 'UTC'), k.serial, (SELECT count(*) FROM m) FROM m JOIN product_keys k"
    " ON k.serial = m.serial JOIN order_lines l ON l.id = k.line_id JOIN orders o"
    " ON o.id = k.order_id WHERE ($3::bigint IS NULL OR k.serial > $3::bigint)"
    " ORDER BY k.serial LIMIT $4::int + 1",
    4);
static const cc_stmt_t q_key_get =
    CC_STMT("lic_key_get",
            "SELECT l.product, k.version, o.order_number, o.tenant_path::text, k.product_key"
            " FROM product_keys k JOIN order_lines l ON l.id = k.line_id JOIN orders o"
            " ON o.id = k.order_id WHERE k.serial = $1::bigint",
            1);

/* "18", "18.0", "7.0.1" → 18, 18, 7; -1 when not a version. */
static int version_major(const char *s)
{
    if (!isdigit((unsigned char)s[0]))
        return -1;
    int major = 0;
    const char *p = s;
    for (; isdigit((unsigned char)*p); p++) {
        major = major * 10 + (*p - '0');
        if (major > 255)
            return -1;
    }
    for (; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
    return major;
}

void lic_handle_keys_create(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"order_id", "product", "version", "quantity", NULL});
    const char *order = cc_v_string(&v, body, "order_id", true, 1, 64, true);
    const char *product = cc_v_string(&v, body, "product", true, 1, 128, true);
    const char *version = cc_v_string(&v, body, "version", true, 1, 16, true);
    bool present;
    int64_t qty = cc_v_int(&v, body, "quantity", true, 1, 100, &present);
    int major = version ? version_major(version) : 0;
    if (major < 0)
        cc_v_add(&v, "version", "format", "version is a product version such as 18.0.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (cc_idem_replay(req) != 0)
        return;
    const lic_keys_t *lk = lic_req_keys(req); /* before the transaction */
    PGresult *res;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_key_line, (const char *const[]){order, product},
                         &res);
    if (rc != 0) {
        cc_db_rollback(req->db);
        return cc_res_db_error(req, rc);
    }
    if (PQntuples(res) == 0 || !cc_authz_can(req->authz, PERM, PQgetvalue(res, 0, 1))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_PRODUCT_NOT_IN_ORDER,
                       "No order of yours with this Order ID has a line for this product.");
        return;
    }
    const char *line_id = PQgetvalue(res, 0, 0), *order_ref = PQgetvalue(res, 0, 3);
    long long purchased = atoll(PQgetvalue(res, 0, 4)), issued = atoll(PQgetvalue(res, 0, 7));
    bool capped = strcmp(PQgetvalue(res, 0, 6), "t") == 0;
    long long limit =
        purchased * (strcmp(PQgetvalue(res, 0, 5), "host") == 0 ? GUESTS_PER_HOST : 1);
    if (capped && issued + qty > limit) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(
            req, CC_ERR_KEY_LIMIT_REACHED,
            json_pack("{s:I, s:I}", "limit", (json_int_t)limit, "issued", (json_int_t)issued),
            "%lld of %lld keys are issued for this product; %lld more would exceed "
            "the purchased count.",
            issued, limit, (long long)qty);
        return;
    }
    json_t *keys = json_array();
    for (int64_t i = 0; rc == 0 && i < qty; i++) {
        PGresult *s;
        rc = cc_db_query(req->db, req->pool, &q_serial, NULL, &s);
        if (rc != 0)
            break;
        long long serial = atoll(PQgetvalue(s, 0, 0));
        char key[LIC_KEY_LEN + 1], sn[24];
        lic_product_key(lk, (uint32_t)serial, product, major, key);
        snprintf(sn, sizeof(sn), "%lld", serial);
        rc = cc_db_query(
            req->db, req->pool, &q_key_insert,
            (const char *const[]){sn, line_id, version, key, req->principal->sub, order_ref}, NULL);
        json_array_append_new(keys, json_string(key));
    }
    if (rc == 0)
        rc = lic_audit(req, "keys.generated", "order", order_ref, PQgetvalue(res, 0, 2),
                       json_pack("{s:s, s:s, s:I}", "product", product, "version", version,
                                 "quantity", (json_int_t)qty));
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:o, s:I}", "order_id", order, "product", product, "version",
                  version, "keys", keys, "issued_total", (json_int_t)(issued + qty));
    json_object_set_new(out, "limit", capped ? json_integer(limit) : json_null());
    if (rc == 0)
        rc = cc_idem_remember(req, 201, out, NULL, NULL);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        json_decref(out);
        cc_db_rollback(req->db);
        if (rc == CC_ECONFLICT) {
            cc_res_problem(req, CC_ERR_CONFLICT, "A concurrent request used this key; retry.");
            return;
        }
        return cc_res_db_error(req, rc);
    }
    cc_res_json(req, 201, out);
}

void lic_handle_keys_list(cc_req_t *req)
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
    const char *path, *k[1];
    int limit;
    const char *bind = lic_page_bind(req, "keys", (const char *const[]){order, tenant}, 2);
    if (!lic_page(req, bind, 1, &limit, k) || !lic_view_resolve(req, tenant, order, &path))
        return;
    if (k[0] != NULL &&
        (!*k[0] || strlen(k[0]) > 18 || strspn(k[0], "0123456789") != strlen(k[0]))) {
        cc_res_problem(req, CC_ERR_INVALID_CURSOR, "The cursor is not one this list issued.");
        return;
    }
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    PGresult *res;
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_key_list,
                        (const char *const[]){path, order, k[0], lim}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    json_t *items = json_array(), *next = NULL;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:s, s:s, s:s}", "key", PQgetvalue(res, i, 0),
                                        "product", PQgetvalue(res, i, 1), "version",
                                        PQgetvalue(res, i, 2), "order_id", PQgetvalue(res, i, 3),
                                        "created_at", cc_db_get_time(req->pool, res, i, 4)));
    if (n > limit)
        next = json_pack("[s]", PQgetvalue(res, limit - 1, 5));
    lic_res_page(req, items, next, bind, n > 0 ? atoll(PQgetvalue(res, 0, 6)) : 0);
}

void lic_handle_keys_verify(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"key", NULL});
    const char *key = cc_v_string(&v, body, "key", true, 1, 64, true);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    uint32_t serial;
    int major;
    int rc = lic_product_key_check(lic_req_keys(req), key, &serial, &major);
    if (rc != 0) {
        cc_res_json(req, 200,
                    json_pack("{s:b, s:s}", "valid", 0, "reason",
                              rc == CC_EINVAL ? "checksum" : "signature"));
        return;
    }
    char sn[16];
    snprintf(sn, sizeof(sn), "%u", serial);
    PGresult *res;
    rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_key_get, (const char *const[]){sn},
                    &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    /* a key of no order the caller sees is "not found" whether it exists or not */
    if (PQntuples(res) == 0 || !cc_authz_sees(req->authz, PQgetvalue(res, 0, 3))) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No order you can see has this product key.");
        return;
    }
    if (!lic_can_read(req, PQgetvalue(res, 0, 3))) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Your roles do not allow reading this account's product keys.");
        return;
    }
    cc_res_json(req, 200,
                json_pack("{s:b, s:s, s:s, s:s, s:s}", "valid", 1, "product", PQgetvalue(res, 0, 0),
                          "version", PQgetvalue(res, 0, 1), "order_id", PQgetvalue(res, 0, 2),
                          "key", PQgetvalue(res, 0, 4)));
}
