/*
 * Outbound HTTP for notifications a service hands to someone else's server (SMS and
 * voice providers, webhooks): one POST with a hard timeout, and the signature scheme of
 * the console's webhooks. Blocking (libcurl): call from a worker thread, never from an
 * event loop. Thread-safe.
 */
#ifndef CONSOLE_WEBHOOK_H
#define CONSOLE_WEBHOOK_H

#include <stddef.h>

/** One POST. Strings are borrowed; headers is NULL-ended ("Name: value") or NULL. */
typedef struct cc_webhook_post {
    const char *url; /* http:// or https:// only; redirects are not followed */
    const char *content_type;
    const char *body;
    size_t body_len;
    const char *const *headers;
    const char *basic_user, *basic_password; /* HTTP basic authentication when user is set */
    long timeout_ms;                         /* whole exchange, connection included */
} cc_webhook_post_t;

/**
 * Sends the POST. 0 when the server answered 2xx; CC_ETIMEDOUT when it did not answer in
 * time; CC_EIO on any other failure (connection, TLS, a non-2xx status). *status (may be
 * NULL) gets the HTTP status, 0 without an answer. The answer's body is read (at most
 * 64 KiB) and dropped; nothing of the request is logged (it may carry a secret).
 */
int cc_webhook_send(const cc_webhook_post_t *post, long *status);

/**
 * The signature of a console webhook: "v1=" and the lower-case hex HMAC-SHA256 under
 * secret of timestamp, ".", and the body's bytes. out needs 68 bytes.
 */
void cc_webhook_signature(const char *secret, const char *timestamp, const char *body,
                          size_t body_len, char out[68]);

#endif
