/*
 * Configuration: one settings table per process (name, type, bounds, default, help),
 * filled from an optional file (CONSOLE_CONFIG_FILE, KEY=VALUE lines, '#' comments) and
 * then the environment, which wins. Validated at start: the first bad or unknown key is
 * named in the error. Secret settings are never printed (cc_config_dump shows "***").
 */
#ifndef CONSOLE_CONFIG_H
#define CONSOLE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cc_setting_type {
    CC_SET_STRING, /* target: const char ** (points into storage owned by the config) */
    CC_SET_INT,    /* target: int64_t *, checked against min..max */
    CC_SET_BOOL,   /* target: bool *; accepts true/false/1/0/yes/no/on/off */
    CC_SET_URL,    /* target: const char **; empty or a URL with scheme://; */
    CC_SET_SIZE,   /* target: int64_t *; bytes with optional k/m/g (KiB/MiB/GiB) suffix */
} cc_setting_type_t;

typedef struct cc_setting {
    const char *name; /* environment variable name, e.g. "CONSOLE_HTTP_PORT" */
    cc_setting_type_t type;
    void *target;
    const char *def; /* default as text; NULL = unset (string NULL, int 0) */
    int64_t min, max;
    bool secret; /* never printed */
    bool required;
    const char *help;
} cc_setting_t;

/**
 * Loads every setting of table[0..n) from the file named by CONSOLE_CONFIG_FILE (if set)
 * and the environment (an empty value counts as not set; INT/SIZE bounds apply unless
 * min and max are both 0; targets are written only when the whole table is valid). Keys
 * in the file that start with CONSOLE_ (or are DATABASE_URL) but are in no table
 * registered so far (earlier loads, cc_config_register, this table) are an error (a typo
 * must not be silently ignored). On failure returns CC_EINVAL and writes "KEY: reason"
 * into err; a value is never echoed. Strings stay valid until cc_config_free. Call at
 * start, before threads.
 */
int cc_config_load(const cc_setting_t *table, size_t n, char *err, size_t errlen);

/**
 * Declares the keys of table[0..n) as known without loading them. A process with several
 * tables registers all of them before its first cc_config_load, so that the file check
 * (which only knows the tables registered so far plus the one being loaded) accepts keys
 * of the tables loaded later. A process with one table need not call it.
 */
void cc_config_register(const cc_setting_t *table, size_t n);

/** Frees string storage of every load and forgets the registered tables. */
void cc_config_free(void);

/** Writes "KEY=value" lines (secrets masked) into a heap string; caller frees. */
char *cc_config_dump(const cc_setting_t *table, size_t n);

#endif
