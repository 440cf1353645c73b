#include "console/audit.h"

#include <stdio.h>
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"

static const cc_stmt_t q_audit = CC_STMT(
    "cc_audit_insert",
    "INSERT INTO audit_events (id, actor_id, actor_kind, acting_as, tenant_id, msp_id, action,"
    " target_type, target_id, request_id, details, client_addr, user_agent)"
    " VALUES ($1, $2, $3, $4, $5::uuid, $6::uuid, $7, $8, $9, $10, coalesce($11::jsonb, '{}'),"
    " $12, $13)",
    13);

static int insert(cc_db_t *db, cc_pool_t *pool, const char *actor, const char *kind,
                  const char *acting_as, const char *request_id, const char *client_addr,
                  const char *user_agent, const cc_audit_t *a)
{
    if (db == NULL || !cc_db_in_tx(db))
        return CC_EINVAL;
    char id[37];
    cc_uuid_new(id);
    char *details = a->details ? json_dumps(a->details, JSON_COMPACT) : NULL;
    const char *params[] = {id,        actor,       kind,           acting_as,    a->tenant_id,
                            a->msp_id, a->action,   a->target_type, a->target_id, request_id,
                            details,   client_addr, user_agent};
    int rc = cc_db_query(db, pool, &q_audit, params, NULL);
    free(details);
    return rc;
}

/* The client: behind the gateway (a loopback peer) the first X-Forwarded-For entry the
 * gateway wrote, else the peer itself. Printable ASCII only, at most 64 characters. */
const char *cc_req_client(cc_req_t *req)
{
    const char *peer = req->client_addr;
    const char *fwd = cc_req_header(req, "x-forwarded-for");
    const char *v = peer;
    if (fwd != NULL && peer != NULL && (strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0))
        v = fwd;
    if (v == NULL)
        return NULL;
    size_t n = strcspn(v, ", ");
    if (n > 64)
        n = 64;
    char *out = cc_pool_strndup(req->pool, v, n);
    for (char *c = out; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            *c = '?';
    return out;
}

/* The User-Agent, printable ASCII only (other bytes become '?'), at most 256 characters. */
static const char *agent_of(cc_req_t *req)
{
    const char *ua = cc_req_header(req, "user-agent");
    if (ua == NULL)
        return NULL;
    size_t n = strlen(ua);
    char *out = cc_pool_strndup(req->pool, ua, n > 256 ? 256 : n);
    for (char *c = out; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return out;
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
    return insert(req->db, req->pool, actor, kind, acting_as, req->request_id, cc_req_client(req),
                  agent_of(req), a);
}

int cc_audit_write_system(cc_db_t *db, cc_pool_t *pool, const char *job, const cc_audit_t *a)
{
    return insert(db, pool, job, "system", NULL, NULL, NULL, NULL, a);
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
