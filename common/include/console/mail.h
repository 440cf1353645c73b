/*
 * Mail: RFC 5322 messages (multipart/alternative text + HTML, UTF-8, encoded-word
 * headers) sent over SMTP with libcurl when a URL is configured, otherwise written as
 * .eml files under <data_dir>/mail/. Blocking: call from a worker thread, never from an
 * event loop. Thread-safe.
 */
#ifndef CONSOLE_MAIL_H
#define CONSOLE_MAIL_H

#include <stddef.h>

typedef struct cc_mail_config {
    const char *smtp_url;      /* "smtp://127.0.0.1:1025" or "smtps://…"; NULL or "" = files */
    const char *smtp_user;     /* optional */
    const char *smtp_password; /* optional; never logged */
    const char *data_dir;      /* files go to <data_dir>/mail/ */
    const char *envelope_from; /* platform sender, e.g. "no-reply@localhost" */
} cc_mail_config_t;

typedef struct cc_mail {
    const char *from_name; /* display name (brand), may be NULL */
    const char *from_addr; /* header From address; defaults to envelope_from */
    const char *reply_to;  /* may be NULL */
    const char *to;        /* one recipient address */
    const char *subject;   /* UTF-8 */
    const char *text;      /* plain-text part, UTF-8 */
    const char *html;      /* HTML part, UTF-8; may be NULL for text only */
} cc_mail_t;

/**
 * Builds the RFC 5322 message (CRLF line ends, Date, Message-ID, MIME-Version,
 * base64 bodies, RFC 2047 encoded-word for non-ASCII headers). Rejects CR/LF in header
 * values (header injection) with CC_EINVAL. Caller frees *out.
 */
int cc_mail_build(const cc_mail_config_t *conf, const cc_mail_t *mail, char **out, size_t *outlen);

/** Builds and delivers (SMTP or file). Returns 0, CC_EINVAL or CC_EIO. */
int cc_mail_send(const cc_mail_config_t *conf, const cc_mail_t *mail);

#endif
