/*
 * console-identity: the OpenID Provider. Discovery, JWKS, the authorization code flow
 * with PKCE, the token endpoint (authorization_code, refresh_token, client_credentials),
 * userinfo, revocation, introspection, RP-initiated logout, the Okta-style
 * authentication API (activation, password, TOTP and email factors) and GET /api/v1/me.
 * Routes: this table; handlers: handlers.c (discovery, JWKS, me), oauth.c, authn.c.
 */
#include "federation.h"
#include "identity.h"
#include "phone.h"
#include "policy.h"

#include "console/log.h"

static const cc_route_t routes[] = {
    {"GET", "/.well-known/openid-configuration", identity_handle_discovery, CC_ROUTE_PUBLIC, 0},
    {"GET", "/oauth2/jwks", identity_handle_jwks, CC_ROUTE_PUBLIC, 0},
    {"GET", "/oauth2/authorize", identity_handle_authorize, CC_ROUTE_PUBLIC, 0},
    {"POST", "/oauth2/token", identity_handle_token, CC_ROUTE_PUBLIC, 64 * 1024},
    {"GET", "/oauth2/userinfo", identity_handle_userinfo, 0, 0},
    {"POST", "/oauth2/userinfo", identity_handle_userinfo, 0, 64 * 1024},
    {"POST", "/oauth2/revoke", identity_handle_revoke, CC_ROUTE_PUBLIC, 64 * 1024},
    {"POST", "/oauth2/introspect", identity_handle_introspect, CC_ROUTE_PUBLIC, 64 * 1024},
    {"GET", "/oauth2/logout", identity_handle_logout, CC_ROUTE_PUBLIC, 0},
    {"POST", "/api/v1/authn", identity_handle_authn, CC_ROUTE_PUBLIC, 16 * 1024},
    {"POST", "/api/v1/authn/activate", identity_handle_authn_activate, CC_ROUTE_PUBLIC, 16 * 1024},
    {"POST", "/api/v1/authn/recovery/password", identity_handle_recovery_password, CC_ROUTE_PUBLIC,
     16 * 1024},
    {"POST", "/api/v1/authn/recovery/verify", identity_handle_recovery_verify, CC_ROUTE_PUBLIC,
     16 * 1024},
    {"POST", "/api/v1/authn/recovery/reset", identity_handle_recovery_reset, CC_ROUTE_PUBLIC,
     16 * 1024},
    {"POST", "/api/v1/authn/factors", identity_handle_authn_factor_enroll, CC_ROUTE_PUBLIC,
     16 * 1024},
    {"POST", "/api/v1/authn/factors/{id}/activate", identity_handle_authn_factor_activate,
     CC_ROUTE_PUBLIC, 16 * 1024},
    {"POST", "/api/v1/authn/factors/{id}/verify", identity_handle_authn_factor_verify,
     CC_ROUTE_PUBLIC, 16 * 1024},
    {"GET", "/login", identity_page_login, CC_ROUTE_PUBLIC, 0},
    {"GET", "/login/callback", identity_handle_federation_callback, CC_ROUTE_PUBLIC, 0},
    {"POST", "/login", identity_page_login_post, CC_ROUTE_PUBLIC, 16 * 1024},
    {"GET", "/mfa", identity_page_mfa, CC_ROUTE_PUBLIC, 0},
    {"POST", "/mfa", identity_page_mfa_post, CC_ROUTE_PUBLIC, 16 * 1024},
    {"GET", "/mfa/enroll", identity_page_enroll, CC_ROUTE_PUBLIC, 0},
    {"POST", "/mfa/enroll", identity_page_enroll_post, CC_ROUTE_PUBLIC, 16 * 1024},
    {"GET", "/activate", identity_page_activate, CC_ROUTE_PUBLIC, 0},
    {"POST", "/activate", identity_page_activate_post, CC_ROUTE_PUBLIC, 16 * 1024},
    {"GET", "/password/forgot", identity_page_forgot, CC_ROUTE_PUBLIC, 0},
    {"POST", "/password/forgot", identity_page_forgot_post, CC_ROUTE_PUBLIC, 16 * 1024},
    {"GET", "/password/reset", identity_page_reset, CC_ROUTE_PUBLIC, 0},
    {"POST", "/password/reset", identity_page_reset_post, CC_ROUTE_PUBLIC, 16 * 1024},
    {"POST", "/api/v1/api-clients", identity_handle_api_client_create, 0, 16 * 1024},
    {"GET", "/api/v1/api-clients", identity_handle_api_client_list, 0, 0},
    {"DELETE", "/api/v1/api-clients/{id}", identity_handle_api_client_delete, 0, 0},
    {"POST", "/api/v1/users/{id}/unlock", identity_handle_user_unlock, 0, 0},
    {"POST", "/api/v1/tenants/{id}/impersonate", identity_handle_impersonate, 0, 16 * 1024},
    {"GET", "/api/v1/tenants/{id}/identity-provider", identity_handle_idp_get, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/identity-provider", identity_handle_idp_put, 0, 64 * 1024},
    {"GET", "/api/v1/tenants/{id}/mfa-policy", identity_handle_mfa_policy_get, 0, 0},
    {"PUT", "/api/v1/tenants/{id}/mfa-policy", identity_handle_mfa_policy_put, 0, 16 * 1024},
    {"DELETE", "/api/v1/tenants/{id}/mfa-policy", identity_handle_mfa_policy_delete, 0, 0},
    {"GET", "/api/v1/tenants/{id}/mfa-enrollment", identity_handle_mfa_enrollment, 0, 0},
    {"GET", "/api/v1/me", identity_handle_me, 0, 0},
    {"GET", "/api/v1/me/factors", identity_handle_me_factors, 0, 0},
    {"POST", "/api/v1/me/factors", identity_handle_me_factor_enroll, 0, 16 * 1024},
    {"POST", "/api/v1/me/factors/{id}/activate", identity_handle_me_factor_activate, 0, 16 * 1024},
    {"DELETE", "/api/v1/me/factors/{id}", identity_handle_me_factor_delete, 0, 0},
    {"GET", "/api/v1/me/recovery-codes", identity_handle_me_recovery_codes, 0, 0},
    {"POST", "/api/v1/me/recovery-codes", identity_handle_me_recovery_codes_create, 0, 1024},
    {"POST", "/api/v1/authn/recovery-codes/verify", identity_handle_authn_recovery_code,
     CC_ROUTE_PUBLIC, 16 * 1024},
    {"POST", "/api/v1/users/{id}/factors/reset", identity_handle_user_factors_reset, 0, 1024},
    {"GET", "/api/v1/me/remembered-devices", identity_handle_me_remembered_devices, 0, 0},
    {"DELETE", "/api/v1/me/remembered-devices", identity_handle_me_remembered_devices_delete, 0, 0},
    {"DELETE", "/api/v1/me/remembered-devices/{id}", identity_handle_me_remembered_device_delete, 0,
     0},
};

static identity_app_t app;

static int on_start(cc_service_t *svc)
{
    cc_db_t *db = NULL;
    app.svc = svc;
    app.rotation_days = svc->env.key_rotation_days;
    svc->app = &app;
    int rc = fed_rp_init(); /* liboauth2 and curl, before the server's threads */
    if (rc == 0)
        rc = cc_service_db_connect(&svc->env, "identity", "identity, public", &db);
    if (rc == 0)
        rc = identity_keys_init(&app, db);
    if (rc == 0)
        rc = identity_webauthn_init(&svc->env);
    if (rc == 0 && (rc = identity_phone_init(&svc->env)) == 0)
        identity_factor_phone_enable(identity_phone_enabled());
    cc_db_close(db);
    if (rc == 0)
        rc = cc_outbox_consumer_start(svc->env.database_url, "identity, public", "users",
                                      "identity.activation_mail", 10000, identity_on_users_event,
                                      &app, &app.users_events);
    return rc;
}

static void on_stop(cc_service_t *svc)
{
    cc_outbox_consumer_stop(app.users_events);
    app.users_events = NULL;
    identity_keys_dispose(&app.keys);
    fed_rp_shutdown();
    identity_webauthn_dispose();
}

static const cc_service_def_t service = {
    .name = "identity",
    .schema = "identity",
    .routes = routes,
    .nroutes = CC_ARRAY_SIZE(routes),
    .on_start = on_start,
    .on_stop = on_stop,
};

int main(int argc, char **argv)
{
    return cc_service_main(&service, argc, argv);
}
