/*
 * Audit records: who did what to which target, written in the same transaction as the
 * change into the service's own audit_events table (search_path), so a change and its
 * record commit or vanish together.
 */
#ifndef CONSOLE_AUDIT_H
#define CONSOLE_AUDIT_H

#include <jansson.h>

#include "console/http.h"

typedef struct cc_audit {
    const char *action;      /* "tenant.created", "tenant.suspended", … */
    const char *target_type; /* "tenant", "user", … */
    const char *target_id;
    const char *tenant_id; /* the tenant the change concerns (may be NULL) */
    const char *msp_id;    /* its root account (NULL for platform-level changes) */
    json_t *details;       /* borrowed; NULL = {} (never put a secret here) */
} cc_audit_t;

/**
 * Appends an audit record for the request's caller inside req->db's open transaction.
 * The actor is the real person or client: the token's `act.sub` when it acts on someone's
 * behalf (then `acting_as` is the token's `sub`), its `sub` otherwise. The client's
 * address (X-Forwarded-For from the gateway, else the peer) and User-Agent are recorded
 * too. Returns 0 or a cc_db_query error; CC_EINVAL when no transaction is open.
 */
int cc_audit_write(cc_req_t *req, const cc_audit_t *a);

/** The same for background work without a request (a purge job): actor is the job's name. */
int cc_audit_write_system(cc_db_t *db, cc_pool_t *pool, const char *job, const cc_audit_t *a);

/**
 * The client's address as the audit records it: the gateway's X-Forwarded-For entry when
 * the peer is the local gateway, else the peer; at most 64 printable characters, pool
 * memory, or NULL.
 */
const char *cc_req_client(cc_req_t *req);

/**
 * The caller's display name, as lists show who did something ("created_by"): the token's
 * name, else its e-mail, else "API client <client_id>", else its sub.
 */
const char *cc_audit_actor_name(const cc_req_t *req);

#endif
