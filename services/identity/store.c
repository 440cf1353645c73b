/* SQL of the identity service: every statement a constant, every value a parameter. */
#include <string.h>

#include "console/json.h"
#include "identity.h"

#define CLIENT_COLUMNS                                                                             \
    "id, client_id, name, kind, secret_hash, tenant_id, msp_id, role, array_to_json(scopes),"      \
    " array_to_json(grant_types), revoked_at IS NOT NULL, array_to_json(redirect_uris),"           \
    " array_to_json(post_logout_redirect_uris)"

static const cc_stmt_t q_by_client_id =
    CC_STMT("identity_client_by_client_id",
            "SELECT " CLIENT_COLUMNS " FROM clients WHERE client_id = $1", 1);
static const cc_stmt_t q_by_id =
    CC_STMT("identity_client_by_id", "SELECT " CLIENT_COLUMNS " FROM clients WHERE id = $1", 1);

static void read_client(cc_pool_t *pool, PGresult *res, identity_client_t *c)
{
    c->id = cc_db_get(res, 0, 0);
    c->client_id = cc_db_get(res, 0, 1);
    c->name = cc_db_get(res, 0, 2);
    c->kind = cc_db_get(res, 0, 3);
    c->secret_hash = cc_db_get(res, 0, 4);
    c->tenant_id = cc_db_get(res, 0, 5);
    c->msp_id = cc_db_get(res, 0, 6);
    c->role = cc_db_get(res, 0, 7);
    c->scopes = cc_json_on_pool(pool, json_loads(PQgetvalue(res, 0, 8), 0, NULL));
    c->grant_types = cc_json_on_pool(pool, json_loads(PQgetvalue(res, 0, 9), 0, NULL));
    c->revoked = strcmp(PQgetvalue(res, 0, 10), "t") == 0;
    c->redirect_uris = cc_json_on_pool(pool, json_loads(PQgetvalue(res, 0, 11), 0, NULL));
    c->post_logout_uris = cc_json_on_pool(pool, json_loads(PQgetvalue(res, 0, 12), 0, NULL));
}

static int find(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const cc_stmt_t *stmt,
                const char *key, identity_client_t *out)
{
    PGresult *res = NULL;
    const char *params[] = {key};
    memset(out, 0, sizeof(*out));
    int rc = cc_db_read(db, pool, scope, stmt, params, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    read_client(pool, res, out);
    return 0;
}

int identity_store_client_by_client_id(cc_db_t *db, cc_pool_t *pool, const char *client_id,
                                       identity_client_t *out)
{
    const cc_scope_t system = {.system = true}; /* before authentication: a trusted lookup */
    return find(db, pool, &system, &q_by_client_id, client_id, out);
}

int identity_store_client_by_id(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope,
                                const char *id, identity_client_t *out)
{
    if (!cc_is_uuid(id))
        return CC_ENOENT;
    return find(db, pool, scope, &q_by_id, id, out);
}

#define USER_COLUMNS                                                                               \
    "id, tenant_id, msp_id, username, primary_email, first_name, last_name, language,"             \
    " time_zone, status"

static const cc_stmt_t q_user_by_name = CC_STMT(
    "identity_user_by_name",
    "SELECT " USER_COLUMNS " FROM users.sign_in_profiles WHERE lower(username) = lower($1)", 1);
static const cc_stmt_t q_user_by_id = CC_STMT(
    "identity_user_by_id", "SELECT " USER_COLUMNS " FROM users.sign_in_profiles WHERE id = $1", 1);
/* every tenant on the path from the root to this one must be active */
static const cc_stmt_t q_tenant_active =
    CC_STMT("identity_tenant_active",
            "SELECT count(*) > 0 AND bool_and(a.status = 'active')"
            " FROM tenants.tenants t JOIN tenants.tenants a ON a.path @> t.path WHERE t.id = $1",
            1);

static int find_user(cc_db_t *db, cc_pool_t *pool, const cc_stmt_t *stmt, const char *key,
                     identity_user_t *u)
{
    PGresult *res = NULL;
    const char *params[] = {key};
    memset(u, 0, sizeof(*u));
    int rc = cc_db_query(db, pool, stmt, params, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    const char **f[] = {&u->id,         &u->tenant_id, &u->msp_id,   &u->username,  &u->email,
                        &u->first_name, &u->last_name, &u->language, &u->time_zone, &u->status};
    for (size_t i = 0; i < CC_ARRAY_SIZE(f); i++)
        *f[i] = cc_db_get(res, 0, (int)i);
    return 0;
}

int identity_store_user_by_username(cc_db_t *db, cc_pool_t *pool, const char *username,
                                    identity_user_t *out)
{
    return find_user(db, pool, &q_user_by_name, username, out);
}

int identity_store_user_by_id(cc_db_t *db, cc_pool_t *pool, const char *id, identity_user_t *out)
{
    if (!cc_is_uuid(id))
        return CC_ENOENT;
    return find_user(db, pool, &q_user_by_id, id, out);
}

int identity_store_tenant_active(cc_db_t *db, cc_pool_t *pool, const char *tenant_id, bool *active)
{
    PGresult *res = NULL;
    const char *params[] = {tenant_id};
    *active = false;
    int rc = cc_db_query(db, pool, &q_tenant_active, params, &res);
    if (rc == 0 && PQntuples(res) == 1)
        *active = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    return rc;
}
