/*
 * Outbound POSTs with libcurl (console/webhook.h). A provider that hangs costs the
 * caller at most timeout_ms: CURLOPT_TIMEOUT_MS bounds the whole exchange, and no
 * redirect is followed (a provider's answer must not send the request elsewhere).
 */
#include "console/webhook.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "console/crypto.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/str.h"

#define ANSWER_MAX (64 * 1024)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_answer(char *data, size_t size, size_t nmemb, void *user)
{
    size_t *seen = user;
    size_t n = size * nmemb;
    (void)data;
    *seen += n;
    return *seen > ANSWER_MAX ? 0 : n; /* an endless answer ends the exchange */
}

int cc_webhook_send(const cc_webhook_post_t *post, long *status)
{
    if (status)
        *status = 0;
    if (post->url == NULL ||
        (strncmp(post->url, "http://", 7) != 0 && strncmp(post->url, "https://", 8) != 0))
        return CC_EINVAL;
    pthread_once(&curl_once, curl_init_once);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return CC_EIO;
    struct curl_slist *hdrs = NULL;
    char ct[160];
    snprintf(ct, sizeof(ct), "Content-Type: %s", post->content_type);
    hdrs = curl_slist_append(hdrs, ct);
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; post->headers && post->headers[i]; i++)
        hdrs = curl_slist_append(hdrs, post->headers[i]);
    size_t seen = 0;
    curl_easy_setopt(curl, CURLOPT_URL, post->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, post->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, post->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post->body_len);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &seen);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "console-webhook/1");
    if (post->basic_user) {
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(curl, CURLOPT_USERNAME, post->basic_user);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, post->basic_password ? post->basic_password : "");
    }
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    if (status)
        *status = code;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        cc_log_warn("webhook: no answer within %ld ms", post->timeout_ms);
        return CC_ETIMEDOUT;
    }
    if (rc != CURLE_OK) {
        cc_log_warn("webhook: %s", curl_easy_strerror(rc));
        return CC_EIO;
    }
    if (code < 200 || code > 299) {
        cc_log_warn("webhook: answered HTTP %ld", code);
        return CC_EIO;
    }
    return 0;
}

void cc_webhook_signature(const char *secret, const char *timestamp, const char *body,
                          size_t body_len, char out[68])
{
    cc_buf_t msg;
    cc_buf_init(&msg);
    cc_buf_puts(&msg, timestamp);
    cc_buf_putc(&msg, '.');
    cc_buf_append(&msg, body, body_len);
    uint8_t mac[32];
    cc_hmac_sha256(secret, strlen(secret), msg.data, msg.len, mac);
    cc_buf_free(&msg);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "v1=", 3);
    for (size_t i = 0; i < 32; i++) {
        out[3 + 2 * i] = hex[mac[i] >> 4];
        out[4 + 2 * i] = hex[mac[i] & 15];
    }
    out[67] = '\0';
}
