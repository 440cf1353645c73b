/*
 * Per-node license use marks (FAQ 3.12): a product counts each protected machine
 * against its licenses; when the backup target changes, the old machine keeps its mark
 * and licenses run short until someone releases it. The product reports its marks at
 * check-in ({"nodes": [...]}); the portal lists them and releases stale ones; the next
 * check-in answers `released_nodes` so the product drops them, and warns
 * (`nodes_over_licensed`) when more nodes are marked than the server's licenses cover.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/authz.h"
#include "console/json.h"
#include "licensing.h"

#define PERM "licensing:manage"
#define MAX_NODES 10000

static const cc_stmt_t q_drop_unreported = CC_STMT(
    "lic_nodes_drop",
    "DELETE FROM node_marks WHERE activation_id = $1::uuid AND NOT (node = ANY (ARRAY(SELECT"
    " jsonb_array_elements_text($2::jsonb))))",
    2);
static const cc_stmt_t q_mark = CC_STMT(
    "lic_nodes_mark",
    "INSERT INTO node_marks (activation_id, node, msp_id, tenant_path) SELECT a.id, n, a.msp_id,"
    " a.tenant_path FROM activations a, jsonb_array_elements_text($2::jsonb) n"
    " WHERE a.id = $1::uuid ON CONFLICT DO NOTHING",
    2);
static const cc_stmt_t q_state =
    CC_STMT("lic_nodes_state",
            "SELECT coalesce(json_agg(node ORDER BY node) FILTER (WHERE released_at IS NOT NULL),"
            " '[]')::text, count(*) FILTER (WHERE released_at IS NULL) FROM node_marks"
            " WHERE activation_id = $1::uuid",
            1);
static const cc_stmt_t q_list =
    CC_STMT("lic_nodes_list",
            "SELECT m.node, (m.marked_at AT TIME ZONE 'UTC'), m.released_at IS NOT NULL,"
            " a.tenant_path::text, (SELECT count(*) FROM node_marks c WHERE c.activation_id = a.id)"
            " FROM activations a LEFT JOIN node_marks m ON m.activation_id = a.id"
            " AND ($2::text IS NULL OR m.node > $2) WHERE a.id = $1::uuid ORDER BY m.node"
            " LIMIT $3::int + 1",
            3);
static const cc_stmt_t q_release =
    CC_STMT("lic_nodes_release",
            "UPDATE node_marks SET released_at = coalesce(released_at, licensing_now())"
            " WHERE activation_id = $1::uuid AND node = ANY (ARRAY(SELECT"
            " jsonb_array_elements_text($2::jsonb))) RETURNING node",
            2);

json_t *lic_nodes_parse(cc_validator_t *v, json_t *body)
{
    json_t *nodes = json_object_get(body, "nodes");
    if (nodes == NULL || json_is_null(nodes))
        return NULL;
    if (!json_is_array(nodes) || json_array_size(nodes) > MAX_NODES) {
        cc_v_add(v, "nodes", "type", "nodes is an array of at most %d node names.", MAX_NODES);
        return NULL;
    }
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *s = json_string_value(n);
        size_t len = s ? json_string_length(n) : 0;
        if (s == NULL || len == 0 || cc_utf8_length(s, len) > 255 || cc_has_control(s, len) ||
            strlen(s) != len) {
            cc_v_add(v, cc_pool_printf(v->pool, "nodes[%zu]", i), "format",
                     "A node name is 1 to 255 characters without control characters.");
            return NULL;
        }
    }
    return nodes;
}

int lic_nodes_sync(cc_req_t *req, const lic_activation_t *a, json_t *nodes, json_t *out)
{
    int rc = 0;
    if (nodes != NULL) {
        char *text = json_dumps(nodes, JSON_COMPACT);
        const char *p[] = {a->id, cc_pool_strdup(req->pool, text)};
        free(text);
        rc = cc_db_query(req->db, req->pool, &q_drop_unreported, p, NULL);
        if (rc == 0)
            rc = cc_db_query(req->db, req->pool, &q_mark, p, NULL);
    }
    PGresult *res;
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_state, (const char *const[]){a->id}, &res);
    if (rc != 0)
        return rc;
    long long in_use = atoll(PQgetvalue(res, 0, 1));
    json_object_set_new(out, "released_nodes", json_loads(PQgetvalue(res, 0, 0), 0, NULL));
    json_object_set_new(out, "nodes_in_use", json_integer(in_use));
    /* what the server's licenses cover: agents where a line includes them, else units */
    long long covered = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(out, "license_payload"), "products"), i, p)
    {
        json_t *agents = json_object_get(p, "agents");
        covered += json_integer_value(agents ? agents : json_object_get(p, "quantity"));
    }
    json_object_set_new(out, "nodes_licensed", json_integer(covered));
    if (nodes != NULL && in_use > covered) {
        char text[200];
        snprintf(text, sizeof(text),
                 "%lld nodes are marked as using a license but the licenses cover %lld; release "
                 "the marks of machines no longer protected.",
                 in_use, covered);
        json_array_append_new(json_object_get(out, "messages"),
                              json_pack("{s:s, s:s, s:s}", "code", "nodes_over_licensed",
                                        "severity", "warning", "text", text));
    }
    return 0;
}

void lic_handle_nodes_list(cc_req_t *req)
{
    const char *id = cc_req_param(req, "id");
    if (cc_req_query_allowed(req, (const char *const[]){"limit", "cursor", NULL}) != 0)
        return;
    const char *k[1];
    int limit;
    const char *bind = lic_page_bind(req, "nodes", (const char *const[]){id}, 1);
    if (!lic_page(req, bind, 1, &limit, k))
        return;
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", limit);
    PGresult *res = NULL;
    int rc = 0;
    if (id != NULL && cc_is_uuid(id))
        rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_list,
                        (const char *const[]){id, k[0], lim}, &res);
    if (rc != 0)
        return cc_res_db_error(req, rc);
    if (res == NULL || PQntuples(res) == 0 || !cc_authz_sees(req->authz, PQgetvalue(res, 0, 3))) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such activation.");
        return;
    }
    if (!lic_can_read(req, PQgetvalue(res, 0, 3))) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Your roles do not allow reading this server's license use.");
        return;
    }
    json_t *items = json_array(), *next = NULL;
    int n = PQntuples(res);
    for (int i = 0; i < n && i < limit; i++)
        if (!PQgetisnull(res, i, 0))
            json_array_append_new(items,
                                  json_pack("{s:s, s:s, s:b}", "node", PQgetvalue(res, i, 0),
                                            "marked_at", cc_db_get_time(req->pool, res, i, 1),
                                            "released", strcmp(PQgetvalue(res, i, 2), "t") == 0));
    if (n > limit)
        next = json_pack("[s]", PQgetvalue(res, limit - 1, 0));
    lic_res_page(req, items, next, bind, atoll(PQgetvalue(res, 0, 4)));
}

void lic_handle_nodes_release(cc_req_t *req)
{
    const char *id = cc_req_param(req, "id");
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"nodes", NULL});
    json_t *nodes = lic_nodes_parse(&v, body);
    if (nodes == NULL && cc_v_ok(&v))
        cc_v_add(&v, "nodes", "required", "nodes lists the marks to release.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    PGresult *res = NULL;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc == 0 && id != NULL && cc_is_uuid(id))
        rc = cc_db_query(req->db, req->pool, &q_list, (const char *const[]){id, NULL, "1"}, &res);
    if (rc != 0) {
        cc_db_rollback(req->db);
        return cc_res_db_error(req, rc);
    }
    if (res == NULL || PQntuples(res) == 0 || !cc_authz_sees(req->authz, PQgetvalue(res, 0, 3))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such activation.");
        return;
    }
    if (!cc_authz_can(req->authz, PERM, PQgetvalue(res, 0, 3))) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing licenses here.");
        return;
    }
    char *text = json_dumps(nodes, JSON_COMPACT);
    const char *p[] = {id, cc_pool_strdup(req->pool, text)};
    free(text);
    PGresult *r;
    rc = cc_db_query(req->db, req->pool, &q_release, p, &r);
    json_t *released = json_array();
    for (int i = 0; rc == 0 && i < PQntuples(r); i++)
        json_array_append_new(released, json_string(PQgetvalue(r, i, 0)));
    if (rc == 0)
        rc = lic_audit(req, "nodes.released", "activation", id, NULL,
                       json_pack("{s:O}", "nodes", released));
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        json_decref(released);
        cc_db_rollback(req->db);
        return cc_res_db_error(req, rc);
    }
    cc_res_json(req, 200, json_pack("{s:o}", "released", released));
}
