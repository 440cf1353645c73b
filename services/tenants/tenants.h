/*
 * The tenants service's internal interfaces: the tenant record, the store (SQL) and the
 * handlers. Only this service (and its tests) include this header.
 */
#ifndef TENANTS_H
#define TENANTS_H

#include <jansson.h>
#include <stdbool.h>

#include "console/http.h"
#include "console/service.h"

typedef struct tenants_app {
    int retention_days;   /* a deleted tenant is purged this many days later */
    int purge_interval_s; /* between looks for tenants due */
} tenants_app_t;

/** One tenant row. Strings in the request pool. */
typedef struct tenant {
    const char *id, *name, *kind, *parent_id, *status, *created_at, *created_by_name, *created_by,
        *updated_at, *deleted_at, *purge_at, *path, *msp_id, *sort_key;
    int version;
    bool allow_msp_access; /* the customer consents to "view as end-user admin" */
    long long sources_total, cloud_usage_bytes, datastore_usage_bytes; /* usage's view */
} tenant_t;

/* ---- store.c ---- */

/** Sort orders of lists and exports. */
typedef enum tenant_sort {
    SORT_NAME,
    SORT_NAME_DESC,
    SORT_CREATED,
    SORT_CREATED_DESC,
    SORT_QUOTA, /* quota_used_pct: usage over quota, the larger of the two resources */
    SORT_QUOTA_DESC,
    SORT_COUNT
} tenant_sort_t;

/** Parses ?sort= ("name", "-name", "created_at", "-created_at", "quota_used_pct",
 * "-quota_used_pct"); -1 when unknown. */
int tenants_sort_parse(const char *s);
const char *tenants_sort_name(tenant_sort_t sort);

/** How the list searches names. */
enum { SEARCH_NONE, SEARCH_SUBSTRING, SEARCH_PREFIX, SEARCH_MODES };

typedef struct tenant_filter {
    const char *parent_id;
    const char *status;  /* "" = active and suspended; else exactly this status */
    const char *pattern; /* the search text (q or prefix, trimmed), or NULL */
    int search;          /* SEARCH_SUBSTRING (q) or SEARCH_PREFIX (prefix) */
    tenant_sort_t sort;
    const char *after_key, *after_id; /* keyset position, or NULL for the first page */
    int limit;
} tenant_filter_t;

/** Reads one tenant (RLS-scoped). 0, CC_ENOENT or a db error. */
int tenants_get(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id,
                tenant_t *out);
/** Inside an open transaction: the tenant locked FOR UPDATE. */
int tenants_lock(cc_db_t *db, cc_pool_t *pool, const char *id, tenant_t *out);
/** Inside an open transaction: the parent locked FOR SHARE (no delete while a child is added). */
int tenants_lock_parent(cc_db_t *db, cc_pool_t *pool, const char *id, tenant_t *out);

/**
 * A page (limit + 1 rows are fetched to know whether more follow); with total (may be
 * NULL) also the number of matches and whether the parent itself is visible.
 */
int tenants_list(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const tenant_filter_t *f,
                 tenant_t **items, int *n, long long *total, bool *parent_visible);
/** {customers_total, active_total, suspended_total, deleted_total} under parent. */
int tenants_summary(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *parent_id,
                    json_t **out, bool *parent_visible);

/** Inserts a child of parent (locked). Returns 0, CC_ECONFLICT (name taken) or a db error. */
int tenants_insert(cc_db_t *db, cc_pool_t *pool, const tenant_t *parent, const char *id,
                   const char *kind, const char *name, const char *actor, const char *actor_name,
                   tenant_t *out);
/** Renames and/or sets allow_msp_access ("true"/"false"); NULL keeps a value. 0,
 * CC_ECONFLICT (name taken) or a db error. */
int tenants_update(cc_db_t *db, cc_pool_t *pool, const char *id, const char *name,
                   const char *allow_msp_access, const char *actor, tenant_t *out);
/** Sets status active|suspended. */
int tenants_set_status(cc_db_t *db, cc_pool_t *pool, const char *id, const char *status,
                       const char *actor, tenant_t *out);
/** Moves to the recycle bin until retention_days from now. */
int tenants_soft_delete(cc_db_t *db, cc_pool_t *pool, const char *id, int retention_days,
                        const char *actor, const char *actor_name, tenant_t *out);
/** Back from the recycle bin (to suspended if it was, else active); CC_ECONFLICT: name taken. */
int tenants_restore(cc_db_t *db, cc_pool_t *pool, const char *id, const char *actor, tenant_t *out);
/** Number of children not deleted. */
int tenants_live_children(cc_db_t *db, cc_pool_t *pool, const char *id, long long *n);

/** The JSON of a tenant as the API shows it. */
json_t *tenants_json(const tenant_t *t);
/** The same JSON written into b (lists and exports: no tree of nodes). */
void tenants_json_write(cc_buf_t *b, const tenant_t *t);
/** Builds the statements (once, before serving). */
void tenants_store_init(void);
void tenants_store_dispose(void);

/* ---- purge.c ---- */

/**
 * Purges every tenant whose recycle-bin window has ended (deepest first), each with a
 * tenant.purged event in the outbox and an audit record, in one transaction per tenant.
 * *purged counts them. Returns 0 or a db error.
 */
int tenants_purge_due(cc_db_t *db, cc_pool_t *pool, int *purged);
/** The background purger (a thread with its own connection). */
int tenants_purger_start(const cc_env_t *env, int interval_s);
void tenants_purger_stop(void);

/* ---- handlers ---- */
extern const cc_route_t tenants_routes[];
extern const size_t tenants_nroutes;

void tenants_handle_create(cc_req_t *req);
void tenants_handle_list(cc_req_t *req);
void tenants_handle_summary(cc_req_t *req);
void tenants_handle_export(cc_req_t *req);
void tenants_handle_get(cc_req_t *req);
void tenants_handle_patch(cc_req_t *req);
void tenants_handle_suspend(cc_req_t *req);
void tenants_handle_resume(cc_req_t *req);
void tenants_handle_delete(cc_req_t *req);
void tenants_handle_restore(cc_req_t *req);

/**
 * Whether the caller may list the accounts under parent_id (else 404): a parent it sees
 * (parent_visible, read in the caller's scope), or an ancestor of one of its grants.
 */
bool tenants_may_list_under(cc_req_t *req, const char *parent_id, bool parent_visible);
/** Reads the common list query (parent_id, q, status, sort, cursor) into f; answers 400. */
int tenants_filter_from_query(cc_req_t *req, tenant_filter_t *f, bool paged);

#endif
