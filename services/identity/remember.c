/*
 * Remember-device: after a second factor verified on the hosted pages, a person whose
 * account policy allows it may tick "remember this browser"; the browser then keeps a
 * random 256-bit token in an HttpOnly cookie (pages.c) and the next password sign-in on it
 * skips the second factor for that person only, with amr ["pwd", "rmb"] and the 1fa acr
 * (oauth.c): relying parties that need a fresh second factor ask for acr_values or max_age
 * and get one (a remembered browser never satisfies them).
 *
 * Stored: the token's HMAC-SHA256 under the master key (a database copy cannot be turned
 * back into a cookie), the user it is bound to, a label (the User-Agent) and the expiry.
 * A row counts only while the policy still allows remembering, for no MSP or platform
 * staff, and only if made after the password was last set; the rows go when the password
 * is reset, the factors are reset, the user is deactivated or deleted, or the person
 * revokes them (GET|DELETE /api/v1/me/remembered-devices, DELETE .../{id}).
 */
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"

static const cc_stmt_t q_find =
    CC_STMT("idn_rmb_find",
            "UPDATE remembered_devices d SET last_used_at = now() FROM credentials c"
            " WHERE d.token_hash = $1 AND d.user_id = $2::uuid AND d.expires_at > now()"
            " AND c.user_id = d.user_id AND d.created_at >= c.password_set_at RETURNING d.id",
            2);
static const cc_stmt_t q_insert =
    CC_STMT("idn_rmb_insert",
            "INSERT INTO remembered_devices (id, token_hash, user_id, msp_id, label, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, now() + make_interval(days => $6::int))",
            6);
const cc_stmt_t identity_q_remembered_forget = CC_STMT(
    "idn_rmb_forget", "DELETE FROM remembered_devices WHERE user_id = $1::uuid RETURNING id", 1);
static const cc_stmt_t q_list = CC_STMT(
    "idn_rmb_list",
    "SELECT coalesce(json_agg(json_build_object('id', id, 'label', label,"
    " 'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " 'last_used_at', to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
    " 'expires_at', to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))"
    " ORDER BY created_at, id), '[]')::text FROM remembered_devices"
    " WHERE user_id = $1::uuid AND expires_at > now()",
    1);
static const cc_stmt_t q_delete_one = CC_STMT(
    "idn_rmb_delete",
    "DELETE FROM remembered_devices WHERE id = $1::uuid AND user_id = $2::uuid RETURNING id", 2);
/* expired rows of the user go when a new one is made */
static const cc_stmt_t q_prune =
    CC_STMT("idn_rmb_prune",
            "DELETE FROM remembered_devices WHERE user_id = $1::uuid AND expires_at <= now()", 1);

/* HMAC-SHA256 (hex) under the master key of a remembered-device token. */
static void token_digest(cc_req_t *req, const char *token, char out[65])
{
    identity_app_t *app = req->app;
    char *msg = cc_aprintf("identity.remembered_devices:%s", token);
    uint8_t mac[32];
    cc_hmac_sha256(app->svc->master_key.key, sizeof(app->svc->master_key.key), msg, strlen(msg),
                   mac);
    cc_wipe(msg, strlen(msg));
    free(msg);
    char *hex = cc_hex_encode(mac, sizeof(mac));
    memcpy(out, hex, 65);
    free(hex);
}

int identity_remember_applies(cc_req_t *req, const identity_user_t *u,
                              const identity_mfa_policy_t *pol, bool *applies)
{
    *applies = false;
    if (!pol->remember_device)
        return 0;
    bool staff = true;
    int rc = identity_user_msp_staff(req->db, req->pool, u, &staff);
    *applies = rc == 0 && !staff;
    return rc;
}

int identity_remember_find(cc_req_t *req, const identity_user_t *u, const char *token,
                           const char **device_id)
{
    *device_id = NULL;
    if (token == NULL || strlen(token) != 43) /* 32 bytes, base64url */
        return 0;
    char digest[65];
    token_digest(req, token, digest);
    PGresult *res = NULL;
    int rc = cc_db_query(req->db, req->pool, &q_find, (const char *[]){digest, u->id}, &res);
    if (rc == 0 && PQntuples(res) == 1)
        *device_id = cc_db_get(res, 0, 0);
    return rc;
}

/* The User-Agent as a label: printable UTF-8, 200 characters at most. */
static const char *device_label(cc_req_t *req, const char *ua)
{
    if (ua == NULL || *ua == '\0' || !cc_utf8_valid(ua, strlen(ua)) ||
        cc_has_control(ua, strlen(ua)))
        return "unknown browser";
    size_t n = strlen(ua), chars = 0, i = 0;
    while (i < n && chars < 200) {
        i++;
        while (i < n && ((unsigned char)ua[i] & 0xC0) == 0x80)
            i++;
        chars++;
    }
    return cc_pool_strndup(req->pool, ua, i);
}

int identity_remember_create(cc_req_t *req, const char *user_id, const char *label, char **token,
                             int *days)
{
    *token = NULL;
    *days = 0;
    if (!cc_db_in_tx(req->db)) {
        int brc = cc_db_begin(req->db, &identity_system_scope);
        if (brc != 0)
            return brc;
    }
    identity_user_t u;
    identity_mfa_policy_t pol;
    bool applies = false;
    int rc = identity_store_user_by_id(req->db, req->pool, user_id, &u);
    if (rc == 0)
        rc = identity_mfa_policy_for(req->db, req->pool, u.tenant_id, &pol);
    if (rc == 0)
        rc = identity_remember_applies(req, &u, &pol, &applies);
    if (rc != 0 || !applies || strcmp(u.status, "active") != 0) {
        cc_db_rollback(req->db);
        return rc;
    }
    char id[37], digest[65], daybuf[16];
    cc_uuid_new(id);
    char *t = cc_token_new(32);
    token_digest(req, t, digest);
    snprintf(daybuf, sizeof(daybuf), "%d", pol.remember_device_days);
    const char *pi[] = {id, digest, u.id, u.msp_id, device_label(req, label), daybuf};
    json_t *d = json_pack("{s:s, s:i}", "device_id", id, "days", pol.remember_device_days);
    if ((rc = cc_db_query(req->db, req->pool, &q_prune, (const char *[]){u.id}, NULL)) == 0 &&
        (rc = cc_db_query(req->db, req->pool, &q_insert, pi, NULL)) == 0)
        rc = identity_audit(req, "user.device_remembered", u.id, u.tenant_id, u.msp_id, d);
    json_decref(d);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    else
        cc_db_rollback(req->db);
    if (rc != 0) {
        cc_wipe(t, strlen(t));
        free(t);
        return rc;
    }
    cc_log_info("user %s: browser remembered for %d days", u.id, pol.remember_device_days);
    *token = t;
    *days = pol.remember_device_days;
    return 0;
}

int identity_remember_forget(cc_req_t *req, const identity_user_t *u, const char *reason)
{
    PGresult *res = NULL;
    int rc = cc_db_query(req->db, req->pool, &identity_q_remembered_forget, (const char *[]){u->id},
                         &res);
    if (rc != 0 || PQntuples(res) == 0)
        return rc;
    json_t *d = json_pack("{s:s, s:i}", "reason", reason, "count", PQntuples(res));
    rc = identity_audit(req, "user.remembered_devices_revoked", u->id, u->tenant_id, u->msp_id, d);
    json_decref(d);
    return rc;
}

/* ---- the signed-in user's own remembered browsers ---- */

void identity_handle_me_remembered_devices(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    identity_user_t u;
    if (!identity_me_begin(req, false, &u))
        return;
    PGresult *res = NULL;
    int rc = cc_db_query(req->db, req->pool, &q_list, (const char *[]){u.id}, &res);
    cc_db_rollback(req->db);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return;
    }
    json_t *items = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    if (items == NULL)
        items = json_array();
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200,
                json_pack("{s:o, s:n, s:I}", "items", items, "next_cursor", "total",
                          (json_int_t)json_array_size(items)));
}

/* Revoking needs no recent sign-in: it only ever takes a shortcut away. */
void identity_handle_me_remembered_devices_delete(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    identity_user_t u;
    if (!identity_me_begin(req, false, &u))
        return;
    int rc = identity_remember_forget(req, &u, "user");
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (identity_commit(req))
        cc_res_json(req, 204, NULL);
}

void identity_handle_me_remembered_device_delete(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    const char *id = cc_req_param(req, "id");
    if (!cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No remembered browser with this id.");
        return;
    }
    identity_user_t u;
    if (!identity_me_begin(req, false, &u))
        return;
    PGresult *res = NULL;
    int rc = cc_db_query(req->db, req->pool, &q_delete_one, (const char *[]){id, u.id}, &res);
    if (rc == 0 && PQntuples(res) == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No remembered browser with this id.");
        return;
    }
    json_t *d = json_pack("{s:s, s:s, s:i}", "reason", "user", "device_id", id, "count", 1);
    if (rc == 0)
        rc = identity_audit(req, "user.remembered_devices_revoked", u.id, u.tenant_id, u.msp_id, d);
    json_decref(d);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (identity_commit(req))
        cc_res_json(req, 204, NULL);
}
