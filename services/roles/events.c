/*
 * Events the roles service consumes. identity.outbox: api_client.created writes the
 * grant of the new client's role on its tenant, api_client.deleted removes the client's
 * grants. users.outbox: user.deleted removes the user's grants. Idempotent (ON CONFLICT DO NOTHING;
 * deleting nothing is fine), so a replay changes nothing.
 */
#include <string.h>

#include "console/log.h"
#include "roles.h"

static const cc_stmt_t q_grant = CC_STMT(
    "roles_ev_grant",
    "INSERT INTO grants (id, principal_id, principal_kind, role, tenant_id, msp_id, created_by)"
    " VALUES ($1, $2::uuid, 'api_client', $3, $4::uuid, $5::uuid, 'identity')"
    " ON CONFLICT (principal_id, role, tenant_id) DO NOTHING",
    5);
static const cc_stmt_t q_ungrant = CC_STMT(
    "roles_ev_ungrant",
    "DELETE FROM grants WHERE principal_id = $1::uuid AND principal_kind = 'api_client'", 1);

static const cc_stmt_t q_ungrant_user =
    CC_STMT("roles_ev_ungrant_user",
            "DELETE FROM grants WHERE principal_id = $1::uuid AND principal_kind = 'user'", 1);

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) && cc_is_uuid(json_string_value(v)) ? json_string_value(v) : NULL;
}

int roles_on_identity_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->type, "api_client.created") == 0) {
        const char *id = str(ev->payload, "id"), *tenant = str(ev->payload, "tenant_id"),
                   *msp = str(ev->payload, "msp_id");
        json_t *role = json_object_get(ev->payload, "role");
        if (id == NULL || tenant == NULL || msp == NULL || !json_is_string(role)) {
            cc_log_error("identity event %lld (api_client.created) is malformed; skipped",
                         (long long)ev->id);
            return 0;
        }
        char gid[37];
        cc_uuid_new(gid);
        return cc_db_query(db, pool, &q_grant,
                           (const char *[]){gid, id, json_string_value(role), tenant, msp}, NULL);
    }
    if (strcmp(ev->type, "api_client.deleted") == 0) {
        const char *id = str(ev->payload, "id");
        return id ? cc_db_query(db, pool, &q_ungrant, (const char *[]){id}, NULL) : 0;
    }
    return 0;
}

int roles_on_users_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->type, "user.deleted") != 0 || ev->aggregate_id == NULL ||
        !cc_is_uuid(ev->aggregate_id))
        return 0;
    int rc = cc_db_query(db, pool, &q_ungrant_user, (const char *[]){ev->aggregate_id}, NULL);
    if (rc == 0)
        cc_log_info("user %s deleted: grants removed", ev->aggregate_id);
    return rc;
}
