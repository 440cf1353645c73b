/*
 * consolectl: administers a deployment.
 *
 *   consolectl migrate                 apply every service's migrations
 *   consolectl bootstrap               platform tenant, super-admin, console-web client,
 *                                      optional bootstrap API client (idempotent)
 *   consolectl create-api-client --name NAME --role ROLE [--tenant ID]
 *   consolectl rotate-license-key      retire the license signing key: the licensing
 *                                      service signs with a new one from its next request
 *   consolectl check-config            validate the settings and exit
 *   consolectl settings                print every setting as a markdown table
 */
#include <stdio.h>
#include <string.h>

#include "console/log.h"
#include "console/migrate.h"
#include "consolectl.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: consolectl migrate | bootstrap | check-config | settings |\n"
               "       consolectl create-api-client --name NAME --role ROLE [--tenant ID]\n"
               "       consolectl rotate-license-key\n");
    return f == stdout ? 0 : 2;
}

static int print_settings(void)
{
    size_t n = 0;
    const cc_setting_t *t = cc_env_settings(&n);
    static const char *types[] = {"string", "integer", "boolean", "URL", "size"};
    printf("| setting | type | default | meaning |\n|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        printf("| `%s` | %s | %s | %s%s |\n", t[i].name, types[t[i].type], t[i].def ? t[i].def : "",
               t[i].help, t[i].secret ? " (secret: never logged)" : "");
    return 0;
}

static int migrate_all(const cc_env_t *env, cc_db_t *db)
{
    for (int i = 0; i < 8; i++) {
        int applied = 0;
        const char *name = cc_service_names[i];
        if (cc_migrate_apply(db, cc_migrations_embedded, name, name, &applied) != 0) {
            fprintf(stderr, "consolectl: migrations of %s failed\n", name);
            return 1;
        }
        if (applied)
            printf("migrated %s: %d migration(s) applied\n", name, applied);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0)
        return usage(stdout);
    cc_log_init("consolectl", CC_LOG_WARN);
    if (strcmp(cmd, "settings") == 0)
        return print_settings();
    cc_env_t env;
    char err[256];
    if (cc_env_load(&env, NULL, 0, err, sizeof(err)) != 0) {
        fprintf(stderr, "consolectl: bad configuration: %s\n", err);
        return 2;
    }
    if (strcmp(cmd, "check-config") == 0) {
        printf("configuration ok\n");
        cc_config_free();
        return 0;
    }
    const char *name = NULL, *role = NULL, *tenant = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc)
            tenant = argv[++i];
        else {
            fprintf(stderr, "consolectl: unknown argument %s\n", argv[i]);
            return usage(stderr);
        }
    }
    int rc = 2;
    cc_db_t *db = NULL;
    if (strcmp(cmd, "migrate") != 0 && strcmp(cmd, "bootstrap") != 0 &&
        strcmp(cmd, "create-api-client") != 0 && strcmp(cmd, "rotate-license-key") != 0) {
        rc = usage(stderr);
        goto Exit;
    }
    if (cc_service_db_connect(&env, "consolectl", NULL, &db) != 0) {
        fprintf(stderr, "consolectl: database unreachable\n");
        rc = 1;
        goto Exit;
    }
    if (strcmp(cmd, "migrate") == 0) {
        rc = migrate_all(&env, db);
    } else if (strcmp(cmd, "bootstrap") == 0) {
        rc = migrate_all(&env, db);
        if (rc == 0)
            rc = ctl_bootstrap(&env, db) == 0 ? 0 : 1;
    } else if (strcmp(cmd, "rotate-license-key") == 0) {
        rc = ctl_rotate_license_key(&env, db) == 0 ? 0 : 1;
    } else {
        if (name == NULL || role == NULL) {
            rc = usage(stderr);
            goto Exit;
        }
        rc = ctl_create_api_client(&env, db, name, tenant, role) == 0 ? 0 : 1;
    }
Exit:
    cc_db_close(db);
    cc_config_free();
    return rc;
}
