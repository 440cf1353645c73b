/*
 * WebAuthn (Web Authentication Level 2) relying-party ceremonies, without I/O: the
 * registration (attestation) and authentication (assertion) checks of §7.1 and §7.2.
 * webauthn.c verifies; webauthn_api.c stores challenges and credentials and wires the
 * factor type "webauthn" into the authentication API. Tested directly by
 * tests/unit/test_webauthn.c and over HTTP by tests/e2e/webauthn.test.mjs.
 */
#ifndef IDENTITY_WEBAUTHN_H
#define IDENTITY_WEBAUTHN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** What the relying party expects. */
typedef struct identity_webauthn_rp {
    const char *rp_id;          /* a registrable domain ("console.example", "localhost") */
    const char *const *origins; /* NULL-ended list of exact origins ("https://console.example") */
    bool require_uv;            /* every ceremony must carry the UV flag */
} identity_webauthn_rp_t;

/** The outcome of a ceremony check (the first check that failed). */
typedef enum identity_webauthn_result {
    IDENTITY_WA_OK = 0,
    IDENTITY_WA_MALFORMED,         /* not decodable: JSON, CBOR, authenticator data */
    IDENTITY_WA_TYPE,              /* clientData.type is not webauthn.create / webauthn.get */
    IDENTITY_WA_CHALLENGE,         /* clientData.challenge is not the one issued */
    IDENTITY_WA_ORIGIN,            /* clientData.origin not allowed, or crossOrigin */
    IDENTITY_WA_RP_ID,             /* rpIdHash is not SHA-256 of the RP ID */
    IDENTITY_WA_USER_PRESENCE,     /* UP flag clear */
    IDENTITY_WA_USER_VERIFICATION, /* UV required but clear */
    IDENTITY_WA_ALGORITHM,         /* a key algorithm other than ES256, RS256, EdDSA */
    IDENTITY_WA_ATTESTATION,       /* attestation format unsupported or its statement invalid */
    IDENTITY_WA_SIGNATURE,         /* the signature does not verify */
    IDENTITY_WA_COUNTER,           /* the signature counter did not grow: a cloned authenticator */
    IDENTITY_WA_CREDENTIAL_TAKEN,  /* registration: the credential id is already registered */
} identity_webauthn_result_t;

/** A short stable name of a result ("challenge", "origin", ...). */
const char *identity_webauthn_result_name(identity_webauthn_result_t r);
/** A sentence for a result (for problem details). */
const char *identity_webauthn_result_detail(identity_webauthn_result_t r);

/** A newly registered credential (malloc'd buffers; identity_webauthn_credential_free). */
typedef struct identity_webauthn_credential {
    uint8_t *id;
    size_t id_len;
    uint8_t *public_key; /* the COSE_Key bytes as the authenticator sent them */
    size_t public_key_len;
    int64_t alg;
    uint32_t sign_count;
    bool uv, backup_eligible;
    char aaguid[37];
    char fmt[16];             /* "none" | "packed" */
    char attestation_type[8]; /* "none" | "self" | "basic" */
} identity_webauthn_credential_t;

void identity_webauthn_credential_free(identity_webauthn_credential_t *c);

/**
 * Registration (§7.1): clientDataJSON and the attestationObject as sent, checked against
 * rp and the issued challenge (base64url). Attestation formats: "none" (empty statement)
 * and "packed" self (signed by the credential key) and basic (an X.509 attestation
 * certificate of the FIDO profile; its chain is not checked against trust anchors).
 * On IDENTITY_WA_OK *out holds the credential.
 */
identity_webauthn_result_t identity_webauthn_register(const identity_webauthn_rp_t *rp,
                                                      const char *challenge, const uint8_t *cdj,
                                                      size_t cdj_len, const uint8_t *att,
                                                      size_t att_len,
                                                      identity_webauthn_credential_t *out);

/**
 * Authentication (§7.2) with a stored credential public key (COSE bytes) whose last seen
 * signature counter is stored_count. uv_required adds to rp->require_uv (a credential
 * registered with user verification must keep using it). On IDENTITY_WA_OK *new_count
 * and *uv are what the authenticator reported.
 */
identity_webauthn_result_t
identity_webauthn_assert(const identity_webauthn_rp_t *rp, const char *challenge,
                         const uint8_t *cdj, size_t cdj_len, const uint8_t *auth_data,
                         size_t ad_len, const uint8_t *sig, size_t sig_len,
                         const uint8_t *public_key, size_t pk_len, uint32_t stored_count,
                         bool uv_required, uint32_t *new_count, bool *uv);

#endif
