/*
 * SQL of the OAuth/OIDC endpoints (store_oauth.c): sessions, authorization codes, token
 * families and refresh tokens. Run in a system-scope transaction opened by the handler.
 */
#ifndef IDENTITY_STORE_OAUTH_H
#define IDENTITY_STORE_OAUTH_H

#include "console/db.h"

extern const cc_stmt_t identity_q_session_token_use; /* hash -> user, amr json, auth_time */
extern const cc_stmt_t identity_q_session_insert;    /* id, hash, user, amr json, auth_time */
extern const cc_stmt_t identity_q_session_get;       /* hash -> id, user, amr json, auth_time */
extern const cc_stmt_t identity_q_session_revoke;    /* hash -> id */
extern const cc_stmt_t identity_q_code_insert;       /* hash, client, user, session, redirect,
                                                        challenge, nonce, scope, amr json, auth_time */
extern const cc_stmt_t identity_q_code_get;          /* hash -> see oauth.c */
extern const cc_stmt_t identity_q_code_use;          /* hash, family */
extern const cc_stmt_t identity_q_family_insert;     /* id, user, client, session, scope, amr json,
                                                        auth_time */
extern const cc_stmt_t identity_q_family_revoke;     /* id, reason */
extern const cc_stmt_t identity_q_family_revoke_session; /* session id, reason */
extern const cc_stmt_t identity_q_family_live;           /* id -> client_id when not revoked */
extern const cc_stmt_t identity_q_refresh_insert;        /* hash, family, parent, seconds */
extern const cc_stmt_t identity_q_refresh_get;           /* hash -> see oauth.c (FOR UPDATE) */
extern const cc_stmt_t identity_q_refresh_peek;          /* the same, read-only */
extern const cc_stmt_t identity_q_refresh_rotate;        /* hash */

#endif
