/*
 * The signed-in user's own second factors: GET, POST (enrol), POST .../activate,
 * DELETE /api/v1/me/factors. Changes need a recent sign-in (the access token's auth_time
 * within 15 minutes), so a stolen token cannot quietly add an attacker's authenticator;
 * the last active factor cannot be removed (MFA is mandatory). Other people's factors
 * (an admin resetting them) come with issue 10.
 */
#include <string.h>
#include <time.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"
#include "policy.h"
#include "store_authn.h"
#include "webauthn.h"

#define RECENT_AUTH_S 900

/* The user behind a live user access token, in an open system-scope transaction; answers
 * and returns false otherwise. recent: the change needs a sign-in within 15 minutes. */
bool identity_me_begin(cc_req_t *req, bool recent, identity_user_t *u)
{
    const cc_principal_t *p = req->principal;
    if (p == NULL || p->kind != CC_PRINCIPAL_USER) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Only a signed-in user has factors.");
        return false;
    }
    json_t *grant = json_object_get(p->claims, "grant_id");
    bool live = false;
    int rc = identity_grant_live(req, json_string_value(grant), NULL, &live);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    if (!live) {
        cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This access token has been revoked.");
        return false;
    }
    json_t *at = json_object_get(p->claims, "auth_time");
    if (recent && (!json_is_integer(at) ||
                   (int64_t)time(NULL) - (int64_t)json_integer_value(at) > RECENT_AUTH_S)) {
        cc_res_problem(req, CC_ERR_REAUTHENTICATION_REQUIRED,
                       "Sign in again (within 15 minutes) to change your factors.");
        return false;
    }
    if (recent && identity_json_has(json_object_get(p->claims, "amr"), "rmb")) {
        /* a remembered browser proves the password only: factors change after a factor */
        cc_res_problem(req, CC_ERR_REAUTHENTICATION_REQUIRED,
                       "Sign in again with your second factor to change your factors.");
        return false;
    }
    if (!identity_begin(req))
        return false;
    rc = identity_store_user_by_id(req->db, req->pool, p->sub, u);
    if (rc != 0) {
        cc_db_rollback(req->db);
        if (rc == CC_ENOENT)
            cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This user no longer exists.");
        else
            cc_res_db_error(req, rc);
        return false;
    }
    return true;
}

void identity_handle_me_factors(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    identity_user_t u;
    if (!identity_me_begin(req, false, &u))
        return;
    PGresult *res = NULL;
    const char *p[] = {u.id};
    int rc = cc_db_query(req->db, req->pool, &identity_q_factors_list, p, &res);
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

static const char *const factor_types[] = {"totp", "email", "webauthn", "sms", "voice", NULL};

void identity_handle_me_factor_enroll(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"type", "phone_number", NULL});
    const char *type = cc_v_enum(&v, body, "type", true, factor_types);
    const char *phone = identity_v_phone(&v, body, type);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (!identity_factor_type_supported(type)) {
        cc_res_problem(req, CC_ERR_FACTOR_NOT_SUPPORTED,
                       "Factor type %s is not enabled on this deployment; choose another.", type);
        return;
    }
    identity_user_t u;
    if (!identity_me_begin(req, true, &u))
        return;
    identity_mfa_policy_t pol;
    int rc = identity_mfa_policy_for(req->db, req->pool, u.tenant_id, &pol);
    if (rc == 0 && !identity_mfa_policy_allows(&pol, type)) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_FACTOR_NOT_ALLOWED,
                           json_pack("{s:O}", "allowed_factors", pol.allowed),
                           "The sign-in policy of your account does not allow %s factors.", type);
        return;
    }
    identity_authn_out_t o;
    memset(&o, 0, sizeof(o));
    o.err = -1;
    char code[7] = "";
    if (rc == 0)
        rc = identity_factor_create(req, &u, type, phone, &o, code);
    if (rc == 0 && o.err >= 0) { /* the phone rate limits refused */
        cc_db_rollback(req->db);
        identity_answer_outcome(req, &o);
        return;
    }
    if (rc == 0) {
        json_t *d = json_pack("{s:s, s:s}", "factor_id", o.factor_id, "type", type);
        rc = identity_audit(req, "user.factor_enrolled", u.id, u.tenant_id, u.msp_id, d);
        json_decref(d);
    }
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_res_db_error(req, rc);
        return;
    }
    if (!identity_commit(req))
        return;
    if (code[0] && identity_code_deliver(req, &u, type, o.deliver_to, code, &o) != 0) {
        cc_wipe(code, sizeof(code));
        identity_answer_outcome(req, &o);
        return;
    }
    cc_wipe(code, sizeof(code));
    json_t *out = json_pack("{s:s, s:s, s:s}", "id", o.factor_id, "type", type, "status",
                            "PENDING_ACTIVATION");
    if (o.secret) {
        json_object_set_new(out, "secret", json_string(o.secret));
        json_object_set_new(out, "otpauth_uri", json_string(o.otpauth_uri));
    }
    if (o.webauthn)
        json_object_set(out, "activation", o.webauthn);
    cc_res_header(req, "cache-control", "no-store");
    cc_res_json(req, 201, out);
}

void identity_handle_me_factor_activate(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body,
                (const char *const[]){"pass_code", "client_data_json", "attestation_object", NULL});
    identity_webauthn_response_t wa = {
        .client_data_json = cc_v_string(&v, body, "client_data_json", false, 1, 8192, true),
        .attestation_object = cc_v_string(&v, body, "attestation_object", false, 1, 12288, true),
    };
    bool webauthn = wa.client_data_json || wa.attestation_object;
    const char *code = cc_v_string(&v, body, "pass_code", !webauthn, 1, 16, true);
    if (webauthn && (code || !wa.client_data_json || !wa.attestation_object))
        cc_v_add(&v, "attestation_object", "required",
                 "A WebAuthn activation needs client_data_json and attestation_object, and no "
                 "pass_code.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    identity_user_t u;
    if (!identity_me_begin(req, true, &u))
        return;
    identity_factor_t f;
    bool found = false, ok = false, locked = false;
    int64_t step = -1;
    int rc = identity_factor_load(req, cc_req_param(req, "id"), u.id, &f, &found);
    if (rc != 0)
        goto DbError;
    if (!found || strcmp(f.status, "pending") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "You have no pending factor with this id.");
        return;
    }
    identity_mfa_policy_t pol;
    if ((rc = identity_mfa_policy_for(req->db, req->pool, u.tenant_id, &pol)) != 0)
        goto DbError;
    if (!identity_mfa_policy_allows(&pol, f.type)) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(
            req, CC_ERR_FACTOR_NOT_ALLOWED, json_pack("{s:O}", "allowed_factors", pol.allowed),
            "The sign-in policy of your account no longer allows %s factors.", f.type);
        return;
    }
    if (webauthn != (strcmp(f.type, "webauthn") == 0)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_VALIDATION_FAILED,
                       webauthn ? "This factor is activated with a pass_code."
                                : "A webauthn factor is activated with client_data_json and "
                                  "attestation_object.");
        return;
    }
    int refused = -1;
    if (webauthn) {
        json_t *options = NULL;
        refused = 0;
        if ((rc = identity_webauthn_step(req, &u, &f, NULL, true, &wa, &options, &refused)) != 0)
            goto DbError;
        ok = refused == 0;
    } else if ((rc = identity_factor_check(req, &f, code, &ok, &step)) != 0)
        goto DbError;
    if (!ok && refused > 0) {
        if ((rc = identity_count_failure(req, &u, &locked)) != 0)
            goto DbError;
        if (identity_commit(req))
            cc_res_problem_ext(req, locked ? CC_ERR_TOO_MANY_ATTEMPTS : CC_ERR_WEBAUTHN_REJECTED,
                               json_pack("{s:s}", "reason", identity_webauthn_result_name(refused)),
                               "%s", identity_webauthn_result_detail(refused));
        return;
    }
    if (!ok) {
        /* wrong codes count towards the account's lockout window like any other */
        if ((rc = identity_count_failure(req, &u, &locked)) != 0)
            goto DbError;
        if (identity_commit(req))
            cc_res_problem(req, locked ? CC_ERR_TOO_MANY_ATTEMPTS : CC_ERR_INVALID_PASS_CODE,
                           "The code is wrong, expired or used.");
        return;
    }
    char stepbuf[24];
    snprintf(stepbuf, sizeof(stepbuf), "%lld", (long long)step);
    const char *ps[] = {f.id, step >= 0 ? stepbuf : NULL};
    json_t *d = json_pack("{s:s, s:s}", "factor_id", f.id, "type", f.type);
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_factor_activate, ps, NULL)) == 0)
        rc = identity_audit(req, "user.factor_activated", u.id, u.tenant_id, u.msp_id, d);
    json_decref(d);
    if (rc != 0)
        goto DbError;
    if (!identity_commit(req))
        return;
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:s}", "id", f.id, "type", f.type, "status", "active"));
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}

void identity_handle_me_factor_delete(cc_req_t *req)
{
    identity_user_t u;
    if (!identity_me_begin(req, true, &u))
        return;
    identity_factor_t f;
    bool found = false;
    PGresult *res = NULL;
    const char *pu[] = {u.id};
    int rc = cc_db_query(req->db, req->pool, &identity_q_factors_count, pu, &res);
    if (rc == 0)
        rc = identity_factor_load(req, cc_req_param(req, "id"), u.id, &f, &found);
    if (rc != 0)
        goto DbError;
    if (!found) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "You have no factor with this id.");
        return;
    }
    if (strcmp(f.status, "active") == 0 && PQntuples(res) <= 1) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_LAST_FACTOR,
                       "Enrol another factor before removing your only one.");
        return;
    }
    const char *pd[] = {f.id, u.id};
    json_t *d = json_pack("{s:s, s:s}", "factor_id", f.id, "type", f.type);
    if ((rc = cc_db_query(req->db, req->pool, &identity_q_factor_delete, pd, NULL)) == 0)
        rc = identity_audit(req, "user.factor_deleted", u.id, u.tenant_id, u.msp_id, d);
    json_decref(d);
    if (rc != 0)
        goto DbError;
    if (identity_commit(req))
        cc_res_json(req, 204, NULL);
    return;
DbError:
    cc_db_rollback(req->db);
    cc_res_db_error(req, rc);
}
