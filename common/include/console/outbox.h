/*
 * Transactional outbox. A service writes events into its own <schema>.outbox table in
 * the same transaction as the change (cc_outbox_emit), and NOTIFY console_outbox wakes
 * consumers at commit. A consumer (its own thread and connection) reads a source
 * schema's outbox in id order after its stored position (in the consumer's
 * <schema>.outbox_positions), calls the handler for each event inside a transaction that
 * also advances the position, so each event is handled once per consumer even across
 * crashes (handlers must still be idempotent: at-least-once with a crash mid-commit is
 * impossible here, but replays after a restore are not). Without notifications it polls
 * every poll_ms.
 */
#ifndef CONSOLE_OUTBOX_H
#define CONSOLE_OUTBOX_H

#include <jansson.h>
#include <stdint.h>

#include "console/db.h"

/**
 * Inserts an event into the current schema's outbox (search_path) inside the caller's
 * open transaction. type e.g. "tenant.deleted"; aggregate_id the entity's id; payload
 * borrowed. Returns 0 or a cc_db_query error.
 */
int cc_outbox_emit(cc_db_t *db, cc_pool_t *pool, const char *type, const char *aggregate_id,
                   json_t *payload);

typedef struct cc_outbox_event {
    int64_t id;
    const char *type;
    const char *aggregate_id;
    json_t *payload; /* borrowed */
    const char *created_at;
} cc_outbox_event_t;

/** Handles one event inside the consumer's transaction; return 0, or <0 to retry later. */
typedef int (*cc_outbox_handler_cb)(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev,
                                    void *arg);

typedef struct cc_outbox_consumer cc_outbox_consumer_t;

/**
 * Starts a consumer thread: reads <source_schema>.outbox, keeps its position in
 * <own schema>.outbox_positions under consumer_name. conninfo/search_path as cc_db_open.
 */
int cc_outbox_consumer_start(const char *conninfo, const char *search_path,
                             const char *source_schema, const char *consumer_name, int poll_ms,
                             cc_outbox_handler_cb handler, void *arg, cc_outbox_consumer_t **out);
/** Stops the thread and frees the consumer. */
void cc_outbox_consumer_stop(cc_outbox_consumer_t *c);

#endif
