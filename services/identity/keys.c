/*
 * Signing keys: ES256 pairs generated with OpenSSL, private halves sealed at rest with
 * the master key. Rotation: when the active key is older than the rotation period a
 * successor is generated; the old key is retired but published until every token it
 * signed has expired (twice the access-token lifetime).
 */
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"

static const cc_stmt_t q_lock = CC_STMT(
    "identity_keys_lock", "SELECT pg_advisory_xact_lock(hashtext('identity.signing_keys'))", 0);
static const cc_stmt_t q_list =
    CC_STMT("identity_keys_list",
            "SELECT kid, private_key_sealed, public_jwk::text, retired_at IS NOT NULL,"
            " created_at < now() - make_interval(days => $1::int)"
            " FROM signing_keys WHERE expires_at IS NULL OR expires_at > now()"
            " ORDER BY (retired_at IS NULL) DESC, created_at DESC",
            1);
static const cc_stmt_t q_insert = CC_STMT(
    "identity_keys_insert",
    "INSERT INTO signing_keys (kid, private_key_sealed, public_jwk) VALUES ($1, $2, $3::jsonb)", 3);
static const cc_stmt_t q_retire = CC_STMT("identity_keys_retire",
                                          "UPDATE signing_keys SET retired_at = now(), expires_at "
                                          "= now() + make_interval(secs => $2::int)"
                                          " WHERE kid = $1 AND retired_at IS NULL",
                                          2);

static char *aad_for(const char *kid)
{
    return cc_aprintf("identity.signing_keys:%s", kid);
}

static int generate(identity_app_t *app, cc_db_t *db, cc_pool_t *pool)
{
    char *kid = cc_token_new(12);
    char *pem = NULL, *sealed = NULL, *aad = aad_for(kid), *jwk_text = NULL;
    json_t *jwk = NULL;
    int rc = cc_es256_generate(kid, &pem, &jwk);
    if (rc != 0)
        goto Exit;
    rc = cc_seal(&app->svc->master_key, pem, strlen(pem), aad, &sealed);
    if (rc != 0)
        goto Exit;
    jwk_text = json_dumps(jwk, JSON_COMPACT);
    const char *params[] = {kid, sealed, jwk_text};
    rc = cc_db_query(db, pool, &q_insert, params, NULL);
    if (rc == 0)
        cc_log_info("generated signing key %s", kid);
Exit:
    if (pem)
        cc_wipe(pem, strlen(pem));
    free(pem);
    free(sealed);
    free(aad);
    free(jwk_text);
    json_decref(jwk);
    free(kid);
    return rc;
}

int identity_keys_init(identity_app_t *app, cc_db_t *db)
{
    cc_pool_t *pool = cc_pool_new();
    identity_keys_t *k = &app->keys;
    PGresult *res = NULL;
    char days[16], grace[16];
    snprintf(days, sizeof(days), "%lld", (long long)app->rotation_days);
    snprintf(grace, sizeof(grace), "%lld", (long long)app->svc->env.access_token_ttl_s * 2 + 60);
    const char *lparams[] = {days};
    cc_scope_t system = {.system = true};
    json_t *keys = json_array();
    int rc = cc_db_begin(db, &system);
    if (rc != 0)
        goto Exit;
    if ((rc = cc_db_query(db, pool, &q_lock, NULL, NULL)) != 0 ||
        (rc = cc_db_query(db, pool, &q_list, lparams, &res)) != 0)
        goto Exit;
    bool have_active = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 3), "f") == 0;
    bool stale = have_active && strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    if (!have_active || stale) {
        if (stale) {
            const char *rparams[] = {PQgetvalue(res, 0, 0), grace};
            if ((rc = cc_db_query(db, pool, &q_retire, rparams, NULL)) != 0)
                goto Exit;
            cc_log_info("retired signing key %s", PQgetvalue(res, 0, 0));
        }
        if ((rc = generate(app, db, pool)) != 0 ||
            (rc = cc_db_query(db, pool, &q_list, lparams, &res)) != 0)
            goto Exit;
    }
    rc = cc_db_commit(db);
    if (rc != 0)
        goto Exit;

    /* the first row is the active key */
    const char *kid = PQgetvalue(res, 0, 0);
    char *aad = aad_for(kid);
    uint8_t *pem = NULL;
    size_t pemlen = 0;
    rc = cc_unseal(&app->svc->master_key, PQgetvalue(res, 0, 1), aad, &pem, &pemlen);
    free(aad);
    if (rc != 0) {
        cc_log_error("signing key %s cannot be unsealed (%s): is CONSOLE_MASTER_KEY the one it "
                     "was sealed with?",
                     kid, cc_strerror(rc));
        goto Exit;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *jwk = json_loads(PQgetvalue(res, i, 2), 0, NULL);
        if (jwk != NULL)
            json_array_append_new(keys, jwk);
    }
    json_t *doc = json_pack("{s:O}", "keys", keys);
    char *jwks = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);

    if (k->kid == NULL)
        pthread_rwlock_init(&k->lock, NULL);
    pthread_rwlock_wrlock(&k->lock);
    free(k->kid);
    if (k->priv_pem) {
        cc_wipe(k->priv_pem, strlen(k->priv_pem));
        free(k->priv_pem);
    }
    free(k->jwks_json);
    k->kid = cc_strdup(kid);
    k->priv_pem = (char *)pem;
    k->jwks_json = jwks;
    pthread_rwlock_unlock(&k->lock);
    rc = cc_jwks_load(app->svc->jwks, jwks);
    cc_log_info("signing with key %s; %d key(s) published", kid, (int)json_array_size(keys));
Exit:
    if (rc != 0)
        cc_db_rollback(db);
    json_decref(keys);
    cc_pool_free(pool);
    return rc;
}

void identity_keys_dispose(identity_keys_t *k)
{
    if (k->kid == NULL)
        return;
    if (k->priv_pem) {
        cc_wipe(k->priv_pem, strlen(k->priv_pem));
        free(k->priv_pem);
    }
    free(k->kid);
    free(k->jwks_json);
    pthread_rwlock_destroy(&k->lock);
    memset(k, 0, sizeof(*k));
}
