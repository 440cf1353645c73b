/*
 * What products call (API.md, Licensing), without a bearer token: online activation
 * (order id + fulfillment number + e-mail + computer name + fingerprint), check-in with
 * the activation secret, deactivation, e-mail change; and what the user brings from
 * another machine: the offline request file (with a bearer token). The proof of a
 * product is its order's Order ID + Fulfillment Number, or its activation secret, so these
 * requests run in system scope and every statement names its order or activation.
 *
 * Rules (the licensing FAQ): one order does not mix online and offline servers (2.21,
 * 3.10); re-activating the same machine is idempotent, a restored machine has a new
 * fingerprint and needs a new activation (5.9); an order of several licenses activated
 * on another server with another e-mail waits for the buyer's approval (2.5, 2.6);
 * each activation mails a registration link valid 72 hours (2.11).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/authz.h"
#include "console/crypto.h"
#include "console/json.h"
#include "console/log.h"
#include "licensing.h"

/* ---- statements ---- */

#define ORDER_COLS                                                                                 \
    "o.id, o.order_number, o.fulfillment_number, o.end_user_email, o.account_email, o.method,"     \
    " o.msp_id, o.tenant_path::text, (SELECT sum(quantity) FROM order_lines l"                     \
    " WHERE l.order_id = o.id), o.tenant_id, o.language"
static const cc_stmt_t q_order_lock =
    CC_STMT("lic_order_lock",
            "SELECT " ORDER_COLS " FROM orders o WHERE o.order_number = $1 FOR UPDATE", 1);
static const cc_stmt_t q_live_on_order = CC_STMT(
    "lic_live_on_order",
    "SELECT a.id, a.method, a.fingerprint_hash, lower(a.email), a.status FROM activations a"
    " WHERE a.status IN ('active', 'pending_approval') AND (a.order_id = $1::uuid OR"
    " EXISTS (SELECT 1 FROM pools p WHERE p.activation_id = a.id AND p.order_id = $1::uuid))",
    1);
static const cc_stmt_t q_act_insert = CC_STMT(
    "lic_act_insert",
    "INSERT INTO activations (id, order_id, msp_id, tenant_path, method, status, email,"
    " computer_name, fingerprint, fingerprint_hash, name, company, phone, secret_hash)"
    " SELECT $1::uuid, o.id, o.msp_id, o.tenant_path, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10,"
    " $11 FROM orders o WHERE o.id = $12::uuid",
    12);
static const cc_stmt_t q_allocate = CC_STMT(
    "lic_allocate",
    "WITH taken AS (UPDATE pools SET quantity = quantity - 1, updated_at = licensing_now(),"
    " version = version + 1 WHERE order_id = $1::uuid AND is_default AND quantity >= 1"
    " RETURNING line_id, msp_id, tenant_id, tenant_path)"
    " INSERT INTO pools (id, order_id, line_id, msp_id, tenant_id, tenant_path, name, quantity,"
    " activation_id) SELECT gen_random_uuid(), $1::uuid, line_id, msp_id, tenant_id, tenant_path,"
    " $2, 1, $3::uuid FROM taken RETURNING id",
    3);
static const cc_stmt_t q_order_use =
    CC_STMT("lic_order_use",
            "UPDATE orders SET account_email = coalesce(account_email, $2), method = $3"
            " WHERE id = $1::uuid",
            3);
#define ACT_COLS                                                                                   \
    "a.id, a.order_id, o.order_number, o.fulfillment_number, a.method, a.status, a.email,"         \
    " a.computer_name, a.msp_id, a.tenant_path::text, a.secret_hash,"                              \
    " extract(epoch FROM a.last_check_in_at)::bigint, extract(epoch FROM "                         \
    "licensing_now())::bigint,"                                                                    \
    " a.fingerprint::text, a.registered_at, o.tenant_id, a.fingerprint_hash, o.language"
static const cc_stmt_t q_act_lock =
    CC_STMT("lic_act_lock",
            "SELECT " ACT_COLS " FROM activations a JOIN orders o ON o.id = a.order_id"
            " WHERE a.id = $1::uuid FOR UPDATE OF a, o",
            1);
static const cc_stmt_t q_act_by_fp =
    CC_STMT("lic_act_by_fp",
            "SELECT " ACT_COLS " FROM activations a JOIN orders o ON o.id = a.order_id"
            " WHERE a.order_id = $1::uuid AND a.fingerprint_hash = $2"
            " AND a.status IN ('active', 'pending_approval') FOR UPDATE OF a",
            2);
static const cc_stmt_t q_act_secret =
    CC_STMT("lic_act_secret",
            "UPDATE activations SET secret_hash = $2, email = $3, computer_name = $4,"
            " name = coalesce($5, name), company = coalesce($6, company),"
            " phone = coalesce($7, phone), updated_at = licensing_now()"
            " WHERE id = $1::uuid",
            7);
static const cc_stmt_t q_check_in = CC_STMT(
    "lic_check_in",
    "UPDATE activations SET last_check_in_at = licensing_now(), updated_at = licensing_now()"
    " WHERE id = $1::uuid",
    1);
static const cc_stmt_t q_release_activation =
    CC_STMT("lic_release_activation",
            "WITH rel AS (DELETE FROM pools WHERE activation_id = $1::uuid AND NOT is_default"
            " RETURNING line_id, quantity), sums AS (SELECT line_id, sum(quantity)::int q FROM rel"
            " GROUP BY line_id) UPDATE pools d SET quantity = d.quantity + s.q,"
            " updated_at = licensing_now(), version = d.version + 1 FROM sums s"
            " WHERE d.line_id = s.line_id AND d.is_default RETURNING s.q, d.order_id",
            1);
static const cc_stmt_t q_act_status = CC_STMT(
    "lic_act_status",
    "UPDATE activations SET status = $2, updated_at = licensing_now(),"
    " last_check_in_at = CASE WHEN $2 = 'active' THEN licensing_now() ELSE last_check_in_at END,"
    " deactivated_at = CASE WHEN $2 IN ('deactivated', 'refused') THEN licensing_now() END"
    " WHERE id = $1::uuid",
    2);
/* an order no live server uses any more is free for either method again */
static const cc_stmt_t q_order_method_reset = CC_STMT(
    "lic_order_method_reset",
    "UPDATE orders o SET method = NULL WHERE o.id = $1::uuid AND NOT EXISTS (SELECT 1"
    " FROM activations a WHERE a.status IN ('active', 'pending_approval') AND (a.order_id = o.id"
    " OR EXISTS (SELECT 1 FROM pools p WHERE p.activation_id = a.id AND p.order_id = o.id)))",
    1);
static const cc_stmt_t q_token_insert = CC_STMT(
    "lic_token_insert",
    "INSERT INTO mail_tokens (token_hash, kind, activation_id, order_id, msp_id, tenant_path,"
    " email, expires_at) SELECT $1, $2, a.id, a.order_id, a.msp_id, a.tenant_path, $3,"
    " licensing_now() + make_interval(hours => $4::int) FROM activations a WHERE a.id = $5::uuid",
    5);
static const cc_stmt_t q_tokens_void =
    CC_STMT("lic_tokens_void",
            "UPDATE mail_tokens SET used_at = licensing_now() WHERE activation_id = $1::uuid"
            " AND used_at IS NULL",
            1);
static const cc_stmt_t q_token_lock =
    CC_STMT("lic_token_lock",
            "SELECT t.kind, t.activation_id, t.email, t.used_at IS NOT NULL,"
            " t.expires_at <= licensing_now(), a.status, a.email, o.account_email, o.id, a.msp_id,"
            " a.method, o.tenant_id, a.tenant_path::text, o.language FROM mail_tokens t"
            " JOIN activations a ON "
            "a.id = t.activation_id"
            " JOIN orders o ON o.id = a.order_id WHERE t.token_hash = $1 FOR UPDATE OF t, a, o",
            1);
static const cc_stmt_t q_token_use = CC_STMT(
    "lic_token_use", "UPDATE mail_tokens SET used_at = licensing_now() WHERE token_hash = $1", 1);
static const cc_stmt_t q_registered =
    CC_STMT("lic_registered",
            "UPDATE activations SET registered_at = coalesce(registered_at, licensing_now())"
            " WHERE id = $1::uuid",
            1);
/* the account's e-mail moves with its orders and pools (FAQ 3.6): every order of the old
 * account whose servers are activated online */
static const cc_stmt_t q_email_move = CC_STMT(
    "lic_email_move",
    "WITH moved AS (UPDATE orders SET account_email = $2 WHERE lower(account_email) = lower($1)"
    " AND method = 'online' RETURNING id) UPDATE activations SET email = $2,"
    " updated_at = licensing_now() WHERE order_id IN (SELECT id FROM moved)"
    " AND status IN ('active', 'pending_approval') RETURNING order_id",
    2);
static const cc_stmt_t q_trial_seen = CC_STMT(
    "lic_trial_seen",
    "WITH ins AS (INSERT INTO trials (fingerprint_hash, product) VALUES ($1, $2)"
    " ON CONFLICT DO NOTHING RETURNING first_seen_at)"
    " SELECT extract(epoch FROM coalesce((SELECT first_seen_at FROM ins), (SELECT first_seen_at"
    " FROM trials WHERE fingerprint_hash = $1 AND product = $2)))::bigint,"
    " extract(epoch FROM licensing_now())::bigint,"
    " EXISTS (SELECT 1 FROM activations a JOIN pools p ON p.activation_id = a.id"
    " JOIN order_lines l ON l.id = p.line_id WHERE a.fingerprint_hash = $1"
    " AND a.status = 'active' AND l.product = $2 AND p.quantity > 0)",
    2);

/* ---- the product's request ---- */

typedef struct act_request {
    const char *order_number, *fulfillment_number, *email, *computer_name, *name, *company, *phone;
    json_t *fingerprint; /* canonical, registered on the pool */
    char fp_hash[65];
} act_request_t;

static const char *const request_fields[] = {"order_id",    "fulfillment_number",
                                             "email",       "computer_name",
                                             "fingerprint", "name",
                                             "company",     "phone",
                                             NULL};

/* Order IDs and fulfillment numbers: 1-64 of [A-Za-z0-9._-]. */
static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

static bool printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

static bool guid_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 38 && s[0] == '{' && s[37] == '}') {
        s++;
        n = 36;
    }
    if (n != 36)
        return false;
    for (size_t i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

/* "00:1A:2b-…" → "00:1a:2b:…"; NULL when not six hex pairs with one kind of separator. */
static const char *mac_normal(cc_pool_t *pool, const char *s)
{
    if (strlen(s) != 17)
        return NULL;
    char out[18], sep = s[2];
    if (sep != ':' && sep != '-')
        return NULL;
    for (int i = 0; i < 17; i++) {
        if (i % 3 == 2) {
            if (s[i] != sep)
                return NULL;
            out[i] = ':';
        } else {
            if (!isxdigit((unsigned char)s[i]))
                return NULL;
            out[i] = (char)tolower((unsigned char)s[i]);
        }
    }
    out[17] = '\0';
    if (strcmp(out, "00:00:00:00:00:00") == 0 || strcmp(out, "ff:ff:ff:ff:ff:ff") == 0)
        return NULL;
    return cc_pool_strdup(pool, out);
}

/* Reads the fingerprint: {bios_serial, cpu_id, machine_guid} or {mac} (UDP Archiving). */
static void parse_fingerprint(cc_validator_t *v, json_t *body, act_request_t *r)
{
    json_t *fp = json_object_get(body, "fingerprint");
    if (fp == NULL || json_is_null(fp)) {
        cc_v_add(v, "fingerprint", "required", "fingerprint is required.");
        return;
    }
    if (!json_is_object(fp)) {
        cc_v_add(v, "fingerprint", "type", "fingerprint must be an object.");
        return;
    }
    cc_validator_t f;
    cc_v_init(&f, v->pool);
    if (json_object_get(fp, "mac") != NULL) {
        cc_v_object(&f, fp, (const char *const[]){"mac", NULL});
        const char *mac = cc_v_string(&f, fp, "mac", true, 17, 17, true);
        const char *norm = mac ? mac_normal(v->pool, mac) : NULL;
        if (mac != NULL && norm == NULL)
            cc_v_add(&f, "mac", "format", "mac must be a MAC address such as 00:1a:2b:3c:4d:5e.");
        if (norm != NULL) {
            r->fingerprint = cc_json_on_pool(v->pool, json_pack("{s:s}", "mac", norm));
            char *canon = cc_pool_printf(v->pool, "mac\n%s", norm);
            cc_sha256_hex(canon, strlen(canon), r->fp_hash);
        }
    } else {
        cc_v_object(&f, fp, (const char *const[]){"bios_serial", "cpu_id", "machine_guid", NULL});
        const char *bios = cc_v_string(&f, fp, "bios_serial", true, 1, 128, true);
        const char *cpu = cc_v_string(&f, fp, "cpu_id", true, 1, 128, true);
        const char *guid = cc_v_string(&f, fp, "machine_guid", true, 36, 38, true);
        if (bios && !printable_ascii(bios))
            cc_v_add(&f, "bios_serial", "format", "bios_serial takes printable ASCII only.");
        if (cpu && !printable_ascii(cpu))
            cc_v_add(&f, "cpu_id", "format", "cpu_id takes printable ASCII only.");
        if (guid && !guid_ok(guid))
            cc_v_add(&f, "machine_guid", "format", "machine_guid must be a GUID.");
        if (cc_v_ok(&f)) {
            char *g = cc_pool_strdup(v->pool, guid[0] == '{' ? guid + 1 : guid);
            g[36] = '\0';
            for (char *c = g; *c; c++)
                *c = (char)tolower((unsigned char)*c);
            r->fingerprint =
                cc_json_on_pool(v->pool, json_pack("{s:s, s:s, s:s}", "bios_serial", bios, "cpu_id",
                                                   cpu, "machine_guid", g));
            char *canon = cc_pool_printf(v->pool, "bios\n%s\ncpu\n%s\nguid\n%s", bios, cpu, g);
            cc_sha256_hex(canon, strlen(canon), r->fp_hash);
        }
    }
    /* the fingerprint's errors, named fingerprint.<field> */
    size_t i;
    json_t *e;
    json_array_foreach(f.errors, i, e)
    {
        const char *field = json_string_value(json_object_get(e, "field"));
        cc_v_add(v, cc_pool_printf(v->pool, "fingerprint.%s", field ? field : "?"),
                 json_string_value(json_object_get(e, "code")), "%s",
                 json_string_value(json_object_get(e, "message")));
    }
    if (f.unknown_field != NULL && v->unknown_field == NULL)
        v->unknown_field = cc_pool_printf(v->pool, "fingerprint.%s", f.unknown_field);
}

static bool parse_request(cc_req_t *req, json_t *body, act_request_t *r)
{
    memset(r, 0, sizeof(*r));
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, request_fields);
    r->order_number = cc_v_string(&v, body, "order_id", true, 1, 64, true);
    r->fulfillment_number = cc_v_string(&v, body, "fulfillment_number", true, 1, 64, true);
    r->email = cc_v_string(&v, body, "email", true, 3, 254, true);
    r->computer_name = cc_v_string(&v, body, "computer_name", true, 1, 63, true);
    r->name = cc_v_string(&v, body, "name", false, 1, 128, true);
    r->company = cc_v_string(&v, body, "company", false, 1, 128, true);
    r->phone = cc_v_string(&v, body, "phone", false, 1, 32, true);
    if (r->order_number && !id_ok(r->order_number))
        cc_v_add(&v, "order_id", "format", "order_id takes letters, digits and . _ - only.");
    if (r->fulfillment_number && !id_ok(r->fulfillment_number))
        cc_v_add(&v, "fulfillment_number", "format",
                 "fulfillment_number takes letters, digits and . _ - only.");
    if (r->email && !cc_email_valid(r->email))
        cc_v_add(&v, "email", "format", "email is not an e-mail address.");
    parse_fingerprint(&v, body, r);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return false;
    }
    char *e = cc_pool_strdup(req->pool, r->email);
    char *at = strrchr(e, '@');
    for (char *c = at; c && *c; c++) /* the domain is case-insensitive; the local part is not */
        *c = (char)tolower((unsigned char)*c);
    r->email = e;
    return true;
}

/* ---- helpers ---- */

typedef struct order_row {
    const char *id, *order_number, *fulfillment_number, *end_user_email, *account_email, *method,
        *msp_id, *tenant_path, *tenant_id, *language;
    long long total;
} order_row_t;

static void read_order(PGresult *res, order_row_t *o)
{
    o->id = PQgetvalue(res, 0, 0);
    o->order_number = PQgetvalue(res, 0, 1);
    o->fulfillment_number = PQgetvalue(res, 0, 2);
    o->end_user_email = cc_db_get(res, 0, 3);
    o->account_email = cc_db_get(res, 0, 4);
    o->method = cc_db_get(res, 0, 5);
    o->msp_id = PQgetvalue(res, 0, 6);
    o->tenant_path = PQgetvalue(res, 0, 7);
    o->total = PQgetisnull(res, 0, 8) ? 0 : atoll(PQgetvalue(res, 0, 8));
    o->tenant_id = PQgetvalue(res, 0, 9);
    o->language = cc_db_get(res, 0, 10);
}

static void read_activation(cc_pool_t *pool, PGresult *res, lic_activation_t *a)
{
    a->id = PQgetvalue(res, 0, 0);
    a->order_ref = PQgetvalue(res, 0, 1);
    a->order_number = PQgetvalue(res, 0, 2);
    a->fulfillment_number = PQgetvalue(res, 0, 3);
    a->method = PQgetvalue(res, 0, 4);
    a->status = PQgetvalue(res, 0, 5);
    a->email = PQgetvalue(res, 0, 6);
    a->computer_name = PQgetvalue(res, 0, 7);
    a->msp_id = PQgetvalue(res, 0, 8);
    a->tenant_path = PQgetvalue(res, 0, 9);
    a->secret_hash = PQgetvalue(res, 0, 10);
    a->last_check_in = atoll(PQgetvalue(res, 0, 11));
    a->now = atoll(PQgetvalue(res, 0, 12));
    a->fingerprint = cc_json_on_pool(pool, json_loads(PQgetvalue(res, 0, 13), 0, NULL));
    a->registered_at = cc_db_get(res, 0, 14);
    a->tenant_id = PQgetvalue(res, 0, 15);
    a->language = cc_db_get(res, 0, 17);
}

/* A new random secret or link token; *hash gets its SHA-256 (what the database keeps). */
static char *new_token(cc_pool_t *pool, char hash[65])
{
    char *t = cc_token_new(32);
    char *out = cc_pool_strdup(pool, t);
    cc_sha256_hex(t, strlen(t), hash);
    cc_wipe(t, strlen(t));
    free(t);
    return out;
}

static int insert_token(cc_req_t *req, const char *kind, const char *activation_id,
                        const char *email, int hours, const char **token)
{
    char hash[65], h[16];
    *token = new_token(req->pool, hash);
    snprintf(h, sizeof(h), "%d", hours);
    const char *params[] = {hash, kind, email, h, activation_id};
    return cc_db_query(req->db, req->pool, &q_token_insert, params, NULL);
}

/* Mails a confirmation link (kind registration or email_change) valid 72 hours, in the
 * order's language (else its brand's); fresh: it replaces an expired one. */
static void mail_link(cc_req_t *req, const char *tenant_id, const char *language, const char *kind,
                      const char *to, const char *token, bool fresh)
{
    lic_app_t *app = req->app;
    bool registration = strcmp(kind, "registration") == 0;
    lic_mail_t m = {
        .link = cc_pool_printf(req->pool, "%s/licensing/confirm?token=%s", app->svc->env.public_url,
                               token),
    };
    if (registration) {
        /* FAQ 2.1: "要アクション: Arcserve 製品登録" */
        m.subject[0] = "Action required: product registration";
        m.subject[1] = "要アクション: 製品登録";
        m.body[0] = "Your product was activated with this e-mail address. Confirm the registration "
                    "of your licensing account within 72 hours.";
        m.body[1] = "このメール アドレスで製品のアクティベーションが行われました。72 時間以内に"
                    "ライセンス アカウントの登録を確認してください。";
        m.link_text[0] = "Confirm the registration";
        m.link_text[1] = "登録を確認する";
    } else {
        m.subject[0] = "Action required: confirm your licensing account e-mail";
        m.subject[1] = "要アクション: ライセンス アカウントの電子メール アドレスの確認";
        m.body[0] = "The licensing account of your products is moving to this address. Confirm it "
                    "within 72 hours; the orders and license pools follow.";
        m.body[1] = "製品のライセンス アカウントをこのメール アドレスに移します。72 時間以内に"
                    "確認してください。オーダーとライセンス プールが引き継がれます。";
        m.link_text[0] = "Confirm the new e-mail address";
        m.link_text[1] = "新しいメール アドレスを確認する";
    }
    if (fresh) { /* FAQ 2.11 */
        m.body[0] = "Your previous link expired. Here is a new link, valid 72 hours.";
        m.body[1] = "前回のリンクは有効期限 (72 時間) が切れました。72 時間有効な新しいリンクを"
                    "お送りします。";
    }
    lic_send_mail(req, tenant_id, language, to, &m);
}

static void mail_registration(cc_req_t *req, const char *tenant_id, const char *language,
                              const char *to, const char *token)
{
    mail_link(req, tenant_id, language, "registration", to, token, false);
}

/* FAQ 2.6: the buyer's end-user e-mail (or the platform's licensing address) gets the
 * approval request with "approve this user"... */
static void mail_approval(cc_req_t *req, const char *to, const lic_activation_t *a,
                          const char *token)
{
    lic_app_t *app = req->app;
    lic_mail_t m = {
        .subject = {"Approval required: product activation",
                    "承認のお願い: 製品のアクティベーション"},
        .body = {cc_pool_printf(req->pool,
                                "%s asks to activate order %s on the server %s. Approve this user "
                                "to let the activation complete, or refuse it to release its "
                                "licenses.",
                                a->email, a->order_number, a->computer_name),
                 cc_pool_printf(
                     req->pool,
                     "%s が、オーダー %s をサーバ %s でアクティベーションしようとしています。"
                     "アクティベーションを完了するには、このユーザを承認してください。"
                     "拒否するとライセンスは解放されます。",
                     a->email, a->order_number, a->computer_name)},
        .link = cc_pool_printf(req->pool, "%s/licensing/approve?token=%s", app->svc->env.public_url,
                               token),
        .link_text = {"Approve this user", "このユーザを承認する"},
    };
    lic_send_mail(req, a->tenant_id, a->language, to, &m);
}

/* ...and the activating address a notice naming the purchasing user the request went to,
 * so that the person can tell whether it went to a real buyer or to the platform's
 * licensing address (an order without end-user e-mail: ask the license desk). */
static void mail_approval_notice(cc_req_t *req, const lic_activation_t *a, const char *approver)
{
    const char *platform = lic_platform_address(req);
    bool to_platform = strcmp(approver, platform) == 0;
    lic_mail_t m = {
        .subject = {"Approval requested: product activation", "承認待ち: 製品のアクティベーション"},
        .body = {cc_pool_printf(
                     req->pool,
                     "The activation of order %s on the server %s waits for the approval of the "
                     "purchasing user; your product learns of it at its next check-in.\n\n"
                     "Purchasing user: %s%s",
                     a->order_number, a->computer_name, approver,
                     to_platform ? "\n\nThis order has no end-user e-mail, so the request went to "
                                   "the licensing address of the platform: contact your license "
                                   "desk."
                                 : ""),
                 cc_pool_printf(
                     req->pool,
                     "オーダー %s のサーバ %s でのアクティベーションは、購入ユーザの承認待ち"
                     "です。承認されると、製品は次回のチェックインでそれを受け取ります。\n\n"
                     "[購入ユーザ] %s%s",
                     a->order_number, a->computer_name, approver,
                     to_platform ? "\n\nこのオーダーにはエンド ユーザの電子メール アドレスが"
                                   "ないため、承認依頼はライセンス システムのアドレスに送られ"
                                   "ました。ライセンス デスクにお問い合わせください。"
                                 : "")},
    };
    lic_send_mail(req, a->tenant_id, a->language, a->email, &m);
}

/* The answer of an activation: its state and the signed license. */
static json_t *activation_answer(cc_req_t *req, const lic_keys_t *keys, const lic_activation_t *a,
                                 const char *secret, int *rc)
{
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", a->id, "status", a->status, "method",
                            a->method, "order_id", a->order_number, "email", a->email);
    if (secret != NULL)
        json_object_set_new(out, "activation_secret", json_string(secret));
    if (strcmp(a->status, "active") != 0)
        return out;
    json_t *payload = lic_license_payload(req, a, a->now, rc);
    if (payload == NULL) {
        json_decref(out);
        return NULL;
    }
    char *jws = lic_sign(keys, payload);
    if (jws == NULL) {
        json_decref(payload);
        json_decref(out);
        *rc = CC_ECRYPTO;
        return NULL;
    }
    json_object_set_new(out, "license", json_string(jws));
    json_object_set_new(out, "license_payload", payload);
    if (strcmp(a->method, "online") == 0) {
        json_object_set(out, "next_check_in_due_at", json_object_get(payload, "check_in_due_at"));
        json_object_set_new(out, "state", json_string("active"));
    } else {
        json_object_set_new(
            out, "response_file",
            json_pack("{s:s, s:s}", "format", "console-license-response/1", "license", jws));
    }
    free(jws);
    return out;
}

static void res_db(cc_req_t *req, int rc)
{
    cc_db_rollback(req->db);
    if (rc == CC_EDB && strcmp(cc_db_sqlstate(req->db), "23505") == 0)
        cc_res_problem(req, CC_ERR_CONFLICT, "A concurrent request changed this; retry.");
    else
        cc_res_db_error(req, rc);
}

/*
 * Activates r with method on its order, in the open system-scope transaction; answers.
 * uploader (offline: the caller's grants) must be allowed on the order, else the order
 * is "not found" like an unknown one.
 */
static void activate(cc_req_t *req, const lic_keys_t *keys, const act_request_t *r,
                     const char *method, const char *request_b64, const char *mac_b64)
{
    PGresult *res;
    int rc;
    if (lic_proof_blocked(req, r->order_number))
        return;
    const char *p1[] = {r->order_number};
    if ((rc = cc_db_query(req->db, req->pool, &q_order_lock, p1, &res)) != 0)
        return res_db(req, rc);
    order_row_t o;
    if (PQntuples(res) == 0)
        return lic_proof_failed(req, r->order_number);
    read_order(res, &o);
    if (!cc_ct_streq(o.fulfillment_number, r->fulfillment_number))
        return lic_proof_failed(req, r->order_number);
    if (request_b64 != NULL) {
        /* offline: the file's MAC is keyed with the fulfillment number it names, and the
         * uploader must manage the order's account */
        if (!lic_request_mac_ok(o.fulfillment_number, request_b64, mac_b64)) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_REQUEST_FILE_INVALID,
                           "The request file's integrity check fails: it was altered after the "
                           "product wrote it.");
            return;
        }
        if (!cc_authz_can(req->authz, LIC_PERM_MANAGE, o.tenant_path)) {
            cc_db_rollback(req->db);
            if (cc_authz_sees(req->authz, o.tenant_path))
                cc_res_problem(req, CC_ERR_FORBIDDEN,
                               "Your roles do not allow managing this account's licenses.");
            else
                cc_res_problem(req, CC_ERR_ORDER_NOT_FOUND,
                               "No order has this Order ID and Fulfillment Number.");
            return;
        }
    }

    /* a suspended or deleted account's products do not activate, not even again */
    if (lic_account_blocked(req, o.tenant_path))
        return;

    /* the same machine again: idempotent (a new secret, the same activation) */
    const char *p2[] = {o.id, r->fp_hash};
    if ((rc = cc_db_query(req->db, req->pool, &q_act_by_fp, p2, &res)) != 0)
        return res_db(req, rc);
    lic_activation_t a;
    char hash[65];
    if (PQntuples(res) > 0) {
        read_activation(req->pool, res, &a);
        if (strcmp(a.method, method) != 0) {
            cc_db_rollback(req->db);
            cc_res_problem_ext(req, CC_ERR_ACTIVATION_METHOD_CONFLICT,
                               json_pack("{s:s}", "method_in_use", a.method),
                               "This server is activated %s; deactivate it before activating "
                               "it %s.",
                               a.method, method);
            return;
        }
        const char *secret = new_token(req->pool, hash);
        const char *p3[] = {a.id, hash, r->email, r->computer_name, r->name, r->company, r->phone};
        if ((rc = cc_db_query(req->db, req->pool, &q_act_secret, p3, NULL)) != 0)
            return res_db(req, rc);
        a.email = r->email;
        a.computer_name = r->computer_name;
        json_t *out =
            activation_answer(req, keys, &a, strcmp(method, "online") == 0 ? secret : NULL, &rc);
        if (out == NULL)
            return res_db(req, rc);
        if ((rc = lic_audit(req, "activation.renewed", "activation", a.id, a.msp_id,
                            json_pack("{s:s}", "method", method))) != 0 ||
            (rc = cc_db_commit(req->db)) != 0) {
            json_decref(out);
            return res_db(req, rc);
        }
        cc_res_json(req, 200, out);
        return;
    }

    /* one order, one method (FAQ 2.21, 3.10) */
    const char *p4[] = {o.id};
    if ((rc = cc_db_query(req->db, req->pool, &q_live_on_order, p4, &res)) != 0)
        return res_db(req, rc);
    int live = PQntuples(res);
    for (int i = 0; i < live; i++)
        if (strcmp(PQgetvalue(res, i, 1), method) != 0) {
            cc_db_rollback(req->db);
            cc_res_problem_ext(req, CC_ERR_ACTIVATION_METHOD_CONFLICT,
                               json_pack("{s:s}", "method_in_use", PQgetvalue(res, i, 1)),
                               "Order %s is activated %s on other servers; online and offline "
                               "activation do not mix on one order (deactivate them first).",
                               o.order_number, PQgetvalue(res, i, 1));
            return;
        }
    /* another server with another e-mail on an order of several licenses needs the
     * buyer's approval (FAQ 2.5, 2.6) */
    bool other_email = false;
    char *lower = cc_pool_strdup(req->pool, r->email);
    for (char *c = lower; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    if (o.account_email != NULL) {
        char *acc = cc_pool_strdup(req->pool, o.account_email);
        for (char *c = acc; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        other_email = strcmp(acc, lower) != 0;
    }
    bool pending = live > 0 && o.total > 1 && other_email;

    char id[37];
    cc_uuid_new(id);
    const char *secret = new_token(req->pool, hash);
    char *fp = json_dumps(r->fingerprint, JSON_COMPACT | JSON_SORT_KEYS);
    const char *fpp = cc_pool_strdup(req->pool, fp);
    free(fp);
    const char *p5[] = {id,
                        method,
                        pending ? "pending_approval" : "active",
                        r->email,
                        r->computer_name,
                        fpp,
                        r->fp_hash,
                        r->name,
                        r->company,
                        r->phone,
                        hash,
                        o.id};
    if ((rc = cc_db_query(req->db, req->pool, &q_act_insert, p5, NULL)) != 0)
        return res_db(req, rc);
    const char *p6[] = {o.id, r->computer_name, id};
    if ((rc = cc_db_query(req->db, req->pool, &q_allocate, p6, &res)) != 0)
        return res_db(req, rc);
    if (PQntuples(res) == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NO_LICENSES_AVAILABLE,
                       "Order %s has no unassigned licenses left; release licenses from another "
                       "server (or deactivate it) first.",
                       o.order_number);
        return;
    }
    const char *p7[] = {o.id, r->email, method};
    if ((rc = cc_db_query(req->db, req->pool, &q_order_use, p7, NULL)) != 0)
        return res_db(req, rc);
    if ((rc = cc_db_query(req->db, req->pool, &q_act_lock, (const char *const[]){id}, &res)) != 0)
        return res_db(req, rc);
    read_activation(req->pool, res, &a);
    const char *token = NULL, *mail_to = NULL;
    if (pending) {
        mail_to = o.end_user_email ? o.end_user_email : lic_platform_address(req);
        rc = insert_token(req, "approval", id, mail_to, 14 * 24, &token);
    } else {
        mail_to = r->email;
        rc = insert_token(req, "registration", id, r->email, LIC_LINK_HOURS, &token);
    }
    if (rc != 0)
        return res_db(req, rc);
    json_t *out =
        activation_answer(req, keys, &a, strcmp(method, "online") == 0 ? secret : NULL, &rc);
    if (out == NULL)
        return res_db(req, rc);
    if (pending)
        json_object_set_new(out, "approval_requested_from",
                            json_string(o.end_user_email ? "end_user" : "platform"));
    if ((rc = lic_audit(req, pending ? "activation.pending_approval" : "activation.created",
                        "activation", id, o.msp_id,
                        json_pack("{s:s, s:s, s:s}", "method", method, "order_id", o.order_number,
                                  "computer_name", r->computer_name))) != 0 ||
        (rc = cc_db_commit(req->db)) != 0) {
        json_decref(out);
        return res_db(req, rc);
    }
    /* mail after the commit: nothing is announced that did not happen */
    if (pending) {
        mail_approval(req, mail_to, &a, token);
        mail_approval_notice(req, &a, mail_to);
    } else {
        mail_registration(req, o.tenant_id, o.language, mail_to, token);
    }
    char loc[96];
    snprintf(loc, sizeof(loc), "/api/v1/licensing/activations/%s", id);
    cc_res_header(req, "location", loc);
    cc_res_json(req, pending ? 202 : 201, out);
}

static bool begin_system(cc_req_t *req)
{
    cc_scope_t system = {.system = true};
    int rc = cc_db_begin(req->db, &system);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    return true;
}

void lic_handle_activate(cc_req_t *req)
{
    json_t *body;
    act_request_t r;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 ||
        cc_req_json(req, &body) != 0 || !parse_request(req, body, &r))
        return;
    const lic_keys_t *keys = lic_req_keys(req);
    if (!begin_system(req))
        return;
    activate(req, keys, &r, "online", NULL, NULL);
}

void lic_handle_offline_request(cc_req_t *req)
{
    json_t *body, *request = NULL;
    const char *rb = NULL, *mb = NULL;
    act_request_t r;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    if (lic_request_open(body, &request, &rb, &mb) != 0) {
        cc_res_problem(req, CC_ERR_REQUEST_FILE_INVALID,
                       "This is not a request file the product wrote (format "
                       "console-license-request/1 with request and mac).");
        return;
    }
    cc_json_on_pool(req->pool, request);
    if (!parse_request(req, request, &r))
        return;
    const lic_keys_t *keys = lic_req_keys(req);
    if (!begin_system(req))
        return;
    activate(req, keys, &r, "offline", rb, mb);
}

/* ---- the activation secret ---- */

/*
 * Opens a system-scope transaction and locks activation {id} for its product: the
 * X-Activation-Secret must match a live activation, else 401 (the same whether the
 * activation does not exist or the secret is wrong).
 */
static bool begin_with_secret(cc_req_t *req, const char *secret, lic_activation_t *a)
{
    const char *id = cc_req_param(req, "id");
    PGresult *res;
    if (!begin_system(req))
        return false;
    int rc = 0;
    bool ok = id != NULL && cc_is_uuid(id) && secret != NULL && strlen(secret) <= 128;
    if (ok) {
        rc = cc_db_query(req->db, req->pool, &q_act_lock, (const char *const[]){id}, &res);
        if (rc != 0) {
            res_db(req, rc);
            return false;
        }
        ok = PQntuples(res) == 1;
    }
    if (ok) {
        read_activation(req->pool, res, a);
        char hash[65];
        cc_sha256_hex(secret, strlen(secret), hash);
        ok = cc_ct_streq(hash, a->secret_hash) &&
             (strcmp(a->status, "active") == 0 || strcmp(a->status, "pending_approval") == 0);
    }
    if (!ok) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_ACTIVATION_SECRET_INVALID,
                       "No live activation has this id and X-Activation-Secret.");
    }
    return ok;
}

/*
 * Opens a transaction in the caller's scope and locks activation {id} for an
 * administrator: 404 when it cannot be seen, 403 without licensing:manage on its account.
 */
static bool begin_managed(cc_req_t *req, lic_activation_t *a)
{
    const char *id = cc_req_param(req, "id");
    PGresult *res;
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc != 0) {
        res_db(req, rc);
        return false;
    }
    if (id == NULL || !cc_is_uuid(id) ||
        (rc = cc_db_query(req->db, req->pool, &q_act_lock, (const char *const[]){id}, &res)) != 0 ||
        PQntuples(res) == 0) {
        if (rc != 0) {
            res_db(req, rc);
            return false;
        }
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such activation.");
        return false;
    }
    read_activation(req->pool, res, a);
    if (!cc_authz_can(req->authz, "licensing:manage", a->tenant_path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing licenses here.");
        return false;
    }
    return true;
}

static bool empty_body(cc_req_t *req)
{
    if (req->body_len == 0 || strspn(req->body, " \t\r\n") == req->body_len)
        return true;
    json_t *body;
    if (cc_req_json(req, &body) != 0)
        return false;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    if (!cc_v_object(&v, body, (const char *const[]){NULL}) || !cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return false;
    }
    return true;
}

void lic_handle_check_in(cc_req_t *req)
{
    lic_activation_t a;
    json_t *nodes = NULL;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    if (req->body_len > 0 && strspn(req->body, " \t\r\n") != req->body_len) {
        json_t *body;
        if (cc_req_json(req, &body) != 0)
            return;
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        cc_v_object(&v, body, (const char *const[]){"nodes", NULL});
        nodes = lic_nodes_parse(&v, body);
        if (!cc_v_ok(&v)) {
            cc_res_invalid(req, &v);
            return;
        }
    }
    const lic_keys_t *keys = lic_req_keys(req);
    if (!begin_with_secret(req, cc_req_header(req, "x-activation-secret"), &a))
        return;
    if (strcmp(a.status, "pending_approval") == 0) {
        cc_db_rollback(req->db);
        cc_res_json(
            req, 200,
            json_pack("{s:s, s:s, s:[]}", "id", a.id, "state", "pending_approval", "messages"));
        return;
    }
    if (strcmp(a.method, "online") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_ACTIVATION_METHOD_CONFLICT,
                       "An offline activation does not check in.");
        return;
    }
    lic_state_t before = lic_state_at(a.last_check_in, a.now);
    const char *inactive = NULL;
    int rc = lic_account_inactive(req, a.tenant_path, &inactive);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_check_in, (const char *const[]){a.id}, NULL);
    if (rc != 0)
        return res_db(req, rc);
    if (inactive != NULL) {
        /* the account is suspended or deleted: the product is heard from (so it is active
         * again at once when the account is resumed or restored) but gets no license, and
         * its state says why; its licenses stay on the server, its node marks unchanged */
        json_t *out = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:s, s:[o], s:s}", "id", a.id, "status", a.status, "method",
            a.method, "state", "suspended", "previous_state", lic_state_name(before), "reason",
            strcmp(inactive, "deleted") == 0 ? "account_deleted" : "account_suspended", "messages",
            lic_account_message(inactive), "last_check_in_at", lic_time(req->pool, a.now));
        if ((rc = cc_db_commit(req->db)) != 0) { /* node marks wait for the account too */
            json_decref(out);
            return res_db(req, rc);
        }
        cc_res_json(req, 200, out);
        return;
    }
    json_t *out = activation_answer(req, keys, &a, NULL, &rc);
    if (out == NULL)
        return res_db(req, rc);
    json_object_set_new(out, "previous_state", json_string(lic_state_name(before)));
    json_object_set_new(out, "messages", json_array());
    json_object_set_new(out, "last_check_in_at", json_string(lic_time(req->pool, a.now)));
    rc = lic_nodes_sync(req, &a, nodes, out);
    if (rc == 0 && before != LIC_ACTIVE)
        rc = lic_audit(req, "activation.restored", "activation", a.id, a.msp_id,
                       json_pack("{s:s}", "from", lic_state_name(before)));
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        json_decref(out);
        return res_db(req, rc);
    }
    cc_res_json(req, 200, out);
}

/* Releases an activation's licenses to Default and ends it (inside the transaction). */
int lic_release_activation(cc_req_t *req, const char *id, const char *order_ref, const char *status,
                           long long *released)
{
    PGresult *res;
    int rc =
        cc_db_query(req->db, req->pool, &q_release_activation, (const char *const[]){id}, &res);
    *released = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        *released += atoll(PQgetvalue(res, i, 0));
    /* orders added to this server (FAQ 2.14) may be free again too */
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        rc = lic_order_method_reset(req, PQgetvalue(res, i, 1));
    if (rc == 0)
        rc =
            cc_db_query(req->db, req->pool, &q_act_status, (const char *const[]){id, status}, NULL);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, &q_tokens_void, (const char *const[]){id}, NULL);
    if (rc == 0)
        rc = lic_order_method_reset(req, order_ref);
    return rc;
}

int lic_order_method_reset(cc_req_t *req, const char *order_ref)
{
    return cc_db_query(req->db, req->pool, &q_order_method_reset, (const char *const[]){order_ref},
                       NULL);
}

/* ---- adding an order's licenses to an activated server (FAQ 2.14, 2.18, 3.1, 3.9) ---- */

void lic_handle_add_order(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"order_id", "fulfillment_number", NULL});
    const char *number = cc_v_string(&v, body, "order_id", true, 1, 64, true);
    const char *fulfillment = cc_v_string(&v, body, "fulfillment_number", true, 1, 64, true);
    if (number && !id_ok(number))
        cc_v_add(&v, "order_id", "format", "order_id takes letters, digits and . _ - only.");
    if (fulfillment && !id_ok(fulfillment))
        cc_v_add(&v, "fulfillment_number", "format",
                 "fulfillment_number takes letters, digits and . _ - only.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    const lic_keys_t *keys = lic_req_keys(req);
    /* the proof counter lives in system scope */
    if (!begin_system(req) || lic_proof_blocked(req, number))
        return;
    cc_db_rollback(req->db);

    lic_activation_t a;
    if (!begin_managed(req, &a))
        return;
    PGresult *res;
    int rc;
    if (strcmp(a.status, "active") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_CONFLICT, "The server's activation is %s.", a.status);
        return;
    }
    if ((rc = cc_db_query(req->db, req->pool, &q_order_lock, (const char *const[]){number},
                          &res)) != 0)
        return res_db(req, rc);
    order_row_t o;
    if (PQntuples(res) == 0)
        return lic_proof_failed(req, number);
    read_order(res, &o);
    if (!cc_ct_streq(o.fulfillment_number, fulfillment))
        return lic_proof_failed(req, number);
    if (!cc_authz_can(req->authz, LIC_PERM_MANAGE, o.tenant_path)) {
        cc_db_rollback(req->db);
        if (cc_authz_sees(req->authz, o.tenant_path))
            cc_res_problem(req, CC_ERR_FORBIDDEN,
                           "Your roles do not allow managing this account's licenses.");
        else
            cc_res_problem(req, CC_ERR_ORDER_NOT_FOUND,
                           "No order has this Order ID and Fulfillment Number.");
        return;
    }
    if (lic_account_blocked(req, a.tenant_path) || lic_account_blocked(req, o.tenant_path))
        return;
    if ((rc = cc_db_query(req->db, req->pool, &q_live_on_order, (const char *const[]){o.id},
                          &res)) != 0)
        return res_db(req, rc);
    for (int i = 0; i < PQntuples(res); i++) {
        if (strcmp(PQgetvalue(res, i, 1), a.method) != 0) {
            cc_db_rollback(req->db);
            cc_res_problem_ext(req, CC_ERR_ACTIVATION_METHOD_CONFLICT,
                               json_pack("{s:s}", "method_in_use", PQgetvalue(res, i, 1)),
                               "Order %s is in use %s; this server is activated %s.",
                               o.order_number, PQgetvalue(res, i, 1), a.method);
            return;
        }
        if (strcmp(PQgetvalue(res, i, 0), a.id) == 0) {
            cc_db_rollback(req->db);
            cc_res_problem(req, CC_ERR_CONFLICT,
                           "This server already holds licenses of order %s; resize its pool "
                           "instead.",
                           o.order_number);
            return;
        }
    }
    if ((rc = cc_db_query(req->db, req->pool, &q_allocate,
                          (const char *const[]){o.id, a.computer_name, a.id}, &res)) != 0)
        return res_db(req, rc);
    if (PQntuples(res) == 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NO_LICENSES_AVAILABLE,
                       "Order %s has no unassigned licenses left.", o.order_number);
        return;
    }
    if ((rc = cc_db_query(req->db, req->pool, &q_order_use,
                          (const char *const[]){o.id, a.email, a.method}, NULL)) != 0)
        return res_db(req, rc);
    json_t *out = activation_answer(req, keys, &a, NULL, &rc);
    if (out == NULL)
        return res_db(req, rc);
    if ((rc = lic_audit(req, "activation.order_added", "activation", a.id, a.msp_id,
                        json_pack("{s:s}", "order_id", o.order_number))) != 0 ||
        (rc = cc_db_commit(req->db)) != 0) {
        json_decref(out);
        return res_db(req, rc);
    }
    cc_res_json(req, 200, out);
}

void lic_handle_deactivate(cc_req_t *req)
{
    lic_activation_t a;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || !empty_body(req))
        return;
    const char *secret = cc_req_header(req, "x-activation-secret");
    if (secret != NULL) {
        if (!begin_with_secret(req, secret, &a))
            return;
    } else {
        /* an administrator of the order's account, with a bearer token */
        if (!cc_req_authenticate(req) || !begin_managed(req, &a))
            return;
        /* FAQ 3.11: a server is released the way it was activated; an offline product
         * keeps its license until it writes the deactivation request file */
        if (strcmp(a.method, "offline") == 0) {
            cc_db_rollback(req->db);
            cc_res_problem_ext(req, CC_ERR_DEACTIVATION_METHOD_CONFLICT,
                               json_pack("{s:s}", "method", "offline"),
                               "This server was activated offline: release it with the product's "
                               "offline deactivation request file (POST "
                               "/api/v1/licensing/offline-deactivations).");
            return;
        }
        if (strcmp(a.status, "active") != 0 && strcmp(a.status, "pending_approval") != 0) {
            cc_db_rollback(req->db);
            cc_res_json(
                req, 200,
                json_pack("{s:s, s:s, s:i}", "id", a.id, "status", a.status, "released", 0));
            return;
        }
    }
    long long released = 0;
    int rc = lic_release_activation(req, a.id, a.order_ref, "deactivated", &released);
    if (rc == 0)
        rc = lic_audit(req, "activation.deactivated", "activation", a.id, a.msp_id,
                       json_pack("{s:I}", "released", (json_int_t)released));
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:I}", "id", a.id, "status", "deactivated", "released",
                          (json_int_t)released));
}

/* ---- offline deactivation (FAQ 3.10, 3.11): the product's deactivation request file ---- */

static const char *const deactivation_fields[] = {"activation_id", "order_id", "fingerprint",
                                                  "computer_name", NULL};

void lic_handle_offline_deactivation(cc_req_t *req)
{
    json_t *body, *request = NULL;
    const char *rb = NULL, *mb = NULL;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    if (lic_deactivation_open(body, &request, &rb, &mb) != 0) {
        cc_res_problem(req, CC_ERR_REQUEST_FILE_INVALID,
                       "This is not a deactivation request file the product wrote (format "
                       "console-license-deactivation/1 with request and mac).");
        return;
    }
    cc_json_on_pool(req->pool, request);
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, request, deactivation_fields);
    const char *id = cc_v_uuid(&v, request, "activation_id", true);
    const char *number = cc_v_string(&v, request, "order_id", true, 1, 64, true);
    cc_v_string(&v, request, "computer_name", false, 1, 63, true);
    act_request_t r;
    memset(&r, 0, sizeof(r));
    parse_fingerprint(&v, request, &r);
    if (!cc_v_ok(&v)) {
        cc_res_problem(req, CC_ERR_REQUEST_FILE_INVALID,
                       "The deactivation request file does not hold activation_id, order_id and "
                       "fingerprint as the product writes them.");
        return;
    }
    const lic_keys_t *keys = lic_req_keys(req);
    /* the server, as an administrator of its account sees it */
    int rc = cc_db_begin(req->db, cc_req_scope(req));
    if (rc != 0)
        return res_db(req, rc);
    PGresult *res;
    if ((rc = cc_db_query(req->db, req->pool, &q_act_lock, (const char *const[]){id}, &res)) != 0)
        return res_db(req, rc);
    lic_activation_t a;
    if (PQntuples(res) > 0)
        read_activation(req->pool, res, &a);
    if (PQntuples(res) == 0 || !cc_authz_sees(req->authz, a.tenant_path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_NOT_FOUND, "No such activation.");
        return;
    }
    if (!cc_authz_can(req->authz, LIC_PERM_MANAGE, a.tenant_path)) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Your roles do not allow managing licenses here.");
        return;
    }
    /* the file is the product's: keyed with its order's fulfillment number, naming this
     * order and this machine */
    const char *fp_hash = PQgetvalue(res, 0, 16);
    if (!lic_request_mac_ok(a.fulfillment_number, rb, mb) || strcmp(number, a.order_number) != 0 ||
        strcmp(r.fp_hash, fp_hash) != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_REQUEST_FILE_INVALID,
                       "The deactivation request file's integrity check fails, or it names "
                       "another order or machine.");
        return;
    }
    if (strcmp(a.method, "offline") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_DEACTIVATION_METHOD_CONFLICT,
                           json_pack("{s:s}", "method", a.method),
                           "This server was activated online: release it online, from the "
                           "product or the portal.");
        return;
    }
    long long released = 0;
    bool live = strcmp(a.status, "active") == 0 || strcmp(a.status, "pending_approval") == 0;
    if (live) {
        rc = lic_release_activation(req, a.id, a.order_ref, "deactivated", &released);
        if (rc == 0)
            rc = lic_audit(
                req, "activation.deactivated", "activation", a.id, a.msp_id,
                json_pack("{s:I, s:s}", "released", (json_int_t)released, "method", "offline"));
    }
    int64_t now = a.now;
    if (rc == 0 && live)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    if (!live) /* already released: the same receipt again, nothing changed */
        cc_db_rollback(req->db);
    /* the response file: a signed receipt the product (or the license desk) can check */
    lic_app_t *app = req->app;
    json_t *receipt = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:s, s:I}", "iss", app->svc->env.public_url, "activation_id",
        a.id, "order_id", a.order_number, "status", "deactivated", "released", (json_int_t)released,
        "deactivated_at", lic_time(req->pool, now), "iat", (json_int_t)now);
    char *jws = lic_sign(keys, receipt);
    json_decref(receipt);
    if (jws == NULL)
        return cc_res_db_error(req, CC_ECRYPTO);
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:I, s:{s:s, s:s}}", "id", a.id, "status", "deactivated",
                          "released", (json_int_t)released, "response_file", "format",
                          "console-license-deactivation-response/1", "receipt", jws));
    free(jws);
}

/* ---- e-mail change (FAQ 3.6, 5.3, 5.4): online activations only ---- */

void lic_handle_email_change(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"email", NULL});
    const char *email = cc_v_string(&v, body, "email", true, 3, 254, true);
    if (email && !cc_email_valid(email))
        cc_v_add(&v, "email", "format", "email is not an e-mail address.");
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    lic_activation_t a;
    if (!begin_with_secret(req, cc_req_header(req, "x-activation-secret"), &a))
        return;
    if (strcmp(a.method, "online") != 0) {
        cc_db_rollback(req->db);
        cc_res_problem(req, CC_ERR_EMAIL_CHANGE_NOT_ALLOWED,
                       "Offline activations change their account e-mail through the license "
                       "desk.");
        return;
    }
    const char *token;
    int rc = insert_token(req, "email_change", a.id, email, LIC_LINK_HOURS, &token);
    if (rc == 0)
        rc = lic_audit(req, "account.email_change_requested", "activation", a.id, a.msp_id, NULL);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    mail_link(req, a.tenant_id, a.language, "email_change", email, token, false);
    cc_res_json(req, 202, json_pack("{s:s, s:s}", "status", "confirmation_sent", "email", email));
}

/* ---- approvals (FAQ 2.6: the buyer clicks "approve this user" in the mail) ---- */

static void page(cc_req_t *req, int status, const char *title, const char *text)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    cc_buf_html(&b, title);
    cc_buf_puts(&b, "</title></head><body><h1>");
    cc_buf_html(&b, title);
    cc_buf_puts(&b, "</h1><p>");
    cc_buf_html(&b, text);
    cc_buf_puts(&b, "</p></body></html>");
    cc_res_header(req, "x-frame-options", "DENY");
    cc_res_header(req, "content-security-policy", "default-src 'none'");
    cc_res_header(req, "cache-control", "no-store");
    cc_res_text(req, status, "text/html; charset=utf-8", b.data, b.len);
    cc_buf_free(&b);
}

/*
 * Decides the approval request of token: approve activates the activation (and mails its
 * registration link), refuse releases its licenses. as_page answers with HTML pages (the
 * mailed link's form) instead of JSON.
 */
static void approval_decide(cc_req_t *req, const char *token, const char *decision, bool as_page)
{
    char hash[65];
    cc_sha256_hex(token ? token : "", token ? strlen(token) : 0, hash);
    if (!begin_system(req))
        return;
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_token_lock, (const char *const[]){hash}, &res);
    if (rc != 0)
        return res_db(req, rc);
    if (token == NULL || strlen(token) > 128 || PQntuples(res) == 0 ||
        strcmp(PQgetvalue(res, 0, 0), "approval") != 0) {
        cc_db_rollback(req->db);
        if (as_page)
            page(req, 404, "Link not valid", "This link is not valid.");
        else
            cc_res_problem(req, CC_ERR_APPROVAL_TOKEN_INVALID,
                           "No approval request has this token.");
        return;
    }
    const char *activation_id = PQgetvalue(res, 0, 1), *status = PQgetvalue(res, 0, 5);
    const char *act_email = PQgetvalue(res, 0, 6), *order_ref = PQgetvalue(res, 0, 8);
    const char *msp_id = PQgetvalue(res, 0, 9), *tenant_id = PQgetvalue(res, 0, 11);
    const char *language = cc_db_get(res, 0, 13);
    if (strcmp(PQgetvalue(res, 0, 3), "t") == 0 || strcmp(status, "pending_approval") != 0) {
        cc_db_rollback(req->db);
        if (as_page)
            page(req, 409, "Already decided", "This approval request was already decided.");
        else
            cc_res_problem(req, CC_ERR_APPROVAL_TOKEN_USED,
                           "This approval request was already decided.");
        return;
    }
    if (strcmp(PQgetvalue(res, 0, 4), "t") == 0) {
        cc_db_rollback(req->db);
        if (as_page)
            page(req, 410, "Link expired",
                 "This approval request expired; the user activates again to ask anew.");
        else
            cc_res_problem(req, CC_ERR_APPROVAL_TOKEN_INVALID,
                           "This approval request expired; the user activates again to ask "
                           "anew.");
        return;
    }
    if (decision == NULL) { /* the mailed link: show the request and the two buttons */
        cc_db_rollback(req->db);
        cc_buf_t b;
        cc_buf_init(&b);
        cc_buf_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                        "<title>Approve this user</title></head><body><h1>Approve this user"
                        "</h1><p>");
        cc_buf_html(&b, act_email);
        cc_buf_puts(&b, " asks to activate licenses of your order on another server.</p>"
                        "<form method=\"post\" action=\"/licensing/approve\">"
                        "<input type=\"hidden\" name=\"token\" value=\"");
        cc_buf_html(&b, token);
        cc_buf_puts(&b, "\"><button name=\"decision\" value=\"approve\">Approve this user"
                        "</button> <button name=\"decision\" value=\"refuse\">Refuse</button>"
                        "</form></body></html>");
        cc_res_header(req, "x-frame-options", "DENY");
        cc_res_header(req, "content-security-policy", "default-src 'none'; form-action 'self'");
        cc_res_header(req, "cache-control", "no-store");
        cc_res_text(req, 200, "text/html; charset=utf-8", b.data, b.len);
        cc_buf_free(&b);
        return;
    }
    bool approve = strcmp(decision, "approve") == 0;
    if (approve && as_page) {
        const char *inactive = NULL;
        if ((rc = lic_account_inactive(req, PQgetvalue(res, 0, 12), &inactive)) != 0)
            return res_db(req, rc);
        if (inactive != NULL) {
            cc_db_rollback(req->db);
            page(req, 403, "Account inactive",
                 "The account this order belongs to is suspended or deleted; the user cannot be "
                 "approved until it is active again.");
            return;
        }
    } else if (approve && lic_account_blocked(req, PQgetvalue(res, 0, 12))) {
        return;
    }
    rc = cc_db_query(req->db, req->pool, &q_token_use, (const char *const[]){hash}, NULL);
    const char *reg_token = NULL;
    long long released = 0;
    if (rc == 0 && approve) {
        rc = cc_db_query(req->db, req->pool, &q_act_status,
                         (const char *const[]){activation_id, "active"}, NULL);
        if (rc == 0)
            rc = insert_token(req, "registration", activation_id, act_email, LIC_LINK_HOURS,
                              &reg_token);
    } else if (rc == 0) {
        rc = lic_release_activation(req, activation_id, order_ref, "refused", &released);
    }
    if (rc == 0)
        rc = lic_audit(req, approve ? "activation.approved" : "activation.refused", "activation",
                       activation_id, msp_id, NULL);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    if (reg_token != NULL)
        mail_registration(req, tenant_id, language, act_email, reg_token);
    if (as_page)
        page(req, 200, approve ? "User approved" : "Activation refused",
             approve ? "The activation is complete." : "The licenses went back to the pool.");
    else
        cc_res_json(req, 200,
                    json_pack("{s:s, s:s}", "activation_id", activation_id, "status",
                              approve ? "active" : "refused"));
}

void lic_handle_approval(cc_req_t *req)
{
    json_t *body = NULL;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    const char *decision = "approve";
    if (req->body_len > 0 && strspn(req->body, " \t\r\n") != req->body_len) {
        if (cc_req_json(req, &body) != 0)
            return;
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        cc_v_object(&v, body, (const char *const[]){"decision", NULL});
        const char *d = cc_v_enum(&v, body, "decision", false,
                                  (const char *const[]){"approve", "refuse", NULL});
        if (!cc_v_ok(&v)) {
            cc_res_invalid(req, &v);
            return;
        }
        if (d != NULL)
            decision = d;
    }
    approval_decide(req, cc_req_param(req, "token"), decision, false);
}

void lic_handle_approve_page(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"token", NULL}) != 0)
        return;
    const char *token = cc_req_query(req, "token", &failed);
    if (!failed)
        approval_decide(req, token, NULL, true);
}

void lic_handle_approve_form(cc_req_t *req)
{
    const char *ct = cc_req_header(req, "content-type");
    if (ct == NULL || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        cc_res_problem(req, CC_ERR_UNSUPPORTED_MEDIA_TYPE,
                       "The form is application/x-www-form-urlencoded.");
        return;
    }
    const char *body = cc_pool_strndup(req->pool, req->body ? req->body : "", req->body_len);
    const char *token = NULL, *decision = NULL, *bad = NULL;
    if (cc_query_check(req->pool, body, (const char *const[]){"token", "decision", NULL}, &bad) !=
            0 ||
        cc_query_get(req->pool, body, "token", &token) != 1 ||
        cc_query_get(req->pool, body, "decision", &decision) != 1 ||
        (strcmp(decision, "approve") != 0 && strcmp(decision, "refuse") != 0)) {
        page(req, 400, "Not understood", "The form was not filled in as expected.");
        return;
    }
    approval_decide(req, token, decision, true);
}

/* ---- registration and e-mail change links ----
 * The mailed link (GET /licensing/confirm?token=…) changes nothing: mail scanners and
 * link previews open links. It shows what the link does and a button that POSTs the
 * token back (or, asked for JSON, describes it); the POST confirms, or, for an expired
 * link, mails a fresh 72-hour one (FAQ 2.11). */

static bool wants_json(cc_req_t *req)
{
    const char *accept = cc_req_header(req, "accept");
    return accept != NULL && strstr(accept, "application/json") != NULL &&
           strstr(accept, "text/html") == NULL;
}

/* The page of a link: title, text and, when action is set, the form posting the token. */
static void confirm_page(cc_req_t *req, int status, const char *title, const char *text,
                         const char *token, const char *action)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
    cc_buf_html(&b, title);
    cc_buf_puts(&b, "</title></head><body><h1>");
    cc_buf_html(&b, title);
    cc_buf_puts(&b, "</h1><p>");
    cc_buf_html(&b, text);
    cc_buf_puts(&b, "</p>");
    if (action != NULL) {
        cc_buf_puts(&b, "<form method=\"post\" action=\"/licensing/confirm\">"
                        "<input type=\"hidden\" name=\"token\" value=\"");
        cc_buf_html(&b, token);
        cc_buf_puts(&b, "\"><button>");
        cc_buf_html(&b, action);
        cc_buf_puts(&b, "</button></form>");
    }
    cc_buf_puts(&b, "</body></html>");
    cc_res_header(req, "x-frame-options", "DENY");
    cc_res_header(req, "content-security-policy", "default-src 'none'; form-action 'self'");
    cc_res_header(req, "cache-control", "no-store");
    cc_res_text(req, status, "text/html; charset=utf-8", b.data, b.len);
    cc_buf_free(&b);
}

/*
 * The link of token: GET (commit false) shows or describes it; POST (commit true)
 * confirms it, or replaces an expired one. as_json answers JSON instead of pages.
 */
static void confirm_link(cc_req_t *req, const char *token, bool commit, bool as_json)
{
    if (token == NULL || strlen(token) > 128) {
        if (as_json)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "This link is not valid.");
        else
            confirm_page(req, 404, "Link not valid", "This link is not valid.", NULL, NULL);
        return;
    }
    char hash[65];
    cc_sha256_hex(token, strlen(token), hash);
    if (!begin_system(req))
        return;
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_token_lock, (const char *const[]){hash}, &res);
    if (rc != 0)
        return res_db(req, rc);
    if (PQntuples(res) == 0 || strcmp(PQgetvalue(res, 0, 0), "approval") == 0) {
        cc_db_rollback(req->db);
        if (as_json)
            cc_res_problem(req, CC_ERR_NOT_FOUND, "This link is not valid.");
        else
            confirm_page(req, 404, "Link not valid", "This link is not valid.", NULL, NULL);
        return;
    }
    const char *kind = PQgetvalue(res, 0, 0), *activation_id = PQgetvalue(res, 0, 1);
    const char *email = PQgetvalue(res, 0, 2), *status = PQgetvalue(res, 0, 5);
    const char *account = cc_db_get(res, 0, 7), *msp_id = PQgetvalue(res, 0, 9);
    const char *tenant_id = PQgetvalue(res, 0, 11), *language = cc_db_get(res, 0, 13);
    bool used = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
    bool expired = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    bool live = strcmp(status, "active") == 0 || strcmp(status, "pending_approval") == 0;
    bool registration = strcmp(kind, "registration") == 0;
    const char *state = used || !live ? "used" : expired ? "expired" : "valid";
    if (!commit || used || !live) {
        cc_db_rollback(req->db);
        if (as_json) {
            cc_res_json(req,
                        used || !live ? 200
                        : expired     ? 410
                                      : 200,
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", kind, "state", state,
                                  "email", email, "action",
                                  used || !live  ? "none"
                                  : expired      ? "resend"
                                  : registration ? "confirm_registration"
                                                 : "confirm_email_change",
                                  "confirm_with", "POST /licensing/confirm (form: token)"));
        } else if (used || !live) {
            confirm_page(req, 200, registration ? "Already registered" : "Already confirmed",
                         "This link was already used; nothing more to do.", NULL, NULL);
        } else if (expired) {
            confirm_page(req, 410, "Link expired",
                         "This link expired after 72 hours. Ask for a new link, valid 72 hours, "
                         "sent to the same address.",
                         token, "Send me a new link");
        } else {
            const char *text =
                registration
                    ? cc_pool_printf(req->pool,
                                     "Confirm the registration of the licensing account %s.", email)
                    : cc_pool_printf(req->pool,
                                     "Confirm %s as the new e-mail address of your licensing "
                                     "account; your orders and license pools move to it.",
                                     email);
            confirm_page(req, 200,
                         registration ? "Confirm the registration" : "Confirm the new e-mail", text,
                         token, registration ? "Confirm the registration" : "Confirm");
        }
        return;
    }
    if (expired) {
        /* FAQ 2.11: the expired link says so and a fresh 72-hour link is mailed */
        const char *fresh;
        rc = cc_db_query(req->db, req->pool, &q_token_use, (const char *const[]){hash}, NULL);
        if (rc == 0)
            rc = insert_token(req, kind, activation_id, email, LIC_LINK_HOURS, &fresh);
        if (rc == 0)
            rc = cc_db_commit(req->db);
        if (rc != 0)
            return res_db(req, rc);
        mail_link(req, tenant_id, language, kind, email, fresh, true);
        if (as_json)
            cc_res_json(
                req, 410,
                json_pack("{s:s, s:s, s:s}", "kind", kind, "state", "expired", "action", "resent"));
        else
            confirm_page(req, 410, "Link expired",
                         "This link expired after 72 hours. A new link, valid 72 hours, was sent "
                         "to the same address.",
                         NULL, NULL);
        return;
    }
    rc = cc_db_query(req->db, req->pool, &q_token_use, (const char *const[]){hash}, NULL);
    long long moved = 0;
    if (rc == 0 && registration) {
        rc = cc_db_query(req->db, req->pool, &q_registered, (const char *const[]){activation_id},
                         NULL);
    } else if (rc == 0 && account != NULL) {
        PGresult *m;
        rc = cc_db_query(req->db, req->pool, &q_email_move, (const char *const[]){account, email},
                         &m);
        if (rc == 0)
            moved = PQntuples(m);
    }
    if (rc == 0)
        rc = lic_audit(req, registration ? "account.registered" : "account.email_changed",
                       "activation", activation_id, msp_id,
                       registration ? NULL : json_pack("{s:I}", "activations", (json_int_t)moved));
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    if (as_json)
        cc_res_json(req, 200,
                    json_pack("{s:s, s:s}", "kind", kind, "state",
                              registration ? "registered" : "email_changed"));
    else
        confirm_page(req, 200, registration ? "Registration complete" : "E-mail address changed",
                     registration
                         ? "Your licensing account is registered."
                         : "Your orders and license pools now belong to the new e-mail address.",
                     NULL, NULL);
}

void lic_handle_confirm(cc_req_t *req)
{
    bool failed = false;
    if (cc_req_query_allowed(req, (const char *const[]){"token", NULL}) != 0)
        return;
    const char *token = cc_req_query(req, "token", &failed);
    if (!failed)
        confirm_link(req, token, false, wants_json(req));
}

void lic_handle_confirm_form(cc_req_t *req)
{
    const char *ct = cc_req_header(req, "content-type");
    if (ct == NULL || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        cc_res_problem(req, CC_ERR_UNSUPPORTED_MEDIA_TYPE,
                       "The form is application/x-www-form-urlencoded.");
        return;
    }
    const char *body = cc_pool_strndup(req->pool, req->body ? req->body : "", req->body_len);
    const char *token = NULL, *bad = NULL;
    if (cc_query_check(req->pool, body, (const char *const[]){"token", NULL}, &bad) != 0 ||
        cc_query_get(req->pool, body, "token", &token) != 1) {
        confirm_page(req, 400, "Not understood", "The form was not filled in as expected.", NULL,
                     NULL);
        return;
    }
    confirm_link(req, token, true, wants_json(req));
}

/* ---- trials (FAQ 1.10, 1.20) ---- */

void lic_handle_trial(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return;
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    cc_v_object(&v, body, (const char *const[]){"product", "fingerprint", NULL});
    const char *product = cc_v_string(&v, body, "product", true, 1, 128, true);
    act_request_t r;
    memset(&r, 0, sizeof(r));
    parse_fingerprint(&v, body, &r);
    if (!cc_v_ok(&v)) {
        cc_res_invalid(req, &v);
        return;
    }
    if (!begin_system(req))
        return;
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_trial_seen,
                         (const char *const[]){r.fp_hash, product}, &res);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0)
        return res_db(req, rc);
    int64_t first = atoll(PQgetvalue(res, 0, 0)), now = atoll(PQgetvalue(res, 0, 1));
    bool activated = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    int64_t ends = first + LIC_TRIAL_DAYS * LIC_DAY;
    const char *state = activated ? "activated" : now < ends ? "trial" : "expired";
    long long left = now < ends ? (ends - now + LIC_DAY - 1) / LIC_DAY : 0;
    cc_res_json(req, 200,
                json_pack("{s:s, s:s, s:s, s:s, s:I, s:b}", "product", product, "state", state,
                          "started_at", lic_time(req->pool, first), "expires_at",
                          lic_time(req->pool, ends), "days_left",
                          (json_int_t)(activated ? 0 : left), "activation_allowed", 1));
}

void lic_handle_public_key(cc_req_t *req)
{
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0)
        return;
    /* short: a product that meets a license with a kid it lacks fetches the set again */
    cc_res_header(req, "cache-control", "public, max-age=300");
    cc_res_json(req, 200, lic_jwks(lic_req_keys(req)));
}
