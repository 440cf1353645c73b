/*
 * PostgreSQL layer on libpq.
 *
 * Model: request handlers run on worker threads (see http.h); each worker owns one
 * cc_db_t connection for its whole life, so the worker pool *is* the connection pool
 * and its job queue is the FIFO wait queue. Calls here block the calling worker, never
 * an event loop. A cc_db_t is not shared between threads.
 *
 * Only parameterized statements: SQL text is a constant of the program (cc_stmt_t),
 * values travel as parameters. Statements are prepared lazily per connection and
 * re-prepared after a reconnect.
 *
 * Row-level security: cc_db_begin() opens a transaction and sets the caller's scope
 * with set_config(..., true) (transaction-local, PgBouncer transaction-mode safe):
 *   console.tenant_id, console.msp_id, console.principal_id, console.system,
 *   console.platform and console.msp_wide ('on'/'off') and console.paths (the subtrees
 *   a caller confined below its root account may see; see console/authz.h).
 */
#ifndef CONSOLE_DB_H
#define CONSOLE_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "console/mem.h"

typedef struct cc_db cc_db_t;

/** A constant statement. Define with CC_STMT; the name must be unique in the program. */
typedef struct cc_stmt {
    const char *name;
    const char *sql;
    int nparams;
} cc_stmt_t;
#define CC_STMT(n, s, np)                                                                          \
    {                                                                                              \
        .name = (n), .sql = (s), .nparams = (np)                                                   \
    }

/** The caller's scope for row-level security; NULL fields are set to ''. */
typedef struct cc_scope {
    const char *tenant_id;
    const char *msp_id;
    const char *principal_id;
    bool system;       /* trusted background work (migrations, outbox consumers, bootstrap) */
    bool platform;     /* the caller acts for the platform operator: every MSP's rows */
    bool msp_wide;     /* every row of msp_id (the caller holds a grant on the root account) */
    const char *paths; /* else: the subtrees it may see, ltree paths separated by spaces */
} cc_scope_t;

/**
 * Opens a connection (blocking). search_path (may be NULL) is set for the session,
 * e.g. "tenants, public". application_name is set to app_name. Returns 0,
 * CC_EDBDOWN (unreachable; *out is still set and will reconnect on next use) or CC_EINVAL.
 */
int cc_db_open(const char *conninfo, const char *app_name, const char *search_path, cc_db_t **out);
void cc_db_close(cc_db_t *db);

/** The raw connection, for COPY and LISTEN users. */
PGconn *cc_db_conn(cc_db_t *db);

/**
 * Sets statement_timeout for the session (0 = none; the default is 30 s) and re-applies it
 * after every reconnect. Call outside a transaction. Returns 0, CC_EINVAL, CC_EDB or
 * CC_EDBDOWN (the value is kept and applied at the next connect).
 */
int cc_db_set_statement_timeout_ms(cc_db_t *db, int ms);

/**
 * Session set-up run after every (re)connect, once search_path and statement_timeout are
 * set, e.g. LISTEN. It gets the raw connection (use libpq directly on it, not cc_db_*)
 * and returns 0 or <0 (the connection is then treated as down).
 */
typedef int (*cc_db_connect_cb)(PGconn *conn, void *arg);

/**
 * Installs cb (NULL removes it) and, when the connection is up now, runs it at once.
 * Returns 0 or what cb returned.
 */
int cc_db_set_on_connect(cc_db_t *db, cc_db_connect_cb cb, void *arg);

/**
 * Runs stmt with params (stmt->nparams strings, NULL = SQL NULL). On success *res
 * (may be NULL when the caller needs no rows) is registered on pool for PQclear; with
 * pool NULL the caller owns *res and PQclear()s it. On failure *res is NULL.
 * Outside a transaction, a broken connection is re-established and the statement
 * retried once. Returns 0, CC_EDB (statement failed: see cc_db_sqlstate), CC_EDBDOWN, or
 * CC_EINVAL (the server counts a different number of parameters than stmt->nparams).
 */
int cc_db_query(cc_db_t *db, cc_pool_t *pool, const cc_stmt_t *stmt, const char *const *params,
                PGresult **res);

/** A chunk of rows of cc_db_each (valid only during the call); non-zero stops the walk. */
typedef int (*cc_db_each_cb)(const PGresult *rows, void *arg);
/**
 * Streams the rows of stmt with params through a cursor, chunk rows at a time: each() sees
 * every chunk in order, so the caller holds one chunk however many rows there are (an
 * export of a million lines). Must run inside a transaction (cc_db_begin): the rows come
 * from its snapshot; the caller commits or rolls back after. Returns 0, CC_EDB,
 * CC_EDBDOWN (the transaction is lost), CC_EINVAL, or the non-zero value each() returned.
 */
int cc_db_each(cc_db_t *db, const cc_stmt_t *stmt, const char *const *params, int chunk,
               cc_db_each_cb each, void *arg);

/** Runs constant SQL without parameters (DDL, LISTEN). Same returns as cc_db_query. */
int cc_db_exec(cc_db_t *db, const char *sql);

/** BEGIN + the scope settings. Returns 0, CC_EDB or CC_EDBDOWN. */
int cc_db_begin(cc_db_t *db, const cc_scope_t *scope);
int cc_db_commit(cc_db_t *db);

/**
 * A read in one round trip: BEGIN READ ONLY, the scope, stmt with params, COMMIT, sent
 * together (pipeline mode). For handlers that need one query: the same row-level-security
 * scope as cc_db_begin, a third of its round trips. Must not be called inside an open
 * transaction. *res (registered on pool when pool is not NULL) as cc_db_query. A lost
 * connection is re-established and the read retried once. Returns 0, CC_EDB, CC_EDBDOWN
 * or CC_EINVAL.
 */
int cc_db_read(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const cc_stmt_t *stmt,
               const char *const *params, PGresult **res);
/** One statement of cc_db_read_many: its parameters and where its result goes. */
typedef struct cc_db_step {
    const cc_stmt_t *stmt;
    const char *const *params;
    PGresult **res;
} cc_db_step_t;
#define CC_DB_READ_MAX 8
/**
 * cc_db_read with up to CC_DB_READ_MAX statements in the same read-only transaction and
 * the same round trip (e.g. a page and its total count). On failure every *res is NULL.
 */
int cc_db_read_many(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope,
                    const cc_db_step_t *steps, size_t n);
/** Rolls back if a transaction is open; safe to call in any state. */
void cc_db_rollback(cc_db_t *db);
/** True while a transaction is open on this connection. */
bool cc_db_in_tx(cc_db_t *db);

/** SQLSTATE of the last failed statement ("23505" unique violation, …; kept until the next
 * failure) or "" when none failed yet. */
const char *cc_db_sqlstate(cc_db_t *db);
/** The server's message of the last failure, for the log only (never for a client). */
const char *cc_db_errmsg(cc_db_t *db);

/** True when the connection is up (a cheap status check, then SELECT 1 if idle). */
bool cc_db_ping(cc_db_t *db);

/** Helpers over a result: value of row r, column c, or NULL when SQL NULL. */
const char *cc_db_get(const PGresult *res, int r, int c);
/**
 * A `timestamp` column selected as `col AT TIME ZONE 'UTC'` (ISO DateStyle, the server
 * default) as RFC 3339 with microseconds, "2026-11-23T07:12:46.123400Z", in pool memory;
 * NULL when SQL NULL. Cheaper for the server than to_char on every row.
 */
const char *cc_db_get_time(cc_pool_t *pool, const PGresult *res, int r, int c);

#endif
