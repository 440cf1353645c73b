/*
 * PostgreSQL layer: one blocking libpq connection per worker thread.
 *
 * A cc_db_t keeps its PGconn for its whole life and re-establishes it with PQreset()
 * (same parameters, connect_timeout 3 s unless the conninfo says otherwise), so the
 * pointer cc_db_conn() returns stays valid. After every connect the session is set up
 * again (search_path, statement_timeout, the on_connect hook) and the set of prepared
 * statements is emptied: statements are prepared lazily, once per connection.
 *
 * A lost connection is noticed either before a statement is sent (an idle socket that
 * turned readable: the server's FATAL message and EOF) or by the failed statement.
 * Outside a transaction the statement is then retried once on a new connection; inside
 * one the transaction is marked broken and every call answers CC_EDBDOWN until the
 * caller rolls back, so nothing of a half-done transaction runs in autocommit.
 */
#include "console/db.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/errors.h"
#include "console/log.h"

#define DEFAULT_STATEMENT_TIMEOUT_MS 30000
#define MAX_STMT_NAME 63 /* NAMEDATALEN - 1: longer names would be truncated by the server */
#define LOST 1           /* internal: the connection went away during the call */

/* A statement prepared on the current connection. */
typedef struct prepared {
    char *name; /* NULL: empty slot */
    const char *sql;
    bool bad; /* parameter count differs from the cc_stmt_t: refused */
} prepared_t;

struct cc_db {
    PGconn *conn;
    char *search_path; /* NULL: server default */
    int statement_timeout_ms;
    bool ready;     /* connected and the session set up */
    bool tx_open;   /* a transaction is open, as the caller sees it */
    bool tx_broken; /* the connection was lost inside that transaction */
    bool down_logged;
    bool poisoned; /* protocol state unknown: reconnect before the next statement */
    cc_db_connect_cb on_connect;
    void *on_connect_arg;
    prepared_t *prepared; /* open addressing, cap a power of two */
    size_t nprepared, cap;
    char sqlstate[6];
    char errmsg[512];
};

static const cc_stmt_t scope_stmt = CC_STMT("cc_db_scope",
                                            "SELECT set_config('console.tenant_id', $1, true), "
                                            "set_config('console.msp_id', $2, true), "
                                            "set_config('console.principal_id', $3, true), "
                                            "set_config('console.system', $4, true), "
                                            "set_config('console.platform', $5, true), "
                                            "set_config('console.msp_wide', $6, true), "
                                            "set_config('console.paths', $7, true)",
                                            7);
#define SCOPE_NPARAMS 7

/* The parameters of scope_stmt for a scope (NULL: no tenant, no privileges). */
static void scope_params_of(const cc_scope_t *scope, const char *params[SCOPE_NPARAMS])
{
    params[0] = scope && scope->tenant_id ? scope->tenant_id : "";
    params[1] = scope && scope->msp_id ? scope->msp_id : "";
    params[2] = scope && scope->principal_id ? scope->principal_id : "";
    params[3] = scope && scope->system ? "on" : "off";
    params[4] = scope && scope->platform ? "on" : "off";
    params[5] = scope && scope->msp_wide ? "on" : "off";
    params[6] = scope && scope->paths ? scope->paths : "";
}

/* ---- errors and logging ---- */

static void set_error(cc_db_t *db, const char *sqlstate, const char *msg)
{
    snprintf(db->sqlstate, sizeof(db->sqlstate), "%s", sqlstate ? sqlstate : "");
    snprintf(db->errmsg, sizeof(db->errmsg), "%s", msg ? msg : "");
    size_t n = strlen(db->errmsg);
    while (n > 0 && (db->errmsg[n - 1] == '\n' || db->errmsg[n - 1] == ' '))
        db->errmsg[--n] = '\0';
}

static void set_error_from(cc_db_t *db, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL)
        msg = PQerrorMessage(db->conn);
    if (state == NULL)
        state = PQstatus(db->conn) == CONNECTION_BAD ? "08006" : "";
    set_error(db, state, msg);
}

static void add_field(json_t *o, const char *k, const char *v)
{
    if (v != NULL && *v != '\0')
        json_object_set_new(o, k, json_string(v));
}

/*
 * Logs a failed statement with its SQLSTATE, the statement's name and the schema objects
 * involved; never the message (it may quote a parameter value). Expected outcomes the
 * caller maps to an answer (integrity violations, serialization failures) go to debug.
 */
static void log_failure(cc_db_t *db, const char *what, const PGresult *r)
{
    bool expected = strncmp(db->sqlstate, "23", 2) == 0 || strcmp(db->sqlstate, "40001") == 0 ||
                    strcmp(db->sqlstate, "40P01") == 0;
    cc_log_level_t level = expected ? CC_LOG_DEBUG : CC_LOG_WARN;
    if (!cc_log_enabled(level))
        return;
    json_t *f = json_object();
    add_field(f, "sqlstate", db->sqlstate);
    add_field(f, "stmt", what);
    if (r != NULL) {
        add_field(f, "schema", PQresultErrorField(r, PG_DIAG_SCHEMA_NAME));
        add_field(f, "table", PQresultErrorField(r, PG_DIAG_TABLE_NAME));
        add_field(f, "column", PQresultErrorField(r, PG_DIAG_COLUMN_NAME));
        add_field(f, "constraint", PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME));
    }
    cc_log_write(level, f, "database statement failed");
    json_decref(f);
}

static void log_lost(cc_db_t *db, const char *what, const char *outcome)
{
    json_t *f = json_object();
    add_field(f, "stmt", what);
    cc_log_write(CC_LOG_WARN, f, "database connection lost: %s", outcome);
    json_decref(f);
}

/* Server notices (and a FATAL message that arrives while idle) go to the log. */
static void on_notice(void *arg, const PGresult *r)
{
    (void)arg;
    const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    cc_log_level_t level = (sev != NULL && strcmp(sev, "FATAL") == 0) ? CC_LOG_INFO : CC_LOG_DEBUG;
    if (!cc_log_enabled(level))
        return;
    json_t *f = json_object();
    add_field(f, "severity", sev);
    add_field(f, "sqlstate", PQresultErrorField(r, PG_DIAG_SQLSTATE));
    cc_log_write(level, f, "database notice");
    json_decref(f);
}

/* ---- prepared statements of the current connection ---- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static prepared_t *prepared_find(cc_db_t *db, const char *name)
{
    if (db->cap == 0)
        return NULL;
    for (size_t i = hash_name(name) & (db->cap - 1);; i = (i + 1) & (db->cap - 1)) {
        prepared_t *p = &db->prepared[i];
        if (p->name == NULL)
            return NULL;
        if (strcmp(p->name, name) == 0)
            return p;
    }
}

static void prepared_grow(cc_db_t *db)
{
    prepared_t *old = db->prepared;
    size_t oldcap = db->cap;
    db->cap = oldcap ? oldcap * 2 : 32;
    db->prepared = cc_calloc(db->cap, sizeof(*db->prepared));
    db->nprepared = 0;
    for (size_t i = 0; i < oldcap; i++) {
        if (old[i].name == NULL)
            continue;
        for (size_t j = hash_name(old[i].name) & (db->cap - 1);; j = (j + 1) & (db->cap - 1)) {
            if (db->prepared[j].name == NULL) {
                db->prepared[j] = old[i];
                db->nprepared++;
                break;
            }
        }
    }
    free(old);
}

static void prepared_put(cc_db_t *db, const cc_stmt_t *stmt, bool bad)
{
    if ((db->nprepared + 1) * 2 > db->cap)
        prepared_grow(db);
    for (size_t i = hash_name(stmt->name) & (db->cap - 1);; i = (i + 1) & (db->cap - 1)) {
        prepared_t *p = &db->prepared[i];
        if (p->name == NULL) {
            p->name = cc_strdup(stmt->name);
            p->sql = stmt->sql;
            p->bad = bad;
            db->nprepared++;
            return;
        }
    }
}

static void prepared_clear(cc_db_t *db)
{
    for (size_t i = 0; i < db->cap; i++) {
        free(db->prepared[i].name);
        db->prepared[i].name = NULL;
    }
    db->nprepared = 0;
}

/* ---- connection ---- */

/* search_path: a comma-separated list of lower-case identifiers (a program constant). */
static bool valid_search_path(const char *s)
{
    bool need_ident = true;
    for (const char *p = s; *p;) {
        if (*p == ' ') {
            p++;
        } else if (need_ident && ((*p >= 'a' && *p <= 'z') || *p == '_')) {
            while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
                p++;
            need_ident = false;
        } else if (!need_ident && *p == ',') {
            p++;
            need_ident = true;
        } else {
            return false;
        }
    }
    return !need_ident && strlen(s) < 1024;
}

static void sync_tx(cc_db_t *db)
{
    switch (PQtransactionStatus(db->conn)) {
    case PQTRANS_IDLE:
        db->tx_open = false;
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        db->tx_open = true;
        break;
    default:
        break;
    }
}

/*
 * True when the connection looks usable. An idle socket that is readable carries either
 * a notification or the server's goodbye (FATAL then EOF): consume it to find out.
 */
static bool conn_alive(cc_db_t *db)
{
    if (db->poisoned || PQstatus(db->conn) != CONNECTION_OK)
        return false;
    for (int i = 0; i < 4; i++) {
        struct pollfd pfd = {.fd = PQsocket(db->conn), .events = POLLIN};
        if (pfd.fd < 0)
            return false;
        if (poll(&pfd, 1, 0) <= 0)
            return true;
        if (!PQconsumeInput(db->conn) || PQstatus(db->conn) != CONNECTION_OK)
            return false;
    }
    return PQstatus(db->conn) == CONNECTION_OK;
}

static int lost_or(cc_db_t *db, int rc)
{
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        db->ready = false;
        return CC_EDBDOWN;
    }
    return rc;
}

/* search_path, statement_timeout and the hook, on a freshly connected session. */
static int session_setup(cc_db_t *db)
{
    int rc = 0;
    char sql[1200];
    size_t o = 0;
    if (db->search_path != NULL)
        o += (size_t)snprintf(sql + o, sizeof(sql) - o, "SET search_path TO %s; ", db->search_path);
    /* ISO dates and UTC whatever the server's defaults: cc_db_get_time relies on them */
    snprintf(sql + o, sizeof(sql) - o,
             "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET statement_timeout = %d",
             db->statement_timeout_ms);
    PGresult *r = PQexec(db->conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        set_error_from(db, r);
        log_failure(db, "session_setup", r);
        rc = lost_or(db, CC_EDB);
        goto Exit;
    }
    if (db->on_connect != NULL && (rc = db->on_connect(db->conn, db->on_connect_arg)) < 0) {
        set_error(db, "", "the on_connect hook failed");
        cc_log_warn("database session set-up hook failed: %s", cc_strerror(rc));
        rc = lost_or(db, rc);
        goto Exit;
    }
    db->ready = true;
Exit:
    PQclear(r);
    return rc;
}

static int reconnect(cc_db_t *db)
{
    db->ready = false;
    db->tx_open = false;
    db->tx_broken = false;
    db->poisoned = false;
    prepared_clear(db);
    PQreset(db->conn);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        set_error(db, "08001", PQerrorMessage(db->conn));
        if (!db->down_logged) {
            cc_log_warn("database unreachable: %s", db->errmsg);
            db->down_logged = true;
        }
        return CC_EDBDOWN;
    }
    if (db->down_logged) {
        cc_log_info("database connection re-established");
        db->down_logged = false;
    }
    return session_setup(db);
}

/* 0 when the connection is usable for the next statement. */
static int ensure_connected(cc_db_t *db, const char *what)
{
    if (db->tx_broken) {
        set_error(db, "08006", "the connection was lost inside the transaction");
        return CC_EDBDOWN;
    }
    if (conn_alive(db))
        return db->ready ? 0 : session_setup(db);
    db->ready = false;
    if (db->tx_open) {
        db->tx_broken = true;
        set_error(db, "08006", "the connection was lost inside the transaction");
        log_lost(db, what, "the open transaction is lost");
        return CC_EDBDOWN;
    }
    return reconnect(db);
}

/* ---- statements ---- */

/* Prepares stmt on this connection unless done. Returns 0, CC_EDB, CC_EINVAL or LOST. */
static int ensure_prepared(cc_db_t *db, const cc_stmt_t *stmt)
{
    int rc = 0;
    PGresult *r = NULL;
    prepared_t *p = prepared_find(db, stmt->name);
    if (p != NULL) {
        if (p->sql != stmt->sql && strcmp(p->sql, stmt->sql) != 0) {
            set_error(db, "", "two statements share a name");
            cc_log_error("statement name %s is used for two different statements", stmt->name);
            return CC_EINVAL;
        }
        if (p->bad) {
            set_error(db, "", "parameter count mismatch");
            return CC_EINVAL;
        }
        return 0;
    }
    r = PQprepare(db->conn, stmt->name, stmt->sql, 0, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto Failed;
    PQclear(r);
    r = PQdescribePrepared(db->conn, stmt->name);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        goto Failed;
    bool bad = PQnparams(r) != stmt->nparams;
    prepared_put(db, stmt, bad);
    if (bad) {
        set_error(db, "", "parameter count mismatch");
        cc_log_error("statement %s declares %d parameters but its SQL has %d", stmt->name,
                     stmt->nparams, PQnparams(r));
        rc = CC_EINVAL;
    }
    goto Exit;
Failed:
    set_error_from(db, r);
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        rc = LOST;
    } else {
        sync_tx(db);
        log_failure(db, stmt->name, r);
        rc = CC_EDB;
    }
Exit:
    PQclear(r);
    return rc;
}

/*
 * Runs a prepared statement (stmt) or constant SQL (sql) once on a connected session.
 * Returns 0 with *out set, CC_EDB, CC_EINVAL or LOST.
 */
static int run_once(cc_db_t *db, const cc_stmt_t *stmt, const char *sql, const char *const *params,
                    PGresult **out)
{
    PGresult *r;
    if (stmt != NULL) {
        int rc = ensure_prepared(db, stmt);
        if (rc != 0)
            return rc;
        r = PQexecPrepared(db->conn, stmt->name, stmt->nparams, params, NULL, NULL, 0);
    } else {
        r = PQexec(db->conn, sql);
    }
    switch (PQresultStatus(r)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
        sync_tx(db);
        *out = r;
        return 0;
    default:
        break;
    }
    set_error_from(db, r);
    int rc;
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        rc = LOST;
    } else {
        sync_tx(db);
        log_failure(db, stmt ? stmt->name : "exec", r);
        rc = CC_EDB;
    }
    PQclear(r);
    return rc;
}

/* run_once with the reconnect policy: outside a transaction, one retry on a new session. */
static int run(cc_db_t *db, const cc_stmt_t *stmt, const char *sql, const char *const *params,
               PGresult **out)
{
    const char *what = stmt ? stmt->name : "exec";
    *out = NULL;
    for (int attempt = 0;; attempt++) {
        int rc = ensure_connected(db, what);
        if (rc != 0)
            return rc;
        rc = run_once(db, stmt, sql, params, out);
        if (rc != LOST)
            return rc;
        db->ready = false;
        if (db->tx_open) {
            db->tx_broken = true;
            log_lost(db, what, "the open transaction is lost");
            return CC_EDBDOWN;
        }
        if (attempt > 0) {
            log_lost(db, what, "the retry failed too");
            return CC_EDBDOWN;
        }
        log_lost(db, what, "reconnecting and retrying the statement once");
    }
}

static void clear_result(void *p)
{
    PQclear(p);
}

/* ---- public ---- */

int cc_db_open(const char *conninfo, const char *app_name, const char *search_path, cc_db_t **out)
{
    int rc = 0;
    *out = NULL;
    if (conninfo == NULL || (search_path != NULL && !valid_search_path(search_path)))
        return CC_EINVAL;
    if (strchr(conninfo, '=') != NULL || strncmp(conninfo, "postgres", 8) == 0) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
        if (opts == NULL) {
            /* libpq's message may quote part of the string, a password included: not logged */
            cc_log_error("invalid database connection string");
            PQfreemem(err);
            return CC_EINVAL;
        }
        PQconninfoFree(opts);
    }
    cc_db_t *db = cc_calloc(1, sizeof(*db));
    db->search_path = cc_strdup(search_path);
    db->statement_timeout_ms = DEFAULT_STATEMENT_TIMEOUT_MS;
    /* Processed in order: the conninfo may override connect_timeout, not application_name. */
    const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
    const char *vals[] = {"3", conninfo, app_name, NULL};
    if (app_name == NULL)
        keys[2] = NULL;
    db->conn = PQconnectdbParams(keys, vals, 1);
    if (db->conn == NULL) {
        fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory in PQconnectdbParams\"}\n");
        abort();
    }
    PQsetNoticeReceiver(db->conn, on_notice, db);
    if (PQstatus(db->conn) != CONNECTION_OK) {
        set_error(db, "08001", PQerrorMessage(db->conn));
        cc_log_warn("database unreachable: %s", db->errmsg);
        db->down_logged = true;
        rc = CC_EDBDOWN;
        goto Exit;
    }
    rc = session_setup(db);
Exit:
    *out = db;
    return rc;
}

void cc_db_close(cc_db_t *db)
{
    if (db == NULL)
        return;
    PQfinish(db->conn); /* the server rolls back an open transaction */
    prepared_clear(db);
    free(db->prepared);
    free(db->search_path);
    free(db);
}

PGconn *cc_db_conn(cc_db_t *db)
{
    return db->conn;
}

int cc_db_set_statement_timeout_ms(cc_db_t *db, int ms)
{
    if (ms < 0 || db->tx_open)
        return CC_EINVAL;
    db->statement_timeout_ms = ms;
    char sql[64];
    snprintf(sql, sizeof(sql), "SET statement_timeout = %d", ms);
    return cc_db_exec(db, sql);
}

int cc_db_set_on_connect(cc_db_t *db, cc_db_connect_cb cb, void *arg)
{
    db->on_connect = cb;
    db->on_connect_arg = arg;
    if (cb == NULL || !db->ready || !conn_alive(db))
        return 0;
    int rc = cb(db->conn, arg);
    if (rc < 0)
        db->ready = false; /* run again with the next statement */
    return rc;
}

int cc_db_query(cc_db_t *db, cc_pool_t *pool, const cc_stmt_t *stmt, const char *const *params,
                PGresult **res)
{
    PGresult *r = NULL;
    if (res != NULL)
        *res = NULL;
    if (stmt == NULL || stmt->name == NULL || stmt->name[0] == '\0' ||
        strlen(stmt->name) > MAX_STMT_NAME || stmt->sql == NULL || stmt->nparams < 0 ||
        (stmt->nparams > 0 && params == NULL))
        return CC_EINVAL;
    int rc = run(db, stmt, NULL, params, &r);
    if (rc != 0)
        return rc;
    if (res == NULL)
        PQclear(r);
    else {
        *res = r;
        if (pool != NULL)
            cc_pool_defer(pool, clear_result, r);
    }
    return 0;
}

/* The outcome of a statement run inside cc_db_each's transaction: 0, CC_EDB or
 * CC_EDBDOWN (the transaction is lost with the connection). Clears r unless kept. */
static int each_result(cc_db_t *db, PGresult *r, const char *what, bool keep)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (!keep)
            PQclear(r);
        return 0;
    }
    set_error_from(db, r);
    int rc = CC_EDB;
    if (PQstatus(db->conn) == CONNECTION_BAD) {
        db->ready = false;
        db->tx_broken = true;
        log_lost(db, what, "the open transaction is lost");
        rc = CC_EDBDOWN;
    } else {
        sync_tx(db);
        log_failure(db, what, r);
    }
    PQclear(r);
    return rc;
}

int cc_db_each(cc_db_t *db, const cc_stmt_t *stmt, const char *const *params, int chunk,
               cc_db_each_cb each, void *arg)
{
    if (stmt == NULL || stmt->sql == NULL || stmt->nparams < 0 ||
        (stmt->nparams > 0 && params == NULL) || chunk < 1 || each == NULL)
        return CC_EINVAL;
    if (!db->tx_open || db->tx_broken) {
        cc_log_error("cc_db_each outside an open transaction");
        return CC_EINVAL;
    }
    /* unnamed and unprepared: DECLARE cannot be a named prepared statement, and an export
     * is not hot enough for the parse to matter */
    char *sql = cc_aprintf("DECLARE cc_each NO SCROLL CURSOR FOR %s", stmt->sql);
    int rc =
        each_result(db, PQexecParams(db->conn, sql, stmt->nparams, NULL, params, NULL, NULL, 0),
                    stmt->name, false);
    free(sql);
    char fetch[64];
    snprintf(fetch, sizeof(fetch), "FETCH FORWARD %d FROM cc_each", chunk);
    while (rc == 0) {
        PGresult *r = PQexec(db->conn, fetch);
        rc = each_result(db, r, stmt->name, true);
        if (rc != 0)
            break;
        int rows = PQntuples(r);
        if (rows > 0)
            rc = each(r, arg);
        PQclear(r);
        if (rows < chunk)
            break;
    }
    if (rc == 0)
        rc = each_result(db, PQexec(db->conn, "CLOSE cc_each"), stmt->name, false);
    return rc;
}

int cc_db_exec(cc_db_t *db, const char *sql)
{
    PGresult *r = NULL;
    int rc = run(db, NULL, sql, NULL, &r);
    PQclear(r);
    return rc;
}

/*
 * BEGIN and the scope statement in one round trip (pipeline mode). Returns 0, CC_EDB,
 * CC_EINVAL or LOST. The connection leaves pipeline mode before returning.
 */
/*
 * Collects the results of n commands sent in pipeline mode, after sending the sync. The
 * first error is recorded and logged (names[i] labels command i); rc is that of the
 * sending. When keep >= 0 and command keep succeeds, its result goes to *kept. Leaves
 * pipeline mode. Returns 0, CC_EDB or LOST (the connection is gone, or out of step with
 * the server: then the session is poisoned and started over).
 */
static int pipeline_collect(cc_db_t *db, int rc, const char *const *names, int n, PGresult **kept)
{
    PGconn *conn = db->conn;
    bool synced = false;
    if (PQpipelineSync(conn)) {
        /* Results: each command's, then NULL; then SYNC. After an error the rest are
         * PIPELINE_ABORTED. */
        int index = 0;
        for (int nulls = 0; nulls < 4;) {
            PGresult *r = PQgetResult(conn);
            if (r == NULL) {
                if (PQstatus(conn) == CONNECTION_BAD)
                    break;
                nulls++;
                index++;
                continue;
            }
            nulls = 0;
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                synced = true;
                break;
            }
            if (st == PGRES_FATAL_ERROR && rc == 0) {
                set_error_from(db, r);
                if (PQstatus(conn) != CONNECTION_BAD)
                    log_failure(db, index < n ? names[index] : "pipeline", r);
                rc = CC_EDB;
            }
            if (kept != NULL && index < n && rc == 0 &&
                (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
                kept[index] = r;
                continue;
            }
            PQclear(r);
        }
    }
    if (PQstatus(conn) == CONNECTION_BAD) {
        if (rc == 0)
            set_error_from(db, NULL);
        rc = LOST;
    } else if (!synced || !PQexitPipelineMode(conn)) {
        set_error(db, "08P01", "a pipeline did not complete");
        db->poisoned = true;
        rc = LOST;
    }
    if (rc != 0 && kept != NULL) {
        for (int i = 0; i < n; i++) {
            PQclear(kept[i]);
            kept[i] = NULL;
        }
    }
    return rc;
}

/* One round trip: BEGIN and the scope, then a sync. */
static int begin_once(cc_db_t *db, const char *const *params)
{
    int rc = ensure_prepared(db, &scope_stmt);
    if (rc != 0)
        return rc;
    PGconn *conn = db->conn;
    if (!PQenterPipelineMode(conn)) {
        set_error_from(db, NULL);
        return PQstatus(conn) == CONNECTION_BAD ? LOST : CC_EDB;
    }
    if (!PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQsendQueryPrepared(conn, scope_stmt.name, scope_stmt.nparams, params, NULL, NULL, 0)) {
        set_error_from(db, NULL);
        rc = CC_EDB;
    }
    static const char *const names[] = {"BEGIN", "cc_db_scope"};
    rc = pipeline_collect(db, rc, names, 2, NULL);
    if (rc != LOST)
        sync_tx(db);
    return rc;
}

int cc_db_begin(cc_db_t *db, const cc_scope_t *scope)
{
    if (db->tx_open) {
        cc_log_error("cc_db_begin inside an open transaction");
        return CC_EINVAL;
    }
    const char *params[SCOPE_NPARAMS];
    scope_params_of(scope, params);
    int rc;
    for (int attempt = 0;; attempt++) {
        if ((rc = ensure_connected(db, scope_stmt.name)) != 0)
            return rc;
        rc = begin_once(db, params);
        if (rc != LOST)
            break;
        db->ready = false;
        db->tx_open = false; /* nothing was committed: the session is gone */
        if (attempt > 0) {
            log_lost(db, "BEGIN", "the retry failed too");
            return CC_EDBDOWN;
        }
        log_lost(db, "BEGIN", "reconnecting and retrying once");
    }
    if (rc != 0 && db->tx_open) {
        char state[sizeof(db->sqlstate)], msg[sizeof(db->errmsg)];
        memcpy(state, db->sqlstate, sizeof(state));
        memcpy(msg, db->errmsg, sizeof(msg));
        cc_db_rollback(db);
        set_error(db, state, msg);
    }
    return rc;
}

/* One round trip: BEGIN READ ONLY, the scope, each step's statement, COMMIT, then a sync. */
static int read_once(cc_db_t *db, const char *const *scope_params, const cc_db_step_t *steps,
                     size_t n, PGresult **kept)
{
    int rc = ensure_prepared(db, &scope_stmt);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ensure_prepared(db, steps[i].stmt);
    if (rc != 0)
        return rc;
    PGconn *conn = db->conn;
    if (!PQenterPipelineMode(conn)) {
        set_error_from(db, NULL);
        return PQstatus(conn) == CONNECTION_BAD ? LOST : CC_EDB;
    }
    bool sent =
        PQsendQueryParams(conn, "BEGIN READ ONLY", 0, NULL, NULL, NULL, NULL, 0) &&
        PQsendQueryPrepared(conn, scope_stmt.name, scope_stmt.nparams, scope_params, NULL, NULL, 0);
    for (size_t i = 0; i < n && sent; i++)
        sent = PQsendQueryPrepared(conn, steps[i].stmt->name, steps[i].stmt->nparams,
                                   steps[i].params, NULL, NULL, 0);
    if (!sent || !PQsendQueryParams(conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0)) {
        set_error_from(db, NULL);
        rc = CC_EDB;
    }
    const char *names[CC_DB_READ_MAX + 3] = {"BEGIN", "cc_db_scope"};
    for (size_t i = 0; i < n; i++)
        names[i + 2] = steps[i].stmt->name;
    names[n + 2] = "COMMIT";
    rc = pipeline_collect(db, rc, names, (int)n + 3, kept);
    if (rc == LOST)
        return rc;
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        /* an error inside the explicit BEGIN left the transaction aborted */
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
    }
    sync_tx(db);
    return rc;
}

int cc_db_read_many(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope,
                    const cc_db_step_t *steps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        *steps[i].res = NULL;
    if (n == 0 || n > CC_DB_READ_MAX)
        return CC_EINVAL;
    if (db->tx_open) {
        cc_log_error("cc_db_read inside an open transaction");
        return CC_EINVAL;
    }
    const char *scope_params[SCOPE_NPARAMS];
    scope_params_of(scope, scope_params);
    PGresult *kept[CC_DB_READ_MAX + 3];
    int rc;
    for (int attempt = 0;; attempt++) {
        memset(kept, 0, sizeof(kept));
        if ((rc = ensure_connected(db, steps[0].stmt->name)) != 0)
            return rc;
        rc = read_once(db, scope_params, steps, n, kept);
        if (rc != LOST)
            break;
        /* read-only and not committed: safe to run again on a new session */
        db->ready = false;
        db->tx_open = false;
        if (attempt > 0) {
            log_lost(db, steps[0].stmt->name, "the retry failed too");
            return CC_EDBDOWN;
        }
        log_lost(db, steps[0].stmt->name, "reconnecting and retrying once");
    }
    PQclear(kept[0]);
    PQclear(kept[1]);
    PQclear(kept[n + 2]);
    for (size_t i = 0; i < n; i++) {
        PGresult *r = kept[i + 2];
        if (rc == 0 && r != NULL) {
            if (pool != NULL)
                cc_pool_defer(pool, clear_result, r);
            *steps[i].res = r;
        } else {
            PQclear(r);
        }
    }
    return rc;
}

int cc_db_read(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const cc_stmt_t *stmt,
               const char *const *params, PGresult **res)
{
    cc_db_step_t step = {stmt, params, res};
    return cc_db_read_many(db, pool, scope, &step, 1);
}

int cc_db_commit(cc_db_t *db)
{
    if (!db->tx_open) {
        cc_log_error("cc_db_commit without an open transaction");
        return CC_EINVAL;
    }
    if (db->tx_broken) {
        db->tx_open = db->tx_broken = false;
        set_error(db, "08006", "the connection was lost inside the transaction");
        return CC_EDBDOWN;
    }
    if (PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) == PQTRANS_INERROR) {
        /* COMMIT would answer "ROLLBACK" without an error: report the earlier failure. */
        char state[sizeof(db->sqlstate)], msg[sizeof(db->errmsg)];
        memcpy(state, db->sqlstate, sizeof(state));
        memcpy(msg, db->errmsg, sizeof(msg));
        cc_db_rollback(db);
        set_error(db, state[0] ? state : "25P02", msg[0] ? msg : "the transaction had failed");
        return CC_EDB;
    }
    PGresult *r = NULL;
    int rc = run(db, NULL, "COMMIT", NULL, &r);
    if (rc == 0 && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
        set_error(db, "25P02", "the transaction was rolled back");
        rc = CC_EDB;
    }
    PQclear(r);
    /* Whatever happened, the transaction is over (outcome unknown on CC_EDBDOWN). */
    db->tx_open = db->tx_broken = false;
    if (rc != 0 && PQstatus(db->conn) == CONNECTION_OK &&
        PQtransactionStatus(db->conn) != PQTRANS_IDLE)
        cc_db_rollback(db);
    return rc;
}

void cc_db_rollback(cc_db_t *db)
{
    if (db == NULL)
        return;
    bool broken = db->tx_broken;
    db->tx_open = db->tx_broken = false;
    if (broken || PQstatus(db->conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(db->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR)
        return;
    PGresult *r = PQexec(db->conn, "ROLLBACK");
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQstatus(db->conn) == CONNECTION_BAD)
        db->ready = false;
    PQclear(r);
}

bool cc_db_in_tx(cc_db_t *db)
{
    return db->tx_open;
}

const char *cc_db_sqlstate(cc_db_t *db)
{
    return db->sqlstate;
}

const char *cc_db_errmsg(cc_db_t *db)
{
    return db->errmsg;
}

bool cc_db_ping(cc_db_t *db)
{
    if (db == NULL)
        return false;
    if (db->tx_open)
        return !db->tx_broken && conn_alive(db);
    return cc_db_exec(db, "SELECT 1") == 0;
}

const char *cc_db_get(const PGresult *res, int r, int c)
{
    if (res == NULL || r < 0 || r >= PQntuples(res) || c < 0 || c >= PQnfields(res) ||
        PQgetisnull(res, r, c))
        return NULL;
    return PQgetvalue(res, r, c);
}

const char *cc_db_get_time(cc_pool_t *pool, const PGresult *res, int r, int c)
{
    const char *v = cc_db_get(res, r, c);
    if (v == NULL)
        return NULL;
    /* "2026-11-23 07:12:46.1234" (ISO DateStyle, fraction without trailing zeros) */
    size_t n = strlen(v);
    if (n < 19 || v[10] != ' ')
        return cc_pool_strdup(pool, v); /* not the expected form: leave it alone */
    char *out = cc_pool_alloc(pool, 28);
    memcpy(out, v, 19);
    out[10] = 'T';
    out[19] = '.';
    const char *frac = n > 20 && v[19] == '.' ? v + 20 : "";
    size_t fn = strlen(frac);
    for (size_t i = 0; i < 6; i++)
        out[20 + i] = i < fn ? frac[i] : '0';
    out[26] = 'Z';
    out[27] = '\0';
    return out;
}
