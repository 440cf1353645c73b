/*
 * Logging: one JSON object per line on stderr, carrying the service name, the level,
 * and the request id and tenant id of the request being served on this thread.
 *
 * Never pass a secret, token, password or SQL text with parameters to these functions.
 * Thread-safe: each line is written with one write(2).
 */
#ifndef CONSOLE_LOG_H
#define CONSOLE_LOG_H

#include <jansson.h>
#include <stdbool.h>

typedef enum cc_log_level {
    CC_LOG_DEBUG = 0,
    CC_LOG_INFO = 1,
    CC_LOG_WARN = 2,
    CC_LOG_ERROR = 3,
} cc_log_level_t;

/** Sets the service name and minimum level. Call once at start, before threads. */
void cc_log_init(const char *service, cc_log_level_t level);
/** Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int cc_log_level_parse(const char *s);
/** True when a message at level would be written (check before costly formatting). */
bool cc_log_enabled(cc_log_level_t level);

/** Sets this thread's request context (strings are copied); NULL clears a field. */
void cc_log_set_context(const char *request_id, const char *tenant_id);

/** Writes one line; fields (borrowed, may be NULL) are merged into the object. */
void cc_log_write(cc_log_level_t level, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Redirects output to fd (tests); -1 restores stderr. */
void cc_log_set_fd(int fd);

#define cc_log_debug(...)                                                                          \
    do {                                                                                           \
        if (cc_log_enabled(CC_LOG_DEBUG))                                                          \
            cc_log_write(CC_LOG_DEBUG, NULL, __VA_ARGS__);                                         \
    } while (0)
#define cc_log_info(...)                                                                           \
    do {                                                                                           \
        if (cc_log_enabled(CC_LOG_INFO))                                                           \
            cc_log_write(CC_LOG_INFO, NULL, __VA_ARGS__);                                          \
    } while (0)
#define cc_log_warn(...) cc_log_write(CC_LOG_WARN, NULL, __VA_ARGS__)
#define cc_log_error(...) cc_log_write(CC_LOG_ERROR, NULL, __VA_ARGS__)

#endif
