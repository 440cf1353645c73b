/*
 * Service framework: the settings every process of the product shares, the registry of
 * upstream services, and cc_service_main(), which turns a route table into a running,
 * migrated, observable service. Adding an endpoint to a service is one route line, one
 * handler, one store function and one test.
 */
#ifndef CONSOLE_SERVICE_H
#define CONSOLE_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "console/auth.h"
#include "console/config.h"
#include "console/crypto.h"
#include "console/http.h"
#include "console/mail.h"

#define CONSOLE_VERSION "0.1.0"

/** Values of the product-wide settings (see docs/operations.md for each key). */
typedef struct cc_env {
    const char *env; /* "development" | "production" */
    const char *data_dir;
    const char *database_url;
    const char *public_url;
    const char *http_host;
    int64_t http_port;
    const char *listen_host;
    int64_t port_base;
    int64_t threads;
    int64_t workers;
    int64_t max_body;
    const char *log_level;
    const char *audience;
    const char *jwks_url;
    const char *master_key;
    const char *smtp_url, *smtp_user, *smtp_password, *mail_from;
    const char *upstream[8];
    int64_t db_wait_s;
    /* gateway */
    int64_t rate_limit_rps, rate_limit_burst, upstream_timeout_ms;
    const char *tls_cert, *tls_key;
    bool trust_forwarded;
    int64_t authz_cache_ms;
    int64_t audit_retention_days, outbox_retention_days;
    /* tenants */
    int64_t tenant_retention_days, tenant_purge_interval_s;
    /* identity */
    int64_t access_token_ttl_s, key_rotation_days;
    int64_t license_key_rotation_days, license_key_overlap_days;
    /* identity: second factors (WebAuthn relying party, SMS/voice webhook) */
    const char *webauthn_rp_id, *webauthn_origins, *webauthn_user_verification;
    const char *sms_provider, *sms_webhook_url, *sms_webhook_secret;
    const char *sms_twilio_url, *sms_twilio_account_sid, *sms_twilio_auth_token, *sms_from;
    int64_t sms_timeout_ms, sms_resend_s, sms_max_per_user, sms_max_per_number;
    /* bootstrap (consolectl, deploy/local/up) */
    const char *bootstrap_admin_email, *bootstrap_client_id, *bootstrap_client_secret;
} cc_env_t;

/**
 * Loads the product-wide settings plus extra (may be NULL) into env; derives defaults
 * (DATABASE_URL from the data dir, public URL from the port, JWKS URL from identity's
 * upstream). On failure returns CC_EINVAL with "KEY: reason" in err.
 */
int cc_env_load(cc_env_t *env, const cc_setting_t *extra, size_t nextra, char *err, size_t errlen);

/** The product-wide settings table (for documentation: consolectl settings). */
const cc_setting_t *cc_env_settings(size_t *n);

/** The services behind the gateway, in port order: port = port_base + index + 1. */
extern const char *const cc_service_names[8];
/** Index of a service name in cc_service_names, or -1. */
int cc_service_index(const char *name);
/** Base URL of a service ("http://127.0.0.1:8082"), from CONSOLE_UPSTREAM_<NAME> or the port base.
 * Caller frees. */
char *cc_upstream_url(const cc_env_t *env, const char *name);
/** Port a service listens on locally. */
int cc_service_port(const cc_env_t *env, const char *name);

typedef struct cc_service cc_service_t;

typedef struct cc_service_def {
    const char *name;   /* "tenants" */
    const char *schema; /* its database schema, NULL when it has none */
    const cc_route_t *routes;
    size_t nroutes;
    const cc_setting_t *settings; /* service-specific settings, may be NULL */
    size_t nsettings;
    int (*on_start)(cc_service_t *svc); /* after migrations, before serving; 0 or error */
    void (*on_stop)(cc_service_t *svc);
    cc_ready_cb ready;
} cc_service_def_t;

struct cc_service {
    const cc_service_def_t *def;
    cc_env_t env;
    cc_jwks_t *jwks;
    cc_master_key_t master_key;
    cc_mail_config_t mail;
    cc_server_t *server;
    char *issuer;
    void *app; /* the service's own context, set in on_start; handlers see it as req->app */
};

/** Runs a service until SIGINT/SIGTERM. Returns the process exit code. */
int cc_service_main(const cc_service_def_t *def, int argc, char **argv);

/** Opens a connection with retries for up to env->db_wait_s seconds (start-up only). */
int cc_service_db_connect(const cc_env_t *env, const char *app, const char *search_path,
                          cc_db_t **out);

#endif
