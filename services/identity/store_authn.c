/* SQL of the authentication API (see store_authn.h). */
#include "store_authn.h"

const cc_stmt_t identity_q_activation_get =
    CC_STMT("idn_activation_get",
            "SELECT user_id, expires_at <= now(), used_at IS NOT NULL FROM activation_tokens"
            " WHERE token_hash = $1 FOR UPDATE",
            1);
const cc_stmt_t identity_q_activation_use = CC_STMT(
    "idn_activation_use", "UPDATE activation_tokens SET used_at = now() WHERE token_hash = $1", 1);
const cc_stmt_t identity_q_activation_clear =
    CC_STMT("idn_activation_clear",
            "DELETE FROM activation_tokens WHERE user_id = $1 AND used_at IS NULL", 1);
const cc_stmt_t identity_q_activation_insert =
    CC_STMT("idn_activation_insert",
            "INSERT INTO activation_tokens (token_hash, user_id, expires_at)"
            " VALUES ($1, $2, now() + interval '72 hours')",
            2);

const cc_stmt_t identity_q_cred_upsert =
    CC_STMT("idn_cred_upsert",
            "INSERT INTO credentials (user_id, msp_id, status, password_hash, recovery_question,"
            " recovery_answer_hash, security_image) VALUES ($1, $2, 'password_set', $3, $4, $5, $6)"
            " ON CONFLICT (user_id) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
            " password_set_at = now(), recovery_question = EXCLUDED.recovery_question,"
            " recovery_answer_hash = EXCLUDED.recovery_answer_hash,"
            " security_image = EXCLUDED.security_image, failed_count = 0, failed_since = NULL,"
            " locked_until = NULL, updated_at = now()",
            6);
const cc_stmt_t identity_q_cred_get =
    CC_STMT("idn_cred_get",
            "SELECT status, password_hash, coalesce(locked_until > now(), false)"
            " FROM credentials WHERE user_id = $1 FOR UPDATE",
            1);
/* a failure outside the 15-minute window starts a new window */
const cc_stmt_t identity_q_cred_fail = CC_STMT(
    "idn_cred_fail",
    "UPDATE credentials SET"
    " failed_count = CASE WHEN failed_since IS NULL OR failed_since < now() - interval '15 minutes'"
    " THEN 1 ELSE failed_count + 1 END,"
    " failed_since = CASE WHEN failed_since IS NULL OR failed_since < now() - interval '15 minutes'"
    " THEN now() ELSE failed_since END, updated_at = now()"
    " WHERE user_id = $1 RETURNING failed_count",
    1);
const cc_stmt_t identity_q_cred_lock =
    CC_STMT("idn_cred_lock",
            "UPDATE credentials SET locked_until = now() + interval '15 minutes', failed_count = 0,"
            " failed_since = NULL, updated_at = now() WHERE user_id = $1",
            1);
const cc_stmt_t identity_q_cred_ok =
    CC_STMT("idn_cred_ok",
            "UPDATE credentials SET failed_count = 0, failed_since = NULL, locked_until = NULL"
            " WHERE user_id = $1 AND (failed_count <> 0 OR locked_until IS NOT NULL)",
            1);
const cc_stmt_t identity_q_cred_activate =
    CC_STMT("idn_cred_activate",
            "UPDATE credentials SET status = 'active', updated_at = now() WHERE user_id = $1", 1);
/* Temporary: identity marks the user active itself until the users service consumes an
 * event for it (docs/architecture.md). */
const cc_stmt_t identity_q_user_activate =
    CC_STMT("idn_user_activate",
            "UPDATE users.users SET status = 'active', updated_at = now(), version = version + 1"
            " WHERE id = $1 AND status = 'staged'",
            1);

const cc_stmt_t identity_q_factors_active =
    CC_STMT("idn_factors_active",
            "SELECT id, type, profile->>'email', profile->>'phone' FROM factors"
            " WHERE user_id = $1 AND status = 'active' ORDER BY created_at",
            1);
/* a new pending factor; the user keeps at most five pending ones (the latest): enrolment
 * started again and again (a page reloaded) must not pile factors up */
const cc_stmt_t identity_q_factor_insert = CC_STMT(
    "idn_factor_insert",
    "WITH stale AS (DELETE FROM factors WHERE id IN (SELECT f.id FROM factors f"
    " WHERE f.user_id = $2 AND f.status = 'pending' ORDER BY f.created_at DESC, f.id OFFSET 4)"
    " RETURNING id), stale_codes AS (DELETE FROM email_codes WHERE factor_id IN"
    " (SELECT id FROM stale)), stale_challenges AS (DELETE FROM webauthn_challenges WHERE"
    " factor_id IN (SELECT id FROM stale))"
    " INSERT INTO factors (id, user_id, msp_id, type, status, secret_sealed, profile)"
    " VALUES ($1, $2, $3, $4, 'pending', $5, $6::jsonb)",
    6);
const cc_stmt_t identity_q_factor_get =
    CC_STMT("idn_factor_get",
            "SELECT type, status, secret_sealed, coalesce(last_step, -1), profile->>'email',"
            " profile->>'phone' FROM factors WHERE id = $1 AND user_id = $2 FOR UPDATE",
            2);
const cc_stmt_t identity_q_factors_list = CC_STMT(
    "idn_factors_list",
    "SELECT coalesce(json_agg(json_build_object('id', id, 'type', type, 'status', status,"
    " 'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " 'activated_at', to_char(activated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " 'last_used_at', to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
    " ORDER BY created_at, id), '[]')::text FROM factors WHERE user_id = $1",
    1);
/* locks the user's active factors, so two deletions cannot both pass the last-factor check */
const cc_stmt_t identity_q_factors_count =
    CC_STMT("idn_factors_count",
            "SELECT id FROM factors WHERE user_id = $1 AND status = 'active' FOR UPDATE", 1);
const cc_stmt_t identity_q_factor_delete =
    CC_STMT("idn_factor_delete",
            "WITH gone AS (DELETE FROM factors WHERE id = $1 AND user_id = $2 RETURNING id)"
            " DELETE FROM email_codes WHERE factor_id IN (SELECT id FROM gone)",
            2);
const cc_stmt_t identity_q_factor_pick =
    CC_STMT("idn_factor_pick",
            "SELECT id FROM factors WHERE user_id = $1 AND type = 'totp' AND status = $2"
            " ORDER BY created_at DESC LIMIT 1",
            2);
const cc_stmt_t identity_q_factor_used =
    CC_STMT("idn_factor_used",
            "UPDATE factors SET last_step = $2::bigint, last_used_at = now() WHERE id = $1", 2);
const cc_stmt_t identity_q_factor_activate =
    CC_STMT("idn_factor_activate",
            "UPDATE factors SET status = 'active', activated_at = now(), last_step = $2::bigint,"
            " last_used_at = now() WHERE id = $1",
            2);

const cc_stmt_t identity_q_email_code_set =
    CC_STMT("idn_email_code_set",
            "INSERT INTO email_codes (factor_id, code_hash, expires_at)"
            " VALUES ($1, $2, now() + make_interval(secs => $3::int)) ON CONFLICT (factor_id)"
            " DO UPDATE SET code_hash = EXCLUDED.code_hash, attempts = 0,"
            " expires_at = EXCLUDED.expires_at, created_at = now()",
            3);
const cc_stmt_t identity_q_email_code_recent =
    CC_STMT("idn_email_code_recent",
            "SELECT 1 FROM email_codes WHERE factor_id = $1"
            " AND created_at > now() - interval '30 seconds'",
            1);
const cc_stmt_t identity_q_email_code_get =
    CC_STMT("idn_email_code_get",
            "SELECT code_hash, attempts, expires_at > now() FROM email_codes WHERE factor_id = $1"
            " FOR UPDATE",
            1);
const cc_stmt_t identity_q_email_code_fail =
    CC_STMT("idn_email_code_fail",
            "UPDATE email_codes SET attempts = attempts + 1 WHERE factor_id = $1", 1);
const cc_stmt_t identity_q_email_code_clear =
    CC_STMT("idn_email_code_clear", "DELETE FROM email_codes WHERE factor_id = $1", 1);

const cc_stmt_t identity_q_tx_insert =
    CC_STMT("idn_tx_insert",
            "INSERT INTO authn_transactions (state_hash, user_id, status, expires_at)"
            " VALUES ($1, $2, $3, now() + make_interval(secs => $4::int))"
            " RETURNING to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            4);
const cc_stmt_t identity_q_tx_get =
    CC_STMT("idn_tx_get",
            "SELECT user_id, status, attempts FROM authn_transactions"
            " WHERE state_hash = $1 AND expires_at > now() FOR UPDATE",
            1);
const cc_stmt_t identity_q_tx_fail =
    CC_STMT("idn_tx_fail",
            "UPDATE authn_transactions SET attempts = attempts + 1,"
            " status = CASE WHEN attempts + 1 >= 5 THEN 'FAILED' ELSE status END"
            " WHERE state_hash = $1 RETURNING attempts",
            1);
const cc_stmt_t identity_q_tx_status =
    CC_STMT("idn_tx_status", "UPDATE authn_transactions SET status = $2 WHERE state_hash = $1", 2);

const cc_stmt_t identity_q_recovery_recent =
    CC_STMT("idn_recovery_recent",
            "SELECT 1 FROM recovery_tokens WHERE user_id = $1"
            " AND created_at > now() - interval '60 seconds'",
            1);
const cc_stmt_t identity_q_recovery_clear = CC_STMT(
    "idn_recovery_clear", "DELETE FROM recovery_tokens WHERE user_id = $1 AND used_at IS NULL", 1);
const cc_stmt_t identity_q_recovery_insert =
    CC_STMT("idn_recovery_insert",
            "INSERT INTO recovery_tokens (token_hash, user_id, expires_at)"
            " VALUES ($1, $2, now() + interval '1 hour')",
            2);
const cc_stmt_t identity_q_recovery_get = CC_STMT(
    "idn_recovery_get",
    "SELECT r.user_id, c.recovery_question, c.recovery_answer_hash, c.security_image"
    " FROM recovery_tokens r JOIN credentials c ON c.user_id = r.user_id"
    " WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now() AND r.attempts < 5"
    " AND c.status = 'active' FOR UPDATE OF r",
    1);
const cc_stmt_t identity_q_recovery_fail =
    CC_STMT("idn_recovery_fail",
            "UPDATE recovery_tokens SET attempts = attempts + 1 WHERE token_hash = $1"
            " RETURNING attempts",
            1);
const cc_stmt_t identity_q_recovery_use = CC_STMT(
    "idn_recovery_use", "UPDATE recovery_tokens SET used_at = now() WHERE token_hash = $1", 1);
const cc_stmt_t identity_q_cred_password =
    CC_STMT("idn_cred_password",
            "UPDATE credentials SET password_hash = $2, password_set_at = now(), failed_count = 0,"
            " failed_since = NULL, locked_until = NULL, updated_at = now() WHERE user_id = $1",
            2);

const cc_stmt_t identity_q_session_token_insert =
    CC_STMT("idn_session_token_insert",
            "INSERT INTO session_tokens (token_hash, user_id, amr, auth_time, expires_at)"
            " VALUES ($1, $2, $3::text[], now(), now() + interval '5 minutes')"
            " RETURNING to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
            3);
