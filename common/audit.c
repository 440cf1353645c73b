#include "console/audit.h"

#include "console/crypto.h"

static const cc_stmt_t q_audit = CC_STMT(
    "cc_audit_insert",
    "INSERT INTO audit_events (id, actor_id, actor_kind, acting_as, tenant_id, msp_id, action,"
    " target_type, target_id, request_id, details)"
    " VALUES ($1, $2, $3, $4, $5::uuid, $6::uuid, $7, $8, $9, $10, coalesce($11::jsonb, '{}'))",
    11);

int cc_audit_write(cc_req_t *req, const cc_audit_t *a)
{
    if (req->db == NULL || !cc_db_in_tx(req->db))
        return CC_EINVAL;
    const cc_principal_t *p = req->principal;
    char id[37];
    cc_uuid_new(id);
    const char *actor = NULL, *kind = NULL, *acting_as = NULL;
    if (p != NULL) {
        actor = p->act_sub ? p->act_sub : p->sub;
        acting_as = p->act_sub ? p->sub : NULL;
        kind = p->kind == CC_PRINCIPAL_API_CLIENT ? "api_client" : "user";
    }
    char *details = a->details ? json_dumps(a->details, JSON_COMPACT) : NULL;
    const char *params[] = {id,           actor,           kind,      acting_as,
                            a->tenant_id, a->msp_id,       a->action, a->target_type,
                            a->target_id, req->request_id, details};
    int rc = cc_db_query(req->db, req->pool, &q_audit, params, NULL);
    free(details);
    return rc;
}
