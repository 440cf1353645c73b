/*
 * The roles service's internal interfaces: the catalogue endpoints (main.c) and the
 * grants and account-admin endpoints (grants.c).
 */
#ifndef ROLES_H
#define ROLES_H

#include "console/http.h"
#include "console/service.h"

void roles_handle_user_grants_get(cc_req_t *req);
void roles_handle_user_grants_put(cc_req_t *req);
void roles_handle_account_admins_list(cc_req_t *req);
void roles_handle_account_admins_add(cc_req_t *req);
void roles_handle_account_admins_remove(cc_req_t *req);

#endif
