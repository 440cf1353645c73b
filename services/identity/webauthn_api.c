/*
 * The factor type "webauthn" in the authentication API and /api/v1/me/factors: the
 * relying party's settings, challenges (webauthn_challenges), creation and request
 * options for navigator.credentials.create/get, and storing the verified credential
 * (factors.profile). The checks themselves are in webauthn.c.
 */
#include <string.h>

#include "console/crypto.h"
#include "console/log.h"
#include "identity.h"
#include "webauthn.h"

#define CHALLENGE_BYTES 32
#define TIMEOUT_MS 300000
#define MAX_ORIGINS 16

static char *rp_id;
static char *origins[MAX_ORIGINS + 1];
static const char *uv_pref = "preferred";
static identity_webauthn_rp_t rp;

static const cc_stmt_t q_challenge_clear = CC_STMT(
    "idn_wa_challenge_clear",
    "DELETE FROM webauthn_challenges WHERE factor_id = $1 OR expires_at < now() - interval '1 day'",
    1);
static const cc_stmt_t q_challenge_insert =
    CC_STMT("idn_wa_challenge_insert",
            "INSERT INTO webauthn_challenges (challenge, user_id, factor_id, purpose, state_hash,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, now() + interval '5 minutes')",
            5);
/* takes every challenge of the factor; returns the live one of this purpose and sign-in */
static const cc_stmt_t q_challenge_take =
    CC_STMT("idn_wa_challenge_take",
            "WITH gone AS (DELETE FROM webauthn_challenges WHERE factor_id = $1"
            " RETURNING challenge, purpose, state_hash, expires_at)"
            " SELECT challenge FROM gone WHERE purpose = $2 AND state_hash IS NOT DISTINCT FROM $3"
            " AND expires_at > now()",
            3);
static const cc_stmt_t q_user_credentials =
    CC_STMT("idn_wa_user_credentials",
            "SELECT profile->>'credential_id' FROM factors WHERE user_id = $1 AND type = 'webauthn'"
            " AND profile ? 'credential_id' ORDER BY created_at",
            1);
static const cc_stmt_t q_credential_taken =
    CC_STMT("idn_wa_credential_taken",
            "SELECT 1 FROM factors WHERE type = 'webauthn' AND profile->>'credential_id' = $1", 1);
static const cc_stmt_t q_factor_profile =
    CC_STMT("idn_wa_factor_profile",
            "SELECT profile->>'credential_id', profile->>'public_key',"
            " coalesce((profile->>'sign_count')::bigint, 0), coalesce((profile->>'uv')::boolean,"
            " false) FROM factors WHERE id = $1",
            1);
static const cc_stmt_t q_factor_store =
    CC_STMT("idn_wa_factor_store", "UPDATE factors SET profile = $2::jsonb WHERE id = $1", 2);
static const cc_stmt_t q_factor_counter =
    CC_STMT("idn_wa_factor_counter",
            "UPDATE factors SET profile = jsonb_set(profile, '{sign_count}', to_jsonb($2::bigint)),"
            " last_used_at = now() WHERE id = $1",
            2);

/* "scheme://host[:port]" of a URL (malloc), or NULL. */
static char *origin_of(const char *url, char **host_out, const char **port_out)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return NULL;
    const char *h = p + 3, *end = h + strcspn(h, "/?#");
    char *origin = cc_strndup(url, (size_t)(end - url));
    if (host_out) {
        const char *colon = memchr(h, ':', (size_t)(end - h));
        *host_out = cc_strndup(h, (size_t)((colon ? colon : end) - h));
        *port_out = colon ? origin + (colon - url) : "";
    }
    return origin;
}

static size_t add_origin(size_t n, char *o)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(origins[i], o) == 0) {
            free(o);
            return n;
        }
    if (n >= MAX_ORIGINS) {
        free(o);
        return n;
    }
    origins[n] = o;
    return n + 1;
}

int identity_webauthn_init(const cc_env_t *env)
{
    char *host = NULL;
    const char *port = "";
    char *pub = origin_of(env->public_url, &host, &port);
    if (pub == NULL) {
        cc_log_error("CONSOLE_PUBLIC_URL has no origin");
        return CC_EINVAL;
    }
    bool explicit_rp = env->webauthn_rp_id && *env->webauthn_rp_id;
    rp_id = cc_strdup(explicit_rp ? env->webauthn_rp_id : host);
    size_t n = 0;
    if (env->webauthn_origins && *env->webauthn_origins) {
        const char *s = env->webauthn_origins;
        while (*s) {
            size_t len = strcspn(s, ","), skip = 0;
            while (skip < len && s[skip] == ' ')
                skip++;
            size_t olen = len - skip;
            while (olen > 0 && s[skip + olen - 1] == ' ')
                olen--;
            char *o = cc_strndup(s + skip, olen);
            if (*o)
                n = add_origin(n, o);
            else
                free(o);
            s += len + (s[len] == ',');
        }
    } else {
        n = add_origin(n, cc_strdup(pub));
        if (explicit_rp) {
            const char *scheme_end = strstr(pub, "://");
            n = add_origin(n, cc_aprintf("%.*s://%s%s", (int)(scheme_end - pub), pub, rp_id, port));
        }
    }
    origins[n] = NULL;
    free(pub);
    free(host);
    const char *uv =
        env->webauthn_user_verification ? env->webauthn_user_verification : "preferred";
    if (strcmp(uv, "required") != 0 && strcmp(uv, "preferred") != 0 &&
        strcmp(uv, "discouraged") != 0) {
        cc_log_error("CONSOLE_WEBAUTHN_USER_VERIFICATION must be required, preferred or "
                     "discouraged");
        return CC_EINVAL;
    }
    uv_pref = strcmp(uv, "required") == 0    ? "required"
              : strcmp(uv, "preferred") == 0 ? "preferred"
                                             : "discouraged";
    rp = (identity_webauthn_rp_t){
        .rp_id = rp_id, .origins = (const char *const *)origins, .require_uv = uv_pref[0] == 'r'};
    cc_log_info("WebAuthn relying party %s, %zu origin(s), user verification %s", rp_id, n,
                uv_pref);
    return 0;
}

void identity_webauthn_dispose(void)
{
    free(rp_id);
    rp_id = NULL;
    for (size_t i = 0; origins[i]; i++) {
        free(origins[i]);
        origins[i] = NULL;
    }
}

const char *identity_webauthn_uv(void)
{
    return uv_pref;
}

/* Pool copy of decoded base64url; NULL when s is not strict base64url. */
static uint8_t *b64(cc_req_t *req, const char *s, size_t *len)
{
    uint8_t *raw = NULL;
    if (s == NULL || cc_base64url_decode_strict(s, strlen(s), &raw, len) != 0)
        return NULL;
    uint8_t *out = cc_pool_alloc(req->pool, *len + 1);
    memcpy(out, raw, *len + 1);
    free(raw);
    return out;
}

static const char *b64_enc(cc_req_t *req, const void *data, size_t n)
{
    char *e = cc_base64url_encode(data, n);
    const char *out = cc_pool_strdup(req->pool, e);
    free(e);
    return out;
}

/* The user's registered credentials as [{type, id}] (new reference). */
static int credential_list(cc_req_t *req, const char *user_id, json_t **out)
{
    PGresult *res = NULL;
    const char *p[] = {user_id};
    int rc = cc_db_query(req->db, req->pool, &q_user_credentials, p, &res);
    *out = json_array();
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        json_array_append_new(
            *out, json_pack("{s:s, s:s}", "type", "public-key", "id", PQgetvalue(res, i, 0)));
    return rc;
}

static int new_challenge(cc_req_t *req, const identity_user_t *u, const identity_factor_t *f,
                         const char *purpose, const char *state_hash, const char **challenge)
{
    uint8_t raw[CHALLENGE_BYTES];
    int rc = cc_random_bytes(raw, sizeof(raw));
    if (rc != 0)
        return rc;
    *challenge = b64_enc(req, raw, sizeof(raw));
    const char *pc[] = {f->id};
    const char *pi[] = {*challenge, u->id, f->id, purpose, state_hash};
    if ((rc = cc_db_query(req->db, req->pool, &q_challenge_clear, pc, NULL)) == 0)
        rc = cc_db_query(req->db, req->pool, &q_challenge_insert, pi, NULL);
    return rc;
}

static int creation_options(cc_req_t *req, const identity_user_t *u, const identity_factor_t *f,
                            json_t **options)
{
    const char *challenge = NULL;
    json_t *exclude = NULL;
    int rc = new_challenge(req, u, f, "register", NULL, &challenge);
    if (rc == 0)
        rc = credential_list(req, u->id, &exclude);
    if (rc != 0) {
        json_decref(exclude);
        return rc;
    }
    /* the user handle: the user's id as 16 bytes (no personal data) */
    uint8_t handle[16];
    const char *h = u->id;
    for (int i = 0; i < 16; i++) {
        while (*h == '-')
            h++;
        unsigned v = 0;
        sscanf(h, "%2x", &v);
        handle[i] = (uint8_t)v;
        h += 2;
    }
    const char *display = cc_pool_printf(req->pool, "%s %s", u->first_name ? u->first_name : "",
                                         u->last_name ? u->last_name : "");
    *options = cc_json_on_pool(
        req->pool,
        json_pack("{s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:s, s:[{s:s, s:i}, {s:s, s:i}, {s:s, s:i}],"
                  " s:i, s:o, s:{s:s, s:b, s:s}, s:s}",
                  "rp", "id", rp.rp_id, "name", "Console", "user", "id",
                  b64_enc(req, handle, sizeof(handle)), "name", u->username, "displayName", display,
                  "challenge", challenge, "pubKeyCredParams", "type", "public-key", "alg", -7,
                  "type", "public-key", "alg", -8, "type", "public-key", "alg", -257, "timeout",
                  TIMEOUT_MS, "excludeCredentials", exclude, "authenticatorSelection",
                  "residentKey", "discouraged", "requireResidentKey", 0, "userVerification",
                  uv_pref, "attestation", "none"));
    return 0;
}

static int request_options(cc_req_t *req, const identity_user_t *u, const identity_factor_t *f,
                           const char *state_hash, json_t **options)
{
    const char *challenge = NULL;
    PGresult *res = NULL;
    const char *pf[] = {f->id};
    int rc = cc_db_query(req->db, req->pool, &q_factor_profile, pf, &res);
    if (rc == 0)
        rc = new_challenge(req, u, f, "authenticate", state_hash, &challenge);
    if (rc != 0)
        return rc;
    *options = cc_json_on_pool(
        req->pool, json_pack("{s:s, s:s, s:[{s:s, s:s}], s:s, s:i}", "challenge", challenge, "rpId",
                             rp.rp_id, "allowCredentials", "type", "public-key", "id",
                             PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0),
                             "userVerification", uv_pref, "timeout", TIMEOUT_MS));
    return 0;
}

static int take_challenge(cc_req_t *req, const identity_factor_t *f, const char *purpose,
                          const char *state_hash, const char **challenge)
{
    PGresult *res = NULL;
    const char *p[] = {f->id, purpose, state_hash};
    int rc = cc_db_query(req->db, req->pool, &q_challenge_take, p, &res);
    *challenge = rc == 0 && PQntuples(res) == 1 ? cc_db_get(res, 0, 0) : NULL;
    return rc;
}

static int do_register(cc_req_t *req, const identity_factor_t *f,
                       const identity_webauthn_response_t *resp, int *result)
{
    const char *challenge = NULL;
    int rc = take_challenge(req, f, "register", NULL, &challenge);
    if (rc != 0)
        return rc;
    size_t cl = 0, al = 0;
    const uint8_t *cdj = b64(req, resp->client_data_json, &cl);
    const uint8_t *att = b64(req, resp->attestation_object, &al);
    if (cdj == NULL || att == NULL) {
        *result = IDENTITY_WA_MALFORMED;
        return 0;
    }
    if (challenge == NULL) {
        *result = IDENTITY_WA_CHALLENGE;
        return 0;
    }
    identity_webauthn_credential_t c;
    *result = identity_webauthn_register(&rp, challenge, cdj, cl, att, al, &c);
    if (*result != IDENTITY_WA_OK)
        return 0;
    const char *cred_id = b64_enc(req, c.id, c.id_len);
    PGresult *res = NULL;
    const char *pt[] = {cred_id};
    if ((rc = cc_db_query(req->db, req->pool, &q_credential_taken, pt, &res)) == 0 &&
        PQntuples(res) > 0) {
        *result = IDENTITY_WA_CREDENTIAL_TAKEN;
    } else if (rc == 0) {
        json_t *profile = json_pack(
            "{s:s, s:s, s:I, s:I, s:b, s:b, s:s, s:s, s:s}", "credential_id", cred_id, "public_key",
            b64_enc(req, c.public_key, c.public_key_len), "alg", (json_int_t)c.alg, "sign_count",
            (json_int_t)c.sign_count, "uv", c.uv, "backup_eligible", c.backup_eligible, "aaguid",
            c.aaguid, "fmt", c.fmt, "attestation", c.attestation_type);
        char *text = json_dumps(profile, JSON_COMPACT);
        json_decref(profile);
        const char *ps[] = {f->id, text};
        rc = cc_db_query(req->db, req->pool, &q_factor_store, ps, NULL);
        free(text);
        cc_log_info("factor %s: WebAuthn credential registered (alg %lld, %s attestation)", f->id,
                    (long long)c.alg, c.attestation_type);
    }
    identity_webauthn_credential_free(&c);
    return rc;
}

static int do_assert(cc_req_t *req, const identity_factor_t *f, const char *state_hash,
                     const identity_webauthn_response_t *resp, int *result)
{
    const char *challenge = NULL;
    PGresult *res = NULL;
    const char *pf[] = {f->id};
    int rc = take_challenge(req, f, "authenticate", state_hash, &challenge);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_factor_profile, pf, &res);
    if (rc != 0)
        return rc;
    size_t cl = 0, al = 0, sl = 0, kl = 0;
    const uint8_t *cdj = b64(req, resp->client_data_json, &cl);
    const uint8_t *ad = b64(req, resp->authenticator_data, &al);
    const uint8_t *sig = b64(req, resp->signature, &sl);
    const uint8_t *key = PQgetisnull(res, 0, 1) ? NULL : b64(req, PQgetvalue(res, 0, 1), &kl);
    if (cdj == NULL || ad == NULL || sig == NULL || key == NULL) {
        *result = IDENTITY_WA_MALFORMED;
        return 0;
    }
    if (challenge == NULL) {
        *result = IDENTITY_WA_CHALLENGE;
        return 0;
    }
    long long stored = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    bool reg_uv = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    uint32_t count = 0;
    bool uv = false;
    *result = identity_webauthn_assert(&rp, challenge, cdj, cl, ad, al, sig, sl, key, kl,
                                       stored < 0 || stored > UINT32_MAX ? 0 : (uint32_t)stored,
                                       reg_uv, &count, &uv);
    if (*result != IDENTITY_WA_OK)
        return 0;
    char cbuf[16];
    snprintf(cbuf, sizeof(cbuf), "%u", count);
    const char *pc[] = {f->id, cbuf};
    return cc_db_query(req->db, req->pool, &q_factor_counter, pc, NULL);
}

int identity_webauthn_step(cc_req_t *req, const identity_user_t *u, const identity_factor_t *f,
                           const char *state_hash, bool activate,
                           const identity_webauthn_response_t *resp, json_t **options, int *result)
{
    *options = NULL;
    *result = IDENTITY_WA_OK;
    bool answered = resp && resp->client_data_json &&
                    (activate ? resp->attestation_object != NULL
                              : resp->authenticator_data != NULL && resp->signature != NULL);
    if (!answered)
        return activate ? creation_options(req, u, f, options)
                        : request_options(req, u, f, state_hash, options);
    return activate ? do_register(req, f, resp, result)
                    : do_assert(req, f, state_hash, resp, result);
}
