/*
 * The phone factors ("sms" and "voice"): the provider interface that carries a one-time
 * code to a phone, and the rate limits of codes per user and per number. One interface,
 * two adapters chosen by CONSOLE_SMS_PROVIDER:
 *   webhook  a JSON POST to CONSOLE_SMS_WEBHOOK_URL signed with HMAC-SHA256
 *            (docs/identity-phone.md says how a receiver verifies it);
 *   twilio   the documented example of a vendor adapter: a form POST to
 *            {base}/2010-04-01/Accounts/{sid}/Messages.json (sms) or Calls.json (voice,
 *            TwiML <Say>) with basic authentication.
 * Sending is blocking with a timeout (CONSOLE_SMS_TIMEOUT_MS): call it from a worker
 * thread after the transaction that issued the code has committed. The pure pieces
 * (texts, bodies, the rate rule) are tested by tests/unit/identity/phone.c.
 */
#ifndef IDENTITY_PHONE_H
#define IDENTITY_PHONE_H

#include <stdbool.h>
#include <stdint.h>

#include "console/mem.h"
#include "console/service.h"

#define IDENTITY_PHONE_CODE_TTL_S 300 /* a phone code lives 5 minutes */

/** The per-hour caps and the minimum gap between two codes to one user. */
typedef struct identity_phone_limits {
    int64_t resend_s, per_user, per_number;
} identity_phone_limits_t;

/** What the rate rule says about one more code. */
typedef enum identity_phone_verdict {
    IDENTITY_PHONE_OK,
    IDENTITY_PHONE_TOO_SOON,   /* the user's last code is younger than resend_s */
    IDENTITY_PHONE_USER_CAP,   /* the user had per_user codes in the last hour */
    IDENTITY_PHONE_NUMBER_CAP, /* the number had per_number codes in the last hour */
} identity_phone_verdict_t;

/** The sends of the last hour as the store counts them. */
typedef struct identity_phone_history {
    int64_t user_sends, number_sends; /* within the last hour */
    int64_t since_last_user_s;        /* seconds since the user's last send; -1: none */
    int64_t oldest_user_age_s, oldest_number_age_s; /* age of the oldest send in the hour */
} identity_phone_history_t;

/** The rate rule (pure). *retry_after gets the seconds until one more code would pass. */
identity_phone_verdict_t identity_phone_rate(const identity_phone_limits_t *l,
                                             const identity_phone_history_t *h,
                                             int64_t *retry_after);
/** The verdict's name in problem documents: "resend_interval", "user", "number". */
const char *identity_phone_verdict_name(identity_phone_verdict_t v);

/**
 * The text of a code: an SMS, or what a voice call says (digits one by one, twice), in
 * Japanese when ja, else English, naming the product. Pool memory.
 */
const char *identity_phone_message(cc_pool_t *pool, const char *channel, bool ja,
                                   const char *product, const char *code);
/** TwiML that says message (XML-escaped) in ja-JP or en-US. Pool memory. */
const char *identity_phone_twiml(cc_pool_t *pool, const char *message, bool ja);

/** What a delivery carries. Strings borrowed. */
typedef struct identity_phone_delivery {
    const char *id;      /* a fresh uuid naming this delivery (receivers may deduplicate) */
    const char *channel; /* "sms" | "voice" */
    const char *to;      /* E.164 */
    const char *code;
    const char *message;
    const char *lang; /* "ja" | "en" */
    const char *product_name;
    const char *user_id, *tenant_id;
} identity_phone_delivery_t;

/** The webhook's JSON body (compact, keys sorted). Caller frees. */
char *identity_phone_webhook_body(const identity_phone_delivery_t *d);
/** The Twilio-style form body (To, From, Body or Twiml). Pool memory. */
const char *identity_phone_twilio_form(cc_pool_t *pool, const identity_phone_delivery_t *d,
                                       const char *from);

/**
 * Reads the CONSOLE_SMS_* settings at start. 0 (phone factors enabled when the chosen
 * provider is configured), or CC_EINVAL with the reason logged.
 */
int identity_phone_init(const cc_env_t *env);
/** True when a provider is configured (sms and voice can be enrolled). */
bool identity_phone_enabled(void);
/** The limits in force. */
const identity_phone_limits_t *identity_phone_limits(void);

/**
 * Sends d through the configured adapter. 0, CC_ETIMEDOUT (the provider did not answer
 * in time) or CC_EIO (it refused or could not be reached). Logs neither code nor number.
 */
int identity_phone_send(const identity_phone_delivery_t *d);

#endif
