/*
 * Migrations: schemas/<set>/NNNN_name.sql, embedded into the binaries at build time.
 *
 * cc_migrate_apply() applies the "common" set and then the service's own set to the
 * service's schema, in order, under a PostgreSQL advisory lock (so concurrent starts
 * of several replicas serialize), each migration in its own transaction together with
 * its row in public.console_migrations(schema_name, version, name, checksum, applied_at).
 * The "common" set is a template: every occurrence of the token @schema@ is replaced
 * by the (validated, quoted) schema name, so every service gets its own outbox and
 * audit tables without copying DDL. An applied migration whose checksum changed is
 * refused (edit by adding a new migration, never by changing an old one).
 */
#ifndef CONSOLE_MIGRATE_H
#define CONSOLE_MIGRATE_H

#include <stddef.h>

#include "console/db.h"

typedef struct cc_migration {
    const char *set;  /* "common", "tenants", … */
    const char *name; /* "0001_init" */
    const char *sql;
    size_t len;
} cc_migration_t;

/** All embedded migrations, terminated by an entry with set == NULL. */
extern const cc_migration_t cc_migrations_embedded[];

/**
 * Creates schema (if missing) and applies pending migrations of "common" and of set
 * `set` (usually equal to schema) from the NULL-terminated table `all`. *applied counts
 * what was applied now. Returns 0, CC_EDB, CC_EDBDOWN or CC_ECONFLICT (checksum changed);
 * errors are logged with the migration's name.
 */
int cc_migrate_apply(cc_db_t *db, const cc_migration_t *all, const char *schema, const char *set,
                     int *applied);

#endif
