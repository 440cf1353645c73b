/*
 * Lost factors (issue 10): one-time recovery codes and an administrator's reset.
 *
 * POST /api/v1/me/recovery-codes makes ten codes (a recent sign-in needed; a new set
 * replaces the old), shown in that answer only; GET says how many are left. A code
 * replaces the second factor once, in MFA_REQUIRED: POST /api/v1/authn/recovery-codes/
 * verify (authn.c). Codes are 10 characters of a 31-letter alphabet without look-alikes
 * (49 bits), stored as HMAC-SHA256 under the master key.
 *
 * POST /api/v1/users/{id}/factors/reset: someone with users:manage on the user's account
 * removes all of the user's factors and recovery codes and revokes their sessions and
 * refresh tokens; the next sign-in (password) goes to MFA_ENROLL. Audited. Never
 * self-service: the person who lost a factor asks an administrator.
 */
#include <string.h>

#include "console/authz.h"
#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"

#define CODES 10
#define CODE_LEN 10

/* 31 letters and digits without look-alikes (no i, l, o, 0, 1) */
static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";

static const cc_stmt_t q_codes_clear =
    CC_STMT("idn_rc_clear", "DELETE FROM recovery_codes WHERE user_id = $1", 1);
static const cc_stmt_t q_codes_insert =
    CC_STMT("idn_rc_insert",
            "INSERT INTO recovery_codes (code_hash, user_id, msp_id) VALUES ($1, $2, $3)", 3);
static const cc_stmt_t q_codes_status =
    CC_STMT("idn_rc_status",
            "SELECT count(*) FILTER (WHERE used_at IS NULL), count(*),"
            " to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
            " FROM recovery_codes WHERE user_id = $1",
            1);

void identity_recovery_code_digest(cc_req_t *req, const char *user_id, const char *code,
                                   char out[65])
{
    identity_app_t *app = req->app;
    /* normalized: lower case, without the separator and spaces */
    char norm[32];
    size_t n = 0;
    for (const char *c = code; *c && n < sizeof(norm) - 1; c++) {
        if (*c == '-' || *c == ' ')
            continue;
        norm[n++] = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    }
    norm[n] = '\0';
    char *msg = cc_aprintf("identity.recovery_codes:%s:%s", user_id, norm);
    uint8_t mac[32];
    cc_hmac_sha256(app->svc->master_key.key, sizeof(app->svc->master_key.key), msg, strlen(msg),
                   mac);
    free(msg);
    char *hex = cc_hex_encode(mac, sizeof(mac));
    memcpy(out, hex, 65);
    free(hex);
}

static void code_new(char out[CODE_LEN + 2])
{
    const size_t k = sizeof(alphabet) - 1;
    size_t o = 0;
    for (int i = 0; i < CODE_LEN; i++) {
        uint8_t r;
        do {
            cc_random_bytes(&r, 1);
        } while (r >= 256 - 256 % k); /* no modulo bias */
        if (i == CODE_LEN / 2)
            out[o++] = '-';
        out[o++] = alphabet[r % k];
    }
    out[o] = '\0';
}

/* An optional body that may only be {} (answers and returns false otherwise). */
static bool no_fields(cc_req_t *req)
{
    if (req->body_len == 0)
        return true;
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return false;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){NULL});
    if (!cc_v_ok(&v))
        cc_res_invalid(req, &v);
    return cc_v_ok(&v);
}

void identity_handle_me_recovery_codes_create(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || !no_fields(req))
        return;
    identity_user_t u;
    if (!identity_me_begin(req, true, &u))
        return;
    json_t *codes = cc_json_on_pool(req->pool, json_array());
    const char *pu[] = {u.id};
    int rc = cc_db_query(req->db, req->pool, &q_codes_clear, pu, NULL);
    for (int i = 0; rc == 0 && i < CODES; i++) {
        char code[CODE_LEN + 2], digest[65];
        code_new(code);
        identity_recovery_code_digest(req, u.id, code, digest);
        const char *pi[] = {digest, u.id, u.msp_id};
        rc = cc_db_query(req->db, req->pool, &q_codes_insert, pi, NULL);
        json_array_append_new(codes, json_string(code));
        cc_wipe(code, sizeof(code));
    }
    if (rc == 0) {
        json_t *d = json_pack("{s:i}", "count", CODES);
        rc = identity_audit(req, "user.recovery_codes_generated", u.id, u.tenant_id, u.msp_id, d);
        json_decref(d);
    }
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (!identity_commit(req))
        return;
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 201, json_pack("{s:O, s:i}", "codes", codes, "remaining", CODES));
}

void identity_handle_me_recovery_codes(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    identity_user_t u;
    if (!identity_me_begin(req, false, &u))
        return;
    PGresult *res = NULL;
    const char *pu[] = {u.id};
    int rc = cc_db_query(req->db, req->pool, &q_codes_status, pu, &res);
    cc_db_rollback(req->db);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200,
                json_pack("{s:I, s:I, s:s?}", "remaining",
                          (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10), "total",
                          (json_int_t)strtoll(PQgetvalue(res, 0, 1), NULL, 10), "created_at",
                          cc_db_get(res, 0, 2)));
}

/* ---- the administrator's reset ---- */

static const cc_stmt_t q_reset_factors =
    CC_STMT("idn_reset_factors",
            "WITH gone AS (DELETE FROM factors WHERE user_id = $1::uuid RETURNING id, type),"
            " e AS (DELETE FROM email_codes WHERE factor_id IN (SELECT id FROM gone)),"
            " w AS (DELETE FROM webauthn_challenges WHERE user_id = $1::uuid),"
            " r AS (DELETE FROM recovery_codes WHERE user_id = $1::uuid RETURNING 1)"
            " SELECT coalesce(json_agg(type ORDER BY type), '[]')::text, (SELECT count(*) FROM r)"
            " FROM gone",
            1);
static const cc_stmt_t q_reset_credentials =
    CC_STMT("idn_reset_credentials",
            "UPDATE credentials SET status = 'password_set', updated_at = now()"
            " WHERE user_id = $1::uuid AND status = 'active'",
            1);
static const cc_stmt_t q_reset_sessions = CC_STMT(
    "idn_reset_sessions",
    "WITH f AS (UPDATE token_families SET revoked_at = now(), revoked_reason = 'factors_reset'"
    " WHERE user_id = $1::uuid AND revoked_at IS NULL RETURNING 1),"
    " s AS (UPDATE sessions SET revoked_at = now() WHERE user_id = $1::uuid AND revoked_at IS NULL"
    " RETURNING 1),"
    " t AS (UPDATE session_tokens SET used_at = now() WHERE user_id = $1::uuid AND used_at IS NULL"
    " RETURNING 1),"
    " x AS (UPDATE authn_transactions SET status = 'FAILED' WHERE user_id = $1::uuid"
    " AND status IN ('MFA_REQUIRED', 'MFA_ENROLL') RETURNING 1)"
    " SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM s)",
    1);

void identity_handle_user_factors_reset(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || !no_fields(req))
        return;
    const char *id = cc_req_param(req, "id");
    if (id == NULL || !cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such user.");
        return;
    }
    const cc_principal_t *p = req->principal;
    if (p && p->kind == CC_PRINCIPAL_USER && p->sub && strcmp(p->sub, id) == 0) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Your own factors are reset by another administrator, never by yourself.");
        return;
    }
    const char *tenant_id, *msp_id;
    if (!identity_user_admin_begin(req, id,
                                   "Resetting factors needs users:manage on the user's account.",
                                   &tenant_id, &msp_id))
        return;
    PGresult *gone, *rev;
    int rc;
    const char *pu[] = {id};
    if ((rc = cc_db_query(req->db, req->pool, &q_reset_factors, pu, &gone)) != 0 ||
        (rc = cc_db_query(req->db, req->pool, &q_reset_credentials, pu, NULL)) != 0 ||
        (rc = cc_db_query(req->db, req->pool, &q_reset_sessions, pu, &rev)) != 0)
        goto DbError;
    identity_user_t target = {.id = id, .tenant_id = tenant_id, .msp_id = msp_id};
    if ((rc = identity_remember_forget(req, &target, "factors_reset")) != 0)
        goto DbError;
    json_t *types = json_loads(PQgetvalue(gone, 0, 0), 0, NULL);
    json_t *d = json_pack("{s:o, s:I, s:I}", "factor_types", types ? types : json_array(),
                          "recovery_codes", (json_int_t)strtoll(PQgetvalue(gone, 0, 1), NULL, 10),
                          "sessions_revoked", (json_int_t)strtoll(PQgetvalue(rev, 0, 1), NULL, 10));
    rc = identity_audit(req, "user.factors_reset", id, tenant_id, msp_id, d);
    if (rc != 0) {
        json_decref(d);
        goto DbError;
    }
    if (!identity_commit(req)) {
        json_decref(d);
        return;
    }
    cc_log_info("user %s: factors reset by an administrator", id);
    json_object_set_new(d, "id", json_string(id));
    json_object_set_new(d, "status", json_string("MFA_ENROLL_REQUIRED"));
    cc_res_json(req, 200, d);
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}
