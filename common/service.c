#include "console/service.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "console/authz.h"
#include "console/housekeeping.h"
#include "console/log.h"
#include "console/migrate.h"

static cc_env_t g_env_storage;

#define S(name, type, target, def, min, max, secret, help)                                         \
    {                                                                                              \
        name, type, (void *)(target), def, min, max, secret, false, help                           \
    }

/* The product-wide settings table: every key any process of the product reads. */
static const cc_setting_t common_settings[] = {
    S("CONSOLE_ENV", CC_SET_STRING, &g_env_storage.env, "development", 0, 0, false,
      "development or production (production refuses generated secrets)"),
    S("CONSOLE_DATA_DIR", CC_SET_STRING, &g_env_storage.data_dir, "./var", 0, 0, false,
      "private data: PostgreSQL cluster, master key, mail files"),
    S("DATABASE_URL", CC_SET_URL, &g_env_storage.database_url, NULL, 0, 0, true,
      "PostgreSQL URL; default: the private cluster under CONSOLE_DATA_DIR/pg"),
    S("CONSOLE_PUBLIC_URL", CC_SET_URL, &g_env_storage.public_url, NULL, 0, 0, false,
      "OIDC issuer and base of every link; default http://127.0.0.1:<port>"),
    S("CONSOLE_HTTP_HOST", CC_SET_STRING, &g_env_storage.http_host, "127.0.0.1", 0, 0, false,
      "address the gateway listens on"),
    S("CONSOLE_HTTP_PORT", CC_SET_INT, &g_env_storage.http_port, "8080", 1, 65535, false,
      "gateway port"),
    S("CONSOLE_LISTEN_HOST", CC_SET_STRING, &g_env_storage.listen_host, "127.0.0.1", 0, 0, false,
      "address the services listen on"),
    S("CONSOLE_SERVICE_PORT_BASE", CC_SET_INT, &g_env_storage.port_base, "0", 0, 65000, false,
      "services listen on base+1..base+8; 0 = CONSOLE_HTTP_PORT"),
    S("CONSOLE_THREADS", CC_SET_INT, &g_env_storage.threads, "0", 0, 256, false,
      "event-loop threads per process; 0 = one per core"),
    S("CONSOLE_WORKERS", CC_SET_INT, &g_env_storage.workers, "8", 1, 256, false,
      "worker threads (= database connections) per service"),
    S("CONSOLE_MAX_BODY", CC_SET_SIZE, &g_env_storage.max_body, "1m", 1024, 64 << 20, false,
      "default request body limit"),
    S("CONSOLE_LOG_LEVEL", CC_SET_STRING, &g_env_storage.log_level, "info", 0, 0, false,
      "debug, info, warn or error"),
    S("CONSOLE_TOKEN_AUDIENCE", CC_SET_STRING, &g_env_storage.audience, "console", 0, 0, false,
      "audience of access tokens"),
    S("CONSOLE_JWKS_URL", CC_SET_URL, &g_env_storage.jwks_url, NULL, 0, 0, false,
      "where services fetch signing keys; default identity's /oauth2/jwks"),
    S("CONSOLE_MASTER_KEY", CC_SET_STRING, &g_env_storage.master_key, NULL, 0, 0, true,
      "32-byte key (64 hex) sealing secrets at rest; required in production"),
    S("CONSOLE_SMTP_URL", CC_SET_URL, &g_env_storage.smtp_url, NULL, 0, 0, false,
      "smtp://host:port; unset = .eml files under CONSOLE_DATA_DIR/mail"),
    S("CONSOLE_SMTP_USER", CC_SET_STRING, &g_env_storage.smtp_user, NULL, 0, 0, false, "SMTP user"),
    S("CONSOLE_SMTP_PASSWORD", CC_SET_STRING, &g_env_storage.smtp_password, NULL, 0, 0, true,
      "SMTP password"),
    S("CONSOLE_MAIL_FROM", CC_SET_STRING, &g_env_storage.mail_from, "no-reply@localhost", 0, 0,
      false, "envelope sender of all mail"),
    S("CONSOLE_UPSTREAM_IDENTITY", CC_SET_URL, &g_env_storage.upstream[0], NULL, 0, 0, false,
      "identity base URL (default: local port)"),
    S("CONSOLE_UPSTREAM_TENANTS", CC_SET_URL, &g_env_storage.upstream[1], NULL, 0, 0, false,
      "tenants base URL"),
    S("CONSOLE_UPSTREAM_USERS", CC_SET_URL, &g_env_storage.upstream[2], NULL, 0, 0, false,
      "users base URL"),
    S("CONSOLE_UPSTREAM_ROLES", CC_SET_URL, &g_env_storage.upstream[3], NULL, 0, 0, false,
      "roles base URL"),
    S("CONSOLE_UPSTREAM_QUOTAS", CC_SET_URL, &g_env_storage.upstream[4], NULL, 0, 0, false,
      "quotas base URL"),
    S("CONSOLE_UPSTREAM_USAGE", CC_SET_URL, &g_env_storage.upstream[5], NULL, 0, 0, false,
      "usage base URL"),
    S("CONSOLE_UPSTREAM_BRANDING", CC_SET_URL, &g_env_storage.upstream[6], NULL, 0, 0, false,
      "branding base URL"),
    S("CONSOLE_UPSTREAM_LICENSING", CC_SET_URL, &g_env_storage.upstream[7], NULL, 0, 0, false,
      "licensing base URL"),
    S("CONSOLE_DB_WAIT", CC_SET_INT, &g_env_storage.db_wait_s, "30", 0, 3600, false,
      "seconds a starting service waits for the database"),
    S("CONSOLE_RATE_LIMIT_RPS", CC_SET_INT, &g_env_storage.rate_limit_rps, "100", 0, 1000000, false,
      "gateway: sustained requests/s per client (0 = off)"),
    S("CONSOLE_RATE_LIMIT_BURST", CC_SET_INT, &g_env_storage.rate_limit_burst, "200", 1, 1000000,
      false, "gateway: burst size per client"),
    S("CONSOLE_UPSTREAM_TIMEOUT_MS", CC_SET_INT, &g_env_storage.upstream_timeout_ms, "30000", 100,
      600000, false, "gateway: upstream I/O timeout"),
    S("CONSOLE_TLS_CERT", CC_SET_STRING, &g_env_storage.tls_cert, NULL, 0, 0, false,
      "gateway: PEM certificate chain (enables TLS)"),
    S("CONSOLE_TLS_KEY", CC_SET_STRING, &g_env_storage.tls_key, NULL, 0, 0, false,
      "gateway: PEM private key"),
    S("CONSOLE_TRUST_FORWARDED", CC_SET_BOOL, &g_env_storage.trust_forwarded, "false", 0, 0, false,
      "gateway: rate-limit by X-Forwarded-For (only behind a trusted proxy)"),
    S("CONSOLE_AUTHZ_CACHE_MS", CC_SET_INT, &g_env_storage.authz_cache_ms, "1000", 0, 60000, false,
      "how long a caller's grants and tenant status are cached per process (0 = off)"),
    S("CONSOLE_AUDIT_RETENTION_DAYS", CC_SET_INT, &g_env_storage.audit_retention_days, "400", 1,
      36500, false, "days audit records are kept (each service prunes its own, hourly)"),
    S("CONSOLE_OUTBOX_RETENTION_DAYS", CC_SET_INT, &g_env_storage.outbox_retention_days, "7", 1,
      3650, false, "days outbox events are kept for consumers that were down (pruned hourly)"),
    S("CONSOLE_TENANT_RETENTION_DAYS", CC_SET_INT, &g_env_storage.tenant_retention_days, "14", 1,
      3650, false, "tenants: days a deleted tenant stays restorable before it is purged"),
    S("CONSOLE_TENANT_PURGE_INTERVAL", CC_SET_INT, &g_env_storage.tenant_purge_interval_s, "60", 1,
      86400, false, "tenants: seconds between looks for tenants due to be purged"),
    S("CONSOLE_ACCESS_TOKEN_TTL", CC_SET_INT, &g_env_storage.access_token_ttl_s, "600", 60, 86400,
      false, "identity: access token lifetime in seconds"),
    S("CONSOLE_KEY_ROTATION_DAYS", CC_SET_INT, &g_env_storage.key_rotation_days, "90", 1, 3650,
      false, "identity: days before the signing key is rotated"),
    S("CONSOLE_LICENSE_KEY_ROTATION_DAYS", CC_SET_INT, &g_env_storage.license_key_rotation_days,
      "0", 0, 3650, false,
      "licensing: days before the license signing key is rotated (0 = only by consolectl "
      "rotate-license-key)"),
    S("CONSOLE_LICENSE_KEY_OVERLAP_DAYS", CC_SET_INT, &g_env_storage.license_key_overlap_days,
      "400", 1, 36500, false,
      "licensing: days a replaced license signing key stays published, so that licenses it "
      "signed still verify"),
    S("CONSOLE_WEBAUTHN_RP_ID", CC_SET_STRING, &g_env_storage.webauthn_rp_id, NULL, 0, 0, false,
      "identity: WebAuthn relying-party id (a domain); default the host of CONSOLE_PUBLIC_URL"),
    S("CONSOLE_WEBAUTHN_ORIGINS", CC_SET_STRING, &g_env_storage.webauthn_origins, NULL, 0, 0, false,
      "identity: comma-separated origins WebAuthn responses may come from; default the public "
      "URL's origin (and the same with the RP id as host)"),
    S("CONSOLE_WEBAUTHN_USER_VERIFICATION", CC_SET_STRING,
      &g_env_storage.webauthn_user_verification, "preferred", 0, 0, false,
      "identity: WebAuthn user verification: required, preferred or discouraged"),
    S("CONSOLE_SMS_PROVIDER", CC_SET_STRING, &g_env_storage.sms_provider, "webhook", 0, 0, false,
      "identity: how SMS and voice codes leave: webhook (signed JSON POST) or twilio"),
    S("CONSOLE_SMS_WEBHOOK_URL", CC_SET_URL, &g_env_storage.sms_webhook_url, NULL, 0, 0, false,
      "identity: the webhook that delivers SMS and voice codes; unset = no sms/voice factors"),
    S("CONSOLE_SMS_WEBHOOK_SECRET", CC_SET_STRING, &g_env_storage.sms_webhook_secret, NULL, 0, 0,
      true, "identity: HMAC-SHA256 key signing each webhook call (at least 32 characters)"),
    S("CONSOLE_SMS_TWILIO_URL", CC_SET_URL, &g_env_storage.sms_twilio_url, "https://api.twilio.com",
      0, 0, false, "identity: base URL of the Twilio-style API (provider twilio)"),
    S("CONSOLE_SMS_TWILIO_ACCOUNT_SID", CC_SET_STRING, &g_env_storage.sms_twilio_account_sid, NULL,
      0, 0, false, "identity: Twilio account SID (provider twilio)"),
    S("CONSOLE_SMS_TWILIO_AUTH_TOKEN", CC_SET_STRING, &g_env_storage.sms_twilio_auth_token, NULL, 0,
      0, true, "identity: Twilio auth token (provider twilio)"),
    S("CONSOLE_SMS_FROM", CC_SET_STRING, &g_env_storage.sms_from, NULL, 0, 0, false,
      "identity: the E.164 number SMS and calls come from (provider twilio)"),
    S("CONSOLE_SMS_TIMEOUT_MS", CC_SET_INT, &g_env_storage.sms_timeout_ms, "5000", 200, 30000,
      false, "identity: how long a sign-in waits for the SMS/voice provider"),
    S("CONSOLE_SMS_RESEND_SECONDS", CC_SET_INT, &g_env_storage.sms_resend_s, "30", 0, 3600, false,
      "identity: minimum seconds between two SMS/voice codes to one user"),
    S("CONSOLE_SMS_MAX_PER_USER", CC_SET_INT, &g_env_storage.sms_max_per_user, "5", 1, 1000, false,
      "identity: SMS/voice codes one user may get per hour"),
    S("CONSOLE_SMS_MAX_PER_NUMBER", CC_SET_INT, &g_env_storage.sms_max_per_number, "10", 1, 1000,
      false, "identity: SMS/voice codes one phone number may get per hour (all users)"),
    S("CONSOLE_BOOTSTRAP_ADMIN_EMAIL", CC_SET_STRING, &g_env_storage.bootstrap_admin_email,
      "admin@localhost", 0, 0, false, "bootstrap: platform super-admin e-mail"),
    S("CONSOLE_BOOTSTRAP_CLIENT_ID", CC_SET_STRING, &g_env_storage.bootstrap_client_id, NULL, 0, 0,
      false, "bootstrap: API client id with the platform super-admin role"),
    S("CONSOLE_BOOTSTRAP_CLIENT_SECRET", CC_SET_STRING, &g_env_storage.bootstrap_client_secret,
      NULL, 0, 0, true, "bootstrap: that client's secret (at least 32 characters)"),
};

const cc_setting_t *cc_env_settings(size_t *n)
{
    *n = CC_ARRAY_SIZE(common_settings);
    return common_settings;
}

int cc_env_load(cc_env_t *env, const cc_setting_t *extra, size_t nextra, char *err, size_t errlen)
{
    size_t n = CC_ARRAY_SIZE(common_settings) + nextra;
    cc_setting_t *all = cc_calloc(n, sizeof(cc_setting_t));
    memcpy(all, common_settings, sizeof(common_settings));
    if (nextra)
        memcpy(all + CC_ARRAY_SIZE(common_settings), extra, nextra * sizeof(cc_setting_t));
    memset(&g_env_storage, 0, sizeof(g_env_storage));
    int rc = cc_config_load(all, n, err, errlen);
    free(all);
    if (rc != 0)
        return rc;
    if (strcmp(g_env_storage.env, "development") != 0 &&
        strcmp(g_env_storage.env, "production") != 0) {
        snprintf(err, errlen, "CONSOLE_ENV: must be development or production");
        return CC_EINVAL;
    }
    if (cc_log_level_parse(g_env_storage.log_level) < 0) {
        snprintf(err, errlen, "CONSOLE_LOG_LEVEL: must be debug, info, warn or error");
        return CC_EINVAL;
    }
    if (g_env_storage.bootstrap_client_secret && g_env_storage.bootstrap_client_secret[0] &&
        strlen(g_env_storage.bootstrap_client_secret) < 32) {
        snprintf(err, errlen, "CONSOLE_BOOTSTRAP_CLIENT_SECRET: must be at least 32 characters");
        return CC_EINVAL;
    }
    /* derived defaults; the strings live as long as the process */
    static char data_dir[2 * PATH_MAX + 2], db_url[2 * PATH_MAX + 128], public_url[256],
        jwks_url[256];
    if (g_env_storage.data_dir[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)) == NULL) {
            snprintf(err, errlen, "CONSOLE_DATA_DIR: cannot resolve relative path");
            return CC_EINVAL;
        }
        const char *rel = g_env_storage.data_dir;
        if (rel[0] == '.' && rel[1] == '/')
            rel += 2;
        snprintf(data_dir, sizeof(data_dir), "%s/%s", cwd, rel);
        g_env_storage.data_dir = data_dir;
    }
    if (g_env_storage.database_url == NULL || g_env_storage.database_url[0] == '\0') {
        snprintf(db_url, sizeof(db_url), "postgresql:///console?host=%s/pg&port=5432&user=console",
                 g_env_storage.data_dir);
        g_env_storage.database_url = db_url;
    }
    if (g_env_storage.public_url == NULL || g_env_storage.public_url[0] == '\0') {
        snprintf(public_url, sizeof(public_url), "http://127.0.0.1:%lld",
                 (long long)g_env_storage.http_port);
        g_env_storage.public_url = public_url;
    } else {
        size_t l = strlen(g_env_storage.public_url);
        if (l > 0 && g_env_storage.public_url[l - 1] == '/') {
            snprintf(public_url, sizeof(public_url), "%.*s", (int)(l - 1),
                     g_env_storage.public_url);
            g_env_storage.public_url = public_url;
        }
    }
    if (g_env_storage.port_base == 0)
        g_env_storage.port_base = g_env_storage.http_port;
    if (g_env_storage.port_base + 8 > 65535) {
        snprintf(err, errlen, "CONSOLE_SERVICE_PORT_BASE: base + 8 exceeds 65535");
        return CC_EINVAL;
    }
    if (g_env_storage.jwks_url == NULL || g_env_storage.jwks_url[0] == '\0') {
        char *id = cc_upstream_url(&g_env_storage, "identity");
        snprintf(jwks_url, sizeof(jwks_url), "%s/oauth2/jwks", id);
        free(id);
        g_env_storage.jwks_url = jwks_url;
    }
    *env = g_env_storage;
    return 0;
}

int cc_service_db_connect(const cc_env_t *env, const char *app, const char *search_path,
                          cc_db_t **out)
{
    uint64_t deadline = cc_now_ns() + (uint64_t)env->db_wait_s * 1000000000u;
    int delay_ms = 100;
    for (;;) {
        int rc = cc_db_open(env->database_url, app, search_path, out);
        if (rc == 0)
            return 0;
        if (cc_now_ns() >= deadline) {
            cc_log_error("database unreachable after %llds", (long long)env->db_wait_s);
            return rc;
        }
        cc_db_close(*out);
        *out = NULL;
        struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        delay_ms = delay_ms * 2 > 2000 ? 2000 : delay_ms * 2;
    }
}

static void usage(const cc_service_def_t *def)
{
    printf("usage: console-%s [--check-config] [--help]\n"
           "Runs the %s service. Settings come from the environment (and CONSOLE_CONFIG_FILE);\n"
           "see docs/operations.md.\n",
           def->name, def->name);
}

int cc_service_main(const cc_service_def_t *def, int argc, char **argv)
{
    bool check_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(def);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("console-%s %s\n", def->name, CONSOLE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = true;
        } else {
            fprintf(stderr, "console-%s: unknown argument %s\n", def->name, argv[i]);
            return 2;
        }
    }
    /* a fixed mmap threshold: large buffers (a 3 MB report, a 10 000-item batch) are
     * mapped and given back when freed, instead of glibc raising its threshold after the
     * first free and keeping every later one in an arena (the process's RSS with it) */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    cc_service_t svc;
    memset(&svc, 0, sizeof(svc));
    svc.def = def;
    char err[256];
    cc_log_init(def->name, CC_LOG_INFO);
    if (cc_env_load(&svc.env, def->settings, def->nsettings, err, sizeof(err)) != 0) {
        cc_log_error("bad configuration: %s", err);
        return 2;
    }
    cc_log_init(def->name, (cc_log_level_t)cc_log_level_parse(svc.env.log_level));
    if (check_only) {
        printf("configuration ok\n");
        return 0;
    }
    int exit_code = 1;
    cc_db_t *db = NULL;
    bool production = strcmp(svc.env.env, "production") == 0;
    if (cc_master_key_load(svc.env.master_key, svc.env.data_dir, !production, &svc.master_key) !=
        0) {
        cc_log_error("CONSOLE_MASTER_KEY: missing or invalid%s",
                     production ? " (required in production)" : "");
        return 2;
    }
    svc.mail.smtp_url = svc.env.smtp_url;
    svc.mail.smtp_user = svc.env.smtp_user;
    svc.mail.smtp_password = svc.env.smtp_password;
    svc.mail.data_dir = svc.env.data_dir;
    svc.mail.envelope_from = svc.env.mail_from;
    svc.issuer = cc_strdup(svc.env.public_url);
    svc.jwks = cc_jwks_new(svc.env.jwks_url, 10);

    char *search_path = def->schema ? cc_aprintf("%s, public", def->schema) : NULL;
    if (def->schema != NULL) {
        if (cc_service_db_connect(&svc.env, def->name, NULL, &db) != 0)
            goto Exit;
        int applied = 0;
        if (cc_migrate_apply(db, cc_migrations_embedded, def->schema, def->schema, &applied) != 0) {
            cc_log_error("migrations of schema %s failed", def->schema);
            goto Exit;
        }
        if (applied)
            cc_log_info("applied %d migration(s) to schema %s", applied, def->schema);
        cc_db_close(db);
        db = NULL;
    }
    /* the stop signals are taken by sigwait below: block them before any thread starts
     * (on_start's consumers, the authorization listener, the server), which inherit the
     * mask, so no thread takes their default action instead */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (def->on_start != NULL && def->on_start(&svc) != 0) {
        cc_log_error("start-up of %s failed", def->name);
        goto Exit;
    }
    cc_server_config_t sc = {
        .service = def->name,
        .version = CONSOLE_VERSION,
        .host = svc.env.listen_host,
        .port = cc_service_port(&svc.env, def->name),
        .threads = (int)svc.env.threads,
        .workers = def->schema ? (int)svc.env.workers : 1,
        .max_body = (size_t)svc.env.max_body,
        .db_conninfo = def->schema ? svc.env.database_url : NULL,
        .db_search_path = search_path,
        .routes = def->routes,
        .nroutes = def->nroutes,
        .jwks = svc.jwks,
        .auth = {.issuer = svc.issuer, .audience = svc.env.audience, .leeway_s = 30},
        .ready = def->ready,
        .authorize = cc_authz_enforce,
        .app = svc.app,
    };
    cc_authz_set_cache_ms((int)svc.env.authz_cache_ms);
    if (def->schema != NULL && svc.env.authz_cache_ms > 0 &&
        cc_authz_listen_start(svc.env.database_url) != 0)
        goto Exit;
    const cc_housekeeping_t hk = {.audit_days = (int)svc.env.audit_retention_days,
                                  .outbox_days = (int)svc.env.outbox_retention_days};
    if (def->schema != NULL && cc_housekeeping_start(svc.env.database_url, search_path, &hk) != 0)
        goto Exit;
    if (cc_server_new(&sc, &svc.server) != 0)
        goto Exit;
    cc_server_start(svc.server);

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            cc_log_info("SIGHUP: configuration reload is not supported; restart to apply changes");
            continue;
        }
        cc_log_info("signal %d: stopping", sig);
        break;
    }
    cc_server_stop(svc.server, 10000);
    exit_code = 0;
Exit:
    if (def->on_stop != NULL)
        def->on_stop(&svc);
    cc_server_free(svc.server);
    cc_authz_listen_stop();
    cc_housekeeping_stop();
    cc_db_close(db);
    cc_jwks_free(svc.jwks);
    free(svc.issuer);
    free(search_path);
    cc_wipe(&svc.master_key, sizeof(svc.master_key));
    cc_config_free();
    cc_log_info("stopped");
    return exit_code;
}
