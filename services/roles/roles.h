/*
 * The roles service's internal interfaces: the catalogue endpoints (main.c) and the
 * grants and account-admin endpoints (grants.c).
 */
#ifndef ROLES_H
#define ROLES_H

#include "console/http.h"
#include "console/outbox.h"
#include "console/service.h"

void roles_handle_user_grants_get(cc_req_t *req);
void roles_handle_user_grants_put(cc_req_t *req);
void roles_handle_account_admins_list(cc_req_t *req);
void roles_handle_account_admins_add(cc_req_t *req);
void roles_handle_account_admins_remove(cc_req_t *req);

/** identity.outbox consumer (events.c): API clients' grants. */
int roles_on_identity_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);
/** users.outbox: user.deleted removes the user's grants. */
int roles_on_users_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

#endif
