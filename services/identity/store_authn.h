/*
 * SQL of the authentication API (store_authn.c): every statement a constant, every value
 * a parameter, all run in a system-scope transaction opened by the handler.
 */
#ifndef IDENTITY_STORE_AUTHN_H
#define IDENTITY_STORE_AUTHN_H

#include "console/db.h"

/* activation links */
extern const cc_stmt_t identity_q_activation_get;    /* hash -> user_id, expired, used */
extern const cc_stmt_t identity_q_activation_use;    /* hash */
extern const cc_stmt_t identity_q_activation_clear;  /* user_id: drops unused links */
extern const cc_stmt_t identity_q_activation_insert; /* hash, user_id (72 hours) */

/* credentials */
extern const cc_stmt_t identity_q_cred_upsert;   /* user, msp, pw hash, question, answer, image */
extern const cc_stmt_t identity_q_cred_get;      /* user -> status, hash, locked, locked_until */
extern const cc_stmt_t identity_q_cred_fail;     /* user -> failed_count after this failure */
extern const cc_stmt_t identity_q_cred_lock;     /* user */
extern const cc_stmt_t identity_q_cred_ok;       /* user: clears the failure window */
extern const cc_stmt_t identity_q_cred_activate; /* user: status active */
extern const cc_stmt_t identity_q_user_activate; /* user: users.users status staged -> active */

/* factors */
extern const cc_stmt_t identity_q_factors_active; /* user -> id, type, email, phone */
extern const cc_stmt_t identity_q_factor_insert;  /* id, user, msp, type, sealed, profile */
extern const cc_stmt_t
    identity_q_factor_get; /* id, user -> type, status, sealed, step, email, phone */
extern const cc_stmt_t identity_q_factors_list;    /* user -> id, type, status, times (json) */
extern const cc_stmt_t identity_q_factors_count;   /* user -> active factors (locks them) */
extern const cc_stmt_t identity_q_factor_delete;   /* id, user */
extern const cc_stmt_t identity_q_factor_pick;     /* user, status -> newest TOTP factor id */
extern const cc_stmt_t identity_q_factor_used;     /* id, step */
extern const cc_stmt_t identity_q_factor_activate; /* id, step */

/* e-mail codes */
extern const cc_stmt_t identity_q_email_code_set;    /* factor, hash, seconds to live */
extern const cc_stmt_t identity_q_email_code_recent; /* factor -> a code sent < 30 s ago */
extern const cc_stmt_t identity_q_email_code_get;    /* factor -> hash, attempts, live */
extern const cc_stmt_t identity_q_email_code_fail;   /* factor */
extern const cc_stmt_t identity_q_email_code_clear;  /* factor */

/* authentication transactions */
extern const cc_stmt_t identity_q_tx_insert; /* hash, user, status, seconds */
extern const cc_stmt_t identity_q_tx_get;    /* hash -> user, status, attempts */
extern const cc_stmt_t identity_q_tx_fail;   /* hash -> attempts */
extern const cc_stmt_t identity_q_tx_status; /* hash, status */

/* password recovery */
extern const cc_stmt_t identity_q_recovery_recent; /* user -> a link sent < 60 s ago */
extern const cc_stmt_t identity_q_recovery_clear;  /* user: drops unused links */
extern const cc_stmt_t identity_q_recovery_insert; /* hash, user (1 hour) */
extern const cc_stmt_t identity_q_recovery_get;    /* hash -> user, question, answer hash, image */
extern const cc_stmt_t identity_q_recovery_fail;   /* hash -> attempts */
extern const cc_stmt_t identity_q_recovery_use;    /* hash */
extern const cc_stmt_t identity_q_cred_password;   /* user, hash: new password, unlocks */

/* session tokens */
extern const cc_stmt_t identity_q_session_token_insert; /* hash, user, amr (text[]) */

#endif
