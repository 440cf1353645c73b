/*
 * Bootstrap of an empty (or existing) deployment, idempotent and in one transaction:
 * either everything below exists afterwards or nothing changed.
 */
#include <stdio.h>
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "consolectl.h"

static const cc_stmt_t q_platform =
    CC_STMT("ctl_platform", "SELECT id FROM tenants.tenants WHERE kind = 'platform'", 0);
static const cc_stmt_t q_platform_insert =
    CC_STMT("ctl_platform_insert",
            "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id,"
            " created_by, created_by_name)"
            " VALUES ($1::uuid, NULL, 'platform', 'Platform', 'platform',"
            " text2ltree(replace($1::text, '-', '')), $1::uuid, 'bootstrap', 'bootstrap')",
            1);
static const cc_stmt_t q_user =
    CC_STMT("ctl_user", "SELECT id, status FROM users.users WHERE lower(username) = lower($1)", 1);
static const cc_stmt_t q_user_insert =
    CC_STMT("ctl_user_insert",
            "INSERT INTO users.users (id, tenant_id, msp_id, username, primary_email, first_name,"
            " last_name, created_by)"
            " VALUES ($1, $2::uuid, $2::uuid, $3::text, $3::text, 'Platform', 'Administrator', "
            "'bootstrap')",
            3);
static const cc_stmt_t q_grant =
    CC_STMT("ctl_grant",
            "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id,"
            " created_by) VALUES ($1, $2, $3, $4, $5, $6, 'bootstrap')"
            " ON CONFLICT (principal_id, role, tenant_id) DO NOTHING",
            6);
static const cc_stmt_t q_activation_clear =
    CC_STMT("ctl_activation_clear",
            "DELETE FROM identity.activation_tokens WHERE user_id = $1 AND used_at IS NULL", 1);
static const cc_stmt_t q_activation_insert =
    CC_STMT("ctl_activation_insert",
            "INSERT INTO identity.activation_tokens (token_hash, user_id, expires_at)"
            " VALUES ($1, $2, now() + interval '72 hours')",
            2);
static const cc_stmt_t q_web_client = CC_STMT(
    "ctl_web_client",
    "INSERT INTO identity.clients (id, client_id, name, kind, scopes, grant_types,"
    " redirect_uris, first_party, created_by)"
    " VALUES ($1, 'console-web', 'Console', 'public', '{openid,profile,email,offline_access}',"
    " '{authorization_code,refresh_token}', ARRAY[$2], true, 'bootstrap')"
    " ON CONFLICT (client_id) DO UPDATE SET redirect_uris = EXCLUDED.redirect_uris",
    2);
static const cc_stmt_t q_client_get = CC_STMT(
    "ctl_client_get", "SELECT id, secret_hash FROM identity.clients WHERE client_id = $1", 1);
static const cc_stmt_t q_client_insert = CC_STMT(
    "ctl_client_insert",
    "INSERT INTO identity.clients (id, client_id, name, kind, secret_hash, tenant_id, msp_id,"
    " role, grant_types, created_by)"
    " VALUES ($1, $2, $3, 'confidential', $4, $5, $6, $7, '{client_credentials}', 'consolectl')",
    7);
static const cc_stmt_t q_client_secret =
    CC_STMT("ctl_client_secret",
            "UPDATE identity.clients SET secret_hash = $2, revoked_at = NULL WHERE id = $1", 2);
static const cc_stmt_t q_tenant_msp =
    CC_STMT("ctl_tenant_msp", "SELECT msp_id, kind FROM tenants.tenants WHERE id = $1", 1);
static const cc_stmt_t q_role_kind =
    CC_STMT("ctl_role_kind", "SELECT account_kind, msp_id FROM roles.roles WHERE id = $1", 1);

static int platform_id(cc_db_t *db, cc_pool_t *pool, const char **out, bool *created)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_platform, NULL, &res);
    if (rc != 0)
        return rc;
    *created = PQntuples(res) == 0;
    if (!*created) {
        *out = cc_pool_strdup(pool, PQgetvalue(res, 0, 0));
        return 0;
    }
    char id[37];
    cc_uuid_new(id);
    const char *p[] = {id};
    rc = cc_db_query(db, pool, &q_platform_insert, p, NULL);
    *out = cc_pool_strdup(pool, id);
    return rc;
}

static int upsert_client(cc_db_t *db, cc_pool_t *pool, const char *client_id, const char *secret,
                         const char *name, const char *tenant_id, const char *msp_id,
                         const char *role, const char **id_out, const char **what)
{
    PGresult *res;
    char digest[65];
    cc_sha256_hex(secret, strlen(secret), digest);
    const char *p1[] = {client_id};
    int rc = cc_db_query(db, pool, &q_client_get, p1, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 1) {
        *id_out = cc_pool_strdup(pool, PQgetvalue(res, 0, 0));
        if (cc_ct_streq(PQgetvalue(res, 0, 1), digest)) {
            *what = "exists";
            return 0;
        }
        const char *p2[] = {*id_out, digest};
        *what = "secret replaced";
        return cc_db_query(db, pool, &q_client_secret, p2, NULL);
    }
    char id[37], gid[37];
    cc_uuid_new(id);
    cc_uuid_new(gid);
    const char *p3[] = {id, client_id, name, digest, tenant_id, msp_id, role};
    if ((rc = cc_db_query(db, pool, &q_client_insert, p3, NULL)) != 0)
        return rc;
    const char *p4[] = {gid, id, "api_client", role, tenant_id, msp_id};
    *id_out = cc_pool_strdup(pool, id);
    *what = "created";
    return cc_db_query(db, pool, &q_grant, p4, NULL);
}

int ctl_bootstrap(const cc_env_t *env, cc_db_t *db)
{
    cc_pool_t *pool = cc_pool_new();
    cc_scope_t system = {.system = true};
    const char *platform = NULL, *user_id = NULL, *client_uuid = NULL, *client_what = NULL;
    char *token = NULL;
    bool created = false, staged = false;
    PGresult *res;
    int rc = cc_db_begin(db, &system);
    if (rc != 0)
        goto Exit;
    if ((rc = platform_id(db, pool, &platform, &created)) != 0)
        goto Exit;

    const char *email = env->bootstrap_admin_email;
    const char *pu[] = {email};
    if ((rc = cc_db_query(db, pool, &q_user, pu, &res)) != 0)
        goto Exit;
    if (PQntuples(res) == 0) {
        char id[37];
        cc_uuid_new(id);
        const char *pi[] = {id, platform, email};
        if ((rc = cc_db_query(db, pool, &q_user_insert, pi, NULL)) != 0)
            goto Exit;
        user_id = cc_pool_strdup(pool, id);
        staged = true;
    } else {
        user_id = cc_pool_strdup(pool, PQgetvalue(res, 0, 0));
        staged = strcmp(PQgetvalue(res, 0, 1), "staged") == 0;
    }
    char gid[37];
    cc_uuid_new(gid);
    const char *pg[] = {gid, user_id, "user", "platform_super_admin", platform, platform};
    if ((rc = cc_db_query(db, pool, &q_grant, pg, NULL)) != 0)
        goto Exit;
    if (staged) {
        /* one valid link at a time: a new one replaces any unused earlier one */
        token = cc_token_new(32);
        char digest[65];
        cc_sha256_hex(token, strlen(token), digest);
        const char *pc[] = {user_id};
        const char *pa[] = {digest, user_id};
        if ((rc = cc_db_query(db, pool, &q_activation_clear, pc, NULL)) != 0 ||
            (rc = cc_db_query(db, pool, &q_activation_insert, pa, NULL)) != 0)
            goto Exit;
    }

    char wid[37];
    cc_uuid_new(wid);
    char *redirect = cc_aprintf("%s/console/callback", env->public_url);
    const char *pw[] = {wid, redirect};
    rc = cc_db_query(db, pool, &q_web_client, pw, NULL);
    free(redirect);
    if (rc != 0)
        goto Exit;

    if (env->bootstrap_client_id && env->bootstrap_client_id[0] && env->bootstrap_client_secret &&
        env->bootstrap_client_secret[0]) {
        rc = upsert_client(db, pool, env->bootstrap_client_id, env->bootstrap_client_secret,
                           "Bootstrap API client", platform, platform, "platform_super_admin",
                           &client_uuid, &client_what);
        if (rc != 0)
            goto Exit;
    }
    if ((rc = cc_db_commit(db)) != 0)
        goto Exit;

    printf("platform tenant: %s%s\n", platform, created ? " (created)" : "");
    printf("platform super-admin: %s (%s)\n", email, staged ? "staged" : "active");
    if (token != NULL)
        printf("activation link (valid 72 hours): %s/activate?token=%s\n", env->public_url, token);
    printf("oauth client console-web: redirect %s/console/callback\n", env->public_url);
    if (client_uuid != NULL)
        printf("bootstrap API client: %s (%s)\n", env->bootstrap_client_id, client_what);
Exit:
    if (rc != 0) {
        fprintf(stderr, "consolectl: bootstrap failed (%s: %s)\n", cc_strerror(rc),
                cc_db_errmsg(db));
        cc_db_rollback(db);
    }
    if (token) {
        cc_wipe(token, strlen(token));
        free(token);
    }
    cc_pool_free(pool);
    return rc;
}

int ctl_create_api_client(const cc_env_t *env, cc_db_t *db, const char *name, const char *tenant_id,
                          const char *role)
{
    cc_pool_t *pool = cc_pool_new();
    cc_scope_t system = {.system = true};
    const char *platform = NULL, *id = NULL, *what = NULL, *msp = NULL;
    bool created = false;
    char *client_id = NULL, *secret = NULL, *rand = cc_token_new(9);
    int rc = cc_db_begin(db, &system);
    if (rc != 0)
        goto Exit;
    if (tenant_id == NULL) {
        if ((rc = platform_id(db, pool, &platform, &created)) != 0)
            goto Exit;
        tenant_id = platform;
    }
    if (!cc_is_uuid(tenant_id)) {
        fprintf(stderr, "consolectl: --tenant must be a tenant id (UUID)\n");
        rc = CC_EINVAL;
        goto Exit;
    }
    PGresult *res;
    const char *pt[] = {tenant_id};
    if ((rc = cc_db_query(db, pool, &q_tenant_msp, pt, &res)) != 0)
        goto Exit;
    if (PQntuples(res) != 1) {
        fprintf(stderr, "consolectl: no tenant %s\n", tenant_id);
        rc = CC_ENOENT;
        goto Exit;
    }
    msp = cc_pool_strdup(pool, PQgetvalue(res, 0, 0));
    const char *kind = cc_pool_strdup(pool, PQgetvalue(res, 0, 1));
    /* the role must exist and fit the account: an MSP role on an MSP, a tenant role on a
     * customer, a direct-account role on a direct account */
    if ((rc = cc_db_query(db, pool, &q_role_kind, (const char *[]){role}, &res)) != 0)
        goto Exit;
    if (PQntuples(res) != 1) {
        fprintf(stderr, "consolectl: no role %s (see GET /api/v1/roles)\n", role);
        rc = CC_ENOENT;
        goto Exit;
    }
    if (!PQgetisnull(res, 0, 1) && strcmp(PQgetvalue(res, 0, 1), msp) != 0) {
        fprintf(stderr, "consolectl: role %s is a custom role of another account\n", role);
        rc = CC_EINVAL;
        goto Exit;
    }
    if (strcmp(PQgetvalue(res, 0, 0), kind) != 0) {
        fprintf(stderr, "consolectl: role %s is for %s accounts; tenant %s is a %s account\n", role,
                PQgetvalue(res, 0, 0), tenant_id, kind);
        rc = CC_EINVAL;
        goto Exit;
    }
    client_id = cc_aprintf("cli_%s", rand);
    secret = cc_token_new(32);
    rc = upsert_client(db, pool, client_id, secret, name, tenant_id, msp, role, &id, &what);
    if (rc == 0)
        rc = cc_db_commit(db);
    if (rc == 0)
        printf("client_id: %s\nclient_secret: %s\n(the secret is shown once)\n", client_id, secret);
Exit:
    if (rc != 0)
        cc_db_rollback(db);
    free(rand);
    free(client_id);
    if (secret) {
        cc_wipe(secret, strlen(secret));
        free(secret);
    }
    cc_pool_free(pool);
    (void)env;
    return rc;
}

/* ---- license signing key rotation ---- */

/* licensing_now() reads licensing.clock unqualified: the licensing schema's search path */
static const cc_stmt_t q_license_key_lock =
    CC_STMT("ctl_license_key_lock",
            "SELECT pg_advisory_xact_lock(hashtext('licensing.signing_keys')),"
            " set_config('search_path', 'licensing, public', true)",
            0);
static const cc_stmt_t q_license_key_retire =
    CC_STMT("ctl_license_key_retire",
            "UPDATE licensing.signing_keys SET retired_at = licensing.licensing_now()"
            " WHERE retired_at IS NULL RETURNING kid",
            0);

int ctl_rotate_license_key(const cc_env_t *env, cc_db_t *db)
{
    cc_pool_t *pool = cc_pool_new();
    cc_scope_t system = {.system = true};
    PGresult *res = NULL;
    int rc = cc_db_begin(db, &system);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_license_key_lock, NULL, NULL);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_license_key_retire, NULL, &res);
    if (rc == 0)
        rc = cc_db_commit(db);
    if (rc != 0) {
        cc_db_rollback(db);
        fprintf(stderr, "consolectl: the license signing key could not be retired (%s)\n",
                cc_strerror(rc));
    } else if (PQntuples(res) == 0) {
        printf("no active license signing key: the licensing service makes one when it starts\n");
    } else {
        for (int i = 0; i < PQntuples(res); i++)
            printf("retired license signing key %s (published %lld more days)\n",
                   PQgetvalue(res, i, 0), (long long)env->license_key_overlap_days);
        printf("the licensing service signs with a new key from its next request\n");
    }
    cc_pool_free(pool);
    return rc;
}
