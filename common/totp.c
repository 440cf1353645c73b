#include "console/totp.h"

#include <openssl/hmac.h>
#include <string.h>

#include "console/crypto.h"
#include "console/errors.h"
#include "console/mem.h"

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

char *cc_base32_encode(const void *data, size_t n)
{
    const uint8_t *p = data;
    char *out = cc_malloc((n * 8 + 4) / 5 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = b32[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = b32[(acc << (5 - bits)) & 31];
    out[o] = '\0';
    return out;
}

int cc_base32_decode(const char *s, uint8_t **out, size_t *outlen)
{
    size_t n = strlen(s);
    uint8_t *buf = cc_malloc(n * 5 / 8 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v;
        if (c == ' ' || c == '=')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= '2' && c <= '7')
            v = c - '2' + 26;
        else {
            free(buf);
            return CC_EINVAL;
        }
        acc = (acc << 5) | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            buf[o++] = (uint8_t)(acc >> (bits - 8));
            bits -= 8;
        }
    }
    *out = buf;
    *outlen = o;
    return 0;
}

uint32_t cc_hotp(const void *key, size_t keylen, uint64_t counter, int digits)
{
    uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    for (int i = 7; i >= 0; i--) {
        msg[i] = (uint8_t)(counter & 0xff);
        counter >>= 8;
    }
    HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), mac, &maclen);
    int off = mac[maclen - 1] & 0x0f;
    uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
                   ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++)
        mod *= 10;
    return bin % mod;
}

bool cc_totp_check(const void *key, size_t keylen, const char *code, int64_t now, int window,
                   int64_t last_step, int64_t *step)
{
    if (code == NULL || strlen(code) != CC_TOTP_DIGITS || now < 0)
        return false;
    for (int i = 0; i < CC_TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    int64_t current = now / CC_TOTP_STEP_S, found = -1;
    for (int64_t s = current - window; s <= current + window; s++) {
        if (s < 0)
            continue;
        char want[CC_TOTP_DIGITS + 1];
        snprintf(want, sizeof(want), "%06u", cc_hotp(key, keylen, (uint64_t)s, CC_TOTP_DIGITS));
        bool eq = cc_ct_equal(want, code, CC_TOTP_DIGITS);
        /* the earliest matching step wins; every step is computed regardless */
        if (eq && found < 0)
            found = s;
    }
    if (found < 0 || found <= last_step)
        return false;
    *step = found;
    return true;
}
