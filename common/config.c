/*
 * Configuration: settings tables filled from an optional KEY=VALUE file and the
 * environment.
 *
 * Sources, strongest first: the environment, the file named by CONSOLE_CONFIG_FILE, the
 * table's default. An empty value (KEY= in the file, or an exported empty variable) counts
 * as not set, so the next source applies; this lets deploy scripts export "${X:-}"
 * without overriding defaults.
 *
 * File format: one KEY=VALUE per line; blank lines and lines whose first non-blank
 * character is '#' are ignored; whitespace around KEY and VALUE is dropped; a VALUE wholly
 * enclosed in double quotes loses them (nothing inside is interpreted: no escapes, no
 * shell expansion, no inline comments, so secrets may contain '#', '$' or quotes). A line
 * that is not KEY=VALUE, or a key given twice, is an error naming the line number.
 *
 * Unknown keys: a file key that starts with CONSOLE_ (or is DATABASE_URL) must belong to
 * a table of this process, else loading fails naming it (a typo must not be silently
 * ignored). The check uses every table registered so far: those passed to earlier
 * cc_config_load calls, to cc_config_register, and the one being loaded. A process with a
 * single table simply calls cc_config_load once; a process with several tables registers
 * them all with cc_config_register before its first cc_config_load. The environment is
 * not checked: one environment serves many processes, each knowing only its own keys.
 *
 * Types: INT and SIZE are checked against min..max unless both are 0 (unbounded). URL
 * accepts any "scheme://rest" with a syntactically valid scheme (RFC 3986: a letter, then
 * letters, digits, '+', '-', '.'), since which schemes make sense is the caller's
 * business (postgresql/postgres, http/https, smtp/smtps, ...); a setting named
 * DATABASE_URL or ending in _DATABASE_URL also accepts a libpq "key=value ..." string.
 * Spaces and control characters are refused in URLs.
 *
 * Errors never echo a value (a value may be a secret, or a URL with a password in it):
 * they say "KEY: reason". Loading is all or nothing: targets are written only when every
 * setting of the table is valid.
 *
 * Not thread-safe: call at start, before threads exist.
 */
#include "console/config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/errors.h"
#include "console/mem.h"
#include "console/str.h"

/* Largest configuration file read; a longer one is an error, not truncated. */
#define CONFIG_FILE_MAX (1024 * 1024)

/* Names of every setting registered by this process (copies). */
static char **registry;
static size_t registry_len, registry_cap;

/* Strings handed out to targets, freed by cc_config_free. */
static char **storage;
static size_t storage_len, storage_cap;

/* One KEY=VALUE of the file; key and value point into the file's buffer. */
struct entry {
    const char *key, *value;
    int line;
};

struct file {
    char *data;
    struct entry *entries;
    size_t n;
};

/* A parsed value before it is written to its target. */
union parsed {
    const char *s;
    int64_t i;
    bool b;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool registered(const char *name)
{
    for (size_t i = 0; i < registry_len; i++)
        if (strcmp(registry[i], name) == 0)
            return true;
    return false;
}

void cc_config_register(const cc_setting_t *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (table[i].name == NULL || registered(table[i].name))
            continue;
        if (registry_len == registry_cap) {
            registry_cap = registry_cap ? registry_cap * 2 : 32;
            registry = cc_realloc(registry, registry_cap * sizeof(*registry));
        }
        registry[registry_len++] = cc_strdup(table[i].name);
    }
}

static const char *keep(const char *s, size_t n)
{
    if (storage_len == storage_cap) {
        storage_cap = storage_cap ? storage_cap * 2 : 32;
        storage = cc_realloc(storage, storage_cap * sizeof(*storage));
    }
    char *p = cc_strndup(s, n);
    storage[storage_len++] = p;
    return p;
}

/* Frees the strings kept after mark (a failed load gives back what it took). */
static void release_since(size_t mark)
{
    while (storage_len > mark)
        free(storage[--storage_len]);
}

void cc_config_free(void)
{
    release_since(0);
    free(storage);
    storage = NULL;
    storage_cap = 0;
    for (size_t i = 0; i < registry_len; i++)
        free(registry[i]);
    free(registry);
    registry = NULL;
    registry_len = registry_cap = 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool valid_key(const char *k)
{
    if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || *k == '_'))
        return false;
    for (k++; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
              *k == '_'))
            return false;
    return true;
}

static bool checked_key(const char *k)
{
    return strncmp(k, "CONSOLE_", 8) == 0 || strcmp(k, "DATABASE_URL") == 0;
}

static void file_free(struct file *f)
{
    free(f->data);
    free(f->entries);
    memset(f, 0, sizeof(*f));
}

/* Parses buffer data[0..len) in place into f->entries. */
static int file_parse(struct file *f, size_t len, char *err, size_t errlen)
{
    char *p = f->data, *end = f->data + len;
    size_t cap = 0;
    for (int line = 1; p < end; line++) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        char *next = eol < end ? eol + 1 : end;
        *eol = '\0';
        if (memchr(p, '\0', (size_t)(eol - p)) != NULL) {
            set_err(err, errlen, "CONSOLE_CONFIG_FILE: line %d: contains a NUL byte", line);
            return CC_EINVAL;
        }
        while (is_space(*p))
            p++;
        char *e = eol;
        while (e > p && is_space(e[-1]))
            *--e = '\0';
        if (*p == '\0' || *p == '#') {
            p = next;
            continue;
        }
        char *eq = strchr(p, '=');
        if (eq == NULL) {
            set_err(err, errlen, "CONSOLE_CONFIG_FILE: line %d: expected KEY=VALUE", line);
            return CC_EINVAL;
        }
        char *k = eq;
        while (k > p && is_space(k[-1]))
            k--;
        *k = '\0';
        char *val = eq + 1;
        while (is_space(*val))
            val++;
        size_t vl = strlen(val);
        if (vl > 0 && val[0] == '"') {
            if (vl < 2 || val[vl - 1] != '"') {
                set_err(err, errlen, "CONSOLE_CONFIG_FILE: line %d: unbalanced double quote", line);
                return CC_EINVAL;
            }
            val[vl - 1] = '\0';
            val++;
        }
        if (!valid_key(p)) {
            set_err(err, errlen,
                    "CONSOLE_CONFIG_FILE: line %d: expected KEY=VALUE with KEY made of "
                    "letters, digits and '_'",
                    line);
            return CC_EINVAL;
        }
        for (size_t i = 0; i < f->n; i++) {
            if (strcmp(f->entries[i].key, p) == 0) {
                set_err(err, errlen, "%s: set twice in CONSOLE_CONFIG_FILE (lines %d and %d)", p,
                        f->entries[i].line, line);
                return CC_EINVAL;
            }
        }
        if (f->n == cap) {
            cap = cap ? cap * 2 : 16;
            f->entries = cc_realloc(f->entries, cap * sizeof(*f->entries));
        }
        f->entries[f->n++] = (struct entry){.key = p, .value = val, .line = line};
        p = next;
    }
    return 0;
}

/* Reads and parses the file named by CONSOLE_CONFIG_FILE; an unset name is an empty file. */
static int file_load(struct file *f, char *err, size_t errlen)
{
    int rc = CC_EINVAL;
    const char *path = getenv("CONSOLE_CONFIG_FILE");
    FILE *fp = NULL;

    memset(f, 0, sizeof(*f));
    if (path == NULL || *path == '\0')
        return 0;
    fp = fopen(path, "rb");
    if (fp == NULL) {
        set_err(err, errlen, "CONSOLE_CONFIG_FILE: cannot open %s: %s", path, strerror(errno));
        goto Exit;
    }
    f->data = cc_malloc(CONFIG_FILE_MAX + 1);
    size_t len = fread(f->data, 1, CONFIG_FILE_MAX + 1, fp);
    if (ferror(fp)) {
        set_err(err, errlen, "CONSOLE_CONFIG_FILE: cannot read %s", path);
        goto Exit;
    }
    if (len > CONFIG_FILE_MAX) {
        set_err(err, errlen, "CONSOLE_CONFIG_FILE: %s is larger than %d bytes", path,
                CONFIG_FILE_MAX);
        goto Exit;
    }
    f->data[len] = '\0';
    rc = file_parse(f, len, err, errlen);

Exit:
    if (fp != NULL)
        fclose(fp);
    if (rc != 0)
        file_free(f);
    return rc;
}

static const struct entry *file_find(const struct file *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].key, key) == 0)
            return &f->entries[i];
    return NULL;
}

static bool unbounded(const cc_setting_t *s)
{
    return s->min == 0 && s->max == 0;
}

static int parse_int(const char *v, int64_t *out)
{
    if (*v == '\0' || is_space(*v))
        return CC_EINVAL;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0')
        return CC_EINVAL;
    *out = (int64_t)x;
    return 0;
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    size_t n = strlen(v);
    for (size_t i = 0; i < CC_ARRAY_SIZE(yes); i++) {
        if (cc_strieq_n(v, n, yes[i])) {
            *out = true;
            return 0;
        }
        if (cc_strieq_n(v, n, no[i])) {
            *out = false;
            return 0;
        }
    }
    return CC_EINVAL;
}

/* Digits with an optional k/m/g suffix (powers of 1024), optionally followed by b or ib. */
static int parse_size(const char *v, int64_t *out)
{
    if (*v < '0' || *v > '9')
        return CC_EINVAL;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno != 0 || x > INT64_MAX)
        return CC_EINVAL;
    uint64_t mult = 1;
    if (*end != '\0') {
        switch (*end) {
        case 'k':
        case 'K':
            mult = 1024;
            break;
        case 'm':
        case 'M':
            mult = 1024 * 1024;
            break;
        case 'g':
        case 'G':
            mult = 1024 * 1024 * 1024;
            break;
        default:
            return CC_EINVAL;
        }
        end++;
        if (*end != '\0' && !cc_strieq_n(end, strlen(end), "b") &&
            !cc_strieq_n(end, strlen(end), "ib"))
            return CC_EINVAL;
    }
    if (x > (uint64_t)INT64_MAX / mult)
        return CC_EINVAL;
    *out = (int64_t)(x * mult);
    return 0;
}

static bool libpq_name(const char *name)
{
    size_t n = strlen(name);
    return strcmp(name, "DATABASE_URL") == 0 ||
           (n > 13 && strcmp(name + n - 13, "_DATABASE_URL") == 0);
}

static bool valid_url(const char *name, const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            goto Conninfo;
    const char *p = v;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        goto Conninfo;
    for (p++; (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '+' || *p == '-' || *p == '.';
         p++)
        ;
    if (strncmp(p, "://", 3) == 0)
        return true;

Conninfo:
    /* libpq conninfo: "keyword=value ..." starting with a keyword */
    if (!libpq_name(name))
        return false;
    p = v;
    if (!((*p >= 'a' && *p <= 'z') || *p == '_'))
        return false;
    while ((*p >= 'a' && *p <= 'z') || *p == '_')
        p++;
    while (*p == ' ')
        p++;
    if (*p != '=')
        return false;
    return !cc_has_control(v, strlen(v));
}

/* Parses text for s into *out (strings are kept); on error writes "KEY: reason". */
static int parse_value(const cc_setting_t *s, const char *text, bool is_default, union parsed *out,
                       char *err, size_t errlen)
{
    const char *what = is_default ? " (in its default)" : "";
    switch (s->type) {
    case CC_SET_STRING:
        out->s = keep(text, strlen(text));
        return 0;
    case CC_SET_URL:
        if (!valid_url(s->name, text)) {
            set_err(err, errlen, "%s: must be a URL of the form scheme://...%s%s", s->name,
                    libpq_name(s->name) ? " or a libpq key=value string" : "", what);
            return CC_EINVAL;
        }
        out->s = keep(text, strlen(text));
        return 0;
    case CC_SET_BOOL:
        if (parse_bool(text, &out->b) != 0) {
            set_err(err, errlen, "%s: must be true or false (or 1/0, yes/no, on/off)%s", s->name,
                    what);
            return CC_EINVAL;
        }
        return 0;
    case CC_SET_INT:
        if (parse_int(text, &out->i) != 0 ||
            (!unbounded(s) && (out->i < s->min || out->i > s->max))) {
            if (unbounded(s))
                set_err(err, errlen, "%s: must be an integer%s", s->name, what);
            else
                set_err(err, errlen, "%s: must be an integer between %" PRId64 " and %" PRId64 "%s",
                        s->name, s->min, s->max, what);
            return CC_EINVAL;
        }
        return 0;
    case CC_SET_SIZE:
        if (parse_size(text, &out->i) != 0 ||
            (!unbounded(s) && (out->i < s->min || out->i > s->max))) {
            if (unbounded(s))
                set_err(err, errlen,
                        "%s: must be a size in bytes with an optional k, m or g suffix%s", s->name,
                        what);
            else
                set_err(err, errlen,
                        "%s: must be a size in bytes with an optional k, m or g suffix, between "
                        "%" PRId64 " and %" PRId64 "%s",
                        s->name, s->min, s->max, what);
            return CC_EINVAL;
        }
        return 0;
    }
    set_err(err, errlen, "%s: unknown setting type", s->name);
    return CC_EINVAL;
}

static void assign(const cc_setting_t *s, const union parsed *v)
{
    if (s->target == NULL)
        return;
    switch (s->type) {
    case CC_SET_STRING:
    case CC_SET_URL:
        *(const char **)s->target = v->s;
        break;
    case CC_SET_INT:
    case CC_SET_SIZE:
        *(int64_t *)s->target = v->i;
        break;
    case CC_SET_BOOL:
        *(bool *)s->target = v->b;
        break;
    }
}

int cc_config_load(const cc_setting_t *table, size_t n, char *err, size_t errlen)
{
    int rc = CC_EINVAL;
    size_t mark = storage_len;
    struct file f;
    union parsed *vals = cc_calloc(n ? n : 1, sizeof(*vals));

    set_err(err, errlen, "%s", "");
    cc_config_register(table, n);
    if (file_load(&f, err, errlen) != 0)
        goto Exit;
    for (size_t i = 0; i < f.n; i++) {
        if (checked_key(f.entries[i].key) && !registered(f.entries[i].key)) {
            set_err(err, errlen, "%s: unknown setting (CONSOLE_CONFIG_FILE line %d)",
                    f.entries[i].key, f.entries[i].line);
            goto Exit;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const cc_setting_t *s = &table[i];
        const char *text = getenv(s->name);
        if (text == NULL || *text == '\0') {
            const struct entry *e = file_find(&f, s->name);
            text = e != NULL ? e->value : NULL;
        }
        bool is_default = false;
        if (text == NULL || *text == '\0') {
            text = s->def;
            is_default = true;
        }
        if (text == NULL || (*text == '\0' && s->type != CC_SET_STRING)) {
            if (s->required) {
                set_err(err, errlen, "%s: is required", s->name);
                goto Exit;
            }
            memset(&vals[i], 0, sizeof(vals[i]));
            continue;
        }
        if (*text == '\0' && s->required) {
            set_err(err, errlen, "%s: is required", s->name);
            goto Exit;
        }
        if (parse_value(s, text, is_default, &vals[i], err, errlen) != 0)
            goto Exit;
    }
    for (size_t i = 0; i < n; i++)
        assign(&table[i], &vals[i]);
    rc = 0;

Exit:
    if (rc != 0)
        release_since(mark);
    file_free(&f);
    free(vals);
    return rc;
}

/*
 * Appends a URL with the password of its userinfo (scheme://user:password@host) masked;
 * a value mentioning "password" anywhere else (a query parameter, a libpq key=value
 * string) is masked whole.
 */
static void put_url(cc_buf_t *b, const char *url)
{
    if (strstr(url, "password") != NULL) {
        cc_buf_puts(b, "***");
        return;
    }
    const char *sep = strstr(url, "://");
    if (sep != NULL) {
        const char *auth = sep + 3, *at = NULL;
        size_t alen = strcspn(auth, "/?#");
        for (const char *q = auth; q < auth + alen; q++)
            if (*q == '@')
                at = q; /* the last '@' of the authority ends the userinfo */
        const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon != NULL) {
            cc_buf_append(b, url, (size_t)(colon + 1 - url));
            cc_buf_puts(b, "***");
            cc_buf_puts(b, at);
            return;
        }
    }
    cc_buf_puts(b, url);
}

char *cc_config_dump(const cc_setting_t *table, size_t n)
{
    cc_buf_t b = {0};
    cc_buf_reserve(&b, 0); /* an empty table still gives "" */
    for (size_t i = 0; i < n; i++) {
        const cc_setting_t *s = &table[i];
        cc_buf_printf(&b, "%s=", s->name);
        if (s->target == NULL) {
            cc_buf_putc(&b, '\n');
            continue;
        }
        switch (s->type) {
        case CC_SET_STRING:
        case CC_SET_URL: {
            const char *v = *(const char *const *)s->target;
            if (v == NULL)
                break;
            if (s->secret)
                cc_buf_puts(&b, "***");
            else if (s->type == CC_SET_URL)
                put_url(&b, v);
            else
                cc_buf_puts(&b, v);
            break;
        }
        case CC_SET_INT:
        case CC_SET_SIZE:
            if (s->secret)
                cc_buf_puts(&b, "***");
            else
                cc_buf_printf(&b, "%" PRId64, *(const int64_t *)s->target);
            break;
        case CC_SET_BOOL:
            if (s->secret)
                cc_buf_puts(&b, "***");
            else
                cc_buf_puts(&b, *(const bool *)s->target ? "true" : "false");
            break;
        }
        cc_buf_putc(&b, '\n');
    }
    return cc_buf_steal(&b, NULL);
}
