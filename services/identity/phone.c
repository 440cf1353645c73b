/*
 * The phone factors' provider interface and rate rule (phone.h).
 */
#include "phone.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "console/crypto.h"
#include "console/json.h"
#include "console/log.h"
#include "console/str.h"
#include "console/webhook.h"

typedef enum provider { PROVIDER_NONE, PROVIDER_WEBHOOK, PROVIDER_TWILIO } provider_t;

static struct {
    provider_t provider;
    const char *webhook_url, *webhook_secret;
    const char *twilio_url, *twilio_sid, *twilio_token, *from;
    long timeout_ms;
    identity_phone_limits_t limits;
} conf = {.limits = {30, 5, 10}, .timeout_ms = 5000};

/* ---- the rate rule ---- */

identity_phone_verdict_t identity_phone_rate(const identity_phone_limits_t *l,
                                             const identity_phone_history_t *h,
                                             int64_t *retry_after)
{
    *retry_after = 0;
    if (h->since_last_user_s >= 0 && h->since_last_user_s < l->resend_s) {
        *retry_after = l->resend_s - h->since_last_user_s;
        return IDENTITY_PHONE_TOO_SOON;
    }
    if (h->user_sends >= l->per_user) {
        *retry_after = 3600 - h->oldest_user_age_s;
        if (*retry_after < 1)
            *retry_after = 1;
        return IDENTITY_PHONE_USER_CAP;
    }
    if (h->number_sends >= l->per_number) {
        *retry_after = 3600 - h->oldest_number_age_s;
        if (*retry_after < 1)
            *retry_after = 1;
        return IDENTITY_PHONE_NUMBER_CAP;
    }
    return IDENTITY_PHONE_OK;
}

const char *identity_phone_verdict_name(identity_phone_verdict_t v)
{
    switch (v) {
    case IDENTITY_PHONE_TOO_SOON:
        return "resend_interval";
    case IDENTITY_PHONE_USER_CAP:
        return "user";
    case IDENTITY_PHONE_NUMBER_CAP:
        return "number";
    default:
        return "none";
    }
}

/* ---- texts ---- */

/* "1, 2, 3, 4, 5, 6" (en) or "1、2、3、4、5、6" (ja): a voice reads digits one by one. */
static const char *spelled(cc_pool_t *pool, const char *code, bool ja)
{
    cc_buf_t b;
    cc_buf_init(&b);
    for (const char *c = code; *c; c++) {
        if (c != code)
            cc_buf_puts(&b, ja ? "、" : ", ");
        cc_buf_putc(&b, *c);
    }
    const char *out = cc_pool_strdup(pool, b.data ? b.data : "");
    cc_buf_free(&b);
    return out;
}

const char *identity_phone_message(cc_pool_t *pool, const char *channel, bool ja,
                                   const char *product, const char *code)
{
    int minutes = IDENTITY_PHONE_CODE_TTL_S / 60;
    if (strcmp(channel, "voice") == 0) {
        const char *s = spelled(pool, code, ja);
        if (ja)
            return cc_pool_printf(pool,
                                  "%s です。認証コードは %s です。繰り返します。%s。"
                                  "有効期限は %d 分です。",
                                  product, s, s, minutes);
        return cc_pool_printf(pool,
                              "This is %s. Your verification code is %s. Again: %s. "
                              "It expires in %d minutes.",
                              product, s, s, minutes);
    }
    if (ja)
        return cc_pool_printf(pool,
                              "%s の認証コード: %s（有効期限 %d 分）。このコードを他の人に"
                              "教えないでください。",
                              product, code, minutes);
    return cc_pool_printf(pool,
                          "%s: your verification code is %s. It expires in %d minutes. Do not "
                          "share it.",
                          product, code, minutes);
}

const char *identity_phone_twiml(cc_pool_t *pool, const char *message, bool ja)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_printf(&b, "<Response><Say language=\"%s\">", ja ? "ja-JP" : "en-US");
    cc_buf_html(&b, message);
    cc_buf_puts(&b, "</Say></Response>");
    const char *out = cc_pool_strdup(pool, b.data);
    cc_buf_free(&b);
    return out;
}

/* ---- bodies ---- */

char *identity_phone_webhook_body(const identity_phone_delivery_t *d)
{
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s?, s:s?}", "id", d->id, "channel",
                  d->channel, "to", d->to, "code", d->code, "message", d->message, "lang", d->lang,
                  "product_name", d->product_name, "expires_in", IDENTITY_PHONE_CODE_TTL_S,
                  "user_id", d->user_id, "tenant_id", d->tenant_id);
    if (j == NULL)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    return s;
}

static void form_field(cc_buf_t *b, const char *name, const char *value)
{
    if (b->len)
        cc_buf_putc(b, '&');
    cc_buf_puts(b, name);
    cc_buf_putc(b, '=');
    cc_buf_percent_encode(b, value);
}

const char *identity_phone_twilio_form(cc_pool_t *pool, const identity_phone_delivery_t *d,
                                       const char *from)
{
    cc_buf_t b;
    cc_buf_init(&b);
    form_field(&b, "To", d->to);
    form_field(&b, "From", from ? from : "");
    if (strcmp(d->channel, "voice") == 0)
        form_field(&b, "Twiml", identity_phone_twiml(pool, d->message, strcmp(d->lang, "ja") == 0));
    else
        form_field(&b, "Body", d->message);
    const char *out = cc_pool_strdup(pool, b.data);
    cc_buf_free(&b);
    return out;
}

/* ---- configuration ---- */

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int identity_phone_init(const cc_env_t *env)
{
    conf.limits = (identity_phone_limits_t){env->sms_resend_s, env->sms_max_per_user,
                                            env->sms_max_per_number};
    conf.timeout_ms = (long)env->sms_timeout_ms;
    conf.provider = PROVIDER_NONE;
    const char *p = env->sms_provider ? env->sms_provider : "webhook";
    if (strcmp(p, "webhook") == 0) {
        if (!set(env->sms_webhook_url))
            return 0; /* no provider: sms and voice stay off */
        if (!set(env->sms_webhook_secret) || strlen(env->sms_webhook_secret) < 32) {
            cc_log_error("CONSOLE_SMS_WEBHOOK_SECRET: required with CONSOLE_SMS_WEBHOOK_URL, at "
                         "least 32 characters");
            return CC_EINVAL;
        }
        if (strncmp(env->sms_webhook_url, "https://", 8) != 0 &&
            strncmp(env->sms_webhook_url, "http://", 7) != 0) {
            cc_log_error("CONSOLE_SMS_WEBHOOK_URL: must be an http:// or https:// URL");
            return CC_EINVAL;
        }
        conf.webhook_url = env->sms_webhook_url;
        conf.webhook_secret = env->sms_webhook_secret;
        conf.provider = PROVIDER_WEBHOOK;
    } else if (strcmp(p, "twilio") == 0) {
        if (!set(env->sms_twilio_account_sid) || !set(env->sms_twilio_auth_token) ||
            !cc_phone_e164_valid(env->sms_from)) {
            cc_log_error("CONSOLE_SMS_PROVIDER=twilio needs CONSOLE_SMS_TWILIO_ACCOUNT_SID, "
                         "CONSOLE_SMS_TWILIO_AUTH_TOKEN and an E.164 CONSOLE_SMS_FROM");
            return CC_EINVAL;
        }
        conf.twilio_url = env->sms_twilio_url;
        conf.twilio_sid = env->sms_twilio_account_sid;
        conf.twilio_token = env->sms_twilio_auth_token;
        conf.from = env->sms_from;
        conf.provider = PROVIDER_TWILIO;
    } else {
        cc_log_error("CONSOLE_SMS_PROVIDER: must be webhook or twilio");
        return CC_EINVAL;
    }
    cc_log_info("phone factors: codes are sent through the %s provider", p);
    return 0;
}

bool identity_phone_enabled(void)
{
    return conf.provider != PROVIDER_NONE;
}

const identity_phone_limits_t *identity_phone_limits(void)
{
    return &conf.limits;
}

/* ---- sending ---- */

static int send_webhook(const identity_phone_delivery_t *d)
{
    char *body = identity_phone_webhook_body(d);
    if (body == NULL)
        return CC_EINVAL;
    char ts[24], sig[68], h_ts[64], h_sig[96], h_id[80];
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    cc_webhook_signature(conf.webhook_secret, ts, body, strlen(body), sig);
    snprintf(h_ts, sizeof(h_ts), "X-Console-Timestamp: %s", ts);
    snprintf(h_sig, sizeof(h_sig), "X-Console-Signature: %s", sig);
    snprintf(h_id, sizeof(h_id), "X-Console-Delivery: %s", d->id);
    const char *headers[] = {h_ts, h_sig, h_id, NULL};
    cc_webhook_post_t post = {.url = conf.webhook_url,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = strlen(body),
                              .headers = headers,
                              .timeout_ms = conf.timeout_ms};
    int rc = cc_webhook_send(&post, NULL);
    cc_wipe(body, strlen(body));
    free(body);
    return rc;
}

static int send_twilio(const identity_phone_delivery_t *d)
{
    cc_pool_t *pool = cc_pool_new();
    const char *base = conf.twilio_url;
    size_t bl = strlen(base);
    const char *url = cc_pool_printf(
        pool, "%.*s/2010-04-01/Accounts/%s/%s", (int)(bl && base[bl - 1] == '/' ? bl - 1 : bl),
        base, conf.twilio_sid, strcmp(d->channel, "voice") == 0 ? "Calls.json" : "Messages.json");
    const char *form = identity_phone_twilio_form(pool, d, conf.from);
    cc_webhook_post_t post = {.url = url,
                              .content_type = "application/x-www-form-urlencoded",
                              .body = form,
                              .body_len = strlen(form),
                              .basic_user = conf.twilio_sid,
                              .basic_password = conf.twilio_token,
                              .timeout_ms = conf.timeout_ms};
    int rc = cc_webhook_send(&post, NULL);
    cc_pool_free(pool);
    return rc;
}

int identity_phone_send(const identity_phone_delivery_t *d)
{
    int rc;
    switch (conf.provider) {
    case PROVIDER_WEBHOOK:
        rc = send_webhook(d);
        break;
    case PROVIDER_TWILIO:
        rc = send_twilio(d);
        break;
    default:
        return CC_EINVAL;
    }
    if (rc != 0)
        cc_log_warn("phone code delivery %s (%s) failed: %s", d->id, d->channel, cc_strerror(rc));
    return rc;
}
