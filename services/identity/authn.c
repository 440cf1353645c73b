/*
 * The authentication API (Okta-style, API.md): activation with a mailed link, sign-in
 * with a password, second-factor enrolment and verification, ending in a single-use
 * session_token that /oauth2/authorize exchanges for a code.
 *
 * State machine (policy.h): activation link -> password set -> MFA_ENROLL -> (factor
 * activated) SUCCESS; later sign-ins: password -> MFA_REQUIRED -> (factor verified)
 * SUCCESS. Ten failures (passwords or codes) within 15 minutes lock the account for 15
 * minutes (LOCKED_OUT); five wrong codes end a transaction.
 */
#include <pthread.h>
#include <string.h>

#include "console/brand.h"
#include "console/crypto.h"
#include "console/log.h"
#include "console/totp.h"
#include "identity.h"
#include "phone.h"
#include "policy.h"
#include "store_authn.h"
#include "webauthn.h"

#define STATE_TTL "900" /* seconds a state_token lives */
#define LOCK_AFTER 10   /* failures within the window */
#define TOTP_WINDOW 1   /* steps either side of now */
#define AMR_MFA "{pwd,otp,mfa}"

static identity_app_t *app_of(cc_req_t *req)
{
    return req->app;
}

/* ---- passwords ---- */

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char *dummy_hash;

static void make_dummy(void)
{
    if (cc_password_hash_with("not a password: equalizes timing", IDENTITY_ARGON2_T,
                              IDENTITY_ARGON2_M_KIB, IDENTITY_ARGON2_P, &dummy_hash) != 0)
        dummy_hash = NULL;
}

/* An unknown user costs one argon2id verification too, so timing does not tell. */
static void dummy_verify(const char *password)
{
    pthread_once(&dummy_once, make_dummy);
    if (dummy_hash != NULL)
        (void)cc_password_verify(dummy_hash, password);
}

static char *hash_secret(cc_req_t *req, const char *secret)
{
    char *h = NULL;
    if (cc_password_hash_with(secret, IDENTITY_ARGON2_T, IDENTITY_ARGON2_M_KIB, IDENTITY_ARGON2_P,
                              &h) != 0)
        return NULL;
    char *out = cc_pool_strdup(req->pool, h);
    free(h);
    return out;
}

/* ---- outcomes ---- */

static void out_init(identity_authn_out_t *o)
{
    memset(o, 0, sizeof(*o));
    o->err = -1;
}

static void fail(identity_authn_out_t *o, int err, const char *detail)
{
    o->err = err;
    o->detail = detail;
}

/* A database error: roll back and record it. */
static void db_fail(cc_req_t *req, identity_authn_out_t *o, int rc)
{
    cc_db_rollback(req->db);
    o->db_rc = rc;
}

static bool commit(cc_req_t *req, identity_authn_out_t *o)
{
    int rc = cc_db_commit(req->db);
    if (rc != 0)
        db_fail(req, o, rc);
    return rc == 0;
}

static bool begin(cc_req_t *req, identity_authn_out_t *o)
{
    int rc = cc_db_begin(req->db, &identity_system_scope);
    if (rc != 0)
        o->db_rc = rc;
    return rc == 0;
}

static json_t *active_factors(cc_req_t *req, const char *user_id, int *rc)
{
    PGresult *res = NULL;
    const char *p[] = {user_id};
    json_t *arr = cc_json_on_pool(req->pool, json_array());
    if ((*rc = cc_db_query(req->db, req->pool, &identity_q_factors_active, p, &res)) != 0)
        return arr;
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "id", PQgetvalue(res, i, 0), "type",
                                             PQgetvalue(res, i, 1)));
    return arr;
}

/* Starts a transaction in status; o->state_token and o->expires_at. */
static int new_transaction(cc_req_t *req, const char *user_id, const char *status,
                           identity_authn_out_t *o)
{
    char digest[65];
    char *t = identity_secret_new(digest);
    o->state_token = cc_pool_strdup(req->pool, t);
    cc_wipe(t, strlen(t));
    free(t);
    PGresult *res = NULL;
    const char *p[] = {digest, user_id, status, STATE_TTL};
    int rc = cc_db_query(req->db, req->pool, &identity_q_tx_insert, p, &res);
    if (rc == 0)
        o->expires_at = cc_pool_strdup(req->pool, PQgetvalue(res, 0, 0));
    o->status = status;
    return rc;
}

/* The factor types a user may enrol: those this deployment supports and the policy allows
 * (pol NULL: every supported type). New reference. */
static json_t *enrollable_for(const identity_mfa_policy_t *pol)
{
    json_t *arr = json_array();
    static const char *const types[] = {"totp", "email", "webauthn", "sms", "voice"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(types); i++)
        if (identity_factor_type_supported(types[i]) &&
            (pol == NULL || identity_mfa_policy_allows(pol, types[i])))
            json_array_append_new(arr, json_pack("{s:s}", "type", types[i]));
    return arr;
}

static json_t *enrollable(const identity_authn_out_t *o)
{
    return o->enroll ? json_deep_copy(o->enroll) : enrollable_for(NULL);
}

/* The factors ([{id, type}]) whose type the policy allows (pool). */
static json_t *allowed_only(cc_req_t *req, json_t *factors, const identity_mfa_policy_t *pol)
{
    json_t *out = cc_json_on_pool(req->pool, json_array());
    size_t i;
    json_t *f;
    json_array_foreach(factors, i, f)
    {
        if (identity_mfa_policy_allows(pol, json_string_value(json_object_get(f, "type"))))
            json_array_append(out, f);
    }
    return out;
}

/* The user's policy, and o->enroll from it; o->factors (when set) keeps allowed types. */
static int apply_policy(cc_req_t *req, const identity_user_t *u, identity_authn_out_t *o,
                        identity_mfa_policy_t *pol)
{
    int rc = identity_mfa_policy_for(req->db, req->pool, u->tenant_id, pol);
    if (rc != 0)
        return rc;
    o->enroll = cc_json_on_pool(req->pool, enrollable_for(pol));
    if (o->factors)
        o->factors = allowed_only(req, o->factors, pol);
    return 0;
}

/* Counts a failed password or code; *locked when this failure locks the account. */
int identity_count_failure(cc_req_t *req, const identity_user_t *u, bool *locked)
{
    PGresult *res = NULL;
    const char *user_id = u->id;
    const char *p[] = {user_id};
    *locked = false;
    int rc = cc_db_query(req->db, req->pool, &identity_q_cred_fail, p, &res);
    if (rc != 0 || PQntuples(res) != 1)
        return rc;
    if (atoi(PQgetvalue(res, 0, 0)) >= LOCK_AFTER) {
        *locked = true;
        rc = cc_db_query(req->db, req->pool, &identity_q_cred_lock, p, NULL);
        if (rc == 0)
            rc = identity_audit(req, "user.locked_out", u->id, u->tenant_id, u->msp_id, NULL);
        cc_log_warn("user %s locked out after %d failures", user_id, LOCK_AFTER);
    }
    return rc;
}

/* ---- password ---- */

/* SUCCESS without a second factor now: mfa_required false and no allowed factor (amr
 * ["pwd"]; the user becomes active as after a first factor), or a remembered browser (amr
 * ["pwd", "rmb"], device_id set). */
static int password_only(cc_req_t *req, const identity_user_t *u, const char *device_id,
                         identity_authn_out_t *o)
{
    char digest[65];
    char *token = identity_secret_new(digest);
    PGresult *res = NULL;
    const char *pu[] = {u->id};
    const char *pt[] = {digest, u->id, device_id ? "{pwd,rmb}" : "{pwd}"};
    json_t *d =
        json_pack("{s:s, s:b, s:s?}", "factor_type", device_id ? "remembered_device" : "none",
                  "mfa", 0, "device_id", device_id);
    int rc = cc_db_query(req->db, req->pool, &identity_q_cred_activate, pu, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &identity_q_user_activate, pu, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &identity_q_session_token_insert, pt, &res);
    if (rc == 0)
        rc = identity_audit(req, "user.signed_in", u->id, u->tenant_id, u->msp_id, d);
    json_decref(d);
    if (rc == 0) {
        o->status = IDENTITY_SUCCESS;
        o->session_token = cc_pool_strdup(req->pool, token);
        o->expires_at = cc_pool_strdup(req->pool, PQgetvalue(res, 0, 0));
    }
    cc_wipe(token, strlen(token));
    free(token);
    return rc;
}

void identity_authn_password(cc_req_t *req, const char *username, const char *password,
                             identity_authn_out_t *o)
{
    identity_authn_password_with(req, username, password, NULL, o);
}

void identity_authn_password_with(cc_req_t *req, const char *username, const char *password,
                                  const identity_authn_opts_t *opts, identity_authn_out_t *o)
{
    bool step_up = opts && opts->step_up;
    out_init(o);
    if (!begin(req, o))
        return;
    identity_user_t *u = &o->user;
    PGresult *cred = NULL;
    int rc = identity_store_user_by_username(req->db, req->pool, username, u);
    if (rc != 0 && rc != CC_ENOENT)
        goto DbError;
    bool known = rc == 0 && strcmp(u->status, "deactivated") != 0;
    if (known) {
        const char *p[] = {u->id};
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_cred_get, p, &cred)) != 0)
            goto DbError;
        known = PQntuples(cred) == 1;
    }
    if (!known) {
        dummy_verify(password);
        cc_db_rollback(req->db);
        fail(o, CC_ERR_AUTHENTICATION_FAILED, "The username or the password is wrong.");
        return;
    }
    if (strcmp(PQgetvalue(cred, 0, 2), "t") == 0) {
        cc_db_rollback(req->db);
        o->status = "LOCKED_OUT";
        return;
    }
    if (cc_password_verify(PQgetvalue(cred, 0, 1), password) != 0) {
        bool locked = false;
        if ((rc = identity_count_failure(req, u, &locked)) != 0)
            goto DbError;
        if (!commit(req, o))
            return;
        if (locked)
            o->status = "LOCKED_OUT";
        else
            fail(o, CC_ERR_AUTHENTICATION_FAILED, "The username or the password is wrong.");
        return;
    }
    bool active = false;
    if ((rc = identity_store_tenant_active(req->db, req->pool, u->tenant_id, &active)) != 0)
        goto DbError;
    if (!active) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_TENANT_SUSPENDED,
             "The account of this user (or one of its parents) is suspended.");
        return;
    }
    const char *p[] = {u->id};
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_cred_ok, p, NULL)) != 0)
        goto DbError;
    o->factors = active_factors(req, u->id, &rc);
    identity_mfa_policy_t pol;
    if (rc != 0 || (rc = apply_policy(req, u, o, &pol)) != 0)
        goto DbError;
    if (json_array_size(o->factors) == 0 && !pol.mfa_required && !step_up) {
        /* the account's policy lets a user without a factor sign in with the password */
        if ((rc = password_only(req, u, NULL, o)) != 0)
            goto DbError;
        commit(req, o);
        return;
    }
    if ((rc = identity_remember_applies(req, u, &pol, &o->remember_allowed)) != 0)
        goto DbError;
    o->remember_days = pol.remember_device_days;
    if (json_array_size(o->factors) > 0 && o->remember_allowed && !step_up && opts &&
        opts->remember_token) {
        /* a browser this user had remembered, while the policy still allows it */
        const char *device = NULL;
        if ((rc = identity_remember_find(req, u, opts->remember_token, &device)) != 0)
            goto DbError;
        if (device != NULL) {
            if ((rc = password_only(req, u, device, o)) != 0)
                goto DbError;
            commit(req, o);
            return;
        }
    }
    /* credentials in status password_set have no factor yet (and a factor of a type the
     * policy no longer allows does not count): enrolment comes first */
    const char *status = identity_authn_after_password(json_array_size(o->factors) > 0);
    if ((rc = new_transaction(req, u->id, status, o)) != 0)
        goto DbError;
    commit(req, o);
    return;
DbError:
    db_fail(req, o, rc);
}

/* ---- activation ---- */

void identity_authn_activate(cc_req_t *req, const char *token, const char *password,
                             const char *question, const char *answer, const char *image,
                             identity_authn_out_t *o)
{
    identity_app_t *app = app_of(req);
    out_init(o);
    char digest[65];
    identity_secret_digest(token, digest);
    if (!begin(req, o))
        return;
    PGresult *res = NULL;
    identity_user_t *u = &o->user;
    const char *pd[] = {digest};
    int rc = cc_db_query(req->db, req->pool, &identity_q_activation_get, pd, &res);
    if (rc != 0)
        goto DbError;
    bool usable = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 2), "f") == 0;
    if (usable) {
        rc = identity_store_user_by_id(req->db, req->pool, PQgetvalue(res, 0, 0), u);
        if (rc != 0 && rc != CC_ENOENT)
            goto DbError;
        usable = rc == 0 && strcmp(u->status, "staged") == 0;
    }
    if (!usable) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_ACTIVATION_TOKEN_INVALID,
             "This activation link is unknown or was already used.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        /* expired: say so, and mail a fresh link (replacing every unused one) */
        char fresh_digest[65];
        char *fresh = identity_secret_new(fresh_digest);
        const char *pu[] = {u->id};
        const char *pi[] = {fresh_digest, u->id};
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_activation_clear, pu, NULL)) != 0 ||
            (rc = cc_db_query(req->db, req->pool, &identity_q_activation_insert, pi, NULL)) != 0) {
            free(fresh);
            goto DbError;
        }
        if (commit(req, o)) {
            identity_mail_activation(app, req->db, u, fresh);
            fail(o, CC_ERR_ACTIVATION_TOKEN_EXPIRED,
                 "This activation link has expired; a new one has been mailed.");
        }
        cc_wipe(fresh, strlen(fresh));
        free(fresh);
        return;
    }
    o->pw_flaws = identity_password_flaws(password, u->username);
    if (o->pw_flaws != 0) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_VALIDATION_FAILED, "The password does not meet the policy.");
        return;
    }
    const char *pw_hash = hash_secret(req, password);
    const char *answer_hash = hash_secret(req, identity_recovery_normalize(req->pool, answer));
    if (pw_hash == NULL || answer_hash == NULL) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_INTERNAL_ERROR, "The password could not be stored.");
        return;
    }
    const char *pc[] = {u->id, u->msp_id, pw_hash, question, answer_hash, image};
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_activation_use, pd, NULL)) != 0 ||
        (rc = cc_db_query(req->db, req->pool, &identity_q_cred_upsert, pc, NULL)) != 0 ||
        (rc = new_transaction(req, u->id, IDENTITY_MFA_ENROLL, o)) != 0 ||
        (rc = identity_audit(req, "user.password_set", u->id, u->tenant_id, u->msp_id, NULL)) != 0)
        goto DbError;
    identity_mfa_policy_t pol;
    if ((rc = apply_policy(req, u, o, &pol)) != 0)
        goto DbError;
    if (commit(req, o))
        cc_log_info("user %s set a password (activation)", u->id);
    o->factors = cc_json_on_pool(req->pool, json_array());
    return;
DbError:
    db_fail(req, o, rc);
}

/* ---- transactions and factors ---- */

typedef struct authn_tx {
    char digest[65];
    const char *user_id;
} authn_tx_t;

/* Loads the transaction of state_token for event (locked FOR UPDATE). */
static bool load_tx(cc_req_t *req, const char *state_token, identity_authn_event_t ev,
                    authn_tx_t *tx, identity_authn_out_t *o)
{
    PGresult *res = NULL;
    identity_secret_digest(state_token, tx->digest);
    const char *p[] = {tx->digest};
    int rc = cc_db_query(req->db, req->pool, &identity_q_tx_get, p, &res);
    if (rc != 0) {
        db_fail(req, o, rc);
        return false;
    }
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "FAILED") == 0) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_TOO_MANY_ATTEMPTS, "Too many wrong codes for this sign-in; start again.");
        return false;
    }
    if (PQntuples(res) != 1 || !identity_authn_allows(PQgetvalue(res, 0, 1), ev)) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_STATE_TOKEN_INVALID,
             "This sign-in is unknown, expired or not at this step; start again.");
        return false;
    }
    tx->user_id = cc_pool_strdup(req->pool, PQgetvalue(res, 0, 0));
    return true;
}

static void email_code_new(char out[7])
{
    uint32_t r;
    do {
        cc_random_bytes(&r, sizeof(r));
    } while (r >= 4294000000u); /* a multiple of 10^6: no modulo bias */
    snprintf(out, 7, "%06u", r % 1000000u);
}

static bool is_phone(const char *type)
{
    return strcmp(type, "sms") == 0 || strcmp(type, "voice") == 0;
}

/* The stored form of a one-time code: e-mail codes SHA-256 (10 minutes), phone codes
 * HMAC-SHA256 under the master key (a database copy cannot test the million codes). */
static void code_digest(cc_req_t *req, const char *type, const char *factor_id, const char *code,
                        char digest[65])
{
    char buf[96];
    if (is_phone(type)) {
        identity_app_t *app = app_of(req);
        uint8_t mac[32];
        snprintf(buf, sizeof(buf), "identity.phone_codes:%s:%s", factor_id, code);
        cc_hmac_sha256(app->svc->master_key.key, sizeof(app->svc->master_key.key), buf, strlen(buf),
                       mac);
        char *hex = cc_hex_encode(mac, sizeof(mac));
        memcpy(digest, hex, 65);
        free(hex);
    } else {
        snprintf(buf, sizeof(buf), "%s:%s", factor_id, code);
        cc_sha256_hex(buf, strlen(buf), digest);
    }
    cc_wipe(buf, sizeof(buf));
}

/* Stores a fresh code for an email, sms or voice factor (sent by the caller after commit). */
static int code_issue(cc_req_t *req, const char *type, const char *factor_id, char code[7])
{
    char digest[65], ttl[16];
    email_code_new(code);
    code_digest(req, type, factor_id, code, digest);
    snprintf(ttl, sizeof(ttl), "%d", is_phone(type) ? IDENTITY_PHONE_CODE_TTL_S : 600);
    const char *p[] = {factor_id, digest, ttl};
    return cc_db_query(req->db, req->pool, &identity_q_email_code_set, p, NULL);
}

/* ---- phone codes: the rate limits (phone.h) ---- */

/* serializes the sends of one user and of one number (user first, then number) */
static const cc_stmt_t q_phone_lock =
    CC_STMT("idn_phone_lock",
            "SELECT pg_advisory_xact_lock(hashtextextended('identity.phone_user:' || $1, 0)),"
            " pg_advisory_xact_lock(hashtextextended('identity.phone:' || $2, 0))",
            2);
static const cc_stmt_t q_phone_history = CC_STMT(
    "idn_phone_history",
    "SELECT count(*) FILTER (WHERE user_id = $1), count(*) FILTER (WHERE phone = $2),"
    " coalesce(floor(extract(epoch FROM now() - max(sent_at) FILTER (WHERE user_id = $1))), -1),"
    " coalesce(floor(extract(epoch FROM now() - min(sent_at) FILTER (WHERE user_id = $1))), 0),"
    " coalesce(floor(extract(epoch FROM now() - min(sent_at) FILTER (WHERE phone = $2))), 0)"
    " FROM phone_code_sends WHERE (user_id = $1 OR phone = $2)"
    " AND sent_at > now() - interval '1 hour'",
    2);
static const cc_stmt_t q_phone_record = CC_STMT(
    "idn_phone_record",
    "WITH old AS (DELETE FROM phone_code_sends WHERE (user_id = $1 OR phone = $3)"
    " AND sent_at < now() - interval '1 day')"
    " INSERT INTO phone_code_sends (user_id, msp_id, phone, channel) VALUES ($1, $2, $3, $4)",
    4);

/* Admits one more code to phone for u (recording it), or sets o->err: sms_rate_limited. */
static int phone_admit(cc_req_t *req, const identity_user_t *u, const char *phone,
                       const char *channel, identity_authn_out_t *o, bool *admitted)
{
    PGresult *res = NULL;
    const char *p[] = {u->id, phone};
    *admitted = false;
    int rc = cc_db_query(req->db, req->pool, &q_phone_lock, p, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_phone_history, p, &res);
    if (rc != 0)
        return rc;
    identity_phone_history_t h = {
        .user_sends = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
        .number_sends = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
        .since_last_user_s = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
        .oldest_user_age_s = strtoll(PQgetvalue(res, 0, 3), NULL, 10),
        .oldest_number_age_s = strtoll(PQgetvalue(res, 0, 4), NULL, 10),
    };
    int64_t retry = 0;
    identity_phone_verdict_t v = identity_phone_rate(identity_phone_limits(), &h, &retry);
    if (v != IDENTITY_PHONE_OK) {
        o->retry_after = retry;
        o->ext = cc_json_on_pool(req->pool,
                                 json_pack("{s:s, s:I}", "limit", identity_phone_verdict_name(v),
                                           "retry_after", (json_int_t)retry));
        fail(o, CC_ERR_SMS_RATE_LIMITED,
             v == IDENTITY_PHONE_TOO_SOON
                 ? "A code was sent a moment ago; use it, or wait before asking for another."
             : v == IDENTITY_PHONE_USER_CAP
                 ? "Too many codes were sent to this user in the last hour; try again later."
                 : "Too many codes were sent to this phone number in the last hour; try again "
                   "later.");
        cc_log_warn("user %s: phone code refused (%s limit)", u->id,
                    identity_phone_verdict_name(v));
        return 0;
    }
    const char *pr[] = {u->id, u->msp_id, phone, channel};
    rc = cc_db_query(req->db, req->pool, &q_phone_record, pr, NULL);
    *admitted = rc == 0;
    return rc;
}

int identity_code_deliver(cc_req_t *req, const identity_user_t *u, const char *type, const char *to,
                          const char *code, identity_authn_out_t *o)
{
    identity_app_t *app = app_of(req);
    if (!is_phone(type)) {
        identity_mail_code(app, req->db, u, to, code);
        return 0;
    }
    cc_brand_t brand;
    cc_brand_for_tenant(req->db, req->pool, u->tenant_id, &brand); /* defaults when unavailable */
    const char *lang = u->language ? u->language : "";
    bool ja = strncmp(lang, "ja", 2) == 0 ||
              (strncmp(lang, "en", 2) != 0 && strcmp(brand.default_language, "ja") == 0);
    char id[37];
    cc_uuid_new(id);
    identity_phone_delivery_t d = {
        .id = id,
        .channel = type,
        .to = to,
        .code = code,
        .message = identity_phone_message(req->pool, type, ja, brand.product_name, code),
        .lang = ja ? "ja" : "en",
        .product_name = brand.product_name,
        .user_id = u->id,
        .tenant_id = u->tenant_id,
    };
    int rc = identity_phone_send(&d);
    if (rc != 0) {
        o->ext = cc_json_on_pool(req->pool, json_pack("{s:s?}", "factor_id", o->factor_id));
        fail(o, CC_ERR_SMS_DELIVERY_FAILED,
             rc == CC_ETIMEDOUT
                 ? "The SMS and voice provider did not answer in time; ask for a new code later."
                 : "The SMS and voice provider did not take the message; ask for a new code "
                   "later.");
    }
    return rc;
}

int identity_factor_load(cc_req_t *req, const char *id, const char *user_id, identity_factor_t *f,
                         bool *found)
{
    PGresult *res = NULL;
    *found = false;
    if (id == NULL || !cc_is_uuid(id))
        return 0;
    const char *p[] = {id, user_id};
    int rc = cc_db_query(req->db, req->pool, &identity_q_factor_get, p, &res);
    if (rc != 0 || PQntuples(res) != 1)
        return rc;
    *found = true;
    f->id = id;
    f->type = cc_db_get(res, 0, 0);
    f->status = cc_db_get(res, 0, 1);
    f->sealed = cc_db_get(res, 0, 2);
    f->last_step = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    f->email = cc_db_get(res, 0, 4);
    f->phone = cc_db_get(res, 0, 5);
    return 0;
}

/* Checks a pass code against a factor. *ok, and for TOTP the matched step in *step. */
int identity_factor_check(cc_req_t *req, const identity_factor_t *f, const char *code, bool *ok,
                          int64_t *step)
{
    identity_app_t *app = app_of(req);
    *ok = false;
    *step = -1;
    if (strcmp(f->type, "totp") == 0) {
        uint8_t *key = NULL;
        size_t keylen = 0;
        char *aad = cc_aprintf("identity.factors:%s", f->id);
        int rc = cc_unseal(&app->svc->master_key, f->sealed ? f->sealed : "", aad, &key, &keylen);
        free(aad);
        if (rc != 0) {
            cc_log_error("TOTP secret of factor %s cannot be unsealed: %s", f->id, cc_strerror(rc));
            return rc;
        }
        *ok =
            cc_totp_check(key, keylen, code, (int64_t)time(NULL), TOTP_WINDOW, f->last_step, step);
        cc_wipe(key, keylen);
        free(key);
        return 0;
    }
    if (strcmp(f->type, "email") == 0 || is_phone(f->type)) {
        PGresult *res = NULL;
        const char *p[] = {f->id};
        int rc = cc_db_query(req->db, req->pool, &identity_q_email_code_get, p, &res);
        if (rc != 0 || PQntuples(res) != 1)
            return rc;
        if (atoi(PQgetvalue(res, 0, 1)) >= 5 || strcmp(PQgetvalue(res, 0, 2), "t") != 0)
            return 0;
        char digest[65];
        code_digest(req, f->type, f->id, code, digest);
        *ok = strlen(PQgetvalue(res, 0, 0)) == 64 && cc_ct_equal(digest, PQgetvalue(res, 0, 0), 64);
        return cc_db_query(req->db, req->pool,
                           *ok ? &identity_q_email_code_clear : &identity_q_email_code_fail, p,
                           NULL);
    }
    return 0;
}

/* A wrong code (or a refused WebAuthn response, wa >= 0): counts it against the
 * transaction and the account, and commits. */
static void code_failed(cc_req_t *req, const authn_tx_t *tx, const identity_user_t *u,
                        identity_authn_out_t *o, int wa)
{
    PGresult *res = NULL;
    const char *p[] = {tx->digest};
    bool locked = false;
    int rc = cc_db_query(req->db, req->pool, &identity_q_tx_fail, p, &res);
    if (rc == 0)
        rc = identity_count_failure(req, u, &locked);
    if (rc != 0) {
        db_fail(req, o, rc);
        return;
    }
    if (!commit(req, o))
        return;
    if (locked || atoi(PQgetvalue(res, 0, 0)) >= 5)
        fail(o, CC_ERR_TOO_MANY_ATTEMPTS, "Too many wrong codes for this sign-in; start again.");
    else if (wa >= 0) {
        fail(o, CC_ERR_WEBAUTHN_REJECTED,
             identity_webauthn_result_detail((identity_webauthn_result_t)wa));
        o->reason = identity_webauthn_result_name((identity_webauthn_result_t)wa);
    } else
        fail(o, CC_ERR_INVALID_PASS_CODE, "The code is wrong, expired or used.");
}

/* The end of a successful transaction: SUCCESS and a single-use session token. */
static void finish(cc_req_t *req, const authn_tx_t *tx, identity_authn_out_t *o)
{
    char digest[65];
    char *token = identity_secret_new(digest);
    PGresult *res = NULL;
    const char *ps[] = {tx->digest, IDENTITY_SUCCESS};
    const char *pt[] = {digest, tx->user_id, AMR_MFA};
    int rc = cc_db_query(req->db, req->pool, &identity_q_tx_status, ps, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &identity_q_session_token_insert, pt, &res);
    if (rc == 0 && commit(req, o)) {
        o->status = IDENTITY_SUCCESS;
        o->session_token = cc_pool_strdup(req->pool, token);
        o->expires_at = cc_pool_strdup(req->pool, PQgetvalue(res, 0, 0));
    } else if (rc != 0) {
        db_fail(req, o, rc);
    }
    cc_wipe(token, strlen(token));
    free(token);
}

int identity_factor_create(cc_req_t *req, const identity_user_t *u, const char *type,
                           const char *phone, identity_authn_out_t *o, char code[7])
{
    identity_app_t *app = app_of(req);
    char id[37];
    cc_uuid_new(id);
    char *sealed = NULL;
    int rc = 0;
    code[0] = '\0';
    if (is_phone(type)) {
        bool admitted = false;
        if ((rc = phone_admit(req, u, phone, type, o, &admitted)) != 0 || !admitted)
            return rc;
    }
    o->factor_id = cc_pool_strdup(req->pool, id);
    o->factor_type = type;
    if (strcmp(type, "totp") == 0) {
        uint8_t key[20];
        char *aad = cc_aprintf("identity.factors:%s", id);
        rc = cc_random_bytes(key, sizeof(key));
        if (rc == 0)
            rc = cc_seal(&app->svc->master_key, key, sizeof(key), aad, &sealed);
        free(aad);
        if (rc != 0) {
            cc_wipe(key, sizeof(key));
            return rc;
        }
        char *secret = cc_base32_encode(key, sizeof(key));
        cc_wipe(key, sizeof(key));
        o->secret = cc_pool_strdup(req->pool, secret);
        cc_wipe(secret, strlen(secret));
        free(secret);
        /* the authenticator app lists the account under the brand the person knows */
        cc_brand_t brand;
        cc_brand_for_tenant(req->db, req->pool, u->tenant_id, &brand); /* defaults if unavailable */
        cc_buf_t uri;
        cc_buf_init(&uri);
        cc_buf_puts(&uri, "otpauth://totp/");
        cc_buf_percent_encode(&uri, brand.product_name);
        cc_buf_putc(&uri, ':');
        cc_buf_percent_encode(&uri, u->username);
        cc_buf_printf(&uri, "?secret=%s&issuer=", o->secret);
        cc_buf_percent_encode(&uri, brand.product_name);
        cc_buf_puts(&uri, "&algorithm=SHA1&digits=6&period=30");
        o->otpauth_uri = cc_pool_strdup(req->pool, uri.data);
        cc_buf_free(&uri);
    }
    json_t *pj = strcmp(type, "email") == 0 ? json_pack("{s:s}", "email", u->email)
                 : is_phone(type)           ? json_pack("{s:s}", "phone", phone)
                                            : json_object();
    char *profile = json_dumps(pj, JSON_COMPACT);
    json_decref(pj);
    const char *pi[] = {id, u->id, u->msp_id, type, sealed, profile};
    rc = cc_db_query(req->db, req->pool, &identity_q_factor_insert, pi, NULL);
    free(profile);
    free(sealed);
    if (rc == 0 && (strcmp(type, "email") == 0 || is_phone(type))) {
        rc = code_issue(req, type, id, code);
        o->deliver_to = is_phone(type) ? phone : u->email;
    }
    if (rc == 0 && strcmp(type, "webauthn") == 0) {
        identity_factor_t f = {.id = o->factor_id, .type = type, .status = "pending"};
        int refused = 0;
        rc = identity_webauthn_step(req, u, &f, NULL, true, NULL, &o->webauthn, &refused);
    }
    o->status = "PENDING_ACTIVATION";
    return rc;
}

void identity_authn_enroll(cc_req_t *req, const char *state_token, const char *type,
                           const char *phone, identity_authn_out_t *o)
{
    out_init(o);
    if (!identity_factor_type_supported(type)) {
        fail(o, CC_ERR_FACTOR_NOT_SUPPORTED,
             "This factor type is not enabled on this deployment; choose another.");
        return;
    }
    if (is_phone(type) && phone == NULL) {
        fail(o, CC_ERR_VALIDATION_FAILED, "phone_number is required for sms and voice.");
        o->reason = "phone_number";
        return;
    }
    authn_tx_t tx;
    identity_user_t *u = &o->user;
    if (!begin(req, o) || !load_tx(req, state_token, IDENTITY_EV_ENROLL, &tx, o))
        return;
    int rc = identity_store_user_by_id(req->db, req->pool, tx.user_id, u);
    if (rc != 0)
        goto DbError;
    identity_mfa_policy_t pol;
    if ((rc = identity_mfa_policy_for(req->db, req->pool, u->tenant_id, &pol)) != 0)
        goto DbError;
    if (!identity_mfa_policy_allows(&pol, type)) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_FACTOR_NOT_ALLOWED,
             "The sign-in policy of this account does not allow this factor type.");
        o->ext = cc_json_on_pool(req->pool, json_pack("{s:O}", "allowed_factors", pol.allowed));
        return;
    }
    char code[7] = "";
    if ((rc = identity_factor_create(req, u, type, phone, o, code)) != 0)
        goto DbError;
    if (o->err >= 0) { /* refused by the phone rate limits */
        cc_db_rollback(req->db);
        return;
    }
    o->status = "PENDING_ACTIVATION";
    if (commit(req, o) && code[0])
        identity_code_deliver(req, u, type, o->deliver_to, code, o);
    cc_wipe(code, sizeof(code));
    return;
DbError:
    db_fail(req, o, rc);
}

void identity_authn_factor(cc_req_t *req, const char *state_token, const char *factor_id,
                           const char *code, bool activate, identity_authn_out_t *o)
{
    identity_authn_factor_with(req, state_token, factor_id, code, NULL, activate, o);
}

void identity_authn_factor_with(cc_req_t *req, const char *state_token, const char *factor_id,
                                const char *code, const identity_webauthn_response_t *wa,
                                bool activate, identity_authn_out_t *o)
{
    identity_authn_event_t ev = activate ? IDENTITY_EV_ACTIVATE : IDENTITY_EV_VERIFY;
    out_init(o);
    authn_tx_t tx;
    identity_user_t *u = &o->user;
    identity_factor_t f;
    bool found = false;
    const char *want = activate ? "pending" : "active";
    if (!begin(req, o) || !load_tx(req, state_token, ev, &tx, o))
        return;
    int rc = 0;
    if (factor_id == NULL) {
        PGresult *res = NULL;
        const char *pp[] = {tx.user_id, want};
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_factor_pick, pp, &res)) != 0)
            goto DbError;
        factor_id = PQntuples(res) == 1 ? cc_db_get(res, 0, 0) : NULL;
    }
    if ((rc = identity_factor_load(req, factor_id, tx.user_id, &f, &found)) != 0)
        goto DbError;
    if (!found || strcmp(f.status, want) != 0) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_NOT_FOUND,
             activate ? "This user has no pending factor with this id."
                      : "This user has no active factor with this id.");
        return;
    }
    o->factor_id = f.id;
    o->factor_type = f.type;
    identity_mfa_policy_t pol;
    if ((rc = identity_store_user_by_id(req->db, req->pool, tx.user_id, u)) != 0 ||
        (rc = identity_mfa_policy_for(req->db, req->pool, u->tenant_id, &pol)) != 0)
        goto DbError;
    if (!identity_mfa_policy_allows(&pol, f.type)) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_FACTOR_NOT_ALLOWED,
             "The sign-in policy of this account no longer allows this factor type; enrol "
             "another.");
        o->ext = cc_json_on_pool(req->pool, json_pack("{s:O}", "allowed_factors", pol.allowed));
        return;
    }
    bool ok = false;
    int64_t step = -1;
    if (strcmp(f.type, "webauthn") == 0) {
        int refused = 0;
        json_t *options = NULL;
        if ((rc = identity_webauthn_step(req, u, &f, tx.digest, activate, wa, &options,
                                         &refused)) != 0)
            goto DbError;
        if (options != NULL) { /* no response yet: the options of a fresh challenge */
            if (commit(req, o)) {
                o->status = activate ? "PENDING_ACTIVATION" : "MFA_CHALLENGE";
                o->state_token = state_token;
                o->webauthn = options;
            }
            return;
        }
        if (refused != IDENTITY_WA_OK) {
            if (refused == IDENTITY_WA_COUNTER) {
                json_t *d = json_pack("{s:s}", "factor_id", f.id);
                rc = identity_audit(req, "user.webauthn_counter_regressed", u->id, u->tenant_id,
                                    u->msp_id, d);
                json_decref(d);
                if (rc != 0)
                    goto DbError;
                cc_log_warn("factor %s: WebAuthn counter went back (cloned authenticator?)", f.id);
            }
            code_failed(req, &tx, u, o, refused);
            return;
        }
        goto Accepted;
    }
    if (code == NULL) {
        /* a challenge: the email, sms and voice factors send a fresh code */
        bool phone = is_phone(f.type);
        if (strcmp(f.type, "email") != 0 && !phone) {
            cc_db_rollback(req->db);
            fail(o, CC_ERR_VALIDATION_FAILED, "pass_code is required for this factor.");
            return;
        }
        if (phone) {
            /* per user and per number (phone.h): a challenge cannot flood a phone */
            bool admitted = false;
            if ((rc = phone_admit(req, u, f.phone ? f.phone : "", f.type, o, &admitted)) != 0)
                goto DbError;
            if (!admitted) {
                cc_db_rollback(req->db);
                return;
            }
        } else {
            /* one mail per 30 seconds per factor: the challenge cannot flood a mailbox */
            PGresult *recent = NULL;
            const char *pf[] = {f.id};
            if ((rc = cc_db_query(req->db, req->pool, &identity_q_email_code_recent, pf,
                                  &recent)) != 0)
                goto DbError;
            if (PQntuples(recent) > 0) {
                cc_db_rollback(req->db);
                o->retry_after = 30;
                fail(o, CC_ERR_RATE_LIMITED, "A code was sent less than 30 seconds ago; use it.");
                return;
            }
        }
        char fresh[7];
        if ((rc = code_issue(req, f.type, f.id, fresh)) != 0)
            goto DbError;
        if (commit(req, o)) {
            o->status = "MFA_CHALLENGE";
            o->state_token = state_token;
            o->deliver_to = phone ? f.phone : (f.email ? f.email : u->email);
            identity_code_deliver(req, u, f.type, o->deliver_to, fresh, o);
        }
        cc_wipe(fresh, sizeof(fresh));
        return;
    }
    if ((rc = identity_factor_check(req, &f, code, &ok, &step)) != 0)
        goto DbError;
    if (!ok) {
        code_failed(req, &tx, u, o, -1);
        return;
    }
Accepted:;
    char stepbuf[24];
    snprintf(stepbuf, sizeof(stepbuf), "%lld", (long long)step);
    const char *ps[] = {f.id, step >= 0 ? stepbuf : NULL};
    const char *pu[] = {u->id};
    if (activate) {
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_factor_activate, ps, NULL)) != 0 ||
            (rc = cc_db_query(req->db, req->pool, &identity_q_cred_activate, pu, NULL)) != 0 ||
            (rc = cc_db_query(req->db, req->pool, &identity_q_user_activate, pu, NULL)) != 0)
            goto DbError;
        json_t *d = json_pack("{s:s, s:s}", "factor_id", f.id, "type", f.type);
        rc = identity_audit(req, "user.factor_activated", u->id, u->tenant_id, u->msp_id, d);
        json_decref(d);
        if (rc != 0)
            goto DbError;
        cc_log_info("user %s activated a %s factor", u->id, f.type);
    } else if (step >= 0) {
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_factor_used, ps, NULL)) != 0)
            goto DbError;
    }
    json_t *d = json_pack("{s:s}", "factor_type", f.type);
    rc = cc_db_query(req->db, req->pool, &identity_q_cred_ok, pu, NULL);
    if (rc == 0)
        rc = identity_audit(req, "user.signed_in", u->id, u->tenant_id, u->msp_id, d);
    json_decref(d);
    if (rc != 0)
        goto DbError;
    finish(req, &tx, o);
    return;
DbError:
    db_fail(req, o, rc);
}

/* ---- what the pages offer ---- */

void identity_authn_choices(cc_req_t *req, const char *state_token, bool enroll,
                            identity_authn_out_t *o)
{
    out_init(o);
    authn_tx_t tx;
    identity_user_t *u = &o->user;
    if (!begin(req, o) ||
        !load_tx(req, state_token, enroll ? IDENTITY_EV_ENROLL : IDENTITY_EV_VERIFY, &tx, o))
        return;
    PGresult *res = NULL;
    const char *p[] = {tx.user_id};
    int rc = identity_store_user_by_id(req->db, req->pool, tx.user_id, u);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &identity_q_factors_active, p, &res);
    if (rc != 0)
        goto DbError;
    o->factors = cc_json_on_pool(req->pool, json_array());
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(o->factors,
                              json_pack("{s:s, s:s, s:s?, s:s?}", "id", PQgetvalue(res, i, 0),
                                        "type", PQgetvalue(res, i, 1), "email",
                                        cc_db_get(res, i, 2), "phone", cc_db_get(res, i, 3)));
    identity_mfa_policy_t pol;
    if ((rc = apply_policy(req, u, o, &pol)) != 0 ||
        (rc = identity_remember_applies(req, u, &pol, &o->remember_allowed)) != 0)
        goto DbError;
    o->remember_days = pol.remember_device_days;
    o->status = enroll ? IDENTITY_MFA_ENROLL : IDENTITY_MFA_REQUIRED;
    cc_db_rollback(req->db);
    return;
DbError:
    db_fail(req, o, rc);
}

/* ---- one-time recovery codes (recovery_codes.c makes them) ---- */

static const cc_stmt_t q_recovery_code_use =
    CC_STMT("idn_rc_use",
            "UPDATE recovery_codes SET used_at = now() WHERE code_hash = $1 AND user_id = $2"
            " AND used_at IS NULL RETURNING (SELECT count(*) - 1 FROM recovery_codes"
            " WHERE user_id = $2 AND used_at IS NULL)",
            2);

void identity_authn_recovery_code(cc_req_t *req, const char *state_token, const char *code,
                                  identity_authn_out_t *o)
{
    out_init(o);
    authn_tx_t tx;
    identity_user_t *u = &o->user;
    if (!begin(req, o) || !load_tx(req, state_token, IDENTITY_EV_VERIFY, &tx, o))
        return;
    int rc = identity_store_user_by_id(req->db, req->pool, tx.user_id, u);
    if (rc != 0)
        goto DbError;
    char digest[65];
    identity_recovery_code_digest(req, u->id, code, digest);
    PGresult *res = NULL;
    const char *p[] = {digest, u->id};
    if ((rc = cc_db_query(req->db, req->pool, &q_recovery_code_use, p, &res)) != 0)
        goto DbError;
    if (PQntuples(res) != 1) {
        code_failed(req, &tx, u, o, -1);
        return;
    }
    json_t *d = json_pack("{s:s, s:I}", "factor_type", "recovery_code", "recovery_codes_left",
                          (json_int_t)strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    const char *pu[] = {u->id};
    rc = cc_db_query(req->db, req->pool, &identity_q_cred_ok, pu, NULL);
    if (rc == 0)
        rc = identity_audit(req, "user.signed_in", u->id, u->tenant_id, u->msp_id, d);
    json_decref(d);
    if (rc != 0)
        goto DbError;
    cc_log_info("user %s signed in with a recovery code", u->id);
    finish(req, &tx, o);
    return;
DbError:
    db_fail(req, o, rc);
}

/* ---- forgotten password ---- */

void identity_recovery_start(cc_req_t *req, const char *username, identity_authn_out_t *o)
{
    identity_app_t *app = app_of(req);
    out_init(o);
    o->status = "RECOVERY_CHALLENGE";
    if (!begin(req, o))
        return;
    identity_user_t *u = &o->user;
    PGresult *res = NULL;
    int rc = identity_store_user_by_username(req->db, req->pool, username, u);
    if (rc == CC_ENOENT || (rc == 0 && strcmp(u->status, "active") != 0)) {
        cc_db_rollback(req->db);
        cc_log_info("password recovery asked for an unknown or inactive username");
        return;
    }
    const char *pu[] = {u->id};
    if (rc != 0 || (rc = cc_db_query(req->db, req->pool, &identity_q_recovery_recent, pu, &res)))
        goto DbError;
    if (PQntuples(res) > 0) {
        /* one mail a minute: the form cannot flood a mailbox */
        cc_db_rollback(req->db);
        return;
    }
    char digest[65];
    char *token = identity_secret_new(digest);
    const char *pi[] = {digest, u->id};
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_recovery_clear, pu, NULL)) == 0 &&
        (rc = cc_db_query(req->db, req->pool, &identity_q_recovery_insert, pi, NULL)) == 0)
        rc = identity_audit(req, "user.password_recovery_mailed", u->id, u->tenant_id, u->msp_id,
                            NULL);
    if (rc == 0 && commit(req, o))
        identity_mail_recovery(app, req->db, u, token);
    cc_wipe(token, strlen(token));
    free(token);
    if (rc == 0)
        return;
DbError:
    db_fail(req, o, rc);
}

/* Loads a live recovery link (FOR UPDATE) in the open transaction: user, question, answer
 * hash, image. false (and o->err) when there is none. */
static bool load_recovery(cc_req_t *req, const char *digest, PGresult **res,
                          identity_authn_out_t *o)
{
    const char *p[] = {digest};
    int rc = cc_db_query(req->db, req->pool, &identity_q_recovery_get, p, res);
    if (rc != 0) {
        db_fail(req, o, rc);
        return false;
    }
    if (PQntuples(*res) != 1) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_RECOVERY_TOKEN_INVALID,
             "This recovery link is unknown, expired, used, or was tried too often.");
        return false;
    }
    return true;
}

void identity_recovery_question(cc_req_t *req, const char *token, const char **question,
                                const char **image, identity_authn_out_t *o)
{
    out_init(o);
    char digest[65];
    identity_secret_digest(token, digest);
    PGresult *res = NULL;
    if (!begin(req, o) || !load_recovery(req, digest, &res, o))
        return;
    cc_db_rollback(req->db);
    *question = cc_db_get(res, 0, 1);
    *image = cc_db_get(res, 0, 3);
    o->status = "RECOVERY";
}

void identity_recovery_reset(cc_req_t *req, const char *token, const char *answer,
                             const char *password, identity_authn_out_t *o)
{
    out_init(o);
    char digest[65];
    identity_secret_digest(token, digest);
    PGresult *res = NULL;
    if (!begin(req, o) || !load_recovery(req, digest, &res, o))
        return;
    identity_user_t *u = &o->user;
    int rc = identity_store_user_by_id(req->db, req->pool, PQgetvalue(res, 0, 0), u);
    if (rc != 0)
        goto DbError;
    const char *pd[] = {digest};
    if (cc_password_verify(PQgetvalue(res, 0, 2), identity_recovery_normalize(req->pool, answer)) !=
        0) {
        PGresult *fr = NULL;
        bool locked = false;
        if ((rc = cc_db_query(req->db, req->pool, &identity_q_recovery_fail, pd, &fr)) != 0 ||
            (rc = identity_count_failure(req, u, &locked)) != 0)
            goto DbError;
        if (commit(req, o))
            fail(o, CC_ERR_RECOVERY_ANSWER_WRONG, "The answer to the recovery question is wrong.");
        return;
    }
    o->pw_flaws = identity_password_flaws(password, u->username);
    if (o->pw_flaws != 0) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_VALIDATION_FAILED, "The password does not meet the policy.");
        return;
    }
    const char *pw_hash = hash_secret(req, password);
    if (pw_hash == NULL) {
        cc_db_rollback(req->db);
        fail(o, CC_ERR_INTERNAL_ERROR, "The password could not be stored.");
        return;
    }
    bool active = false;
    const char *pc[] = {u->id, pw_hash};
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_recovery_use, pd, NULL)) != 0 ||
        (rc = cc_db_query(req->db, req->pool, &identity_q_cred_password, pc, NULL)) != 0 ||
        (rc = identity_audit(req, "user.password_reset", u->id, u->tenant_id, u->msp_id, NULL)) ||
        (rc = identity_remember_forget(req, u, "password_reset")) != 0 ||
        (rc = identity_store_tenant_active(req->db, req->pool, u->tenant_id, &active)) != 0)
        goto DbError;
    o->factors = active_factors(req, u->id, &rc);
    identity_mfa_policy_t pol;
    if (rc != 0 || (rc = apply_policy(req, u, o, &pol)) != 0)
        goto DbError;
    if (!active) {
        /* the new password stays set; signing in is what a suspended tenant refuses */
        if (commit(req, o))
            fail(o, CC_ERR_TENANT_SUSPENDED,
                 "The account of this user (or one of its parents) is suspended.");
        return;
    }
    /* the second factor is still required: the link and the answer prove no factor */
    const char *status = identity_authn_after_password(json_array_size(o->factors) > 0);
    if ((rc = new_transaction(req, u->id, status, o)) != 0)
        goto DbError;
    if (commit(req, o))
        cc_log_info("user %s reset the password (recovery link and answer)", u->id);
    return;
DbError:
    db_fail(req, o, rc);
}

/* ================= the JSON API ================= */

static bool answer_error(cc_req_t *req, const identity_authn_out_t *o, cc_validator_t *v);

void identity_answer_outcome(cc_req_t *req, const identity_authn_out_t *o)
{
    answer_error(req, o, NULL);
}

/* Answers an unsuccessful outcome; false when there is none. */
static bool answer_error(cc_req_t *req, const identity_authn_out_t *o, cc_validator_t *v)
{
    if (o->db_rc != 0) {
        cc_res_db_error(req, o->db_rc);
        return true;
    }
    if (o->err < 0)
        return false;
    if (o->err == CC_ERR_VALIDATION_FAILED && v != NULL) {
        if (o->pw_flaws)
            identity_password_report(v, "password", o->pw_flaws);
        else
            cc_v_add(v, o->reason ? o->reason : "pass_code", "required", "%s", o->detail);
        cc_res_invalid(req, v);
        return true;
    }
    if (o->retry_after > 0) {
        char ra[24];
        snprintf(ra, sizeof(ra), "%lld", (long long)o->retry_after);
        cc_res_header(req, "retry-after", ra);
    }
    if (o->ext)
        cc_res_problem_ext(req, (cc_error_id_t)o->err, json_deep_copy(o->ext), "%s", o->detail);
    else if (o->reason)
        cc_res_problem_ext(req, (cc_error_id_t)o->err, json_pack("{s:s}", "reason", o->reason),
                           "%s", o->detail);
    else
        cc_res_problem(req, (cc_error_id_t)o->err, "%s", o->detail);
    return true;
}

static json_t *user_json(const identity_user_t *u)
{
    return json_pack("{s:s, s:s, s:s}", "id", u->id, "username", u->username, "language",
                     u->language);
}

static void answer_json(cc_req_t *req, json_t *body)
{
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 200, body);
}

void identity_handle_authn(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"username", "password", NULL});
    const char *username = cc_v_string(&v, body, "username", true, 1, 254, true);
    const char *password = cc_v_string(&v, body, "password", true, 1, 1024, false);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    identity_authn_password(req, username, password, &o);
    if (answer_error(req, &o, &v))
        return;
    if (strcmp(o.status, "LOCKED_OUT") == 0) {
        answer_json(req, json_pack("{s:s}", "status", "LOCKED_OUT"));
        return;
    }
    if (strcmp(o.status, IDENTITY_SUCCESS) == 0) { /* the policy needs no second factor */
        answer_json(req, json_pack("{s:s, s:s, s:s, s:o}", "status", o.status, "session_token",
                                   o.session_token, "expires_at", o.expires_at, "user",
                                   user_json(&o.user)));
        return;
    }
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:O, s:o}", "status", o.status, "state_token", o.state_token,
                  "expires_at", o.expires_at, "factors", o.factors, "user", user_json(&o.user));
    if (strcmp(o.status, IDENTITY_MFA_ENROLL) == 0)
        json_object_set_new(out, "enroll", enrollable(&o));
    answer_json(req, out);
}

void identity_handle_authn_activate(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"activation_token", "password", "recovery_question",
                                      "recovery_answer", "security_image", NULL});
    const char *token = cc_v_string(&v, body, "activation_token", true, 1, 256, true);
    const char *password = cc_v_string(&v, body, "password", true, 1, 1024, false);
    const char *question = cc_v_string(&v, body, "recovery_question", true, 1, 200, true);
    const char *answer = cc_v_string(&v, body, "recovery_answer", true, 1, 200, true);
    const char *image = cc_v_enum(&v, body, "security_image", false, identity_security_images);
    if (answer != NULL && cc_utf8_length(answer, strlen(answer)) < 3)
        cc_v_add(&v, "recovery_answer", "too_short", "The answer needs at least 3 characters.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    identity_authn_activate(req, token, password, question, answer, image, &o);
    if (answer_error(req, &o, &v))
        return;
    answer_json(req, json_pack("{s:s, s:s, s:s, s:[], s:o, s:o}", "status", o.status, "state_token",
                               o.state_token, "expires_at", o.expires_at, "factors", "enroll",
                               enrollable(&o), "user", user_json(&o.user)));
}

static const char *const factor_types[] = {"totp", "email", "webauthn", "sms", "voice", NULL};

const char *identity_v_phone(cc_validator_t *v, json_t *body, const char *type)
{
    bool phone = type != NULL && is_phone(type);
    /* a type this deployment cannot send to answers factor_not_supported, not "required" */
    const char *number = cc_v_string(v, body, "phone_number",
                                     phone && identity_factor_type_supported(type), 1, 32, true);
    if (number != NULL && !phone)
        cc_v_add(v, "phone_number", "not_allowed", "phone_number is only for sms and voice.");
    else if (number != NULL && !cc_phone_e164_valid(number))
        cc_v_add(v, "phone_number", "invalid_phone",
                 "An E.164 number: + and the country code, then the number, digits only "
                 "(e.g. +819012345678).");
    return number;
}

void identity_handle_authn_factor_enroll(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"state_token", "type", "phone_number", NULL});
    const char *state = cc_v_string(&v, body, "state_token", true, 1, 256, true);
    const char *type = cc_v_enum(&v, body, "type", true, factor_types);
    const char *phone = identity_v_phone(&v, body, type);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    identity_authn_enroll(req, state, type, phone, &o);
    if (answer_error(req, &o, &v))
        return;
    json_t *out =
        json_pack("{s:s, s:s, s:s}", "id", o.factor_id, "type", o.factor_type, "status", o.status);
    if (o.secret) {
        json_object_set_new(out, "secret", json_string(o.secret));
        json_object_set_new(out, "otpauth_uri", json_string(o.otpauth_uri));
    }
    if (o.webauthn)
        json_object_set(out, "activation", o.webauthn);
    answer_json(req, out);
}

static void factor_step(cc_req_t *req, bool activate)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"state_token", "pass_code", "client_data_json",
                                      "attestation_object", "authenticator_data", "signature",
                                      NULL});
    const char *state = cc_v_string(&v, body, "state_token", true, 1, 256, true);
    identity_webauthn_response_t wa = {
        .client_data_json = cc_v_string(&v, body, "client_data_json", false, 1, 8192, true),
        .attestation_object = cc_v_string(&v, body, "attestation_object", false, 1, 12288, true),
        .authenticator_data = cc_v_string(&v, body, "authenticator_data", false, 1, 4096, true),
        .signature = cc_v_string(&v, body, "signature", false, 1, 1024, true),
    };
    bool webauthn =
        wa.client_data_json || wa.attestation_object || wa.authenticator_data || wa.signature;
    /* no pass_code on activate: a webauthn factor answers with fresh creation options */
    const char *code = cc_v_string(&v, body, "pass_code", false, 1, 16, true);
    if (code && webauthn)
        cc_v_add(&v, "pass_code", "conflict", "Give a pass code or a WebAuthn response, not both.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    const char *id = cc_req_param(req, "id");
    if (!cc_is_uuid(id)) {
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No factor with this id.");
        return;
    }
    identity_authn_out_t o;
    identity_authn_factor_with(req, state, id, code, webauthn ? &wa : NULL, activate, &o);
    if (answer_error(req, &o, &v))
        return;
    if (strcmp(o.status, "MFA_CHALLENGE") == 0 || strcmp(o.status, "PENDING_ACTIVATION") == 0) {
        json_t *out = json_pack("{s:s, s:s, s:{s:s, s:s}}", "status", o.status, "state_token",
                                o.state_token, "factor", "id", o.factor_id, "type", o.factor_type);
        if (o.webauthn) /* request options (verify) or creation options (activate) */
            json_object_set(out, activate ? "activation" : "challenge", o.webauthn);
        answer_json(req, out);
        return;
    }
    answer_json(req,
                json_pack("{s:s, s:s, s:s, s:o}", "status", o.status, "session_token",
                          o.session_token, "expires_at", o.expires_at, "user", user_json(&o.user)));
}

void identity_handle_authn_factor_activate(cc_req_t *req)
{
    factor_step(req, true);
}

void identity_handle_authn_factor_verify(cc_req_t *req)
{
    factor_step(req, false);
}

void identity_handle_authn_recovery_code(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"state_token", "recovery_code", NULL});
    const char *state = cc_v_string(&v, body, "state_token", true, 1, 256, true);
    const char *code = cc_v_string(&v, body, "recovery_code", true, 1, 32, true);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    identity_authn_recovery_code(req, state, code, &o);
    if (answer_error(req, &o, &v))
        return;
    answer_json(req,
                json_pack("{s:s, s:s, s:s, s:o}", "status", o.status, "session_token",
                          o.session_token, "expires_at", o.expires_at, "user", user_json(&o.user)));
}

void identity_handle_recovery_password(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"username", NULL});
    const char *username = cc_v_string(&v, body, "username", true, 1, 254, true);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    identity_recovery_start(req, username, &o);
    if (answer_error(req, &o, &v))
        return;
    /* the same answer whether or not the user exists */
    answer_json(req,
                json_pack("{s:s, s:s}", "status", "RECOVERY_CHALLENGE", "factor_type", "EMAIL"));
}

void identity_handle_recovery_verify(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"recovery_token", NULL});
    const char *token = cc_v_string(&v, body, "recovery_token", true, 1, 256, true);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    const char *question = NULL, *image = NULL;
    identity_recovery_question(req, token, &question, &image, &o);
    if (answer_error(req, &o, &v))
        return;
    answer_json(req, json_pack("{s:s, s:s, s:s?}", "status", "RECOVERY", "recovery_question",
                               question, "security_image", image));
}

void identity_handle_recovery_reset(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"recovery_token", "recovery_answer", "password", NULL});
    const char *token = cc_v_string(&v, body, "recovery_token", true, 1, 256, true);
    const char *answer = cc_v_string(&v, body, "recovery_answer", true, 1, 200, true);
    const char *password = cc_v_string(&v, body, "password", true, 1, 1024, false);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_authn_out_t o;
    identity_recovery_reset(req, token, answer, password, &o);
    if (answer_error(req, &o, &v))
        return;
    json_t *out =
        json_pack("{s:s, s:s, s:s, s:O, s:o}", "status", o.status, "state_token", o.state_token,
                  "expires_at", o.expires_at, "factors", o.factors, "user", user_json(&o.user));
    if (strcmp(o.status, IDENTITY_MFA_ENROLL) == 0)
        json_object_set_new(out, "enroll", enrollable(&o));
    answer_json(req, out);
}
