/* WebAuthn ceremony checks (see webauthn.h). */
#include "webauthn.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "console/cose.h"
#include "console/crypto.h"
#include "console/errors.h"

enum {
    FLAG_UP = 0x01,
    FLAG_UV = 0x04,
    FLAG_BE = 0x08,
    FLAG_BS = 0x10,
    FLAG_AT = 0x40,
    FLAG_ED = 0x80,
};

#define CRED_ID_MAX 1023

const char *identity_webauthn_result_name(identity_webauthn_result_t r)
{
    static const char *const names[] = {
        "ok",
        "malformed",
        "type",
        "challenge",
        "origin",
        "rp_id",
        "user_presence",
        "user_verification",
        "algorithm",
        "attestation",
        "signature",
        "counter",
        "credential_taken",
    };
    return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

const char *identity_webauthn_result_detail(identity_webauthn_result_t r)
{
    switch (r) {
    case IDENTITY_WA_OK:
        return "The response is valid.";
    case IDENTITY_WA_MALFORMED:
        return "The authenticator response cannot be decoded.";
    case IDENTITY_WA_TYPE:
        return "The client data is not of this ceremony.";
    case IDENTITY_WA_CHALLENGE:
        return "The response does not answer the challenge issued for this step.";
    case IDENTITY_WA_ORIGIN:
        return "The response comes from an origin this console does not serve.";
    case IDENTITY_WA_RP_ID:
        return "The response is scoped to another relying party.";
    case IDENTITY_WA_USER_PRESENCE:
        return "The authenticator did not confirm the user's presence.";
    case IDENTITY_WA_USER_VERIFICATION:
        return "The authenticator did not verify the user (PIN or biometrics), which is required.";
    case IDENTITY_WA_ALGORITHM:
        return "The credential uses an algorithm other than ES256, RS256 or EdDSA.";
    case IDENTITY_WA_ATTESTATION:
        return "The attestation format is not supported or its statement is invalid.";
    case IDENTITY_WA_SIGNATURE:
        return "The signature does not verify.";
    case IDENTITY_WA_COUNTER:
        return "The signature counter went back: the authenticator may have been cloned.";
    case IDENTITY_WA_CREDENTIAL_TAKEN:
        return "This authenticator is already registered.";
    }
    return "The response was refused.";
}

void identity_webauthn_credential_free(identity_webauthn_credential_t *c)
{
    if (c == NULL)
        return;
    free(c->id);
    free(c->public_key);
    c->id = c->public_key = NULL;
}

/* ---- client data ---- */

static identity_webauthn_result_t check_client_data(const identity_webauthn_rp_t *rp,
                                                    const char *type, const char *challenge,
                                                    const uint8_t *cdj, size_t n)
{
    if (cdj == NULL || n == 0 || n > 4096 || challenge == NULL)
        return IDENTITY_WA_MALFORMED;
    json_error_t err;
    json_t *c = json_loadb((const char *)cdj, n, JSON_REJECT_DUPLICATES, &err);
    identity_webauthn_result_t r = IDENTITY_WA_MALFORMED;
    json_t *t = json_object_get(c, "type"), *ch = json_object_get(c, "challenge"),
           *o = json_object_get(c, "origin"), *co = json_object_get(c, "crossOrigin");
    if (!json_is_object(c) || !json_is_string(t) || !json_is_string(ch) || !json_is_string(o) ||
        (co != NULL && !json_is_boolean(co)))
        goto Exit;
    r = IDENTITY_WA_TYPE;
    if (strcmp(json_string_value(t), type) != 0)
        goto Exit;
    r = IDENTITY_WA_CHALLENGE;
    if (!cc_ct_streq(json_string_value(ch), challenge))
        goto Exit;
    r = IDENTITY_WA_ORIGIN;
    if (json_is_true(co))
        goto Exit;
    for (size_t i = 0; rp->origins && rp->origins[i]; i++)
        if (strcmp(rp->origins[i], json_string_value(o)) == 0)
            r = IDENTITY_WA_OK;
Exit:
    json_decref(c);
    return r;
}

/* ---- authenticator data ---- */

typedef struct auth_data {
    uint8_t flags;
    uint32_t count;
    /* attested credential data (AT) */
    const uint8_t *aaguid, *cred_id, *cose;
    size_t cred_id_len, cose_len;
} auth_data_t;

static identity_webauthn_result_t parse_auth_data(const identity_webauthn_rp_t *rp,
                                                  const uint8_t *d, size_t n, bool attested,
                                                  auth_data_t *a)
{
    memset(a, 0, sizeof(*a));
    if (d == NULL || n < 37)
        return IDENTITY_WA_MALFORMED;
    a->flags = d[32];
    a->count = (uint32_t)d[33] << 24 | (uint32_t)d[34] << 16 | (uint32_t)d[35] << 8 | d[36];
    size_t off = 37;
    if (((a->flags & FLAG_AT) != 0) != attested || ((a->flags & FLAG_BS) && !(a->flags & FLAG_BE)))
        return IDENTITY_WA_MALFORMED;
    if (attested) {
        if (n < off + 18)
            return IDENTITY_WA_MALFORMED;
        a->aaguid = d + off;
        a->cred_id_len = (size_t)d[off + 16] << 8 | d[off + 17];
        off += 18;
        if (a->cred_id_len == 0 || a->cred_id_len > CRED_ID_MAX || n < off + a->cred_id_len)
            return IDENTITY_WA_MALFORMED;
        a->cred_id = d + off;
        off += a->cred_id_len;
        cc_cose_key_t k;
        size_t used = 0;
        int rc = cc_cose_key_parse(d + off, n - off, &used, &k);
        if (rc == CC_ENOENT)
            return IDENTITY_WA_ALGORITHM;
        if (rc != 0)
            return IDENTITY_WA_MALFORMED;
        cc_cose_key_dispose(&k);
        a->cose = d + off;
        a->cose_len = used;
        off += used;
    }
    if (a->flags & FLAG_ED) {
        size_t used = 0;
        cbor_item_t *ext = cc_cbor_load(d + off, n - off, &used);
        bool map = ext && cbor_isa_map(ext);
        if (ext)
            cbor_decref(&ext);
        if (!map)
            return IDENTITY_WA_MALFORMED;
        off += used;
    }
    if (off != n)
        return IDENTITY_WA_MALFORMED;
    uint8_t h[32];
    cc_sha256(rp->rp_id, strlen(rp->rp_id), h);
    if (!cc_ct_equal(h, d, 32))
        return IDENTITY_WA_RP_ID;
    if (!(a->flags & FLAG_UP))
        return IDENTITY_WA_USER_PRESENCE;
    return IDENTITY_WA_OK;
}

/* authData || SHA-256(clientDataJSON), the signed message of both ceremonies (malloc). */
static uint8_t *signed_message(const uint8_t *ad, size_t ad_len, const uint8_t *cdj, size_t cdj_len,
                               size_t *len)
{
    uint8_t *m = malloc(ad_len + 32);
    if (m == NULL)
        abort();
    memcpy(m, ad, ad_len);
    cc_sha256(cdj, cdj_len, m + ad_len);
    *len = ad_len + 32;
    return m;
}

static void aaguid_str(const uint8_t *g, char out[37])
{
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", g[0],
             g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
             g[14], g[15]);
}

/* ---- packed attestation (§8.2) ---- */

static bool subject_has(X509_NAME *n, int nid, const char *want)
{
    int i = X509_NAME_get_index_by_NID(n, nid, -1);
    if (i < 0)
        return false;
    if (want == NULL)
        return true;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    return s && (size_t)ASN1_STRING_length(s) == strlen(want) &&
           memcmp(ASN1_STRING_get0_data(s), want, strlen(want)) == 0;
}

/* The attestation certificate requirements of §8.2.1, and its AAGUID extension. */
static bool packed_cert_ok(X509 *x, const uint8_t *aaguid)
{
    X509_NAME *s = X509_get_subject_name(x);
    if (X509_get_version(x) != 2 || !subject_has(s, NID_countryName, NULL) ||
        !subject_has(s, NID_organizationName, NULL) ||
        !subject_has(s, NID_organizationalUnitName, "Authenticator Attestation") ||
        !subject_has(s, NID_commonName, NULL))
        return false;
    if (X509_get_extension_flags(x) & EXFLAG_CA)
        return false;
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0 ||
        X509_cmp_current_time(X509_get0_notAfter(x)) <= 0)
        return false;
    ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.4.1.45724.1.1.4", 1);
    int idx = oid ? X509_get_ext_by_OBJ(x, oid, -1) : -1;
    ASN1_OBJECT_free(oid);
    if (idx < 0)
        return true;
    X509_EXTENSION *ext = X509_get_ext(x, idx);
    if (X509_EXTENSION_get_critical(ext))
        return false;
    /* extnValue is an OCTET STRING holding a DER OCTET STRING of 16 bytes */
    ASN1_OCTET_STRING *v = X509_EXTENSION_get_data(ext);
    const unsigned char *p = ASN1_STRING_get0_data(v);
    ASN1_OCTET_STRING *inner = d2i_ASN1_OCTET_STRING(NULL, &p, ASN1_STRING_length(v));
    bool ok = inner && ASN1_STRING_length(inner) == 16 &&
              memcmp(ASN1_STRING_get0_data(inner), aaguid, 16) == 0;
    ASN1_OCTET_STRING_free(inner);
    return ok;
}

static identity_webauthn_result_t packed(const cbor_item_t *stmt, const auth_data_t *a,
                                         int64_t cred_alg, const uint8_t *msg, size_t msg_len,
                                         identity_webauthn_credential_t *out)
{
    int64_t alg;
    cbor_item_t *sig = cc_cbor_map_str(stmt, "sig"), *x5c = cc_cbor_map_str(stmt, "x5c");
    if (cc_cbor_int(cc_cbor_map_str(stmt, "alg"), &alg) != 0 || sig == NULL ||
        !cbor_isa_bytestring(sig) || cc_cbor_map_str(stmt, "ecdaaKeyId") != NULL ||
        cbor_map_size(stmt) != (x5c ? 3u : 2u))
        return IDENTITY_WA_ATTESTATION;
    const uint8_t *s = cbor_bytestring_handle(sig);
    size_t slen = cbor_bytestring_length(sig);
    if (x5c == NULL) { /* self attestation: the credential key signs, with its own alg */
        if (alg != cred_alg)
            return IDENTITY_WA_ATTESTATION;
        cc_cose_key_t k;
        size_t used;
        if (cc_cose_key_parse(a->cose, a->cose_len, &used, &k) != 0)
            return IDENTITY_WA_MALFORMED;
        int rc = cc_cose_verify(k.key, alg, msg, msg_len, s, slen);
        cc_cose_key_dispose(&k);
        if (rc != 0)
            return IDENTITY_WA_SIGNATURE;
        snprintf(out->attestation_type, sizeof(out->attestation_type), "self");
        return IDENTITY_WA_OK;
    }
    if (!cbor_isa_array(x5c) || cbor_array_size(x5c) < 1 || cbor_array_size(x5c) > 8)
        return IDENTITY_WA_ATTESTATION;
    cbor_item_t *leaf = cbor_array_handle(x5c)[0];
    if (!cbor_isa_bytestring(leaf))
        return IDENTITY_WA_ATTESTATION;
    const unsigned char *p = cbor_bytestring_handle(leaf);
    long len = (long)cbor_bytestring_length(leaf);
    X509 *x = d2i_X509(NULL, &p, len);
    identity_webauthn_result_t r = IDENTITY_WA_ATTESTATION;
    if (x == NULL || p != cbor_bytestring_handle(leaf) + len || !packed_cert_ok(x, a->aaguid))
        goto Exit;
    EVP_PKEY *key = X509_get0_pubkey(x);
    if (cc_cose_verify(key, alg, msg, msg_len, s, slen) != 0) {
        r = IDENTITY_WA_SIGNATURE;
        goto Exit;
    }
    snprintf(out->attestation_type, sizeof(out->attestation_type), "basic");
    r = IDENTITY_WA_OK;
Exit:
    X509_free(x);
    return r;
}

/* ---- the ceremonies ---- */

identity_webauthn_result_t identity_webauthn_register(const identity_webauthn_rp_t *rp,
                                                      const char *challenge, const uint8_t *cdj,
                                                      size_t cdj_len, const uint8_t *att,
                                                      size_t att_len,
                                                      identity_webauthn_credential_t *out)
{
    memset(out, 0, sizeof(*out));
    identity_webauthn_result_t r =
        check_client_data(rp, "webauthn.create", challenge, cdj, cdj_len);
    if (r != IDENTITY_WA_OK)
        return r;
    size_t used = 0;
    cbor_item_t *ao = cc_cbor_load(att, att_len, &used);
    uint8_t *msg = NULL;
    r = IDENTITY_WA_MALFORMED;
    if (ao == NULL || used != att_len || !cbor_isa_map(ao) || cbor_map_size(ao) != 3)
        goto Exit;
    cbor_item_t *fmt = cc_cbor_map_str(ao, "fmt"), *stmt = cc_cbor_map_str(ao, "attStmt"),
                *ad = cc_cbor_map_str(ao, "authData");
    if (fmt == NULL || !cbor_isa_string(fmt) || stmt == NULL || !cbor_isa_map(stmt) || ad == NULL ||
        !cbor_isa_bytestring(ad))
        goto Exit;
    auth_data_t a;
    const uint8_t *adp = cbor_bytestring_handle(ad);
    size_t adn = cbor_bytestring_length(ad);
    if ((r = parse_auth_data(rp, adp, adn, true, &a)) != IDENTITY_WA_OK)
        goto Exit;
    r = IDENTITY_WA_USER_VERIFICATION;
    if (rp->require_uv && !(a.flags & FLAG_UV))
        goto Exit;
    cc_cose_key_t k;
    size_t kused;
    r = IDENTITY_WA_MALFORMED;
    if (cc_cose_key_parse(a.cose, a.cose_len, &kused, &k) != 0)
        goto Exit;
    int64_t alg = k.alg;
    cc_cose_key_dispose(&k);
    size_t fl = cbor_string_length(fmt);
    const char *fs = (const char *)cbor_string_handle(fmt);
    size_t msg_len = 0;
    msg = signed_message(adp, adn, cdj, cdj_len, &msg_len);
    if (fl == 4 && memcmp(fs, "none", 4) == 0) {
        r = cbor_map_size(stmt) == 0 ? IDENTITY_WA_OK : IDENTITY_WA_ATTESTATION;
        snprintf(out->attestation_type, sizeof(out->attestation_type), "none");
    } else if (fl == 6 && memcmp(fs, "packed", 6) == 0) {
        r = packed(stmt, &a, alg, msg, msg_len, out);
    } else {
        r = IDENTITY_WA_ATTESTATION;
    }
    if (r != IDENTITY_WA_OK)
        goto Exit;
    snprintf(out->fmt, sizeof(out->fmt), "%.*s", (int)fl, fs);
    out->id = malloc(a.cred_id_len);
    out->public_key = malloc(a.cose_len);
    if (out->id == NULL || out->public_key == NULL)
        abort();
    memcpy(out->id, a.cred_id, a.cred_id_len);
    out->id_len = a.cred_id_len;
    memcpy(out->public_key, a.cose, a.cose_len);
    out->public_key_len = a.cose_len;
    out->alg = alg;
    out->sign_count = a.count;
    out->uv = (a.flags & FLAG_UV) != 0;
    out->backup_eligible = (a.flags & FLAG_BE) != 0;
    aaguid_str(a.aaguid, out->aaguid);
Exit:
    free(msg);
    if (ao)
        cbor_decref(&ao);
    return r;
}

identity_webauthn_result_t identity_webauthn_assert(const identity_webauthn_rp_t *rp,
                                                    const char *challenge, const uint8_t *cdj,
                                                    size_t cdj_len, const uint8_t *auth_data,
                                                    size_t ad_len, const uint8_t *sig,
                                                    size_t sig_len, const uint8_t *public_key,
                                                    size_t pk_len, uint32_t stored_count,
                                                    bool uv_required, uint32_t *new_count, bool *uv)
{
    identity_webauthn_result_t r = check_client_data(rp, "webauthn.get", challenge, cdj, cdj_len);
    if (r != IDENTITY_WA_OK)
        return r;
    auth_data_t a;
    if ((r = parse_auth_data(rp, auth_data, ad_len, false, &a)) != IDENTITY_WA_OK)
        return r;
    if ((rp->require_uv || uv_required) && !(a.flags & FLAG_UV))
        return IDENTITY_WA_USER_VERIFICATION;
    cc_cose_key_t k;
    size_t used;
    if (cc_cose_key_parse(public_key, pk_len, &used, &k) != 0)
        return IDENTITY_WA_MALFORMED;
    size_t msg_len = 0;
    uint8_t *msg = signed_message(auth_data, ad_len, cdj, cdj_len, &msg_len);
    int rc = cc_cose_verify(k.key, k.alg, msg, msg_len, sig, sig_len);
    free(msg);
    cc_cose_key_dispose(&k);
    if (rc != 0)
        return IDENTITY_WA_SIGNATURE;
    /* §7.2 step 21: a counter that does not grow (when either is non-zero) signals a clone */
    if ((a.count != 0 || stored_count != 0) && a.count <= stored_count)
        return IDENTITY_WA_COUNTER;
    *new_count = a.count;
    *uv = (a.flags & FLAG_UV) != 0;
    return IDENTITY_WA_OK;
}
