/*
 * The identity service's internal interfaces: signing keys, the store (SQL) and the
 * handlers. Only this service includes this header.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

#include <pthread.h>

#include "console/service.h"

/** The signing key in use and the published key set. */
typedef struct identity_keys {
    pthread_rwlock_t lock;
    char *kid;       /* active key */
    char *priv_pem;  /* active private key (PEM), memory only */
    char *jwks_json; /* {"keys": [...]}: active + retired keys not yet expired */
} identity_keys_t;

typedef struct identity_app {
    cc_service_t *svc;
    identity_keys_t keys;
    int64_t rotation_days;
} identity_app_t;

/**
 * Loads the signing keys, generating the first one (or a successor when the active key
 * is older than rotation_days) under an advisory lock, so replicas agree. Also loads
 * the public set into svc->jwks so this service verifies its own tokens without HTTP.
 */
int identity_keys_init(identity_app_t *app, cc_db_t *db);
void identity_keys_dispose(identity_keys_t *keys);

/** An OAuth client row. Strings in the pool. */
typedef struct identity_client {
    const char *id, *client_id, *name, *kind, *secret_hash, *tenant_id, *msp_id, *role;
    json_t *scopes;      /* array of strings, on the pool */
    json_t *grant_types; /* array of strings, on the pool */
    bool revoked;
} identity_client_t;

/** Finds a client by client_id (system scope; one round trip). 0, CC_ENOENT or a db error. */
int identity_store_client_by_client_id(cc_db_t *db, cc_pool_t *pool, const char *client_id,
                                       identity_client_t *out);
/** Finds a client by its id (the sub of its tokens) within the caller's scope. */
int identity_store_client_by_id(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope,
                                const char *id, identity_client_t *out);

/* handlers (routes in main.c) */
void identity_handle_discovery(cc_req_t *req);
void identity_handle_jwks(cc_req_t *req);
void identity_handle_token(cc_req_t *req);
void identity_handle_me(cc_req_t *req);

#endif
