/*
 * The identity service's internal interfaces: signing keys, the store (SQL) and the
 * handlers. Only this service includes this header.
 */
#ifndef IDENTITY_H
#define IDENTITY_H

#include <pthread.h>

#include "console/json.h"
#include "console/outbox.h"
#include "console/service.h"

/** The signing key in use and the published key set. */
typedef struct identity_keys {
    pthread_rwlock_t lock;
    char *kid;       /* active key */
    char *priv_pem;  /* active private key (PEM), memory only */
    char *jwks_json; /* {"keys": [...]}: active + retired keys not yet expired */
} identity_keys_t;

/* argon2id costs of passwords and recovery answers (~100 ms per hash on the reference
 * machine, docs/performance.md); the PHC string records them per hash. */
#define IDENTITY_ARGON2_T 10u
#define IDENTITY_ARGON2_M_KIB 19456u
#define IDENTITY_ARGON2_P 1u

typedef struct identity_app {
    cc_service_t *svc;
    identity_keys_t keys;
    int64_t rotation_days;
    cc_outbox_consumer_t *users_events; /* users.outbox: user.created -> activation mail */
} identity_app_t;

/**
 * Loads the signing keys, generating the first one (or a successor when the active key
 * is older than rotation_days) under an advisory lock, so replicas agree. Also loads
 * the public set into svc->jwks so this service verifies its own tokens without HTTP.
 */
int identity_keys_init(identity_app_t *app, cc_db_t *db);
void identity_keys_dispose(identity_keys_t *keys);

/** An OAuth client row. Strings in the pool. */
typedef struct identity_client {
    const char *id, *client_id, *name, *kind, *secret_hash, *tenant_id, *msp_id, *role;
    json_t *scopes;                           /* array of strings, on the pool */
    json_t *grant_types;                      /* array of strings, on the pool */
    json_t *redirect_uris, *post_logout_uris; /* arrays of strings, on the pool */
    bool revoked;
} identity_client_t;

/** Finds a client by client_id (system scope; one round trip). 0, CC_ENOENT or a db error. */
int identity_store_client_by_client_id(cc_db_t *db, cc_pool_t *pool, const char *client_id,
                                       identity_client_t *out);
/** Finds a client by its id (the sub of its tokens) within the caller's scope. */
int identity_store_client_by_id(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope,
                                const char *id, identity_client_t *out);

/** What identity reads about a user (users.sign_in_profiles). Strings in the pool. */
typedef struct identity_user {
    const char *id, *tenant_id, *msp_id, *username, *email, *first_name, *last_name, *language,
        *time_zone, *status;
} identity_user_t;

/** A user by username (case-insensitive) or by id, in the open transaction (system scope). */
int identity_store_user_by_username(cc_db_t *db, cc_pool_t *pool, const char *username,
                                    identity_user_t *out);
int identity_store_user_by_id(cc_db_t *db, cc_pool_t *pool, const char *id, identity_user_t *out);
/**
 * Whether the user's home tenant and every ancestor are active (tenants.tenants status).
 * The one place to switch to tenants.tenant_tree once it exists. *active false when the
 * tenant is unknown.
 */
int identity_store_tenant_active(cc_db_t *db, cc_pool_t *pool, const char *tenant_id, bool *active);

/* ---- shared helpers (util.c) ---- */

/** A hosted page's parameter: of the query, else of the posted form (urlencoded, valid
 * UTF-8); NULL when absent, repeated or unreadable. */
const char *identity_page_param(cc_req_t *req, const char *name);

/** The system scope: identity's own tables are reached only by its trusted code. */
extern const cc_scope_t identity_system_scope;

/** Opens a system-scope transaction on req->db; answers the problem itself on failure. */
bool identity_begin(cc_req_t *req);
/** Commits; answers the problem itself on failure. */
bool identity_commit(cc_req_t *req);

/** A new 256-bit secret token (base64url; caller frees) and its SHA-256 hex digest. */
char *identity_secret_new(char digest[65]);
/** SHA-256 hex of a token as it is stored. */
void identity_secret_digest(const char *token, char digest[65]);

/** Signs claims (borrowed) with the active key; typ NULL = "JWT". Caller frees *out. */
int identity_sign(identity_app_t *app, const char *typ, json_t *claims, char **out);

/**
 * RFC 6749 §5.2 error: {error, error_description} as application/json, plus the problem
 * members, with Cache-Control: no-store. basic adds the Basic challenge to a 401.
 */
void identity_oauth_error(cc_req_t *req, cc_error_id_t id, const char *error, const char *desc,
                          bool basic);

/**
 * Reads an application/x-www-form-urlencoded body: vals[i] gets names[i] (NULL-ended) or
 * NULL. Answers invalid_request itself (oauth: RFC 6749 shape) and returns false on a
 * wrong content type, invalid UTF-8 or a repeated/malformed parameter.
 */
bool identity_form(cc_req_t *req, const char *const *names, const char **vals);

/**
 * Client authentication at the token, revocation and introspection endpoints:
 * client_secret_basic, client_secret_post, or none for public clients (client_id only).
 * form_id/form_secret are the form's client_id and client_secret. On failure answers
 * 401 invalid_client (or 400 for two methods at once) and returns false.
 */
bool identity_client_auth(cc_req_t *req, const char *form_id, const char *form_secret,
                          bool allow_public, identity_client_t *out);

/**
 * Appends an audit record in the open transaction: action on user (target; its tenant),
 * details borrowed (may be NULL; never a secret). The actor is the caller's token when
 * there is one; sign-in steps have none (the user acts on themself before any token).
 */
int identity_audit(cc_req_t *req, const char *action, const char *user_id, const char *tenant_id,
                   const char *msp_id, json_t *details);

/** A tenant as the tenant-scoped admin endpoints see it (tenants.tenant_tree; pool strings). */
typedef struct identity_tenant {
    const char *id, *kind, *path, *status, *msp_id;
} identity_tenant_t;

/**
 * The tenant of the path's {id} for an administrator holding perm on it (read in system
 * scope, outside any transaction): 404 when the id is malformed, unknown or not visible to
 * the caller, 403 (forbidden as the detail) without perm. Answers and returns false then.
 */
bool identity_tenant_admin(cc_req_t *req, const char *perm, const char *forbidden,
                           identity_tenant_t *t);

/** True when the JSON array of strings holds s. */
bool identity_json_has(json_t *arr, const char *s);

/**
 * A notice or refusal page (escaped) in the brand's chrome (by login domain or the
 * sign-in's account) and the person's language, with the page security headers.
 */
void identity_html_page(cc_req_t *req, int status, int id, const char *title, const char *message);
/** Adds the security headers every HTML page and redirect of identity carries. */
void identity_page_headers(cc_req_t *req);
/** The same, also allowing the inline style whose CSP source (cc_brand_css_hash) is given. */
void identity_page_headers_style(cc_req_t *req, const char *style_src);
/** The same, also allowing the inline script whose CSP source is given (WebAuthn pages). */
void identity_page_headers_script(cc_req_t *req, const char *style_src, const char *script_src);
/** Answers 302 to location (copied). */
void identity_redirect(cc_req_t *req, const char *location);
/** A cookie's value (pool memory), or NULL. (pages.c and oauth.c still have own copies.) */
const char *identity_cookie_get(cc_req_t *req, const char *name);
/** Answers 303 See Other to location with the page headers (after a form post). */
void identity_see_other(cc_req_t *req, const char *location);

/** users.outbox consumer (events.c): "user.created" mails a staged user's activation link. */
int identity_on_users_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

/* ---- mail (mailer.c) ---- */

/** Mails the activation link (ja or en by user->language). Logs and returns an error. */
int identity_mail_activation(identity_app_t *app, cc_db_t *db, const identity_user_t *user,
                             const char *token);
/** Mails a password recovery link (1 hour). */
int identity_mail_recovery(identity_app_t *app, cc_db_t *db, const identity_user_t *user,
                           const char *token);
/** Mails a one-time code of the email factor. */
int identity_mail_code(identity_app_t *app, cc_db_t *db, const identity_user_t *user,
                       const char *to, const char *code);

/* pages.c: the hosted HTML pages */
void identity_page_login(cc_req_t *req);
void identity_page_login_post(cc_req_t *req);
void identity_page_mfa(cc_req_t *req);
void identity_page_mfa_post(cc_req_t *req);
void identity_page_enroll(cc_req_t *req);
void identity_page_enroll_post(cc_req_t *req);
void identity_page_activate(cc_req_t *req);
void identity_page_activate_post(cc_req_t *req);
void identity_page_forgot(cc_req_t *req);
void identity_page_forgot_post(cc_req_t *req);
void identity_page_reset(cc_req_t *req);
void identity_page_reset_post(cc_req_t *req);

/* handlers (routes in main.c) */
void identity_handle_discovery(cc_req_t *req);
void identity_handle_jwks(cc_req_t *req);
void identity_handle_me(cc_req_t *req);

/* oauth.c */
void identity_handle_token(cc_req_t *req);
void identity_handle_authorize(cc_req_t *req);
void identity_handle_userinfo(cc_req_t *req);
void identity_handle_revoke(cc_req_t *req);
void identity_handle_introspect(cc_req_t *req);
void identity_handle_logout(cc_req_t *req);
/* api_clients.c */
void identity_handle_api_client_create(cc_req_t *req);
void identity_handle_api_client_list(cc_req_t *req);
void identity_handle_api_client_delete(cc_req_t *req);
/* unlock.c */
void identity_handle_user_unlock(cc_req_t *req);
/**
 * Opens a system-scope transaction for an administrator's action on user id: 404 when the
 * id is malformed or the user's account is not visible to the caller, 403 (forbidden as
 * the detail) without users:manage there. Answers and returns false in those cases.
 */
bool identity_user_admin_begin(cc_req_t *req, const char *id, const char *forbidden,
                               const char **tenant_id, const char **msp_id);
/* impersonate.c */
void identity_handle_impersonate(cc_req_t *req);
/** The token endpoint's RFC 8693 grant for the same (answers in the token endpoint's form). */
void identity_token_exchange(cc_req_t *req, const char *subject_token, const char *subject_type,
                             const char *resource, const char *reason, const char *read_only);

/* federation.c: a tenant's upstream OpenID Provider (routes in main.c) */
void identity_handle_idp_get(cc_req_t *req);
void identity_handle_idp_put(cc_req_t *req);
void identity_handle_federation_callback(cc_req_t *req);
/**
 * Home-realm discovery on the login page: when login is an e-mail address of a domain an
 * enabled provider serves, answers the redirect to that upstream (cont: the authorization
 * request to continue, may be NULL) and returns true; false when the page goes on.
 */
bool identity_federation_discover(cc_req_t *req, const char *login, const char *cont);

/* ---- the authentication steps (authn.c), shared by the JSON API and the pages ---- */

/** The outcome of one step. Strings and JSON live in the request pool. */
typedef struct identity_authn_out {
    int db_rc;          /* != 0: a database error (answer with cc_res_db_error) */
    int err;            /* an API error id (cc_error_id_t), or -1 */
    const char *detail; /* a sentence for err */
    unsigned pw_flaws;  /* password policy flaws (policy.h) when err is validation_failed */
    const char *status; /* MFA_ENROLL, MFA_REQUIRED, LOCKED_OUT, MFA_CHALLENGE, SUCCESS */
    const char *state_token, *expires_at, *session_token;
    identity_user_t user;
    json_t *factors;                                            /* [{id, type}] */
    const char *factor_id, *factor_type, *secret, *otpauth_uri; /* an enrolment */
    json_t *webauthn;       /* WebAuthn creation (enrol) or request (challenge) options (pool) */
    const char *reason;     /* a refused WebAuthn response: which check (problem member) */
    json_t *ext;            /* more problem members for err (pool), or NULL */
    int64_t retry_after;    /* seconds, with rate_limited and sms_rate_limited */
    const char *deliver_to; /* where a fresh code goes after commit (e-mail or phone) */
    json_t *enroll;         /* [{type}] the user may enrol (policy and deployment; pool) */
    bool remember_allowed;  /* the policy lets this user's browser be remembered (pages) */
    int remember_days;      /* for how long, when remember_allowed */
} identity_authn_out_t;

/** What the hosted pages add to the password step. */
typedef struct identity_authn_opts {
    const char *remember_token; /* the browser's remembered-device cookie, or NULL */
    bool step_up; /* the relying party asks for a fresh second factor (acr_values or max_age) */
} identity_authn_opts_t;

/**
 * Username and password: MFA_REQUIRED, MFA_ENROLL or LOCKED_OUT (or an error); SUCCESS
 * with a session token (amr pwd) when the account's policy does not require a second
 * factor and the user has none it allows. o->factors: the active factors the policy allows.
 */
void identity_authn_password(cc_req_t *req, const char *username, const char *password,
                             identity_authn_out_t *o);
/**
 * The same with the pages' options: a remembered browser of this user (remember-device
 * allowed by the policy, no step-up asked) gets SUCCESS with amr pwd+rmb instead of
 * MFA_REQUIRED; step_up refuses both that and the password-only sign-in of a policy that
 * does not require MFA (the user verifies a factor, or enrols one).
 */
void identity_authn_password_with(cc_req_t *req, const char *username, const char *password,
                                  const identity_authn_opts_t *opts, identity_authn_out_t *o);
/**
 * What the pages offer during a sign-in (enroll: MFA_ENROLL, else MFA_REQUIRED), read-only:
 * o->factors [{id, type, email?, phone?}] active and allowed, o->enroll, o->remember_*.
 */
void identity_authn_choices(cc_req_t *req, const char *state_token, bool enroll,
                            identity_authn_out_t *o);
/** The activation link: sets the password and the recovery question; MFA_ENROLL. */
void identity_authn_activate(cc_req_t *req, const char *token, const char *password,
                             const char *question, const char *answer, const char *image,
                             identity_authn_out_t *o);
/**
 * Enrols a factor of type during MFA_ENROLL (TOTP: secret and otpauth URI; sms and voice:
 * phone, E.164, gets the first code).
 */
void identity_authn_enroll(cc_req_t *req, const char *state_token, const char *type,
                           const char *phone, identity_authn_out_t *o);
/**
 * Activates (activate true, during MFA_ENROLL) or verifies (during MFA_REQUIRED) a factor
 * with a pass code; SUCCESS with a session token. factor_id NULL picks the user's newest
 * TOTP factor in the needed state. code NULL on verify sends an email factor's code
 * (MFA_CHALLENGE).
 */
void identity_authn_factor(cc_req_t *req, const char *state_token, const char *factor_id,
                           const char *code, bool activate, identity_authn_out_t *o);

/** A WebAuthn authenticator response (base64url members as the browser gives them). */
typedef struct identity_webauthn_response {
    const char *client_data_json, *attestation_object, *authenticator_data, *signature;
} identity_webauthn_response_t;

/**
 * identity_authn_factor for any factor type: a webauthn factor without a response gets
 * its options (MFA_CHALLENGE on verify, PENDING_ACTIVATION on activate, o->webauthn),
 * with one it is verified like a code (refusals count as wrong codes).
 */
void identity_authn_factor_with(cc_req_t *req, const char *state_token, const char *factor_id,
                                const char *code, const identity_webauthn_response_t *wa,
                                bool activate, identity_authn_out_t *o);

/**
 * Forgotten password, step 1: mails a recovery link (1 hour) when username names an
 * active user; the outcome is the same either way (no enumeration).
 */
void identity_recovery_start(cc_req_t *req, const char *username, identity_authn_out_t *o);
/** Step 2: the recovery question (and security image) of a live link. */
void identity_recovery_question(cc_req_t *req, const char *token, const char **question,
                                const char **image, identity_authn_out_t *o);
/**
 * Step 3: the link AND the answer set a new password; the outcome is MFA_REQUIRED (or
 * MFA_ENROLL): the second factor is still needed to sign in.
 */
void identity_recovery_reset(cc_req_t *req, const char *token, const char *answer,
                             const char *password, identity_authn_out_t *o);

/* ---- factors, shared by the authentication API and /api/v1/me/factors (authn.c) ---- */

/** A factor row (pool strings). */
typedef struct identity_factor {
    const char *id, *type, *status, *sealed, *email, *phone;
    int64_t last_step;
} identity_factor_t;

/** Loads (FOR UPDATE) a factor of user_id in the open transaction; *found. */
int identity_factor_load(cc_req_t *req, const char *id, const char *user_id, identity_factor_t *f,
                         bool *found);
/**
 * The phone_number member of an enrolment body: required (E.164) for sms and voice,
 * refused for the other types. NULL when absent or invalid (v records why).
 */
const char *identity_v_phone(cc_validator_t *v, json_t *body, const char *type);
/** Answers o's error (o->err >= 0 or o->db_rc != 0) as a problem document. */
void identity_answer_outcome(cc_req_t *req, const identity_authn_out_t *o);
/** Checks a pass code (TOTP with replay refusal, or an e-mailed code); *ok, TOTP *step. */
int identity_factor_check(cc_req_t *req, const identity_factor_t *f, const char *code, bool *ok,
                          int64_t *step);
/**
 * Creates a pending factor of type for u in the open transaction: o->factor_id, and for
 * TOTP o->secret and o->otpauth_uri; for email, sms and voice a code in code and its
 * destination in o->deliver_to (send it after commit with identity_code_deliver). phone:
 * the E.164 number of sms and voice (else NULL). When the phone rate limits refuse,
 * creates nothing, sets o->err (sms_rate_limited, o->ext, o->retry_after) and returns 0.
 */
int identity_factor_create(cc_req_t *req, const identity_user_t *u, const char *type,
                           const char *phone, identity_authn_out_t *o, char code[7]);
/**
 * Sends a fresh code of a factor of type (email, sms, voice) to `to`, after commit. The
 * e-mail is best effort (0 always, as before); a phone provider's failure sets o->err
 * (sms_delivery_failed, o->ext with factor_id) and returns its error.
 */
int identity_code_deliver(cc_req_t *req, const identity_user_t *u, const char *type, const char *to,
                          const char *code, identity_authn_out_t *o);
/** Counts a failed password or code towards the lockout window; *locked when it locks. */
int identity_count_failure(cc_req_t *req, const identity_user_t *u, bool *locked);
/** Whether the grant (token family) of a user access token is still live. */
int identity_grant_live(cc_req_t *req, const char *grant_id, const char **client_id, bool *live);

/* ---- the second-factor policy of an account (mfa_policy.c) ---- */

#define IDENTITY_REMEMBER_DAYS_DEFAULT 30

/** An effective policy (pool memory). */
typedef struct identity_mfa_policy {
    const char *source_tenant_id; /* whose row applies: the tenant's, its MSP's; NULL: default */
    json_t *allowed;              /* array of factor types (pool) */
    bool mfa_required, remember_device;
    int remember_device_days; /* 1..90, how long a remembered browser skips the factor */
    int version;
    const char *updated_at, *updated_by;
} identity_mfa_policy_t;

/** The effective policy of tenant_id in the open (system-scope) transaction. */
int identity_mfa_policy_for(cc_db_t *db, cc_pool_t *pool, const char *tenant_id,
                            identity_mfa_policy_t *p);
/** True when the policy allows enrolling and signing in with a factor of type. */
bool identity_mfa_policy_allows(const identity_mfa_policy_t *p, const char *type);
void identity_handle_mfa_policy_get(cc_req_t *req);
void identity_handle_mfa_policy_put(cc_req_t *req);
void identity_handle_mfa_policy_delete(cc_req_t *req);
void identity_handle_mfa_enrollment(cc_req_t *req);

/* ---- remembered browsers (remember.c) ---- */

/**
 * Whether remember-device applies to u under pol: the policy allows it and u is no MSP or
 * platform staff (identity_user_msp_staff). In the open transaction.
 */
int identity_remember_applies(cc_req_t *req, const identity_user_t *u,
                              const identity_mfa_policy_t *pol, bool *applies);
/**
 * The remembered device of token for u (live, bound to u, made after the password was last
 * set), in the open transaction: *device_id (pool) or NULL. Records its use.
 */
int identity_remember_find(cc_req_t *req, const identity_user_t *u, const char *token,
                           const char **device_id);
/**
 * After a second factor verified on the pages: remembers this browser for user_id when the
 * policy still allows it (own transaction, audited user.device_remembered). *token: new
 * (caller frees) or NULL when not allowed; *days its lifetime.
 */
int identity_remember_create(cc_req_t *req, const char *user_id, const char *label, char **token,
                             int *days);
/**
 * Forgets every remembered browser of user_id in the open transaction (password changed,
 * factors reset); audits user.remembered_devices_revoked with reason when there were any.
 */
int identity_remember_forget(cc_req_t *req, const identity_user_t *u, const char *reason);
/** The same without a request (the users.outbox consumer); no audit. */
extern const cc_stmt_t identity_q_remembered_forget; /* user_id */
void identity_handle_me_remembered_devices(cc_req_t *req);
void identity_handle_me_remembered_devices_delete(cc_req_t *req);
void identity_handle_me_remembered_device_delete(cc_req_t *req);

/**
 * MSP staff (homed in an MSP or the platform, or holding a role of an MSP kind or on an
 * MSP or the platform), in the open transaction.
 */
int identity_user_msp_staff(cc_db_t *db, cc_pool_t *pool, const identity_user_t *u, bool *staff);

/* ---- WebAuthn storage and options (webauthn_api.c) ---- */

/** Reads the relying party settings (CONSOLE_WEBAUTHN_*); at start. 0 or CC_EINVAL. */
int identity_webauthn_init(const cc_env_t *env);
void identity_webauthn_dispose(void);
/** The user verification preference sent to browsers ("required", "preferred", ...). */
const char *identity_webauthn_uv(void);

/**
 * A WebAuthn step of factor f (loaded FOR UPDATE in the open transaction). Without a
 * response (resp NULL, or its data members NULL) issues a new challenge and sets
 * *options: creation options when activate, request options otherwise (state_hash ties
 * them to a sign-in). With one, takes the outstanding challenge and verifies: on success
 * stores the credential (activate) or its new counter, else *result says why.
 */
int identity_webauthn_step(cc_req_t *req, const identity_user_t *u, const identity_factor_t *f,
                           const char *state_hash, bool activate,
                           const identity_webauthn_response_t *resp, json_t **options, int *result);

/* ---- lost factors (recovery_codes.c) ---- */

/** HMAC-SHA256 (hex) under the master key of a recovery code of user_id (normalized). */
void identity_recovery_code_digest(cc_req_t *req, const char *user_id, const char *code,
                                   char out[65]);
void identity_handle_me_recovery_codes(cc_req_t *req);
void identity_handle_me_recovery_codes_create(cc_req_t *req);
void identity_handle_user_factors_reset(cc_req_t *req);
/** MFA_REQUIRED: a one-time recovery code instead of a factor; SUCCESS (authn.c). */
void identity_authn_recovery_code(cc_req_t *req, const char *state_token, const char *code,
                                  identity_authn_out_t *o);
void identity_handle_authn_recovery_code(cc_req_t *req);

/**
 * The user behind a live user access token, in an open system-scope transaction; answers
 * and returns false otherwise. recent: the change needs a sign-in within 15 minutes.
 */
bool identity_me_begin(cc_req_t *req, bool recent, identity_user_t *u);

/* me.c: the signed-in user's own factors */
void identity_handle_me_factors(cc_req_t *req);
void identity_handle_me_factor_enroll(cc_req_t *req);
void identity_handle_me_factor_activate(cc_req_t *req);
void identity_handle_me_factor_delete(cc_req_t *req);

/* authn.c */
void identity_handle_authn(cc_req_t *req);
void identity_handle_recovery_password(cc_req_t *req);
void identity_handle_recovery_verify(cc_req_t *req);
void identity_handle_recovery_reset(cc_req_t *req);
void identity_handle_authn_activate(cc_req_t *req);
void identity_handle_authn_factor_enroll(cc_req_t *req);
void identity_handle_authn_factor_activate(cc_req_t *req);
void identity_handle_authn_factor_verify(cc_req_t *req);

#endif
