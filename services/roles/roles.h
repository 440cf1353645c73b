/* The roles service's internal interfaces. */
#ifndef ROLES_H
#define ROLES_H

#include "console/outbox.h"
#include "console/service.h"

/** identity.outbox consumer (events.c): API clients' grants. */
int roles_on_identity_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

#endif
