#include "testdb.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/crypto.h"
#include "console/mem.h"

static const char *base_url(void)
{
    const char *u = getenv("CONSOLE_TEST_DATABASE_URL");
    if (u == NULL || *u == '\0') {
        fprintf(stderr, "CONSOLE_TEST_DATABASE_URL is not set (run through ctest)\n");
        exit(1);
    }
    return u;
}

static void admin_exec(const char *sql)
{
    PGconn *c = PQconnectdb(base_url());
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "test cluster unreachable: %s\n", PQerrorMessage(c));
        exit(1);
    }
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "%s: %s\n", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

/* Replaces the dbname in a URL of the form postgresql:///NAME?... */
static char *with_dbname(const char *url, const char *db)
{
    const char *q = strchr(url, '?');
    return cc_aprintf("postgresql:///%s%s", db, q ? q : "");
}

char *testdb_create(const char *prefix)
{
    char *rand = cc_token_new(6);
    char name[64];
    size_t o = (size_t)snprintf(name, sizeof(name), "%s_", prefix);
    for (const char *p = rand; *p && o < sizeof(name) - 1; p++)
        name[o++] = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : (*p == '-' ? 'x' : *p);
    name[o] = '\0';
    free(rand);
    char *sql = cc_aprintf("CREATE DATABASE \"%s\"", name);
    admin_exec(sql);
    free(sql);
    return with_dbname(base_url(), name);
}

void testdb_drop(const char *conninfo)
{
    const char *start = conninfo + strlen("postgresql:///");
    const char *q = strchr(start, '?');
    char *name = cc_strndup(start, q ? (size_t)(q - start) : strlen(start));
    char *sql = cc_aprintf("DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    admin_exec(sql);
    free(sql);
    free(name);
}
