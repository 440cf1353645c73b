/*
 * Housekeeping of a service's schema: one thread with its own connection that, at start
 * and then hourly, in system scope (the only scope the DELETE policies allow), removes
 *   - audit records older than the audit retention (CONSOLE_AUDIT_RETENTION_DAYS),
 *   - outbox events older than the outbox retention (CONSOLE_OUTBOX_RETENTION_DAYS):
 *     consumers read them within moments; the retention bounds what a consumer that was
 *     down may still catch up on,
 *   - idempotency keys past their 24 hours (they are ignored after that anyway).
 * cc_service_main runs it in every service with a schema.
 */
#ifndef CONSOLE_HOUSEKEEPING_H
#define CONSOLE_HOUSEKEEPING_H

typedef struct {
    int audit_days;  /* audit records kept this many days */
    int outbox_days; /* outbox events kept this many days */
} cc_housekeeping_t;

/** Starts the thread (search_path: the schema's). Returns 0 or an error. */
int cc_housekeeping_start(const char *conninfo, const char *search_path,
                          const cc_housekeeping_t *settings);
/** Stops it (waits for a pass in progress). */
void cc_housekeeping_stop(void);

#endif
