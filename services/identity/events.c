/*
 * Events identity consumes. users.outbox "user.created" (aggregate_id = the user's id):
 * a staged user gets an activation link valid 72 hours, mailed in their language. The
 * users service will emit it; until then a test (or an operator) inserts the row and the
 * event. The handler runs in the consumer's transaction (system scope), so the link and
 * the consumer's position commit together; a mail that cannot be sent rolls both back
 * and the event is retried (at worst a person receives two links; the newest one is valid).
 */
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"
#include "store_authn.h"

int identity_on_users_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    identity_app_t *app = arg;
    if (strcmp(ev->type, "user.created") != 0 || ev->aggregate_id == NULL)
        return 0;
    identity_user_t u;
    int rc = identity_store_user_by_id(db, pool, ev->aggregate_id, &u);
    if (rc == CC_ENOENT)
        return 0; /* deleted meanwhile (or not a user id): nothing to mail */
    if (rc != 0)
        return rc;
    if (strcmp(u.status, "staged") != 0)
        return 0;
    char digest[65];
    char *token = identity_secret_new(digest);
    const char *pu[] = {u.id};
    const char *pi[] = {digest, u.id};
    /* one valid link at a time: a new one replaces any unused earlier one */
    if ((rc = cc_db_query(db, pool, &identity_q_activation_clear, pu, NULL)) == 0 &&
        (rc = cc_db_query(db, pool, &identity_q_activation_insert, pi, NULL)) == 0)
        rc = identity_mail_activation(app, &u, token);
    if (rc == 0)
        cc_log_info("activation link mailed to user %s", u.id);
    cc_wipe(token, strlen(token));
    free(token);
    return rc == 0 ? 0 : -1;
}
