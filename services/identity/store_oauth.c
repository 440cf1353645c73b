/* SQL of the OAuth/OIDC endpoints (see store_oauth.h). */
#include "store_oauth.h"

const cc_stmt_t identity_q_session_token_use =
    CC_STMT("idn_session_token_use",
            "UPDATE session_tokens SET used_at = now()"
            " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()"
            " RETURNING user_id, array_to_json(amr), extract(epoch FROM auth_time)::bigint",
            1);
const cc_stmt_t identity_q_session_insert =
    CC_STMT("idn_session_insert",
            "INSERT INTO sessions (id, token_hash, user_id, amr, auth_time, expires_at)"
            " SELECT $1, $2, $3, ARRAY(SELECT json_array_elements_text($4::json)),"
            " to_timestamp($5::bigint), now() + interval '12 hours'",
            5);
const cc_stmt_t identity_q_session_get =
    CC_STMT("idn_session_get",
            "SELECT id, user_id, array_to_json(amr), extract(epoch FROM auth_time)::bigint"
            " FROM sessions WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > now()",
            1);
const cc_stmt_t identity_q_session_revoke =
    CC_STMT("idn_session_revoke",
            "UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL"
            " RETURNING id",
            1);

const cc_stmt_t identity_q_code_insert = CC_STMT(
    "idn_code_insert",
    "INSERT INTO authorization_codes (code_hash, client_id, user_id, session_id, redirect_uri,"
    " code_challenge, nonce, scope, amr, auth_time, expires_at)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, ARRAY(SELECT json_array_elements_text($9::json)),"
    " to_timestamp($10::bigint), now() + interval '2 minutes'",
    10);
const cc_stmt_t identity_q_code_get = CC_STMT(
    "idn_code_get",
    "SELECT client_id, user_id, session_id, redirect_uri, code_challenge, nonce, scope,"
    " array_to_json(amr), extract(epoch FROM auth_time)::bigint, expires_at > now(),"
    " used_at IS NOT NULL, family_id FROM authorization_codes WHERE code_hash = $1 FOR UPDATE",
    1);
const cc_stmt_t identity_q_code_use = CC_STMT(
    "idn_code_use",
    "UPDATE authorization_codes SET used_at = now(), family_id = $2 WHERE code_hash = $1", 2);

const cc_stmt_t identity_q_family_insert =
    CC_STMT("idn_family_insert",
            "INSERT INTO token_families (id, user_id, client_id, session_id, scope, amr, auth_time)"
            " SELECT $1, $2, $3, $4, $5, ARRAY(SELECT json_array_elements_text($6::json)),"
            " to_timestamp($7::bigint)",
            7);
const cc_stmt_t identity_q_family_revoke =
    CC_STMT("idn_family_revoke",
            "UPDATE token_families SET revoked_at = now(), revoked_reason = $2"
            " WHERE id = $1 AND revoked_at IS NULL",
            2);
const cc_stmt_t identity_q_family_revoke_session =
    CC_STMT("idn_family_revoke_session",
            "UPDATE token_families SET revoked_at = now(), revoked_reason = $2"
            " WHERE session_id = $1 AND revoked_at IS NULL",
            2);
const cc_stmt_t identity_q_family_live =
    CC_STMT("idn_family_live",
            "SELECT client_id FROM token_families WHERE id = $1 AND revoked_at IS NULL", 1);

const cc_stmt_t identity_q_refresh_insert =
    CC_STMT("idn_refresh_insert",
            "INSERT INTO refresh_tokens (token_hash, family_id, parent_hash, expires_at)"
            " VALUES ($1, $2, $3, now() + make_interval(secs => $4::int))",
            4);
#define REFRESH_SELECT                                                                             \
    "SELECT r.family_id, r.expires_at > now(), r.rotated_at IS NOT NULL,"                          \
    " f.revoked_at IS NOT NULL, f.client_id, f.user_id, f.scope, array_to_json(f.amr),"            \
    " extract(epoch FROM f.auth_time)::bigint, f.session_id,"                                      \
    " extract(epoch FROM r.expires_at)::bigint, extract(epoch FROM r.created_at)::bigint"          \
    " FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id WHERE r.token_hash = $1"
const cc_stmt_t identity_q_refresh_get =
    CC_STMT("idn_refresh_get", REFRESH_SELECT " FOR UPDATE OF r, f", 1);
const cc_stmt_t identity_q_refresh_peek = CC_STMT("idn_refresh_peek", REFRESH_SELECT, 1);
const cc_stmt_t identity_q_refresh_rotate = CC_STMT(
    "idn_refresh_rotate", "UPDATE refresh_tokens SET rotated_at = now() WHERE token_hash = $1", 1);
