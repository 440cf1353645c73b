/*
 * The licensing service against a real PostgreSQL: the check-in state machine and its
 * messages (table-driven), the product-key format (every single typo and neighbour swap
 * caught), Ed25519 licenses (any altered byte refused), offline request files, the
 * signing key sealed at rest, and the whole product flow through the real router on the
 * database clock: activation, over-allocation, 14 silent days to grace, 44 to
 * suspension, a check-in back to active, deactivation back to Default.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../services/licensing/licensing.h"
#include "console/authz.h"
#include "console/crypto.h"
#include "console/migrate.h"
#include "console/outbox.h"
#include "testdb.h"
#include "testutil.h"

#define ISSUER "http://issuer.test"
#define AUDIENCE "console"
#define KID "k1"
#define PLATFORM "01900000-0000-7000-8000-000000000001"
#define MSP_A "01900000-0000-7000-8000-00000000000a"
#define MSP_B "01900000-0000-7000-8000-00000000000b"
#define CUST_A1 "01900000-0000-7000-8000-0000000000a1"
#define P_ADMIN "01900000-0000-7000-8000-0000000000f0"
#define A_ADMIN "01900000-0000-7000-8000-0000000000fa"
#define B_ADMIN "01900000-0000-7000-8000-0000000000fb"

static char *url;
static cc_db_t *db;
static cc_server_t *srv;
static cc_jwks_t *jwks;
static char *priv_pem;
static cc_service_t svc;
static lic_app_t app;
static lic_keys_t keys; /* the keys the service loaded, as a product would verify with them */
static char mail_dir[64];

static const char *const seed_sql[] = {
    "SELECT set_config('console.system', 'on', false)",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id) VALUES"
    " ('" PLATFORM "', NULL, 'platform', 'Platform', 'platform',"
    " '01900000000070008000000000000001', '" PLATFORM "')",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT v.id::uuid, p.id, 'msp', v.name, tenants.name_key(v.name),"
    " p.path || replace(v.id, '-', ''), v.id::uuid FROM (VALUES ('" MSP_A "', 'MSP A'),"
    " ('" MSP_B "', 'MSP B')) v(id, name) JOIN tenants.tenants p ON p.id = '" PLATFORM "'",
    "INSERT INTO tenants.tenants (id, parent_id, kind, name, name_key, path, msp_id)"
    " SELECT '" CUST_A1 "', p.id, 'customer', '顧客会社A', tenants.name_key('顧客会社A'),"
    " p.path || replace('" CUST_A1 "', '-', ''), p.msp_id FROM tenants.tenants p"
    " WHERE p.id = '" MSP_A "'",
    "INSERT INTO roles.grants (id, principal_id, principal_kind, role, tenant_id, msp_id)"
    " VALUES (gen_random_uuid(), '" P_ADMIN "', 'user', 'platform_super_admin', '" PLATFORM
    "', '" PLATFORM "'),"
    " (gen_random_uuid(), '" A_ADMIN "', 'user', 'msp_super_admin', '" MSP_A "', '" MSP_A "'),"
    " (gen_random_uuid(), '" B_ADMIN "', 'user', 'msp_super_admin', '" MSP_B "', '" MSP_B "')",
    "SELECT set_config('console.system', 'off', false)",
};

static int setup(void **state)
{
    (void)state;
    url = testdb_create("licensing");
    if (cc_db_open(url, "test", "licensing, public", &db) != 0)
        return -1;
    int n = 0;
    static const char *const schemas[] = {"tenants", "roles", "users", "licensing"};
    for (size_t i = 0; i < 4; i++)
        if (cc_migrate_apply(db, cc_migrations_embedded, schemas[i], schemas[i], &n) != 0)
            return -1;
    for (size_t i = 0; i < sizeof(seed_sql) / sizeof(seed_sql[0]); i++)
        if (cc_db_exec(db, seed_sql[i]) != 0)
            return -1;
    json_t *jwk = NULL;
    if (cc_es256_generate(KID, &priv_pem, &jwk) != 0)
        return -1;
    json_t *doc = json_pack("{s:[o]}", "keys", jwk);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    jwks = cc_jwks_new(NULL, 10);
    int rc = cc_jwks_load(jwks, text);
    free(text);
    if (rc != 0)
        return -1;
    snprintf(mail_dir, sizeof(mail_dir), "/tmp/lic-test-XXXXXX");
    if (mkdtemp(mail_dir) == NULL)
        return -1;
    memset(svc.master_key.key, 7, 32);
    strcpy(svc.master_key.id, "0707070707070707");
    svc.env.public_url = "http://console.test";
    svc.mail.data_dir = mail_dir;
    svc.mail.envelope_from = "licensing@console.test";
    app.svc = &svc;
    if (lic_app_keys_start(&app, db) != 0 || lic_keys_init(&keys, &svc.master_key, db, NULL) != 0)
        return -1;
    cc_authz_set_cache_ms(0);
    cc_server_config_t c = {
        .service = "licensing",
        .version = "test",
        .host = "127.0.0.1",
        .threads = 1,
        .workers = 1,
        .max_body = 1 << 20,
        .routes = lic_routes,
        .nroutes = lic_nroutes,
        .jwks = jwks,
        .auth = {.issuer = ISSUER, .audience = AUDIENCE, .leeway_s = 5},
        .authorize = cc_authz_enforce,
        .app = &app,
    };
    return cc_server_new(&c, &srv);
}

static int teardown(void **state)
{
    (void)state;
    cc_server_free(srv);
    lic_app_keys_stop(&app);
    lic_keys_dispose(&keys);
    cc_jwks_free(jwks);
    free(priv_pem);
    cc_db_close(db);
    testdb_drop(url);
    free(url);
    test_rm_tree(mail_dir);
    return 0;
}

static char *token_for(const char *sub, const char *tid)
{
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "iss", ISSUER,
                               "aud", AUDIENCE, "sub", sub, "tid", tid, "msp", tid, "kind",
                               "api_client", "name", "Tester", "iat", (json_int_t)now, "nbf",
                               (json_int_t)now, "exp", (json_int_t)(now + 300));
    char *token = NULL;
    assert_int_equal(cc_jwt_sign_es256(priv_pem, KID, "at+jwt", claims, &token), 0);
    json_decref(claims);
    return token;
}

/* A request as sub (NULL: a product, without a token, with secret as its proof). */
static cc_req_t *call(const char *sub, const char *tid, const char *secret, const char *method,
                      const char *path, const char *body)
{
    cc_header_t h[3] = {{"content-type", "application/json"}};
    size_t nh = 1;
    char *authz = NULL;
    if (sub != NULL) {
        char *token = token_for(sub, tid);
        authz = cc_aprintf("Bearer %s", token);
        free(token);
        h[nh++] = (cc_header_t){"authorization", authz};
    }
    if (secret != NULL)
        h[nh++] = (cc_header_t){"x-activation-secret", secret};
    cc_req_t *req = cc_server_dispatch(srv, db, method, path, h, nh, body, body ? strlen(body) : 0);
    free(authz);
    return req;
}

static json_t *body_of(cc_req_t *r)
{
    json_t *j = json_loads(r->res_body.data ? r->res_body.data : "", 0, NULL);
    assert_non_null(j);
    return j;
}

static void set_clock_days(double days)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT set_config('console.system', 'on', false);"
             " UPDATE licensing.clock SET offset_s = %lld;"
             " SELECT set_config('console.system', 'off', false)",
             (long long)(days * 86400));
    assert_int_equal(cc_db_exec(db, sql), 0);
}

/* ---- pure logic ---- */

static void test_state_machine_and_messages(void **state)
{
    (void)state;
    static const struct {
        double days;
        lic_state_t state;
        const char *codes;
    } cases[] = {
        {0, LIC_ACTIVE, ""},
        {1.99, LIC_ACTIVE, ""},
        {2, LIC_ACTIVE, "connection_lost"},
        {4.99, LIC_ACTIVE, "connection_lost"},
        {5, LIC_ACTIVE, "connection_lost license_expires"},
        {13.999, LIC_ACTIVE, "connection_lost license_expires"},
        {14, LIC_GRACE, "license_expired"},
        {43.999, LIC_GRACE, "license_expired"},
        {44, LIC_SUSPENDED, "license_suspended"},
        {400, LIC_SUSPENDED, "license_suspended"},
    };
    const int64_t last = 1767225600; /* 2026-01-01T00:00:00Z */
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t now = last + (int64_t)(cases[i].days * 86400);
        assert_int_equal(lic_state_at(last, now), cases[i].state);
        json_t *m = lic_messages(last, now);
        char codes[128] = "";
        size_t k;
        json_t *e;
        json_array_foreach(m, k, e)
        {
            if (k)
                strcat(codes, " ");
            strcat(codes, json_string_value(json_object_get(e, "code")));
        }
        assert_string_equal(codes, cases[i].codes);
        if (cases[i].state == LIC_GRACE) /* the day the 14 days ended */
            assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "date")),
                                "2026/01/15");
        json_decref(m);
    }
    assert_string_equal(lic_state_name(LIC_GRACE), "grace");
}

static void test_product_key_catches_typos_and_forgeries(void **state)
{
    (void)state;
    uint8_t priv[32], secret[32], other_secret[32];
    memset(priv, 1, 32);
    memset(secret, 2, 32);
    memset(other_secret, 3, 32);
    lic_keys_t k, other;
    assert_int_equal(lic_keys_from_raw(&k, "t", priv, secret), 0);
    assert_int_equal(lic_keys_from_raw(&other, "t", priv, other_secret), 0);
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (uint32_t serial = 1; serial < 4000000000u; serial = serial * 7 + 13) {
        char key[LIC_KEY_LEN + 1];
        lic_product_key(&k, serial, "Arcserve RHA", 18, key);
        assert_int_equal(strlen(key), LIC_KEY_LEN);
        uint32_t s = 0;
        int major = 0;
        assert_int_equal(lic_product_key_check(&k, key, &s, &major), 0);
        assert_int_equal(s, serial);
        assert_int_equal(major, 18);
        assert_true(lic_product_key_for(key, "Arcserve RHA"));
        assert_false(lic_product_key_for(key, "Arcserve UDP"));
        /* not ours: another secret */
        assert_int_equal(lic_product_key_check(&other, key, &s, &major), CC_EAUTH);
        /* every single mistyped character is caught (checksum or MAC) */
        for (int i = 0; i < LIC_KEY_LEN; i++) {
            if (key[i] == '-')
                continue;
            for (int a = 0; a < 32; a++) {
                if (alphabet[a] == key[i])
                    continue;
                char typo[LIC_KEY_LEN + 1];
                memcpy(typo, key, sizeof(typo));
                typo[i] = alphabet[a];
                assert_int_not_equal(lic_product_key_check(&k, typo, &s, &major), 0);
            }
        }
        /* and every swap of neighbours that changes the key */
        for (int i = 0; i + 1 < LIC_KEY_LEN; i++) {
            char sw[LIC_KEY_LEN + 1];
            memcpy(sw, key, sizeof(sw));
            if (sw[i] == '-' || sw[i + 1] == '-' || sw[i] == sw[i + 1])
                continue;
            char t = sw[i];
            sw[i] = sw[i + 1];
            sw[i + 1] = t;
            assert_int_not_equal(lic_product_key_check(&k, sw, &s, &major), 0);
        }
    }
    uint32_t s;
    int major;
    assert_int_equal(lic_product_key_check(&k, "", &s, &major), CC_EINVAL);
    assert_int_equal(lic_product_key_check(&k, "AAAAA-AAAAA", &s, &major), CC_EINVAL);
    assert_int_equal(lic_product_key_check(&k, "UUUUU-UUUUU-UUUUU-UUUUU-UUUUU", &s, &major),
                     CC_EINVAL);
    lic_keys_dispose(&k);
    lic_keys_dispose(&other);
}

static void test_license_signature_refuses_any_change(void **state)
{
    (void)state;
    json_t *payload = json_pack("{s:s, s:[{s:s, s:i}]}", "activation_id", "a1", "products",
                                "product", "Arcserve UDP", "quantity", 3);
    char *jws = lic_sign(&keys, payload);
    assert_non_null(jws);
    json_t *back = NULL;
    assert_int_equal(lic_verify(&keys, jws, &back), 0);
    assert_true(json_equal(back, payload));
    json_decref(back);
    /* flip every character of header and payload (and some of the signature) */
    size_t n = strlen(jws);
    for (size_t i = 0; i < n; i++) {
        if (jws[i] == '.')
            continue;
        char *t = cc_strdup(jws);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        assert_int_not_equal(lic_verify(&keys, t, &back), 0);
        assert_null(back);
        free(t);
    }
    /* alg none and a payload without a signature */
    char *dot = strrchr(jws, '.');
    char *unsigned_jws = cc_strndup(jws, (size_t)(dot - jws) + 1);
    assert_int_not_equal(lic_verify(&keys, unsigned_jws, &back), 0);
    json_t *none = json_pack("{s:s, s:s}", "alg", "none", "kid", keys.kid);
    char *h = json_dumps(none, JSON_COMPACT), *hb = cc_base64url_encode(h, strlen(h));
    char *forged = cc_aprintf("%s%s", hb, strchr(jws, '.'));
    assert_int_equal(lic_verify(&keys, forged, &back), CC_EAUTH);
    /* another key's license */
    uint8_t priv[32], secret[32];
    memset(priv, 9, 32);
    memset(secret, 9, 32);
    lic_keys_t other;
    assert_int_equal(lic_keys_from_raw(&other, keys.kid, priv, secret), 0);
    char *theirs = lic_sign(&other, payload);
    assert_int_equal(lic_verify(&keys, theirs, &back), CC_EAUTH);
    lic_keys_dispose(&other);
    free(theirs);
    free(forged);
    free(hb);
    free(h);
    json_decref(none);
    free(unsigned_jws);
    free(jws);
    json_decref(payload);
}

static void test_request_file_integrity(void **state)
{
    (void)state;
    json_t *req = json_pack("{s:s, s:s}", "order_id", "ORD-1", "computer_name", "PC");
    json_t *file = lic_request_make("FN-123", req);
    json_t *opened = NULL;
    const char *rb, *mb;
    assert_int_equal(lic_request_open(file, &opened, &rb, &mb), 0);
    assert_true(json_equal(opened, req));
    assert_true(lic_request_mac_ok("FN-123", rb, mb));
    assert_false(lic_request_mac_ok("FN-124", rb, mb));
    assert_false(lic_request_mac_ok("FN-123", "eyJ9", mb));
    json_decref(opened);
    json_t *bad = json_pack("{s:s, s:s, s:s}", "format", "console-license-request/2", "request", rb,
                            "mac", mb);
    assert_int_equal(lic_request_open(bad, &opened, &rb, &mb), CC_EINVAL);
    json_decref(bad);
    bad = json_pack("{s:s, s:s, s:s}", "format", "console-license-request/1", "request", "W10",
                    "mac", "x"); /* "[]": not an object */
    assert_int_equal(lic_request_open(bad, &opened, &rb, &mb), CC_EINVAL);
    json_decref(bad);
    json_decref(file);
    json_decref(req);
}

static void test_deactivation_file_is_not_a_request_file(void **state)
{
    (void)state;
    json_t *req = json_pack("{s:s, s:s}", "activation_id", "01a20909-e468-7b35-99bb-df13a3ff41c2",
                            "order_id", "ORD-1");
    json_t *file = lic_deactivation_make("FN-123", req), *opened = NULL;
    const char *rb, *mb;
    assert_int_equal(lic_deactivation_open(file, &opened, &rb, &mb), 0);
    assert_true(json_equal(opened, req));
    assert_true(lic_request_mac_ok("FN-123", rb, mb));
    json_decref(opened);
    /* one kind of file is never taken for the other */
    assert_int_equal(lic_request_open(file, &opened, &rb, &mb), CC_EINVAL);
    json_t *activation = lic_request_make("FN-123", req);
    assert_int_equal(lic_deactivation_open(activation, &opened, &rb, &mb), CC_EINVAL);
    json_decref(activation);
    json_decref(file);
    json_decref(req);
}

static void test_signing_key_is_sealed_and_stable(void **state)
{
    (void)state;
    lic_keys_t again;
    assert_int_equal(lic_keys_init(&again, &svc.master_key, db, NULL), 0);
    assert_string_equal(again.kid, keys.kid); /* generated once, then loaded */
    assert_string_equal(again.public_b64, keys.public_b64);
    lic_keys_dispose(&again);
    cc_master_key_t wrong = svc.master_key;
    wrong.key[0] ^= 1;
    strcpy(wrong.id, "0000000000000000");
    assert_int_not_equal(lic_keys_init(&again, &wrong, db, NULL), 0);
    /* without the system scope the keys are invisible */
    cc_pool_t *pool = cc_pool_new();
    static const cc_stmt_t q = CC_STMT("t_keys", "SELECT count(*) FROM signing_keys", 0);
    PGresult *res;
    const cc_scope_t none = {0};
    assert_int_equal(cc_db_begin(db, &none), 0);
    assert_int_equal(cc_db_query(db, pool, &q, NULL, &res), 0);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    cc_db_rollback(db);
    cc_pool_free(pool);
}

/* ---- the product flow on the database clock ---- */

static const char *activation_body(const char *guid)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             "{\"order_id\":\"ORD-IT-1\",\"fulfillment_number\":\"FN-IT-1\","
             "\"email\":\"admin@example.com\",\"computer_name\":\"SRV\","
             "\"fingerprint\":{\"bios_serial\":\"B1\",\"cpu_id\":\"C1\",\"machine_guid\":\"%s\"}}",
             guid);
    return buf;
}

static const char *default_quantity(void)
{
    static char q[16];
    cc_req_t *r =
        call(A_ADMIN, MSP_A, NULL, "GET", "/api/v1/licensing/pools?order_id=ORD-IT-1", NULL);
    assert_int_equal(r->status, 200);
    json_t *b = body_of(r);
    json_t *first = json_array_get(json_object_get(b, "items"), 0);
    assert_true(json_is_true(json_object_get(first, "default")));
    snprintf(q, sizeof(q), "%lld",
             (long long)json_integer_value(json_object_get(first, "quantity")));
    json_decref(b);
    cc_req_free(r);
    return q;
}

static void test_activation_check_in_and_release_on_the_clock(void **state)
{
    (void)state;
    cc_req_t *r = call(P_ADMIN, PLATFORM, NULL, "POST", "/api/v1/licensing/orders",
                       "{\"order_id\":\"ORD-IT-1\",\"fulfillment_number\":\"FN-IT-1\","
                       "\"tenant_id\":\"" MSP_A "\",\"lines\":[{\"product\":\"Arcserve UDP\","
                       "\"edition\":\"Advanced\",\"quantity\":2,\"license_type\":\"perpetual\"}]}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    /* an MSP admin does not add orders */
    r = call(A_ADMIN, MSP_A, NULL, "POST", "/api/v1/licensing/orders",
             "{\"order_id\":\"X\",\"fulfillment_number\":\"Y\",\"tenant_id\":\"" MSP_A
             "\",\"lines\":[{\"product\":\"p\",\"edition\":\"e\",\"quantity\":1,"
             "\"license_type\":\"perpetual\"}]}");
    assert_int_equal(r->status, 403);
    cc_req_free(r);

    r = call(NULL, NULL, NULL, "POST", "/api/v1/licensing/activations",
             activation_body("6f1c9f43-1111-4b7e-9a35-000000000001"));
    assert_int_equal(r->status, 201);
    json_t *a = body_of(r);
    cc_req_free(r);
    const char *id = json_string_value(json_object_get(a, "id"));
    const char *secret = json_string_value(json_object_get(a, "activation_secret"));
    json_t *payload = NULL;
    assert_int_equal(lic_verify(&keys, json_string_value(json_object_get(a, "license")), &payload),
                     0);
    json_decref(payload);
    assert_string_equal(default_quantity(), "1");
    r = call(NULL, NULL, NULL, "POST", "/api/v1/licensing/activations",
             activation_body("6f1c9f43-1111-4b7e-9a35-000000000002"));
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    assert_string_equal(default_quantity(), "0");
    r = call(NULL, NULL, NULL, "POST", "/api/v1/licensing/activations",
             activation_body("6f1c9f43-1111-4b7e-9a35-000000000003"));
    assert_int_equal(r->status, 409);
    assert_non_null(strstr(r->res_body.data, "\"no_licenses_available\""));
    cc_req_free(r);

    char *path = cc_aprintf("/api/v1/licensing/activations/%s/check-in", id);
    static const struct {
        double days;
        const char *previous;
    } steps[] = {{13.9, "active"},
                 {13.9 + 14.1, "grace"},
                 {28 + 43.9, "grace"},
                 {71.9 + 44.1, "suspended"},
                 {116, "active"}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        set_clock_days(steps[i].days);
        r = call(NULL, NULL, secret, "POST", path, NULL);
        assert_int_equal(r->status, 200);
        json_t *c = body_of(r);
        assert_string_equal(json_string_value(json_object_get(c, "previous_state")),
                            steps[i].previous);
        assert_string_equal(json_string_value(json_object_get(c, "state")), "active");
        json_decref(c);
        cc_req_free(r);
    }
    set_clock_days(0);
    r = call(NULL, NULL, "wrong", "POST", path, NULL);
    assert_int_equal(r->status, 401);
    cc_req_free(r);
    /* another MSP's admin cannot deactivate it; the product can */
    char *apath = cc_aprintf("/api/v1/licensing/activations/%s", id);
    r = call(B_ADMIN, MSP_B, NULL, "DELETE", apath, NULL);
    assert_int_equal(r->status, 404);
    cc_req_free(r);
    r = call(NULL, NULL, secret, "DELETE", apath, NULL);
    assert_int_equal(r->status, 200);
    cc_req_free(r);
    assert_string_equal(default_quantity(), "1");
    r = call(NULL, NULL, secret, "POST", path, NULL);
    assert_int_equal(r->status, 401); /* deactivated: the secret is dead */
    cc_req_free(r);
    free(apath);
    free(path);
    json_decref(a);
}

static long count_system(const char *sql_text)
{
    static int seq;
    cc_pool_t *pool = cc_pool_new();
    cc_stmt_t st = {.name = cc_pool_printf(pool, "t_lic_count_%d", ++seq), .sql = sql_text};
    cc_scope_t system = {.system = true};
    PGresult *res;
    assert_int_equal(cc_db_begin(db, &system), 0);
    assert_int_equal(cc_db_query(db, pool, &st, NULL, &res), 0);
    long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    cc_db_rollback(db);
    cc_pool_free(pool);
    return n;
}

static void set_account_status(const char *tenant_id, const char *status)
{
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT set_config('console.system', 'on', false);"
             " UPDATE tenants.tenants SET status = '%s', purge_at = CASE WHEN '%s' = 'deleted'"
             " THEN now() + interval '14 days' END WHERE id = '%s';"
             " SELECT set_config('console.system', 'off', false)",
             status, status, tenant_id);
    assert_int_equal(cc_db_exec(db, sql), 0);
}

/* A suspended account's servers already activated keep checking in, but their license is
 * suspended (no license, state suspended, the account_suspended message) until the account
 * is resumed; the portal shows the same state. */
static void test_suspended_account_suspends_its_servers_licenses_until_resumed(void **state)
{
    (void)state;
    cc_req_t *r =
        call(P_ADMIN, PLATFORM, NULL, "POST", "/api/v1/licensing/orders",
             "{\"order_id\":\"ORD-SUSP\",\"fulfillment_number\":\"FN-S\",\"tenant_id\":\"" CUST_A1
             "\",\"lines\":[{\"product\":\"Arcserve UDP\",\"edition\":\"Advanced\","
             "\"quantity\":1,\"license_type\":\"perpetual\"}]}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    r = call(
        NULL, NULL, NULL, "POST", "/api/v1/licensing/activations",
        "{\"order_id\":\"ORD-SUSP\",\"fulfillment_number\":\"FN-S\",\"email\":\"s@example.com\","
        "\"computer_name\":\"S\",\"fingerprint\":{\"mac\":\"00:11:22:33:44:66\"}}");
    assert_int_equal(r->status, 201);
    json_t *a = body_of(r);
    cc_req_free(r);
    const char *secret = json_string_value(json_object_get(a, "activation_secret"));
    char *path = cc_aprintf("/api/v1/licensing/activations/%s/check-in",
                            json_string_value(json_object_get(a, "id")));
    static const struct {
        const char *status, *state, *reason;
    } steps[] = {{"suspended", "suspended", "account_suspended"},
                 {"deleted", "suspended", "account_deleted"},
                 {"active", "active", NULL}};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        set_account_status(CUST_A1, steps[i].status);
        r = call(NULL, NULL, secret, "POST", path, NULL);
        assert_int_equal(r->status, 200);
        json_t *c = body_of(r);
        cc_req_free(r);
        assert_string_equal(json_string_value(json_object_get(c, "state")), steps[i].state);
        if (steps[i].reason != NULL) {
            assert_string_equal(json_string_value(json_object_get(c, "reason")), steps[i].reason);
            assert_null(json_object_get(c, "license"));
            json_t *m = json_array_get(json_object_get(c, "messages"), 0);
            assert_string_equal(json_string_value(json_object_get(m, "code")), steps[i].reason);
            /* the portal's view says the same */
            r = call(A_ADMIN, MSP_A, NULL, "GET", "/api/v1/licensing/activations?order_id=ORD-SUSP",
                     NULL);
            assert_int_equal(r->status, 200);
            json_t *l = body_of(r);
            cc_req_free(r);
            json_t *it = json_array_get(json_object_get(l, "items"), 0);
            assert_string_equal(json_string_value(json_object_get(it, "state")), "suspended");
            json_decref(l);
        } else {
            assert_non_null(json_object_get(c, "license"));
            assert_string_equal(json_string_value(json_object_get(c, "previous_state")), "active");
        }
        json_decref(c);
    }
    /* the licenses never left the server */
    assert_int_equal(count_system("SELECT sum(p.quantity) FROM licensing.pools p JOIN"
                                  " licensing.orders o ON o.id = p.order_id WHERE"
                                  " o.order_number = 'ORD-SUSP' AND p.activation_id IS NOT NULL"),
                     1);
    free(path);
    json_decref(a);
}

static void test_purged_customer_loses_its_orders_and_returns_allocations(void **state)
{
    (void)state;
    cc_req_t *r =
        call(P_ADMIN, PLATFORM, NULL, "POST", "/api/v1/licensing/orders",
             "{\"order_id\":\"ORD-MSP\",\"fulfillment_number\":\"FN-M\",\"tenant_id\":\"" MSP_A
             "\",\"lines\":[{\"product\":\"Arcserve UDP\",\"edition\":\"Advanced\","
             "\"quantity\":5,\"license_type\":\"perpetual\"}]}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    r = call(P_ADMIN, PLATFORM, NULL, "POST", "/api/v1/licensing/orders",
             "{\"order_id\":\"ORD-CUST\",\"fulfillment_number\":\"FN-C\",\"tenant_id\":\"" CUST_A1
             "\",\"lines\":[{\"product\":\"Arcserve UDP\",\"edition\":\"Advanced\","
             "\"quantity\":1,\"license_type\":\"perpetual\"}]}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    r = call(A_ADMIN, MSP_A, NULL, "POST", "/api/v1/licensing/pools",
             "{\"order_id\":\"ORD-MSP\",\"name\":\"for A1\",\"quantity\":2,\"tenant_id\":\"" CUST_A1
             "\"}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    r = call(
        NULL, NULL, NULL, "POST", "/api/v1/licensing/activations",
        "{\"order_id\":\"ORD-CUST\",\"fulfillment_number\":\"FN-C\",\"email\":\"a@example.com\","
        "\"computer_name\":\"C\",\"fingerprint\":{\"mac\":\"00:11:22:33:44:55\"}}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    assert_int_equal(
        count_system("SELECT count(*) FROM licensing.pools WHERE tenant_id = '" CUST_A1 "'"),
        3); /* the customer's own Default, its server's pool, the MSP's allocation */

    cc_pool_t *pool = cc_pool_new();
    json_t *payload = json_pack("{s:s, s:s}", "id", CUST_A1, "msp_id", MSP_A);
    cc_outbox_event_t ev = {
        .id = 1, .type = "tenant.purged", .aggregate_id = CUST_A1, .payload = payload};
    cc_scope_t system = {.system = true};
    for (int replay = 0; replay < 2; replay++) {
        assert_int_equal(cc_db_begin(db, &system), 0);
        assert_int_equal(lic_on_tenants_event(db, pool, &ev, &app), 0);
        assert_int_equal(cc_db_commit(db), 0);
    }
    assert_int_equal(
        count_system("SELECT count(*) FROM licensing.orders WHERE tenant_id = '" CUST_A1 "'"), 0);
    assert_int_equal(count_system("SELECT count(*) FROM licensing.activations a JOIN"
                                  " licensing.orders o ON o.id = a.order_id"
                                  " WHERE o.order_number = 'ORD-CUST'"),
                     0);
    assert_int_equal(
        count_system("SELECT count(*) FROM licensing.pools WHERE tenant_id = '" CUST_A1 "'"), 0);
    /* the MSP's 5 licenses are all still its own: 3 in Default, 2 in the returned pool */
    assert_int_equal(
        count_system("SELECT sum(quantity) FROM licensing.pools p JOIN licensing.orders o"
                     " ON o.id = p.order_id WHERE o.order_number = 'ORD-MSP'"
                     " AND p.tenant_id = '" MSP_A "'"),
        5);
    assert_int_equal(count_system("SELECT count(*) FROM licensing.audit_events"
                                  " WHERE action = 'licensing.tenant_purged'"),
                     1);
    json_decref(payload);
    cc_pool_free(pool);
}

/* A license's kid (pool memory is not needed: a static buffer). */
static const char *kid_of(const char *jws)
{
    static char kid[64];
    const char *dot = strchr(jws, '.');
    uint8_t *h = NULL;
    size_t n = 0;
    assert_int_equal(cc_base64url_decode_strict(jws, (size_t)(dot - jws), &h, &n), 0);
    json_t *header = json_loadb((const char *)h, n, 0, NULL);
    snprintf(kid, sizeof(kid), "%s", json_string_value(json_object_get(header, "kid")));
    json_decref(header);
    free(h);
    return kid;
}

static char *activate_body(const char *order, const char *fn, const char *mac)
{
    return cc_aprintf(
        "{\"order_id\":\"%s\",\"fulfillment_number\":\"%s\",\"email\":\"r@example.com\","
        "\"computer_name\":\"R\",\"fingerprint\":{\"mac\":\"%s\"}}",
        order, fn, mac);
}

/* Signing-key rotation: retiring the active key (consolectl rotate-license-key) makes the
 * service sign with a new key from its next request while the old key stays published and
 * keeps verifying what it signed; after the overlap it is gone; a key past the rotation
 * age is rotated by itself; product keys outlive every rotation. All on the licensing
 * clock. */
static void test_signing_key_rotation_overlap_and_age(void **state)
{
    (void)state;
    cc_req_t *r =
        call(P_ADMIN, PLATFORM, NULL, "POST", "/api/v1/licensing/orders",
             "{\"order_id\":\"ORD-ROT\",\"fulfillment_number\":\"FN-R\",\"tenant_id\":\"" MSP_A
             "\",\"lines\":[{\"product\":\"Arcserve UDP Agent\",\"edition\":\"Windows\","
             "\"quantity\":5,\"license_type\":\"perpetual\"}]}");
    assert_int_equal(r->status, 201);
    cc_req_free(r);
    char *body = activate_body("ORD-ROT", "FN-R", "00:11:22:33:44:01");
    r = call(NULL, NULL, NULL, "POST", "/api/v1/licensing/activations", body);
    free(body);
    assert_int_equal(r->status, 201);
    json_t *a = body_of(r);
    cc_req_free(r);
    const char *old_license = json_string_value(json_object_get(a, "license"));
    char old_kid[64];
    snprintf(old_kid, sizeof(old_kid), "%s", kid_of(old_license));
    assert_string_equal(old_kid, keys.kid);
    r = call(A_ADMIN, MSP_A, NULL, "POST", "/api/v1/licensing/keys",
             "{\"order_id\":\"ORD-ROT\",\"product\":\"Arcserve UDP Agent\",\"version\":\"7.0\","
             "\"quantity\":1}");
    assert_int_equal(r->status, 201);
    json_t *pk = body_of(r);
    cc_req_free(r);
    char *verify = cc_aprintf("{\"key\":\"%s\"}",
                              json_string_value(json_array_get(json_object_get(pk, "keys"), 0)));

    /* rotate by command */
    cc_pool_t *pool = cc_pool_new();
    int retired = 0;
    assert_int_equal(lic_keys_retire_active(db, pool, &retired), 0);
    assert_int_equal(retired, 1);
    body = activate_body("ORD-ROT", "FN-R", "00:11:22:33:44:02");
    r = call(NULL, NULL, NULL, "POST", "/api/v1/licensing/activations", body);
    free(body);
    assert_int_equal(r->status, 201);
    json_t *b = body_of(r);
    cc_req_free(r);
    const char *new_license = json_string_value(json_object_get(b, "license"));
    assert_string_not_equal(kid_of(new_license), old_kid); /* the new key signs */
    /* the published set holds both; each license verifies with it */
    lic_keys_t set;
    assert_int_equal(lic_keys_init(&set, &svc.master_key, db, NULL), 0);
    assert_int_equal(set.npublished, 2);
    assert_string_equal(set.kid, kid_of(new_license));
    assert_string_equal(set.published[1].kid, old_kid);
    json_t *payload = NULL;
    assert_int_equal(lic_verify(&set, old_license, &payload), 0);
    json_decref(payload);
    assert_int_equal(lic_verify(&set, new_license, &payload), 0);
    json_decref(payload);
    lic_keys_dispose(&set);
    r = call(NULL, NULL, NULL, "GET", "/api/v1/licensing/public-key", NULL);
    assert_int_equal(r->status, 200);
    json_t *set_doc = body_of(r);
    cc_req_free(r);
    assert_int_equal(json_array_size(json_object_get(set_doc, "keys")), 2);
    json_decref(set_doc);
    /* a product key made before the rotation still verifies */
    r = call(A_ADMIN, MSP_A, NULL, "POST", "/api/v1/licensing/keys/verify", verify);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->res_body.data, "\"valid\":true"));
    cc_req_free(r);

    /* after the overlap (400 days by default) the old key is gone: its licenses no longer
     * verify, the set publishes the new key alone; a check-in brings a license of the new key */
    set_clock_days(401);
    assert_int_equal(lic_keys_init(&set, &svc.master_key, db, NULL), 0);
    assert_int_equal(set.npublished, 1);
    assert_int_equal(lic_verify(&set, old_license, &payload), CC_EAUTH);
    lic_keys_dispose(&set);
    char *path = cc_aprintf("/api/v1/licensing/activations/%s/check-in",
                            json_string_value(json_object_get(a, "id")));
    r = call(NULL, NULL, json_string_value(json_object_get(a, "activation_secret")), "POST", path,
             NULL);
    assert_int_equal(r->status, 200);
    json_t *c = body_of(r);
    cc_req_free(r);
    assert_string_equal(kid_of(json_string_value(json_object_get(c, "license"))),
                        kid_of(new_license));
    json_decref(c);
    free(path);

    /* by age: with a 30-day rotation the active key (401 days old) is replaced */
    lic_key_policy_t policy = {.rotation_days = 30, .overlap_days = 60};
    char current[64];
    snprintf(current, sizeof(current), "%s", kid_of(new_license));
    assert_int_equal(lic_keys_init(&set, &svc.master_key, db, &policy), 0);
    assert_string_not_equal(set.kid, current);
    assert_int_equal(set.npublished, 2);
    bool changed = true;
    assert_int_equal(lic_keys_changed(db, pool, &set, &policy, &changed), 0);
    assert_false(changed);
    lic_keys_dispose(&set);
    set_clock_days(0);
    /* the product key still verifies, with every later key */
    r = call(A_ADMIN, MSP_A, NULL, "POST", "/api/v1/licensing/keys/verify", verify);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->res_body.data, "\"valid\":true"));
    cc_req_free(r);
    /* every key sealed at rest: no private key in clear */
    assert_int_equal(count_system("SELECT count(*) FROM licensing.signing_keys"
                                  " WHERE private_key_sealed = public_key"),
                     0);
    cc_pool_free(pool);
    free(verify);
    json_decref(pk);
    json_decref(b);
    json_decref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_machine_and_messages),
        cmocka_unit_test(test_product_key_catches_typos_and_forgeries),
        cmocka_unit_test(test_license_signature_refuses_any_change),
        cmocka_unit_test(test_request_file_integrity),
        cmocka_unit_test(test_deactivation_file_is_not_a_request_file),
        cmocka_unit_test(test_signing_key_is_sealed_and_stable),
        cmocka_unit_test(test_activation_check_in_and_release_on_the_clock),
        cmocka_unit_test(test_purged_customer_loses_its_orders_and_returns_allocations),
        cmocka_unit_test(test_suspended_account_suspends_its_servers_licenses_until_resumed),
        cmocka_unit_test(test_signing_key_rotation_overlap_and_age),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
