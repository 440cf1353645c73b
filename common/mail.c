/*
 * Mail: builds RFC 5322 / MIME messages and delivers them over SMTP (libcurl) or into
 * .eml files. No global mutable state besides libcurl's one-time initialization.
 */
#include "console/mail.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "console/crypto.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/mem.h"
#include "console/str.h"

#define MAIL_LINE_MAX 78      /* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters */
#define MAIL_EW_MAX 75        /* RFC 2047 §2: an encoded-word is at most 75 characters */
#define MAIL_EW_LINE_MAX 76   /* RFC 2047 §2: lines holding encoded-words */
#define MAIL_EW_OVERHEAD 12   /* "=?UTF-8?B?" + "?=" */
#define MAIL_ADDR_MAX 254     /* RFC 5321 path limit */
#define MAIL_HEADER_MAX 4096  /* bytes of a display name or subject */
#define MAIL_BASE64_LINE 76   /* RFC 2045 §6.8 */
#define MAIL_SMTP_TIMEOUT 15L /* seconds, whole transfer */
#define MAIL_QUOTED_NAME_MAX 60

/* ---- validation ---- */

/* A deliberately small check: one '@', both sides non-empty, printable ASCII only and
 * none of the characters that could smuggle another address or a header. */
static bool address_ok(const char *a)
{
    if (a == NULL)
        return false;
    size_t n = strlen(a), at = 0, ats = 0;
    if (n == 0 || n > MAIL_ADDR_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || strchr("<>,;:\"()[]\\", c) != NULL)
            return false;
        if (c == '@') {
            ats++;
            at = i;
        }
    }
    return ats == 1 && at > 0 && at + 1 < n;
}

/* A header value: valid UTF-8 without any control character (CR and LF above all). */
static bool header_value_ok(const char *s)
{
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    return n <= MAIL_HEADER_MAX && !cc_has_control(s, n) && cc_utf8_valid(s, n);
}

static bool needs_encoding(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p >= 0x80)
            return true;
    return strstr(s, "=?") != NULL; /* would read as an encoded-word */
}

/* ---- header writing ---- */

/* Length of the UTF-8 sequence that starts with lead byte c (input is known valid). */
static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    return 4;
}

/* Bytes of UTF-8 that fit in one encoded-word starting at column col. */
static size_t encoded_word_capacity(size_t col)
{
    size_t room = col < MAIL_EW_LINE_MAX ? MAIL_EW_LINE_MAX - col : 0;
    if (room > MAIL_EW_MAX)
        room = MAIL_EW_MAX;
    /* base64 of k bytes takes 4 * ceil(k / 3) characters */
    return room > MAIL_EW_OVERHEAD ? (room - MAIL_EW_OVERHEAD) / 4 * 3 : 0;
}

/*
 * Appends s (non-empty, valid UTF-8) as RFC 2047 B encoded-words. *col is the current
 * column. Each word is sized to keep its line within MAIL_EW_LINE_MAX (hence the word
 * within MAIL_EW_MAX), words are separated by folding whitespace (CRLF SP), and a word
 * always ends on a character boundary so that each decodes to valid UTF-8 on its own.
 */
static void put_encoded_words(cc_buf_t *b, size_t *col, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        size_t cap = encoded_word_capacity(*col), take = 0;
        while (i + take < n) {
            size_t l = utf8_seq_len((unsigned char)s[i + take]);
            if (take + l > cap)
                break;
            take += l;
        }
        if (take == 0) {
            /* no room left on this line; a continuation line holds 45 bytes */
            cc_buf_puts(b, "\r\n ");
            *col = 1;
            continue;
        }
        char *enc = cc_base64_encode(s + i, take);
        cc_buf_printf(b, "=?UTF-8?B?%s?=", enc);
        *col += strlen(enc) + MAIL_EW_OVERHEAD;
        free(enc);
        i += take;
        if (i < n) {
            cc_buf_puts(b, "\r\n ");
            *col = 1;
        }
    }
}

/* Appends plain ASCII text, folding at spaces where the line would grow too long. */
static void put_folded_ascii(cc_buf_t *b, size_t *col, const char *s)
{
    while (*s) {
        const char *sp = strchr(s + 1, ' ');
        size_t wl = sp ? (size_t)(sp - s) : strlen(s);
        if (*s == ' ' && *col + wl > MAIL_LINE_MAX && *col > 1) {
            cc_buf_puts(b, "\r\n");
            *col = 0;
        }
        cc_buf_append(b, s, wl);
        *col += wl;
        s += wl;
    }
}

/* True when every run of non-space characters fits on a folded line. */
static bool words_fit(const char *s)
{
    size_t run = 0;
    for (; *s; s++) {
        run = *s == ' ' ? 0 : run + 1;
        if (run > MAIL_LINE_MAX - 10)
            return false;
    }
    return true;
}

static void put_subject(cc_buf_t *b, const char *subject)
{
    size_t col = strlen("Subject: ");
    cc_buf_puts(b, "Subject: ");
    if (needs_encoding(subject) || !words_fit(subject))
        put_encoded_words(b, &col, subject);
    else
        put_folded_ascii(b, &col, subject);
    cc_buf_puts(b, "\r\n");
}

static void put_from(cc_buf_t *b, const char *name, const char *addr)
{
    size_t col = strlen("From: ");
    cc_buf_puts(b, "From: ");
    if (name == NULL || name[0] == '\0') {
        cc_buf_printf(b, "%s\r\n", addr);
        return;
    }
    if (needs_encoding(name) || strlen(name) > MAIL_QUOTED_NAME_MAX) {
        put_encoded_words(b, &col, name);
    } else {
        cc_buf_putc(b, '"');
        col++;
        for (const char *p = name; *p; p++, col++) {
            if (*p == '"' || *p == '\\') {
                cc_buf_putc(b, '\\');
                col++;
            }
            cc_buf_putc(b, *p);
        }
        cc_buf_putc(b, '"');
        col++;
    }
    /* Folding before the angle-addr is allowed (RFC 5322 §3.4, CFWS). */
    if (col + 3 + strlen(addr) > MAIL_LINE_MAX)
        cc_buf_puts(b, "\r\n");
    cc_buf_printf(b, " <%s>\r\n", addr);
}

static void put_date(cc_buf_t *b, time_t now)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    /* Spelled out rather than strftime("%a %b"), which follows the locale. */
    cc_buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
                  tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                  tm.tm_sec);
}

/* Appends body (UTF-8 text, any line ends) base64-encoded in its canonical CRLF form. */
static void put_base64_body(cc_buf_t *b, const char *body)
{
    cc_buf_t canon;
    cc_buf_init(&canon);
    for (const char *p = body; *p; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r'))
            cc_buf_putc(&canon, '\r');
        cc_buf_putc(&canon, *p);
        if (*p == '\r' && p[1] != '\n')
            cc_buf_putc(&canon, '\n');
    }
    char *enc = cc_base64_encode(canon.data ? canon.data : "", canon.len);
    size_t el = strlen(enc);
    for (size_t off = 0; off < el; off += MAIL_BASE64_LINE) {
        size_t l = el - off < MAIL_BASE64_LINE ? el - off : MAIL_BASE64_LINE;
        cc_buf_append(b, enc + off, l);
        cc_buf_puts(b, "\r\n");
    }
    free(enc);
    cc_buf_free(&canon);
}

static void put_part_headers(cc_buf_t *b, const char *type)
{
    cc_buf_printf(b,
                  "Content-Type: %s; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: base64\r\n"
                  "\r\n",
                  type);
}

int cc_mail_build(const cc_mail_config_t *conf, const cc_mail_t *mail, char **out, size_t *outlen)
{
    int rc = CC_EINVAL;
    cc_buf_t b;
    char uuid[37];
    uint8_t rnd[16];
    char *boundary = NULL;

    cc_buf_init(&b);
    *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (conf == NULL || mail == NULL)
        goto Exit;
    const char *from_addr = mail->from_addr != NULL && mail->from_addr[0] != '\0'
                                ? mail->from_addr
                                : conf->envelope_from;
    if (!address_ok(from_addr) || !address_ok(mail->to))
        goto Exit;
    if (mail->reply_to != NULL && mail->reply_to[0] != '\0' && !address_ok(mail->reply_to))
        goto Exit;
    if (mail->from_name != NULL && !header_value_ok(mail->from_name))
        goto Exit;
    if (!header_value_ok(mail->subject))
        goto Exit;
    if (mail->text == NULL || !cc_utf8_valid(mail->text, strlen(mail->text)))
        goto Exit;
    if (mail->html != NULL && !cc_utf8_valid(mail->html, strlen(mail->html)))
        goto Exit;

    put_date(&b, time(NULL));
    cc_uuid_new(uuid);
    cc_buf_printf(&b, "Message-ID: <%s@%s>\r\n", uuid, strchr(from_addr, '@') + 1);
    put_from(&b, mail->from_name, from_addr);
    cc_buf_printf(&b, "To: %s\r\n", mail->to);
    if (mail->reply_to != NULL && mail->reply_to[0] != '\0')
        cc_buf_printf(&b, "Reply-To: %s\r\n", mail->reply_to);
    put_subject(&b, mail->subject);
    cc_buf_puts(&b, "MIME-Version: 1.0\r\n");

    if (mail->html == NULL) {
        put_part_headers(&b, "text/plain");
        put_base64_body(&b, mail->text);
    } else {
        rc = cc_random_bytes(rnd, sizeof(rnd));
        if (rc != 0)
            goto Exit;
        /* "=_" never occurs in base64 text, so the boundary cannot collide with a body. */
        char *hex = cc_hex_encode(rnd, sizeof(rnd));
        boundary = cc_aprintf("=_%s", hex);
        free(hex);
        cc_buf_printf(&b,
                      "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n"
                      "\r\n"
                      "This is a multi-part message in MIME format.\r\n",
                      boundary);
        cc_buf_printf(&b, "--%s\r\n", boundary);
        put_part_headers(&b, "text/plain");
        put_base64_body(&b, mail->text);
        cc_buf_printf(&b, "--%s\r\n", boundary);
        put_part_headers(&b, "text/html");
        put_base64_body(&b, mail->html);
        cc_buf_printf(&b, "--%s--\r\n", boundary);
    }

    *out = cc_buf_steal(&b, outlen);
    rc = 0;
Exit:
    cc_buf_free(&b);
    free(boundary);
    return rc;
}

/* ---- delivery ---- */

typedef struct upload {
    const char *data;
    size_t len, off;
} upload_t;

static size_t on_upload_read(char *dst, size_t size, size_t nmemb, void *userdata)
{
    upload_t *u = userdata;
    size_t n = size * nmemb, left = u->len - u->off;
    if (n > left)
        n = left;
    memcpy(dst, u->data + u->off, n);
    u->off += n;
    return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void on_curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int send_smtp(const cc_mail_config_t *conf, const char *to, const char *msg, size_t len)
{
    int rc = CC_EIO;
    CURL *curl = NULL;
    struct curl_slist *rcpt = NULL;
    char *from = NULL, *rcpt_addr = NULL;
    char errbuf[CURL_ERROR_SIZE] = "";
    upload_t up = {msg, len, 0};

    pthread_once(&curl_once, on_curl_init);
    if (curl_init_rc != CURLE_OK || (curl = curl_easy_init()) == NULL) {
        cc_log_error("mail: libcurl initialization failed");
        goto Exit;
    }
    from = cc_aprintf("<%s>", conf->envelope_from);
    rcpt_addr = cc_aprintf("<%s>", to);
    rcpt = curl_slist_append(NULL, rcpt_addr);
    if (rcpt == NULL)
        goto Exit;

    curl_easy_setopt(curl, CURLOPT_URL, conf->smtp_url);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
#else
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS));
#endif
    /* STARTTLS when the server offers it; smtps:// gives TLS unconditionally. */
    curl_easy_setopt(curl, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &up);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, MAIL_SMTP_TIMEOUT);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    if (conf->smtp_user != NULL && conf->smtp_user[0] != '\0')
        curl_easy_setopt(curl, CURLOPT_USERNAME, conf->smtp_user);
    if (conf->smtp_password != NULL && conf->smtp_password[0] != '\0')
        curl_easy_setopt(curl, CURLOPT_PASSWORD, conf->smtp_password);

    CURLcode cres = curl_easy_perform(curl);
    if (cres != CURLE_OK) {
        /* The URL is not logged: it may carry credentials. */
        cc_log_warn("mail: smtp delivery failed: %s",
                    errbuf[0] ? errbuf : curl_easy_strerror(cres));
        goto Exit;
    }
    rc = 0;
Exit:
    curl_slist_free_all(rcpt);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    free(from);
    free(rcpt_addr);
    return rc;
}

static int mkdir_private(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        cc_log_error("mail: cannot create directory %s: %s", path, strerror(errno));
        return CC_EIO;
    }
    return 0;
}

/* Writes <data_dir>/mail/<timestamp>-<random>.eml through a temporary name and rename(2),
 * so that a reader of the directory never sees a partial message. */
static int send_file(const char *data_dir, const char *msg, size_t len)
{
    int rc = CC_EIO, fd = -1;
    char *dir = NULL, *path = NULL, *tmp = NULL, *hex = NULL;
    uint8_t rnd[8];
    char ts[32];
    struct timespec now;
    struct tm tm;

    if (data_dir == NULL || data_dir[0] == '\0')
        return CC_EINVAL;
    if (mkdir_private(data_dir) != 0)
        goto Exit;
    dir = cc_aprintf("%s/mail", data_dir);
    if (mkdir_private(dir) != 0)
        goto Exit;
    if (cc_random_bytes(rnd, sizeof(rnd)) != 0)
        goto Exit;
    hex = cc_hex_encode(rnd, sizeof(rnd));
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y%m%dT%H%M%S", &tm);
    path = cc_aprintf("%s/%s.%03ldZ-%s.eml", dir, ts, now.tv_nsec / 1000000, hex);
    tmp = cc_aprintf("%s/.%s.%03ldZ-%s.tmp", dir, ts, now.tv_nsec / 1000000, hex);

    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        cc_log_error("mail: cannot create %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, msg + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            cc_log_error("mail: cannot write %s: %s", tmp, strerror(errno));
            goto Exit;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        cc_log_error("mail: cannot sync %s: %s", tmp, strerror(errno));
        goto Exit;
    }
    int crc = close(fd);
    fd = -1;
    if (crc != 0 || rename(tmp, path) != 0) {
        cc_log_error("mail: cannot store %s: %s", path, strerror(errno));
        goto Exit;
    }
    free(tmp);
    tmp = NULL;
    rc = 0;
Exit:
    if (fd >= 0)
        close(fd);
    if (tmp != NULL)
        unlink(tmp);
    free(dir);
    free(path);
    free(tmp);
    free(hex);
    return rc;
}

int cc_mail_send(const cc_mail_config_t *conf, const cc_mail_t *mail)
{
    int rc;
    char *msg = NULL;
    size_t len = 0;

    rc = cc_mail_build(conf, mail, &msg, &len);
    if (rc != 0) {
        cc_log_warn("mail: refused a malformed message");
        goto Exit;
    }
    const char *domain = strchr(mail->to, '@') + 1;
    size_t subject_len = strlen(mail->subject);
    if (conf->smtp_url != NULL && conf->smtp_url[0] != '\0') {
        if (!address_ok(conf->envelope_from)) {
            rc = CC_EINVAL;
            goto Exit;
        }
        rc = send_smtp(conf, mail->to, msg, len);
        if (rc == 0)
            cc_log_info("mail: sent over smtp to a recipient at %s (subject %zu bytes)", domain,
                        subject_len);
        else
            cc_log_warn("mail: not sent to a recipient at %s (subject %zu bytes)", domain,
                        subject_len);
    } else {
        rc = send_file(conf->data_dir, msg, len);
        if (rc == 0)
            cc_log_info("mail: stored as a file for a recipient at %s (subject %zu bytes)", domain,
                        subject_len);
        else
            cc_log_warn("mail: not stored for a recipient at %s (subject %zu bytes)", domain,
                        subject_len);
    }
Exit:
    free(msg);
    return rc;
}
