/*
 * Events identity consumes from users.outbox (aggregate_id = the user's id):
 * - "user.created" and "user.activation_requested" (resend): a staged user gets an
 *   activation link valid 72 hours, mailed in their language, replacing any unused one;
 * - "user.deactivated": every browser session, refresh-token family and unused session
 *   token of the user is revoked and every remembered browser forgotten (their access
 *   tokens already stop at once: authorization reads the user's status on every request). The
 * handler runs in the consumer's transaction (system scope), so the link and the consumer's
 * position commit together; a mail that cannot be sent rolls both back and the event is retried (at
 * worst a person receives two links; the newest one is valid).
 */
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"
#include "store_authn.h"

static const cc_stmt_t q_revoke_families =
    CC_STMT("identity_ev_revoke_families",
            "UPDATE token_families SET revoked_at = now(), revoked_reason = 'user_deactivated'"
            " WHERE user_id = $1::uuid AND revoked_at IS NULL",
            1);
static const cc_stmt_t q_revoke_sessions = CC_STMT(
    "identity_ev_revoke_sessions",
    "UPDATE sessions SET revoked_at = now() WHERE user_id = $1::uuid AND revoked_at IS NULL", 1);
static const cc_stmt_t q_spend_session_tokens = CC_STMT(
    "identity_ev_spend_session_tokens",
    "UPDATE session_tokens SET used_at = now() WHERE user_id = $1::uuid AND used_at IS NULL", 1);

/* A deleted user's secrets and pending links go; sessions and token families stay,
 * revoked, as the record of what was issued. */
static const cc_stmt_t q_forget[] = {
    CC_STMT("identity_ev_forget_credentials", "DELETE FROM credentials WHERE user_id = $1::uuid",
            1),
    CC_STMT("identity_ev_forget_factors", "DELETE FROM factors WHERE user_id = $1::uuid", 1),
    CC_STMT("identity_ev_forget_activation",
            "DELETE FROM activation_tokens WHERE user_id = $1::uuid", 1),
    CC_STMT("identity_ev_forget_recovery", "DELETE FROM recovery_tokens WHERE user_id = $1::uuid",
            1),
    CC_STMT("identity_ev_forget_transactions",
            "DELETE FROM authn_transactions WHERE user_id = $1::uuid", 1),
    CC_STMT("identity_ev_forget_codes", "DELETE FROM authorization_codes WHERE user_id = $1::uuid",
            1),
    CC_STMT("identity_ev_forget_webauthn",
            "DELETE FROM webauthn_challenges WHERE user_id = $1::uuid", 1),
    CC_STMT("identity_ev_forget_recovery_codes",
            "DELETE FROM recovery_codes WHERE user_id = $1::uuid", 1),
    CC_STMT("identity_ev_forget_federated",
            "DELETE FROM federated_identities WHERE user_id = $1::uuid", 1),
};

static int revoke_everything(cc_db_t *db, cc_pool_t *pool, const char *user_id)
{
    const char *p[] = {user_id};
    int rc = cc_db_query(db, pool, &q_revoke_families, p, NULL);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_revoke_sessions, p, NULL);
    if (rc == 0)
        rc = cc_db_query(db, pool, &q_spend_session_tokens, p, NULL);
    if (rc == 0) /* a remembered browser must not outlive the account either */
        rc = cc_db_query(db, pool, &identity_q_remembered_forget, p, NULL);
    if (rc == 0)
        cc_log_info("user %s deactivated: sessions and refresh tokens revoked", user_id);
    return rc == 0 ? 0 : -1;
}

int identity_on_users_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    identity_app_t *app = arg;
    if (ev->aggregate_id == NULL || !cc_is_uuid(ev->aggregate_id))
        return 0;
    if (strcmp(ev->type, "user.deactivated") == 0)
        return revoke_everything(db, pool, ev->aggregate_id);
    if (strcmp(ev->type, "user.deleted") == 0) {
        if (revoke_everything(db, pool, ev->aggregate_id) != 0)
            return -1;
        for (size_t i = 0; i < CC_ARRAY_SIZE(q_forget); i++)
            if (cc_db_query(db, pool, &q_forget[i], (const char *[]){ev->aggregate_id}, NULL) != 0)
                return -1;
        cc_log_info("user %s deleted: credentials, factors and links removed", ev->aggregate_id);
        return 0;
    }
    if (strcmp(ev->type, "user.created") != 0 && strcmp(ev->type, "user.activation_requested") != 0)
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
        rc = identity_mail_activation(app, db, &u, token);
    if (rc == 0)
        cc_log_info("activation link mailed to user %s", u.id);
    cc_wipe(token, strlen(token));
    free(token);
    return rc == 0 ? 0 : -1;
}
