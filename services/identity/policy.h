/*
 * The identity service's pure rules (no I/O): the password policy of DOMAIN.md §2,
 * recovery-answer normalization, PKCE S256, security images and the authentication
 * state machine. Tested directly by tests/integration/identity_logic.c.
 */
#ifndef IDENTITY_POLICY_H
#define IDENTITY_POLICY_H

#include <stdbool.h>

#include "console/json.h"
#include "console/mem.h"

/** Flaws of a password (bit set); 0 = acceptable. */
enum {
    IDENTITY_PW_TOO_SHORT = 1 << 0,    /* fewer than 8 characters */
    IDENTITY_PW_NO_LOWER = 1 << 1,     /* no lower-case letter */
    IDENTITY_PW_NO_UPPER = 1 << 2,     /* no upper-case letter */
    IDENTITY_PW_NO_DIGIT = 1 << 3,     /* no digit */
    IDENTITY_PW_HAS_USERNAME = 1 << 4, /* contains the username or a part of it */
    IDENTITY_PW_COMMON = 1 << 5,       /* on the list of common passwords */
    IDENTITY_PW_TOO_LONG = 1 << 6,     /* more than 128 bytes */
};

/** The flaws of password for this username (both UTF-8). */
unsigned identity_password_flaws(const char *password, const char *username);
/** Adds one validator error per flaw, under field. */
void identity_password_report(cc_validator_t *v, const char *field, unsigned flaws);

/**
 * A recovery answer as it is hashed: trimmed, inner white space collapsed to one space,
 * ASCII letters lower-cased (pool memory).
 */
char *identity_recovery_normalize(cc_pool_t *pool, const char *answer);

/** True when challenge has the shape of an S256 code_challenge (43 base64url chars). */
bool identity_pkce_challenge_valid(const char *challenge);
/** True when verifier is a valid RFC 7636 verifier whose S256 equals challenge. */
bool identity_pkce_s256_matches(const char *verifier, const char *challenge);

/** True when id names an image of the built-in security-image set. */
bool identity_security_image_valid(const char *id);
/** The built-in set (NULL-ended), for the pages and the API description. */
extern const char *const identity_security_images[];

/** Authentication transaction states (API.md `status`). */
#define IDENTITY_MFA_ENROLL "MFA_ENROLL"
#define IDENTITY_MFA_REQUIRED "MFA_REQUIRED"
#define IDENTITY_SUCCESS "SUCCESS"

/** Steps a state_token may take (the state machine's events). */
typedef enum identity_authn_event {
    IDENTITY_EV_ENROLL,   /* POST /authn/factors */
    IDENTITY_EV_ACTIVATE, /* POST /authn/factors/{id}/activate */
    IDENTITY_EV_VERIFY,   /* POST /authn/factors/{id}/verify */
} identity_authn_event_t;

/** True when event may happen in transaction state status. */
bool identity_authn_allows(const char *status, identity_authn_event_t event);
/** The state after a correct password: MFA_REQUIRED when an active factor exists. */
const char *identity_authn_after_password(bool has_active_factor);

/** The acr of a sign-in with a second factor, and of one without (discovery lists both). */
#define IDENTITY_ACR_MFA "urn:console:loa:mfa"
#define IDENTITY_ACR_1FA "urn:console:loa:1fa"

/**
 * True when an authorization request's acr_values (space-separated, may be NULL) asks for
 * the MFA level: a session or a remembered browser without a fresh second factor does not
 * do, the person verifies one.
 */
bool identity_acr_wants_mfa(const char *acr_values);

/** Factor types known to the schema, and whether this build can enrol/verify each. */
bool identity_factor_type_known(const char *type);
bool identity_factor_type_supported(const char *type);
/** Turns the sms and voice types on (a provider is configured); at start, before threads. */
void identity_factor_phone_enable(bool on);

#endif
