/*
 * The licensing service's internal interfaces: the signing keys (Ed25519 licenses and
 * HMAC product keys), the check-in state machine, and the handlers. Only this service
 * (and its tests) include this header.
 */
#ifndef LICENSING_H
#define LICENSING_H

#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "console/http.h"
#include "console/json.h"
#include "console/service.h"

/* ---- sign.c: keys, license documents (JWS, EdDSA), request files, product keys ---- */

/** A published public key: verifies the licenses its private half signed. */
typedef struct lic_pubkey {
    char *kid;
    EVP_PKEY *pub;
    char *public_b64; /* raw 32-byte public key, base64url */
} lic_pubkey_t;

/**
 * The service's signing material (read-only once built; the service swaps a whole new
 * one in when the keys rotate): the active key, which signs, and every published key,
 * which verify (the active one first, then retired keys still in their overlap).
 */
typedef struct lic_keys {
    char *kid;              /* the active key */
    EVP_PKEY *priv;         /* its Ed25519 private key */
    EVP_PKEY *pub;          /* its public half */
    char *public_b64;       /* raw 32-byte public key, base64url */
    uint8_t key_secret[32]; /* HMAC key of product keys (the same across rotations) */
    lic_pubkey_t *published;
    size_t npublished;
    char *generation; /* the published kids, newest first, the active one marked '*' */
} lic_keys_t;

/** When keys rotate: rotation_days (0 = only when retired by command) and how long a
 * retired key stays published (overlap_days; 0 = 400). */
typedef struct lic_key_policy {
    int rotation_days, overlap_days;
} lic_key_policy_t;

/**
 * Loads the published keys from signing_keys (system scope, under an advisory lock),
 * generating and sealing a key (master key, aad "licensing.signing_keys:<kid>:private" and
 * ":hmac") when there is no active one (first start, or the active one was retired by
 * consolectl rotate-license-key) and rotating the active one when policy says it is due.
 * A new key carries the HMAC secret of the keys before it. k is overwritten. Returns 0 or
 * an error (k then empty).
 */
int lic_keys_init(lic_keys_t *k, const cc_master_key_t *master, cc_db_t *db,
                  const lic_key_policy_t *policy);
/**
 * One cheap read (no unsealing, own system-scope transaction): *changed when the
 * published set differs from k's or the active key is missing or due for rotation, i.e.
 * when lic_keys_init should run again. Returns 0 or a cc_db_* error.
 */
int lic_keys_changed(cc_db_t *db, cc_pool_t *pool, const lic_keys_t *k,
                     const lic_key_policy_t *policy, bool *changed);
/** Retires the active key (what consolectl rotate-license-key does, and tests); *retired
 * is how many keys were. The service makes the successor on its next look. */
int lic_keys_retire_active(cc_db_t *db, cc_pool_t *pool, int *retired);
void lic_keys_dispose(lic_keys_t *k);
/** Builds keys from a raw 32-byte private key and an HMAC secret (tests). */
int lic_keys_from_raw(lic_keys_t *k, const char *kid, const uint8_t priv[32],
                      const uint8_t secret[32]);

/** Signs payload (borrowed) as a compact JWS {"alg":"EdDSA","typ":"license+jws","kid"}.
 * Caller frees. */
char *lic_sign(const lic_keys_t *k, json_t *payload);
/**
 * Verifies a compact JWS made by lic_sign against the published key its kid names and alg
 * EdDSA; on success *payload is a new reference. Returns 0, CC_EINVAL (malformed) or
 * CC_EAUTH (signature does not verify, an unknown or retired kid, another algorithm).
 */
int lic_verify(const lic_keys_t *k, const char *jws, json_t **payload);
/** The JWKS document of the published keys, the active one first:
 * {"keys":[{kty:OKP, crv:Ed25519, x, kid, use:sig, alg:EdDSA}, …]}. New reference. */
json_t *lic_jwks(const lic_keys_t *k);

/**
 * An offline request file, as a product writes it: {"format": "console-license-request/1",
 * "request": base64url(JSON of the activation fields), "mac": base64url(HMAC-SHA256 with
 * the fulfillment number as key over the request string)}. lic_request_open checks the
 * shape and decodes the request (*request a new reference); the caller checks the MAC
 * with lic_request_mac_ok once it knows the order. Returns 0 or CC_EINVAL.
 */
int lic_request_open(json_t *file, json_t **request, const char **request_b64,
                     const char **mac_b64);
bool lic_request_mac_ok(const char *fulfillment_number, const char *request_b64,
                        const char *mac_b64);
/** Makes a request file for a request object (tests, and docs/licensing.md's example). */
json_t *lic_request_make(const char *fulfillment_number, json_t *request);
/**
 * The offline deactivation request file (FAQ 3.11: an offline activation is released the
 * way it was made): the same envelope with format "console-license-deactivation/1" and a
 * request {activation_id, order_id, fingerprint} the product writes when it drops its
 * license. Same contract as lic_request_open / lic_request_make.
 */
int lic_deactivation_open(json_t *file, json_t **request, const char **request_b64,
                          const char **mac_b64);
json_t *lic_deactivation_make(const char *fulfillment_number, json_t *request);

/** Product keys: 25 characters in five dash-separated groups of five (29 with the dashes). */
#define LIC_KEY_LEN 29
/** Writes the key of (serial, product, version major) into out. */
void lic_product_key(const lic_keys_t *k, uint32_t serial, const char *product, int major,
                     char out[LIC_KEY_LEN + 1]);
/**
 * Checks a key's checksum character and MAC; on success gives its serial and version.
 * Returns 0, CC_EINVAL (malformed or checksum: a typo) or CC_EAUTH (MAC: not ours).
 */
int lic_product_key_check(const lic_keys_t *k, const char *key, uint32_t *serial, int *major);
/** True when the key was made for product (its first two SHA-256 bytes). */
bool lic_product_key_for(const char *key, const char *product);

/* ---- state.c: the check-in state machine ---- */

#define LIC_DAY 86400LL
#define LIC_CHECK_IN_DAYS 14 /* silence before grace */
#define LIC_GRACE_DAYS 30    /* grace before suspension */
#define LIC_TRIAL_DAYS 30
#define LIC_LINK_HOURS 72

typedef enum { LIC_ACTIVE, LIC_GRACE, LIC_SUSPENDED } lic_state_t;

/** The state of an online activation last heard from at last (epoch s) at now. */
lic_state_t lic_state_at(int64_t last, int64_t now);
const char *lic_state_name(lic_state_t s);
/**
 * The messages a product shows at now when last heard from at last (a new array):
 * connection_lost (warning, every 2-3 days while silent), license_expires (error, from
 * day 5, with the date the 14 days end), license_expired (warning during grace, with that
 * date and the suspension date), license_suspended (error).
 */
json_t *lic_messages(int64_t last, int64_t now);
/**
 * The message of an online activation whose account (or one above it) is suspended or
 * deleted (status "suspended" | "deleted"): account_suspended or account_deleted (error).
 * A new object. The license is suspended until the account is resumed or restored.
 */
json_t *lic_account_message(const char *status);
/** RFC 3339 of an epoch second, in pool memory. */
const char *lic_time(cc_pool_t *pool, int64_t t);

/* ---- the service ---- */

typedef struct lic_app {
    cc_service_t *svc;
    /* the current keys (refcounted: a request holds the ones it started with while a
     * rotation swaps new ones in) */
    pthread_mutex_t keys_lock;
    struct lic_keyring *ring;
    lic_key_policy_t key_policy;
    struct cc_outbox_consumer *tenants_events;
} lic_app_t;

/** Loads the keys at start (lic_keys_init with the app's policy). Returns 0 or an error. */
int lic_app_keys_start(lic_app_t *app, cc_db_t *db);
void lic_app_keys_stop(lic_app_t *app);
/**
 * The keys for this request, after one cheap look at signing_keys (lic_keys_changed):
 * when they rotated (by command, by age, or a retired key left its overlap) the new set
 * is loaded and swapped in first. Call outside a transaction on req->db. The reference
 * lasts until the request ends. Never NULL after lic_app_keys_start (on a failed look the
 * current keys are used).
 */
const lic_keys_t *lic_req_keys(cc_req_t *req);

/* failed order proofs in 15 minutes before 429 too_many_attempts: per order number and
 * client address, and per order number whatever the address (so that one client cannot
 * lock an order out for everyone, and many clients cannot guess at leisure) */
#define LIC_PROOF_FAILURES 10
#define LIC_PROOF_FAILURES_ORDER 100

/** An activation with its order's identifiers. Strings in the request pool. */
typedef struct lic_activation {
    const char *id, *order_ref, *order_number, *fulfillment_number, *method, *status, *email,
        *computer_name, *msp_id, *tenant_path, *secret_hash, *created_at, *registered_at,
        *tenant_id,      /* the account owning the order (its brand dresses the mail) */
        *language;       /* the order's mail language ("en" | "ja"), NULL: the brand's */
    json_t *fingerprint; /* registered on the pool */
    int64_t last_check_in, now;
} lic_activation_t;

/* ---- common.c ---- */

/** licensing_now() as epoch seconds. */
int lic_now(cc_db_t *db, cc_pool_t *pool, int64_t *now);
/**
 * Inside the open system-scope transaction: true (answered 429, rolled back) when the
 * order number has had too many failed proofs in the last 15 minutes.
 */
bool lic_proof_blocked(cc_req_t *req, const char *order_number);
/** Rolls back, counts a failed proof for the order number and answers 404 order_not_found. */
void lic_proof_failed(cc_req_t *req, const char *order_number);
/** The signed payload of an activation's license (new reference), or NULL with *rc. */
json_t *lic_license_payload(cc_req_t *req, const lic_activation_t *a, int64_t now, int *rc);
/**
 * A licensing mail in English ([0]) and Japanese ([1]): subject (without the product name,
 * which the brand prefixes), body (plain text, paragraphs separated by a blank line; it is
 * escaped for the HTML part) and an optional link with its text.
 */
typedef struct lic_mail {
    const char *subject[2];
    const char *body[2];
    const char *link; /* NULL: none */
    const char *link_text[2];
} lic_mail_t;
/**
 * Sends m, wearing the brand of tenant_id (the account owning the order: sender name,
 * Reply-To its support address, its product name before subject), in language (the
 * order's: "ja" or "en"; NULL or another: the brand's default language), HTML and plain
 * text, UTF-8. Call after the commit (the brand is read on its own). Returns 0, CC_EINVAL
 * or CC_EIO.
 */
int lic_send_mail(cc_req_t *req, const char *tenant_id, const char *language, const char *to,
                  const lic_mail_t *m);
/**
 * Inside the open transaction: true (answered 403 account_inactive, or the database error,
 * and rolled back) when the account at tenant_path or one above it is suspended or
 * deleted: its products do not activate (and its licenses are not added or approved).
 */
bool lic_account_blocked(cc_req_t *req, const char *tenant_path);
/** Inside the open transaction: *status "suspended" or "deleted" (pool memory) when the
 * account at tenant_path or one above it is, else NULL. Returns 0 or a cc_db_* error. */
int lic_account_inactive(cc_req_t *req, const char *tenant_path, const char **status);
/** The platform's licensing address (approvals of orders without an end-user e-mail). */
const char *lic_platform_address(cc_req_t *req);
#define LIC_PERM_MANAGE "licensing:manage"
#define LIC_PERM_READ "licensing:read"
/** True when the caller may read licensing at path: licensing:read or licensing:manage. */
bool lic_can_read(cc_req_t *req, const char *path);
/**
 * The account whose licensing view a list shows, as the other services' lists do: the
 * account tenant_id (NULL: the caller's home account), else, when only order_number is
 * given, that order's account. Answers 404 not_found when the caller cannot see the
 * account (or the order), 403 forbidden when it may not read licensing there, and returns
 * false then; else *path (pool memory) is the account's path.
 */
bool lic_view_resolve(cc_req_t *req, const char *tenant_id, const char *order_number,
                      const char **path);
/**
 * Reads ?limit and ?cursor for a keyset-paged list whose cursor holds nkeys strings and
 * bind (lic_page_bind: the list and its filters, so a cursor works only with the filters
 * that issued it). after[nkeys] gets the keys (NULL without cursor). Answers 400 and
 * returns false on a bad value.
 */
bool lic_page(cc_req_t *req, const char *bind, size_t nkeys, int *limit, const char **after);
/** A short digest of a list's name and filters (NULL filters allowed). Pool memory. */
const char *lic_page_bind(cc_req_t *req, const char *list, const char *const *filters, size_t n);
/** Answers {items, next_cursor, total}; steals items and next_keys (NULL: last page). */
void lic_res_page(cc_req_t *req, json_t *items, json_t *next_keys, const char *bind,
                  long long total);
/** An audit record in the open transaction (details stolen). */
int lic_audit(cc_req_t *req, const char *action, const char *type, const char *id,
              const char *msp_id, json_t *details);

/* ---- nodes.c: per-node license use marks (FAQ 3.12) ---- */

/** The optional "nodes" array of a check-in (borrowed), or NULL; errors into v. */
json_t *lic_nodes_parse(cc_validator_t *v, json_t *body);
/**
 * Inside the check-in's transaction: mirrors the reported marks (NULL: unchanged) and adds
 * released_nodes, nodes_in_use, nodes_licensed (and a nodes_over_licensed message) to out,
 * the check-in answer with its license_payload.
 */
int lic_nodes_sync(cc_req_t *req, const lic_activation_t *a, json_t *nodes, json_t *out);

/* ---- events.c ---- */

struct cc_outbox_event;
/** The consumer of the tenants outbox: tenant.purged removes the account's licensing. */
int lic_on_tenants_event(cc_db_t *db, cc_pool_t *pool, const struct cc_outbox_event *ev, void *arg);

/* ---- handlers (routes.c) ---- */
extern const cc_route_t lic_routes[];
extern const size_t lic_nroutes;

void lic_handle_activate(cc_req_t *req);
void lic_handle_offline_request(cc_req_t *req);
void lic_handle_offline_deactivation(cc_req_t *req);
void lic_handle_confirm_form(cc_req_t *req);
void lic_handle_check_in(cc_req_t *req);
void lic_handle_deactivate(cc_req_t *req);
void lic_handle_email_change(cc_req_t *req);
void lic_handle_approval(cc_req_t *req);
void lic_handle_confirm(cc_req_t *req);
void lic_handle_approve_page(cc_req_t *req);
void lic_handle_approve_form(cc_req_t *req);
void lic_handle_trial(cc_req_t *req);
void lic_handle_public_key(cc_req_t *req);
void lic_handle_order_create(cc_req_t *req);
void lic_handle_order_list(cc_req_t *req);
void lic_handle_order_get(cc_req_t *req);
void lic_handle_pool_list(cc_req_t *req);
void lic_handle_pool_create(cc_req_t *req);
void lic_handle_pool_patch(cc_req_t *req);
void lic_handle_pool_release(cc_req_t *req);
void lic_handle_activation_list(cc_req_t *req);
void lic_handle_usage(cc_req_t *req);
void lic_handle_nodes_list(cc_req_t *req);
void lic_handle_nodes_release(cc_req_t *req);
void lic_handle_keys_create(cc_req_t *req);
void lic_handle_keys_list(cc_req_t *req);
void lic_handle_keys_verify(cc_req_t *req);
/** Releases an activation's licenses to Default and sets its status (deactivated or
 * refused), voiding its links; inside the open transaction. */
int lic_order_method_reset(cc_req_t *req, const char *order_ref);
void lic_handle_add_order(cc_req_t *req);
int lic_release_activation(cc_req_t *req, const char *id, const char *order_ref, const char *status,
                           long long *released);

#endif
