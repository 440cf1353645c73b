/* Pure rules of the identity service (see policy.h). */
#include "policy.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "console/crypto.h"

/* A small list of the most common passwords that otherwise satisfy the character rules
 * (compared case-insensitively); a full breach corpus is a later improvement. */
static const char *const common_passwords[] = {
    "password1",  "password12", "password123", "passw0rd",       "passw0rd1",  "p@ssw0rd",
    "p@ssword1",  "qwerty123",  "qwerty1234",  "qwertyuiop1",    "abc12345",   "abcd1234",
    "letmein1",   "letmein123", "welcome1",    "welcome123",     "changeme1",  "changeme123",
    "iloveyou1",  "admin123",   "admin1234",   "administrator1", "monkey123",  "dragon123",
    "sunshine1",  "princess1",  "football1",   "baseball1",      "master123",  "trustno1",
    "1q2w3e4r",   "1qaz2wsx",   "zaq12wsx",    "summer2024",     "winter2024", "spring2025",
    "autumn2025", "company123", "secret123",   "test1234",       "temp1234",   NULL,
};

const char *const identity_security_images[] = {
    "mountain", "sea", "forest", "city", "desert", "aurora", "cat", "owl", "tulip", "bridge", NULL,
};

static bool contains_ci(const char *hay, const char *needle, size_t n)
{
    size_t h = strlen(hay);
    for (size_t i = 0; n > 0 && i + n <= h; i++)
        if (strncasecmp(hay + i, needle, n) == 0)
            return true;
    return false;
}

/* A part of the username: a run of letters/digits (ASCII) or non-ASCII bytes, of at
 * least 3 bytes, split at '@', '.', '-', '_', '+' and spaces. */
static bool has_username_part(const char *pw, const char *username)
{
    if (username == NULL || *username == '\0')
        return false;
    if (contains_ci(pw, username, strlen(username)))
        return true;
    const char *p = username;
    while (*p) {
        size_t n = 0;
        while (p[n] && (isalnum((unsigned char)p[n]) || (unsigned char)p[n] >= 0x80))
            n++;
        if (n >= 3 && contains_ci(pw, p, n))
            return true;
        p += n;
        while (*p && !(isalnum((unsigned char)*p) || (unsigned char)*p >= 0x80))
            p++;
    }
    return false;
}

unsigned identity_password_flaws(const char *pw, const char *username)
{
    unsigned f = 0;
    size_t bytes = strlen(pw);
    if (cc_utf8_length(pw, bytes) < 8)
        f |= IDENTITY_PW_TOO_SHORT;
    if (bytes > 128)
        f |= IDENTITY_PW_TOO_LONG;
    bool lower = false, upper = false, digit = false;
    for (const char *p = pw; *p; p++) {
        lower |= islower((unsigned char)*p) != 0;
        upper |= isupper((unsigned char)*p) != 0;
        digit |= isdigit((unsigned char)*p) != 0;
    }
    if (!lower)
        f |= IDENTITY_PW_NO_LOWER;
    if (!upper)
        f |= IDENTITY_PW_NO_UPPER;
    if (!digit)
        f |= IDENTITY_PW_NO_DIGIT;
    if (has_username_part(pw, username))
        f |= IDENTITY_PW_HAS_USERNAME;
    for (int i = 0; common_passwords[i]; i++)
        if (strcasecmp(pw, common_passwords[i]) == 0)
            f |= IDENTITY_PW_COMMON;
    return f;
}

void identity_password_report(cc_validator_t *v, const char *field, unsigned f)
{
    if (f & IDENTITY_PW_TOO_SHORT)
        cc_v_add(v, field, "too_short", "The password needs at least 8 characters.");
    if (f & IDENTITY_PW_TOO_LONG)
        cc_v_add(v, field, "too_long", "The password may have at most 128 bytes.");
    if (f & IDENTITY_PW_NO_LOWER)
        cc_v_add(v, field, "lowercase_required", "The password needs a lower-case letter.");
    if (f & IDENTITY_PW_NO_UPPER)
        cc_v_add(v, field, "uppercase_required", "The password needs an upper-case letter.");
    if (f & IDENTITY_PW_NO_DIGIT)
        cc_v_add(v, field, "digit_required", "The password needs a digit.");
    if (f & IDENTITY_PW_HAS_USERNAME)
        cc_v_add(v, field, "contains_username", "The password may not contain the username.");
    if (f & IDENTITY_PW_COMMON)
        cc_v_add(v, field, "common_password", "This password is too common.");
}

char *identity_recovery_normalize(cc_pool_t *pool, const char *answer)
{
    size_t n = strlen(answer);
    char *out = cc_pool_alloc(pool, n + 1);
    size_t o = 0;
    bool space = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)answer[i];
        /* U+3000 IDEOGRAPHIC SPACE (E3 80 80) counts as white space too */
        if (c == 0xe3 && i + 2 < n && (unsigned char)answer[i + 1] == 0x80 &&
            (unsigned char)answer[i + 2] == 0x80) {
            space = true;
            i += 2;
            continue;
        }
        if (isspace(c)) {
            space = true;
            continue;
        }
        if (space && o > 0)
            out[o++] = ' ';
        space = false;
        out[o++] = (char)tolower(c);
    }
    out[o] = '\0';
    return out;
}

static bool b64url_chars(const char *s, size_t min, size_t max, const char *extra)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr(extra, s[i]) == NULL)
            return false;
    return true;
}

bool identity_pkce_challenge_valid(const char *challenge)
{
    return challenge != NULL && b64url_chars(challenge, 43, 43, "-_");
}

bool identity_pkce_s256_matches(const char *verifier, const char *challenge)
{
    if (verifier == NULL || !identity_pkce_challenge_valid(challenge) ||
        !b64url_chars(verifier, 43, 128, "-._~"))
        return false;
    uint8_t digest[32];
    cc_sha256(verifier, strlen(verifier), digest);
    char *enc = cc_base64url_encode(digest, sizeof(digest));
    bool ok = strlen(enc) == 43 && cc_ct_equal(enc, challenge, 43);
    free(enc);
    return ok;
}

bool identity_security_image_valid(const char *id)
{
    for (int i = 0; id && identity_security_images[i]; i++)
        if (strcmp(id, identity_security_images[i]) == 0)
            return true;
    return false;
}

bool identity_acr_wants_mfa(const char *acr_values)
{
    const size_t n = strlen(IDENTITY_ACR_MFA);
    for (const char *s = acr_values; s && *s;) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, " ");
        if (len == n && strncmp(s, IDENTITY_ACR_MFA, n) == 0)
            return true;
        s += len;
    }
    return false;
}

bool identity_authn_allows(const char *status, identity_authn_event_t ev)
{
    if (status == NULL)
        return false;
    switch (ev) {
    case IDENTITY_EV_ENROLL:
    case IDENTITY_EV_ACTIVATE:
        return strcmp(status, IDENTITY_MFA_ENROLL) == 0;
    case IDENTITY_EV_VERIFY:
        return strcmp(status, IDENTITY_MFA_REQUIRED) == 0;
    }
    return false;
}

const char *identity_authn_after_password(bool has_active_factor)
{
    return has_active_factor ? IDENTITY_MFA_REQUIRED : IDENTITY_MFA_ENROLL;
}

static const char *const known_types[] = {"totp", "email", "webauthn", "sms", "voice", NULL};
static const char *const supported_types[] = {"totp", "email", "webauthn", NULL};
static const char *const phone_types[] = {"sms", "voice", NULL};
static bool phone_enabled;

static bool in(const char *const *set, const char *s)
{
    for (int i = 0; s && set[i]; i++)
        if (strcmp(set[i], s) == 0)
            return true;
    return false;
}

bool identity_factor_type_known(const char *type)
{
    return in(known_types, type);
}

bool identity_factor_type_supported(const char *type)
{
    return in(supported_types, type) || (phone_enabled && in(phone_types, type));
}

void identity_factor_phone_enable(bool on)
{
    phone_enabled = on;
}
