/*
 * Authorization: who may do what on which tenant.
 *
 * A principal (user or API client, from its verified token) holds grants: a role on a
 * tenant. A role is a list of permissions ("tenants:read", "users:manage", …, "*" for
 * the platform operator), read as data from the roles service's catalogue
 * (roles.principal_grants), so custom roles are only more rows. A grant covers its tenant
 * and every descendant (the tenant tree's ltree paths, tenants.tenant_tree).
 *
 * Evaluated at request time, not from the token: a revoked grant or a suspended tenant
 * takes effect at once (a per-process cache, cleared by NOTIFY; CONSOLE_AUTHZ_CACHE_MS,
 * default 1 s, bounds it if a notification is lost), not when the token expires.
 *
 * The server loads the caller's grants once per request (cc_authz_enforce, installed by
 * cc_service_main) and refuses every principal whose home tenant, or an ancestor of it,
 * is suspended or deleted (403 tenant_suspended), in every service. The grants also give
 * the row-level-security scope of the request's transactions (cc_req_scope): platform,
 * the whole root account, or the granted subtrees only.
 */
#ifndef CONSOLE_AUTHZ_H
#define CONSOLE_AUTHZ_H

#include <stdbool.h>
#include <stddef.h>

#include "console/db.h"
#include "console/http.h"

typedef struct cc_grant {
    const char *role;
    const char *tenant_id;
    const char *path;        /* the tenant's ltree path, e.g. "a1b2….c3d4…" */
    const char *kind;        /* the tenant's kind: platform | msp | customer | direct */
    const char *status;      /* the tenant's status: active | suspended (deleted: dropped) */
    const char *permissions; /* space-separated; "*" = every permission */
} cc_grant_t;

typedef struct cc_authz {
    const char *principal_id;
    const char *tenant_id;   /* home tenant */
    const char *msp_id;      /* its root account */
    const char *home_status; /* "deactivated" or "gone" (the user, or the real actor), else the
                                worst of the home tenant and its ancestors */
    cc_grant_t *grants;
    size_t ngrants;
    bool platform; /* holds "*" on the platform tenant */
    cc_scope_t scope;
} cc_authz_t;

/**
 * Loads the principal's grants and home-tenant status (one read in system scope, or the
 * process cache). *out is pool memory. Returns 0, CC_ENOENT (the home tenant does not
 * exist: purged) or a cc_db_* error.
 */
int cc_authz_load(cc_db_t *db, cc_pool_t *pool, const cc_principal_t *p, cc_authz_t **out);

/** True when a grant of a holds perm on the tenant at path (the grant's tenant or an ancestor). */
bool cc_authz_can(const cc_authz_t *a, const char *perm, const char *path);

/**
 * True when a grant holds perm on a proper ancestor of path: the right to manage a
 * tenant's lifecycle (create under, suspend, delete) comes from above it, so no one
 * suspends or deletes the account that holds their own grant.
 */
bool cc_authz_can_above(const cc_authz_t *a, const char *perm, const char *path);

/** True when the tenant at path is visible to a: covered by a grant, or an ancestor of one. */
bool cc_authz_sees(const cc_authz_t *a, const char *path);

/**
 * Whether a may give a principal (a user's grant, an API client) a role of role_kind on
 * the account of account_kind at path: access:manage there, or, for a customer role on a
 * customer account, users:manage there (a tenant admin manages its own people and
 * clients). The caller still checks that it holds every permission of the role there.
 */
bool cc_authz_may_grant(const cc_authz_t *a, const char *account_kind, const char *role_kind,
                        const char *path);

/**
 * The server's hook after authentication: loads req->authz, answers 403 tenant_suspended
 * (home tenant or an ancestor suspended or deleted), 401 (home tenant gone) or the
 * database error, and returns false then.
 */
bool cc_authz_enforce(cc_req_t *req);

/** The request's row-level-security scope: from req->authz, or none at all without it. */
const cc_scope_t *cc_req_scope(cc_req_t *req);

/** Sets the cache lifetime in milliseconds (0 disables the cache). Default 1000. */
void cc_authz_set_cache_ms(int ms);

/** Forgets every cached entry (tests, and after a local grant change). */
void cc_authz_cache_clear(void);

/**
 * A thread with its own connection that LISTENs on console_authz (NOTIFYed by triggers
 * when grants, roles or a tenant's status change) and clears the cache on each
 * notification, and whenever the connection is lost. cc_service_main starts it. So a
 * change is seen at once in every process; the cache lifetime only bounds the cost of a
 * lost notification. Returns 0 or CC_EIO.
 */
int cc_authz_listen_start(const char *conninfo);
void cc_authz_listen_stop(void);

#endif
