#include "console/audit.h"

#include <string.h>

#include "console/crypto.h"

static const cc_stmt_t q_audit = CC_STMT(
    "cc_audit_insert",
    "INSERT INTO audit_events (id, actor_id, actor_kind, acting_as, tenant_id, msp_id, action,"
    " target_type, target_id, request_id, details)"
    " VALUES ($1, $2, $3, $4, $5::uuid, $6::uuid, $7, $8, $9, $10, coalesce($11::jsonb, '{}'))",
    11);

static int insert(cc_db_t *db, cc_pool_t *pool, const char *actor, const char *kind,
                  const char *acting_as, const char *request_id, const cc_audit_t *a)
{
    if (db == NULL || !cc_db_in_tx(db))
        return CC_EINVAL;
    char id[37];
    cc_uuid_new(id);
    char *details = a->details ? json_dumps(a->details, JSON_COMPACT) : NULL;
    const char *params[] = {id,           actor,      kind,      acting_as,
                            a->tenant_id, a->msp_id,  a->action, a->target_type,
                            a->target_id, request_id, details};
    int rc = cc_db_query(db, pool, &q_audit, params, NULL);
    free(details);
    return rc;
}

int cc_audit_write(cc_req_t *req, const cc_audit_t *a)
{
    const cc_principal_t *p = req->principal;
    const char *actor = NULL, *kind = NULL, *acting_as = NULL;
    if (p != NULL) {
        actor = p->act_sub ? p->act_sub : p->sub;
        acting_as = p->act_sub ? p->sub : NULL;
        kind = p->kind == CC_PRINCIPAL_API_CLIENT ? "api_client" : "user";
    }
    return insert(req->db, req->pool, actor, kind, acting_as, req->request_id, a);
}

int cc_audit_write_system(cc_db_t *db, cc_pool_t *pool, const char *job, const cc_audit_t *a)
{
    return insert(db, pool, job, "system", NULL, NULL, a);
}

static const char *claim(const cc_principal_t *p, const char *name)
{
    json_t *v = p->claims ? json_object_get(p->claims, name) : NULL;
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

const char *cc_audit_actor_name(const cc_req_t *req)
{
    const cc_principal_t *p = req->principal;
    if (p == NULL)
        return "anonymous";
    const char *v = claim(p, "name");
    if (v == NULL)
        v = claim(p, "email");
    if (v == NULL && p->kind == CC_PRINCIPAL_API_CLIENT && p->client_id && *p->client_id)
        return cc_pool_printf(req->pool, "API client %s", p->client_id);
    return v ? v : p->sub;
}
