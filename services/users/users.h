/*
 * The users service's internal interfaces: the user record, the validators of the
 * profile (validate.c), the store (store.c) and the handlers (handlers.c). Only this
 * service (and its tests) include this header.
 */
#ifndef USERS_H
#define USERS_H

#include <jansson.h>
#include <stdbool.h>

#include "console/http.h"
#include "console/json.h"
#include "console/service.h"

/** A user's profile as the API shows it; NULL = absent. Strings in the request pool. */
typedef struct user_profile {
    const char *title, *first_name, *last_name, *preferred_currency, *language, *primary_email,
        *username, *secondary_email, *phone, *mobile, *street, *city, *state, *country,
        *postal_code, *time_zone;
} user_profile_t;

/** One user row with its home tenant's path and kind. */
typedef struct user {
    const char *id, *tenant_id, *msp_id, *status, *created_at, *created_by, *updated_at,
        *tenant_path, *tenant_kind, *roles_json, *sort_key;
    user_profile_t p;
    int version;
} user_t;

/* ---- validate.c: pure checks, no database ---- */

/** addr-spec of RFC 5322 as mail systems accept it: local@domain, domain with a dot. */
bool users_valid_email(const char *s);
/** An active ISO 4217 currency code (built-in list), upper case. */
bool users_valid_currency(const char *s);
/** A BCP 47 tag (RFC 5646 syntax) whose primary language is an ISO 639-1 code. */
bool users_valid_language(const char *s);
/** An ISO 3166-1 alpha-2 country code (built-in list), upper case. */
bool users_valid_country(const char *s);
/** An IANA time zone: a TZif file under /usr/share/zoneinfo (tzdata), or UTC. */
bool users_valid_time_zone(const char *s);
/** E.164-ish: optional +, 7 to 15 digits, single spaces, hyphens, dots or parentheses. */
bool users_valid_phone(const char *s);
/** 3..254 characters of letters, digits and . _ @ + - (the e-mail by default). */
bool users_valid_username(const char *s);
/** 1..16 letters, digits, spaces and hyphens. */
bool users_valid_postal_code(const char *s);

/**
 * Validates the profile fields of body into *p. create: the required fields of the form
 * must be present and username defaults to primary_email; otherwise (PATCH) only the
 * fields present are set, and an optional field given as null becomes "" (cleared).
 */
void users_validate_profile(cc_validator_t *v, json_t *body, bool create, user_profile_t *p);
/** The fields a create body may carry (NULL-ended). */
extern const char *const users_create_fields[];
/** The fields a PATCH body may carry (NULL-ended). */
extern const char *const users_patch_fields[];

/* ---- store.c ---- */

typedef enum user_sort {
    USORT_NAME,
    USORT_NAME_DESC,
    USORT_EMAIL,
    USORT_EMAIL_DESC,
    USORT_USERNAME,
    USORT_USERNAME_DESC,
    USORT_CREATED,
    USORT_CREATED_DESC,
    USORT_COUNT
} user_sort_t;

int users_sort_parse(const char *s);
const char *users_sort_name(user_sort_t s);

typedef struct user_filter {
    const char *tenant_id;
    const char *q; /* substring of name, e-mail or username, or NULL */
    user_sort_t sort;
    const char *after_key, *after_id;
    int limit;
} user_filter_t;

/** A tenant as users sees it (tenants.tenant_tree, in the caller's scope). */
typedef struct user_tenant {
    const char *id, *path, *kind, *status, *msp_id;
} user_tenant_t;

/** Reads a tenant visible in scope (outside a transaction). 0, CC_ENOENT or a db error. */
int users_tenant_get(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id,
                     user_tenant_t *out);
/** The same inside an open transaction. */
int users_tenant_tx(cc_db_t *db, cc_pool_t *pool, const char *id, user_tenant_t *out);
/** Reads one user (scoped). 0, CC_ENOENT or a db error. */
int users_get(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id, user_t *out);
/** Inside an open transaction: the user locked FOR UPDATE. */
int users_lock(cc_db_t *db, cc_pool_t *pool, const char *id, user_t *out);
/** A page (limit + 1 rows) and the total of matches. */
int users_list(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const user_filter_t *f,
               user_t **items, int *n, long long *total);
/** Inserts a staged user; 0, CC_ECONFLICT (username taken) or a db error. */
int users_insert(cc_db_t *db, cc_pool_t *pool, const char *id, const user_tenant_t *t,
                 const user_profile_t *p, const char *actor, const char *actor_name, user_t *out);
/** Writes the whole profile; 0, CC_ECONFLICT (username taken) or a db error. */
int users_update(cc_db_t *db, cc_pool_t *pool, const char *id, const user_profile_t *p,
                 user_t *out);
/** Sets the status (deactivated keeps the previous one for reactivation). */
int users_set_status(cc_db_t *db, cc_pool_t *pool, const char *id, const char *status, user_t *out);
/** Deletes the user's row (the platform operator's act; see handle_delete). */
int users_delete(cc_db_t *db, cc_pool_t *pool, const char *id);
/** Paths of the tenants on which the user holds a super-admin role (access:manage or *). */
int users_super_paths(cc_db_t *db, cc_pool_t *pool, const char *id, const char ***paths, int *n);
/** Takes the transaction-level lock that serializes super-admin changes of an account. */
int users_lock_super_admins(cc_db_t *db, cc_pool_t *pool, const char *msp_id);
/** Whether the user is the last active user with a super-admin role on some tenant. */
int users_is_last_super_admin(cc_db_t *db, cc_pool_t *pool, const char *id, bool *last);

/** The JSON of a user as the API shows it. */
json_t *users_json(const user_t *u);
void users_store_init(void);
void users_store_dispose(void);

/* ---- handlers.c ---- */
extern const cc_route_t users_routes[];
extern const size_t users_nroutes;

/* ---- audit_log.c ---- */
/** GET /api/v1/audit-events: the audit records of an account and the accounts below it. */
void users_handle_audit_events(cc_req_t *req);
/** GET /api/v1/audit-events/export: the same records streamed as CSV or JSON. */
void users_handle_audit_export(cc_req_t *req);

#endif
