#include "console/str.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/errors.h"

void cc_buf_init(cc_buf_t *b)
{
    b->data = NULL;
    b->len = b->cap = 0;
}

void cc_buf_free(cc_buf_t *b)
{
    free(b->data);
    cc_buf_init(b);
}

void cc_buf_reserve(cc_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX / 4 - b->len) /* the size computations below must not wrap */
        abort();
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = cc_realloc(b->data, cap);
    b->cap = cap;
    b->data[b->len] = '\0'; /* a fresh buffer is terminated even if nothing is appended */
}

void cc_buf_append(cc_buf_t *b, const void *p, size_t n)
{
    cc_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cc_buf_puts(cc_buf_t *b, const char *s)
{
    cc_buf_append(b, s, strlen(s));
}

void cc_buf_putc(cc_buf_t *b, char c)
{
    cc_buf_append(b, &c, 1);
}

void cc_buf_printf(cc_buf_t *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        cc_buf_reserve(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

void cc_buf_json_escape(cc_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    cc_buf_reserve(b, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            cc_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            cc_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            cc_buf_append(b, "\\n", 2);
            break;
        case '\r':
            cc_buf_append(b, "\\r", 2);
            break;
        case '\t':
            cc_buf_append(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                cc_buf_append(b, e, 6);
            } else {
                cc_buf_putc(b, (char)c);
            }
        }
    }
}

char *cc_buf_steal(cc_buf_t *b, size_t *len)
{
    if (b->data == NULL)
        cc_buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    cc_buf_init(b);
    return p;
}

bool cc_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return false; /* overlong */
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

bool cc_has_control(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

int cc_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *cc_percent_decode(cc_pool_t *pool, const char *s, size_t n, bool form)
{
    char *out = cc_pool_alloc(pool, n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return NULL;
            int h = cc_hex_value(s[i + 1]), l = cc_hex_value(s[i + 2]);
            if (h < 0 || l < 0)
                return NULL;
            c = (char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && form) {
            c = ' ';
        }
        if (c == '\0')
            return NULL;
        out[o++] = c;
    }
    out[o] = '\0';
    if (!cc_utf8_valid(out, o))
        return NULL;
    return out;
}

void cc_buf_percent_encode(cc_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            cc_buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            cc_buf_append(b, e, 3);
        }
    }
}

/* Iterates "name=value" pairs; returns false at the end. */
static bool next_pair(const char **p, const char **k, size_t *kl, const char **v, size_t *vl)
{
    const char *s = *p;
    while (*s == '&')
        s++;
    if (*s == '\0')
        return false;
    const char *end = strchr(s, '&');
    if (end == NULL)
        end = s + strlen(s);
    const char *eq = memchr(s, '=', (size_t)(end - s));
    *k = s;
    if (eq) {
        *kl = (size_t)(eq - s);
        *v = eq + 1;
        *vl = (size_t)(end - eq - 1);
    } else {
        *kl = (size_t)(end - s);
        *v = end;
        *vl = 0;
    }
    *p = end;
    return true;
}

int cc_query_get(cc_pool_t *pool, const char *query, const char *name, const char **value)
{
    const char *p = query ? query : "", *k, *v;
    size_t kl, vl;
    int found = 0;
    *value = NULL;
    while (next_pair(&p, &k, &kl, &v, &vl)) {
        char *dk = cc_percent_decode(pool, k, kl, true);
        if (dk == NULL)
            goto Invalid;
        if (strcmp(dk, name) != 0)
            continue;
        if (found)
            goto Invalid;
        char *dv = cc_percent_decode(pool, v, vl, true);
        if (dv == NULL)
            goto Invalid;
        *value = dv;
        found = 1;
    }
    return found;

Invalid:
    *value = NULL; /* never hand out the first of two values */
    return CC_EINVAL;
}

int cc_query_check(cc_pool_t *pool, const char *query, const char *const *allowed, const char **bad)
{
    const char *p = query ? query : "", *k, *v;
    size_t kl, vl;
    *bad = NULL;
    while (next_pair(&p, &k, &kl, &v, &vl)) {
        char *dk = cc_percent_decode(pool, k, kl, true);
        if (dk == NULL) {
            *bad = cc_pool_strndup(pool, k, kl);
            return CC_EINVAL;
        }
        bool ok = false;
        for (const char *const *a = allowed; a && *a; a++)
            if (strcmp(*a, dk) == 0)
                ok = true;
        if (!ok) {
            *bad = dk;
            return CC_EINVAL;
        }
    }
    return 0;
}

bool cc_is_uuid(const char *s)
{
    if (s == NULL || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool cc_strieq_n(const char *a, size_t n, const char *b)
{
    size_t bl = strlen(b);
    if (bl != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

void cc_buf_html(cc_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            cc_buf_puts(b, "&lt;");
            break;
        case '>':
            cc_buf_puts(b, "&gt;");
            break;
        case '&':
            cc_buf_puts(b, "&amp;");
            break;
        case '"':
            cc_buf_puts(b, "&quot;");
            break;
        case '\'':
            cc_buf_puts(b, "&#39;");
            break;
        default:
            cc_buf_putc(b, *s);
        }
    }
}

static bool all_alpha(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isalpha((unsigned char)s[i]))
            return false;
    return true;
}

bool cc_email_valid(const char *s)
{
    size_t n = strlen(s);
    const char *at = strrchr(s, '@');
    if (n < 3 || n > 254 || at == NULL || at == s)
        return false;
    size_t local = (size_t)(at - s);
    if (local > 64 || s[0] == '.' || at[-1] == '.')
        return false;
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) || strchr(".!#$%&'*+/=?^_`{|}~-", c)) || c == '\0')
            return false;
        if (c == '.' && s[i + 1] == '.')
            return false;
    }
    const char *d = at + 1;
    size_t dn = strlen(d);
    if (dn < 3 || dn > 253 || strchr(d, '.') == NULL)
        return false;
    const char *label = d;
    for (const char *p = d;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t ln = (size_t)(p - label);
            if (ln == 0 || ln > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            if (*p == '\0') { /* the top-level label: letters (or xn--) */
                if (ln < 2 || !(all_alpha(label, ln) || strncmp(label, "xn--", 4) == 0))
                    return false;
                break;
            }
            label = p + 1;
        } else if (!isalnum((unsigned char)*p) && *p != '-') {
            return false;
        }
    }
    return true;
}

bool cc_phone_valid(const char *s)
{
    const char *p = s;
    if (*p == '+')
        p++;
    int digits = 0;
    char prev = '+';
    for (; *p; p++) {
        char c = *p;
        if (c >= '0' && c <= '9') {
            if (digits == 0 && s[0] == '+' && c == '0')
                return false; /* country codes do not start with 0 */
            digits++;
        } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
            if ((c == ' ' || c == '-' || c == '.') &&
                (prev == ' ' || prev == '-' || prev == '.' || prev == '+'))
                return false;
        } else {
            return false;
        }
        prev = c;
    }
    return digits >= 7 && digits <= 15 && strlen(s) <= 32;
}

bool cc_phone_e164_valid(const char *s)
{
    if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
        return false;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (*p < '0' || *p > '9')
            return false;
    return n >= 8 && n <= 15;
}
