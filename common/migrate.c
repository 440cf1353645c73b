/*
 * Migrations: applies the "common" template set and a service's own set to its schema.
 *
 * The whole run holds a session-level advisory lock, so replicas starting together
 * serialize; every step checks that the session (backend pid) is still the one holding
 * the lock, since cc_db_exec() silently reconnects outside a transaction. Each migration
 * runs in its own transaction with its row in public.console_migrations, so a failing
 * migration leaves neither a partial change nor a record. The SQL of a migration is a
 * program constant (embedded at build time) and runs with the simple protocol, which
 * allows several statements; it must not contain COMMIT or statements that cannot run in
 * a transaction block (CREATE INDEX CONCURRENTLY).
 */
#include "console/migrate.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console/errors.h"
#include "console/log.h"
#include "console/str.h"

#define LOCK_WAIT_ATTEMPTS 20 /* times statement_timeout: how long another replica may hold it */
#define SCHEMA_TOKEN "@schema@"

static const char lock_sql[] = "SELECT pg_advisory_lock(hashtext('console_migrations'))";
static const char unlock_sql[] = "SELECT pg_advisory_unlock(hashtext('console_migrations'))";
static const char table_sql[] = "CREATE TABLE IF NOT EXISTS public.console_migrations ("
                                "schema_name text, version text, name text, checksum text, "
                                "applied_at timestamptz DEFAULT now(), "
                                "PRIMARY KEY (schema_name, version))";

static const cc_stmt_t keyword_stmt =
    CC_STMT("cc_migrate_keyword",
            "SELECT catcode::text FROM pg_catalog.pg_get_keywords() WHERE word = $1", 1);
static const cc_stmt_t applied_stmt =
    CC_STMT("cc_migrate_applied",
            "SELECT version, checksum FROM public.console_migrations WHERE schema_name = $1 "
            "ORDER BY version",
            1);
static const cc_stmt_t record_stmt =
    CC_STMT("cc_migrate_record",
            "INSERT INTO public.console_migrations (schema_name, version, name, checksum) "
            "VALUES ($1, $2, $3, $4)",
            4);

/* ^[a-z][a-z0-9_]{0,62}$, and not pg_* (reserved for system schemas). */
static bool valid_name(const char *s)
{
    if (s == NULL || !(s[0] >= 'a' && s[0] <= 'z') || strncmp(s, "pg_", 3) == 0)
        return false;
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return false;
    return n <= 63;
}

static int sha256_hex(const char *s, size_t n, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(s, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return CC_ECRYPTO;
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return 0;
}

/* The migration's SQL; in the common set with every @schema@ replaced. Caller frees. */
static char *migration_text(const cc_migration_t *m, const char *schema, size_t *len)
{
    if (strcmp(m->set, "common") != 0) {
        *len = m->len;
        return cc_strndup(m->sql, m->len);
    }
    cc_buf_t b;
    cc_buf_init(&b);
    const char *p = m->sql, *end = m->sql + m->len;
    const size_t tl = strlen(SCHEMA_TOKEN);
    while (p < end) {
        const char *hit = NULL;
        for (const char *q = p; q + tl <= end; q++) {
            if (*q == '@' && memcmp(q, SCHEMA_TOKEN, tl) == 0) {
                hit = q;
                break;
            }
        }
        if (hit == NULL) {
            cc_buf_append(&b, p, (size_t)(end - p));
            break;
        }
        cc_buf_append(&b, p, (size_t)(hit - p));
        cc_buf_puts(&b, schema);
        p = hit + tl;
    }
    return cc_buf_steal(&b, len);
}

/* CC_EDBDOWN when the connection was replaced since the lock was taken by backend pid. */
static int check_session(cc_db_t *db, int pid)
{
    if (PQstatus(cc_db_conn(db)) == CONNECTION_OK && PQbackendPID(cc_db_conn(db)) == pid)
        return 0;
    cc_log_error("migrations: the connection holding the migration lock was lost");
    return CC_EDBDOWN;
}

static int take_lock(cc_db_t *db)
{
    for (int i = 0;; i++) {
        int rc = cc_db_exec(db, lock_sql);
        if (rc == CC_EDB && strcmp(cc_db_sqlstate(db), "57014") == 0 &&
            i + 1 < LOCK_WAIT_ATTEMPTS) {
            cc_log_warn("migrations: still waiting for the migration lock held by another process");
            continue;
        }
        return rc;
    }
}

static void log_migration(cc_log_level_t level, const char *schema, const char *version,
                          const char *sqlstate, const char *msg)
{
    json_t *f = json_object();
    json_object_set_new(f, "schema", json_string(schema));
    json_object_set_new(f, "migration", json_string(version));
    if (sqlstate != NULL && *sqlstate)
        json_object_set_new(f, "sqlstate", json_string(sqlstate));
    cc_log_write(level, f, "%s", msg);
    json_decref(f);
}

/* One migration and its record in one transaction, on the session holding the lock. */
static int apply_one(cc_db_t *db, int pid, const char *schema, const cc_migration_t *m,
                     const char *version, const char *text, const char *checksum)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cc_scope_t scope = {.system = true};
    int rc = cc_db_begin(db, &scope);
    if (rc == 0)
        rc = check_session(db, pid);
    if (rc != 0)
        goto Exit;
    /* The schema name is validated ([a-z][a-z0-9_]*), so it can be spliced in. */
    char set_sql[160];
    snprintf(set_sql, sizeof(set_sql),
             "SET LOCAL search_path TO %s, public; SET LOCAL statement_timeout = 0", schema);
    if ((rc = cc_db_exec(db, set_sql)) != 0)
        goto Exit;
    if ((rc = cc_db_exec(db, text)) != 0)
        goto Exit;
    const char *params[4] = {schema, version, m->name, checksum};
    if ((rc = cc_db_query(db, NULL, &record_stmt, params, NULL)) != 0)
        goto Exit;
    rc = cc_db_commit(db);
Exit:
    if (rc != 0) {
        log_migration(CC_LOG_ERROR, schema, version, cc_db_sqlstate(db),
                      "migration failed; rolled back");
        cc_db_rollback(db);
    } else {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        char msg[64];
        snprintf(msg, sizeof(msg), "migration applied in %ld ms", ms);
        log_migration(CC_LOG_INFO, schema, version, NULL, msg);
    }
    return rc;
}

static bool is_known(const cc_migration_t *all, const char *const sets[2], const char *version)
{
    for (const cc_migration_t *m = all; m->set != NULL; m++) {
        if (strcmp(m->set, sets[0]) != 0 && (sets[1] == NULL || strcmp(m->set, sets[1]) != 0))
            continue;
        size_t sl = strlen(m->set);
        if (strncmp(version, m->set, sl) == 0 && version[sl] == '/' &&
            strcmp(version + sl + 1, m->name) == 0)
            return true;
    }
    return false;
}

int cc_migrate_apply(cc_db_t *db, const cc_migration_t *all, const char *schema, const char *set,
                     int *applied)
{
    int rc = 0, n = 0, pid = 0;
    bool locked = false;
    cc_pool_t *pool = NULL;
    PGresult *res = NULL, *done = NULL;
    char *text = NULL;
    if (applied != NULL)
        *applied = 0;
    if (db == NULL || all == NULL || !valid_name(schema) || !valid_name(set)) {
        cc_log_error("migrations: invalid schema or set name");
        return CC_EINVAL;
    }
    if (cc_db_in_tx(db)) {
        cc_log_error("migrations: called inside a transaction");
        return CC_EINVAL;
    }
    pool = cc_pool_new();

    /* Unquoted, the name must not be a keyword (it is spliced into DDL and literals). */
    const char *kw[1] = {schema};
    if ((rc = cc_db_query(db, pool, &keyword_stmt, kw, &res)) != 0)
        goto Exit;
    if (PQntuples(res) > 0 && strcmp(cc_db_get(res, 0, 0), "U") != 0) {
        log_migration(CC_LOG_ERROR, schema, "-", NULL, "migrations: schema name is a keyword");
        rc = CC_EINVAL;
        goto Exit;
    }

    if ((rc = take_lock(db)) != 0)
        goto Exit;
    locked = true;
    pid = PQbackendPID(cc_db_conn(db));
    if ((rc = cc_db_exec(db, table_sql)) != 0 || (rc = check_session(db, pid)) != 0)
        goto Exit;
    char schema_sql[128];
    snprintf(schema_sql, sizeof(schema_sql), "CREATE SCHEMA IF NOT EXISTS %s", schema);
    if ((rc = cc_db_exec(db, schema_sql)) != 0 || (rc = check_session(db, pid)) != 0)
        goto Exit;
    const char *sp[1] = {schema};
    if ((rc = cc_db_query(db, pool, &applied_stmt, sp, &done)) != 0 ||
        (rc = check_session(db, pid)) != 0)
        goto Exit;

    const char *const sets[2] = {"common", strcmp(set, "common") == 0 ? NULL : set};
    for (int s = 0; s < 2 && sets[s] != NULL; s++) {
        for (const cc_migration_t *m = all; m->set != NULL; m++) {
            if (strcmp(m->set, sets[s]) != 0)
                continue;
            size_t len = 0;
            free(text);
            text = migration_text(m, schema, &len);
            char checksum[65];
            if ((rc = sha256_hex(text, len, checksum)) != 0)
                goto Exit;
            char *version = cc_pool_printf(pool, "%s/%s", m->set, m->name);
            int row = -1;
            for (int r = 0; r < PQntuples(done); r++)
                if (strcmp(cc_db_get(done, r, 0), version) == 0)
                    row = r;
            if (row >= 0) {
                const char *old = cc_db_get(done, row, 1);
                if (old == NULL || strcmp(old, checksum) != 0) {
                    log_migration(CC_LOG_ERROR, schema, version, NULL,
                                  "migrations: an applied migration was changed (its checksum "
                                  "differs); add a new migration instead");
                    rc = CC_ECONFLICT;
                    goto Exit;
                }
                continue;
            }
            if ((rc = apply_one(db, pid, schema, m, version, text, checksum)) != 0)
                goto Exit;
            n++;
        }
    }
    for (int r = 0; r < PQntuples(done); r++) {
        const char *v = cc_db_get(done, r, 0);
        if (!is_known(all, sets, v))
            log_migration(CC_LOG_WARN, schema, v, NULL,
                          "migrations: applied migration unknown to this binary (a newer "
                          "version applied it)");
    }
Exit:
    if (locked) {
        cc_db_rollback(db);
        if (check_session(db, pid) == 0 && cc_db_exec(db, unlock_sql) != 0)
            cc_log_warn("migrations: could not release the migration lock");
    }
    if (applied != NULL)
        *applied = n;
    free(text);
    cc_pool_free(pool);
    return rc;
}
