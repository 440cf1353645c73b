/* Unit tests for common/mail.c: message building, file delivery and SMTP delivery
 * against a tiny in-process SMTP server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "testutil.h"
#include "console/errors.h"
#include "console/log.h"
#include "console/brand.h"
#include "console/mail.h"
#include "console/mem.h"
#include "console/str.h"

static const char subject_ja[] = "顧客会社A のご案内";
static const char from_name_ja[] = "顧客会社A サポート";
/* Long enough to need several encoded-words, with 3-byte and 4-byte characters. */
static const char subject_long[] =
    "【重要】顧客会社A のご案内：ライセンスの更新期限が近づいています🎉"
    "お早めにお手続きください。詳細はコンソールをご確認ください。";

/* ---- helpers: a small MIME reader, independent of the code under test ---- */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes standard base64, skipping CR and LF; fails the test on anything malformed. */
static char *b64_decode(const char *s, size_t n, size_t *outlen)
{
    char *out = cc_malloc(n + 1);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '=')
            continue;
        int v = b64_value(s[i]);
        if (v < 0)
            fail_msg("bad base64 character 0x%02x", (unsigned char)s[i]);
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    if (outlen)
        *outlen = o;
    return out;
}

/* Offset of the blank line that ends the header block, or fails. */
static size_t header_end(const char *msg)
{
    const char *e = strstr(msg, "\r\n\r\n");
    assert_non_null(e);
    return (size_t)(e - msg) + 2;
}

/* The raw (still folded) value of the first header called name, or NULL. */
static char *header_raw(const char *msg, const char *name)
{
    size_t end = header_end(msg), nl = strlen(name);
    const char *p = msg;
    while ((size_t)(p - msg) < end) {
        const char *eol = strstr(p, "\r\n");
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            /* take continuation lines too */
            const char *q = eol;
            while (q[2] == ' ' || q[2] == '\t')
                q = strstr(q + 2, "\r\n");
            const char *v = p + nl + 1;
            return cc_strndup(v, (size_t)(q - v));
        }
        p = eol + 2;
    }
    return NULL;
}

/* The unfolded value with leading whitespace removed. */
static char *header_get(const char *msg, const char *name)
{
    char *raw = header_raw(msg, name);
    if (raw == NULL)
        return NULL;
    cc_buf_t b;
    cc_buf_init(&b);
    for (const char *p = raw; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n') {
            p++;
            continue;
        }
        cc_buf_putc(&b, *p);
    }
    free(raw);
    char *v = cc_buf_steal(&b, NULL);
    size_t skip = strspn(v, " ");
    memmove(v, v + skip, strlen(v + skip) + 1);
    return v;
}

/*
 * Decodes a header value made only of RFC 2047 B encoded-words separated by whitespace;
 * checks each is at most 75 characters and decodes to valid UTF-8 on its own. Text after
 * the last word (e.g. " <addr>") is returned in *rest when asked.
 */
static char *decode_words(const char *v, const char **rest)
{
    cc_buf_t b;
    cc_buf_init(&b);
    const char *p = v;
    int words = 0;
    for (;;) {
        p += strspn(p, " \t");
        if (strncmp(p, "=?UTF-8?B?", 10) != 0)
            break;
        const char *end = strstr(p + 10, "?=");
        assert_non_null(end);
        size_t wl = (size_t)(end + 2 - p);
        if (wl > 75)
            fail_msg("encoded-word of %zu characters", wl);
        size_t n;
        char *dec = b64_decode(p + 10, (size_t)(end - p - 10), &n);
        if (!cc_utf8_valid(dec, n))
            fail_msg("encoded-word %d splits a UTF-8 character", words);
        cc_buf_append(&b, dec, n);
        free(dec);
        words++;
        p = end + 2;
    }
    assert_true(words > 0);
    if (rest != NULL)
        *rest = v + (p - v);
    else
        assert_string_equal(p, "");
    return cc_buf_steal(&b, NULL);
}

static void assert_crlf_only(const char *msg, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
            fail_msg("bare LF at offset %zu", i);
        if (msg[i] == '\r' && (i + 1 >= len || msg[i + 1] != '\n'))
            fail_msg("bare CR at offset %zu", i);
    }
    assert_true(len >= 2 && msg[len - 2] == '\r' && msg[len - 1] == '\n');
}

static void assert_line_lengths(const char *msg, size_t max)
{
    const char *p = msg;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        assert_non_null(eol);
        if ((size_t)(eol - p) > max)
            fail_msg("line of %zu characters: %.*s", (size_t)(eol - p), (int)(eol - p), p);
        p = eol + 2;
    }
}

/* The decoded body of a single-part message (base64 after the header block). */
static char *single_part_body(const char *msg)
{
    const char *body = msg + header_end(msg) + 2;
    return b64_decode(body, strlen(body), NULL);
}

static const cc_mail_config_t file_conf = {
    .smtp_url = NULL,
    .data_dir = "/nonexistent",
    .envelope_from = "no-reply@console.test",
};

static char *build_ok(const cc_mail_t *m, size_t *len)
{
    char *msg = NULL;
    size_t l = 0;
    assert_int_equal(cc_mail_build(&file_conf, m, &msg, &l), 0);
    assert_non_null(msg);
    assert_int_equal(strlen(msg), l);
    if (len)
        *len = l;
    return msg;
}

/* Redirects the log into a temporary file; returns its fd. */
static int capture_log(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = dup(fileno(f));
    fclose(f);
    cc_log_set_fd(fd);
    return fd;
}

static char *end_capture_log(int fd)
{
    cc_log_set_fd(-1);
    cc_buf_t b;
    cc_buf_init(&b);
    char chunk[4096];
    ssize_t n;
    lseek(fd, 0, SEEK_SET);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        cc_buf_append(&b, chunk, (size_t)n);
    close(fd);
    return cc_buf_steal(&b, NULL);
}

/* ---- building ---- */

static void test_brand_language(void **state)
{
    (void)state;
    cc_brand_t en, ja;
    cc_brand_defaults(&en);
    cc_brand_defaults(&ja);
    ja.default_language = "ja";
    static const struct {
        const char *preferred, *with_en, *with_ja;
    } cases[] = {
        {NULL, "en", "ja"},  {"ja", "ja", "ja"},    {"ja-JP", "ja", "ja"},
        {"en", "en", "en"},  {"en-US", "en", "en"}, {"fr", "en", "ja"},
        {"jav", "en", "ja"}, {"", "en", "ja"},      {"eng", "en", "ja"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(cc_brand_language(&en, cases[i].preferred), cases[i].with_en);
        assert_string_equal(cc_brand_language(&ja, cases[i].preferred), cases[i].with_ja);
    }
    assert_string_equal(cc_brand_language(NULL, NULL), "en");
}

static void test_build_japanese_headers(void **state)
{
    (void)state;
    cc_mail_t m = {
        .from_name = from_name_ja,
        .from_addr = "support@acme.test",
        .to = "user@example.jp",
        .subject = subject_ja,
        .text = "本文です。\nよろしくお願いします。",
    };
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_crlf_only(msg, len);
    assert_line_lengths(msg, 78);

    char *subject = header_get(msg, "Subject");
    assert_non_null(subject);
    char *dec = decode_words(subject, NULL);
    assert_string_equal(dec, subject_ja);
    free(dec);
    free(subject);

    char *from = header_get(msg, "From");
    const char *rest;
    dec = decode_words(from, &rest);
    assert_string_equal(dec, from_name_ja);
    assert_string_equal(rest, "<support@acme.test>");
    free(dec);
    free(from);

    char *to = header_get(msg, "To");
    assert_string_equal(to, "user@example.jp");
    free(to);
    assert_null(header_get(msg, "Reply-To"));
    char *mime = header_get(msg, "MIME-Version");
    assert_string_equal(mime, "1.0");
    free(mime);
    char *ct = header_get(msg, "Content-Type");
    assert_string_equal(ct, "text/plain; charset=UTF-8");
    free(ct);
    char *cte = header_get(msg, "Content-Transfer-Encoding");
    assert_string_equal(cte, "base64");
    free(cte);

    /* Body lines in the canonical CRLF form. */
    char *body = single_part_body(msg);
    assert_string_equal(body, "本文です。\r\nよろしくお願いします。");
    free(body);
    free(msg);
}

static void test_build_long_subject_folds(void **state)
{
    (void)state;
    cc_mail_t m = {.to = "user@example.jp", .subject = subject_long, .text = "x"};
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_crlf_only(msg, len);
    assert_line_lengths(msg, 76);
    char *raw = header_raw(msg, "Subject");
    assert_non_null(strstr(raw, "\r\n ")); /* folded */
    free(raw);
    char *subject = header_get(msg, "Subject");
    char *dec = decode_words(subject, NULL);
    assert_string_equal(dec, subject_long);
    free(dec);
    free(subject);
    free(msg);
}

static void test_build_ascii_headers(void **state)
{
    (void)state;
    static const struct {
        const char *from_name, *subject, *want_from, *want_subject;
    } cases[] = {
        {NULL, "Welcome", "no-reply@console.test", "Welcome"},
        {"", "Welcome", "no-reply@console.test", "Welcome"},
        {"Acme", "Your invitation", "\"Acme\" <no-reply@console.test>", "Your invitation"},
        {"Acme \"Support\" \\ Team", "Hi",
         "\"Acme \\\"Support\\\" \\\\ Team\" <no-reply@console.test>", "Hi"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_mail_t m = {.from_name = cases[i].from_name,
                       .to = "a@b.test",
                       .reply_to = "help@acme.test",
                       .subject = cases[i].subject,
                       .text = "hello"};
        char *msg = build_ok(&m, NULL);
        char *from = header_get(msg, "From");
        assert_string_equal(from, cases[i].want_from);
        char *subject = header_get(msg, "Subject");
        assert_string_equal(subject, cases[i].want_subject);
        char *reply_to = header_get(msg, "Reply-To");
        assert_string_equal(reply_to, "help@acme.test");
        free(from);
        free(subject);
        free(reply_to);
        free(msg);
    }

    /* "=?" in plain ASCII would read as an encoded-word: it is encoded instead. */
    cc_mail_t m = {.to = "a@b.test", .subject = "=?UTF-8?B?eA==?=", .text = "x"};
    char *msg = build_ok(&m, NULL);
    char *subject = header_get(msg, "Subject");
    char *dec = decode_words(subject, NULL);
    assert_string_equal(dec, "=?UTF-8?B?eA==?=");
    free(dec);
    free(subject);
    free(msg);

    /* A long ASCII subject is folded at spaces and unfolds back to itself. */
    const char *longs = "Your license for the Example Product Enterprise Edition expires in "
                        "thirty days: renew it from the console to keep your services running";
    m.subject = longs;
    msg = build_ok(&m, NULL);
    assert_line_lengths(msg, 78);
    subject = header_get(msg, "Subject");
    assert_string_equal(subject, longs);
    free(subject);
    free(msg);
}

static void test_build_date_and_message_id(void **state)
{
    (void)state;
    cc_mail_t m = {
        .from_addr = "info@brand.example", .to = "a@b.test", .subject = "s", .text = "t"};
    char *msg = build_ok(&m, NULL);
    assert_true(strncmp(msg, "Date: ", 6) == 0);
    char *date = header_get(msg, "Date");
    char wday[4], mon[4], zone[6];
    int day, year, hh, mi, ss;
    assert_int_equal(sscanf(date, "%3[A-Za-z], %d %3s %d %d:%d:%d %5s", wday, &day, mon, &year, &hh,
                            &mi, &ss, zone),
                     8);
    assert_non_null(strstr("Mon Tue Wed Thu Fri Sat Sun", wday));
    assert_non_null(strstr("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", mon));
    assert_string_equal(zone, "+0000");
    assert_true(year >= 2024);

    char *mid = header_get(msg, "Message-ID");
    size_t ml = strlen(mid);
    assert_true(ml > 20 && mid[0] == '<' && mid[ml - 1] == '>');
    assert_non_null(strstr(mid, "@brand.example>"));
    char *msg2 = build_ok(&m, NULL);
    char *mid2 = header_get(msg2, "Message-ID");
    assert_string_not_equal(mid, mid2);
    free(date);
    free(mid);
    free(mid2);
    free(msg);
    free(msg2);
}

static void test_build_multipart(void **state)
{
    (void)state;
    cc_mail_t m = {
        .from_name = from_name_ja,
        .to = "user@example.jp",
        .subject = subject_ja,
        .text = "テキスト版\nline 2",
        .html = "<p>HTML 版</p>\n<p>line 2</p>",
    };
    size_t len;
    char *msg = build_ok(&m, &len);
    assert_crlf_only(msg, len);
    assert_line_lengths(msg, 78);

    char *ct = header_get(msg, "Content-Type");
    const char *prefix = "multipart/alternative; boundary=\"";
    assert_true(strncmp(ct, prefix, strlen(prefix)) == 0);
    char *boundary = cc_strndup(ct + strlen(prefix), strlen(ct) - strlen(prefix) - 1);
    assert_true(strlen(boundary) >= 16);
    assert_int_equal(ct[strlen(ct) - 1], '"');

    char *delim = cc_aprintf("\r\n--%s\r\n", boundary);
    char *close = cc_aprintf("\r\n--%s--\r\n", boundary);
    const char *p1 = strstr(msg, delim);
    assert_non_null(p1);
    const char *p2 = strstr(p1 + 1, delim);
    assert_non_null(p2);
    assert_null(strstr(p2 + 1, delim)); /* exactly two parts */
    const char *end = strstr(p2, close);
    assert_non_null(end);
    assert_int_equal((size_t)(end - msg) + strlen(close), len); /* closes the message */

    static const struct {
        const char *type, *want;
    } parts[] = {{"text/plain", "テキスト版\r\nline 2"},
                 {"text/html", "<p>HTML 版</p>\r\n<p>line 2</p>"}};
    const char *starts[] = {p1 + strlen(delim), p2 + strlen(delim)};
    const char *ends[] = {p2, end};
    for (int i = 0; i < 2; i++) {
        char *part = cc_strndup(starts[i], (size_t)(ends[i] - starts[i]) + 2);
        char *want_ct = cc_aprintf("%s; charset=UTF-8", parts[i].type);
        char *pct = header_get(part, "Content-Type");
        assert_string_equal(pct, want_ct);
        char *cte = header_get(part, "Content-Transfer-Encoding");
        assert_string_equal(cte, "base64");
        char *body = single_part_body(part);
        assert_string_equal(body, parts[i].want);
        free(body);
        free(cte);
        free(pct);
        free(want_ct);
        free(part);
    }
    free(delim);
    free(close);
    free(boundary);
    free(ct);
    free(msg);
}

static void test_build_base64_lines(void **state)
{
    (void)state;
    char text[1000];
    for (size_t i = 0; i < sizeof(text) - 1; i++)
        text[i] = (char)('a' + i % 26);
    text[sizeof(text) - 1] = '\0';
    cc_mail_t m = {.to = "a@b.test", .subject = "s", .text = text};
    char *msg = build_ok(&m, NULL);
    const char *body = msg + header_end(msg) + 2;
    const char *p = body;
    int lines = 0;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t l = (size_t)(eol - p);
        if (eol[2] != '\0')
            assert_int_equal(l, 76);
        else
            assert_true(l > 0 && l <= 76);
        lines++;
        p = eol + 2;
    }
    assert_int_equal(lines, (1332 + 75) / 76); /* 999 bytes -> 1332 base64 characters */
    char *dec = single_part_body(msg);
    assert_string_equal(dec, text);
    free(dec);
    free(msg);
}

static void test_build_refuses_injection(void **state)
{
    (void)state;
    static const struct {
        const char *from_name, *from_addr, *reply_to, *to, *subject;
    } cases[] = {
        {NULL, NULL, NULL, "a@b.test", "a\r\nBcc: x@y"},
        {NULL, NULL, NULL, "a@b.test", "a\nBcc: x@y"},
        {NULL, NULL, NULL, "a@b.test", "a\rb"},
        {NULL, NULL, NULL, "a@b.test", "tab\there"},
        {NULL, NULL, NULL, "a@b.test", "nul\x01"},
        {"Acme\r\nBcc: x@y", NULL, NULL, "a@b.test", "s"},
        {"顧客\n", NULL, NULL, "a@b.test", "s"},
        {NULL, NULL, NULL, "a@b.test\r\nBcc: x@y", "s"},
        {NULL, NULL, "r@b.test\r\nBcc: x@y", "a@b.test", "s"},
        {NULL, "f@b.test\nBcc: x@y", NULL, "a@b.test", "s"},
        {NULL, NULL, NULL, "no-at-sign", "s"},
        {NULL, NULL, NULL, "two@@b.test", "s"},
        {NULL, NULL, NULL, "a@b@c.test", "s"},
        {NULL, NULL, NULL, "a b@c.test", "s"},
        {NULL, NULL, NULL, "<a@b.test>", "s"},
        {NULL, NULL, NULL, "a@b.test>", "s"},
        {NULL, NULL, NULL, "a@b.test, c@d.test", "s"},
        {NULL, NULL, NULL, "@b.test", "s"},
        {NULL, NULL, NULL, "a@", "s"},
        {NULL, NULL, NULL, "", "s"},
        {NULL, NULL, NULL, NULL, "s"},
        {NULL, NULL, NULL, "a@b.test", NULL},
        {NULL, NULL, NULL, "a@b.test", "\xff\xfe invalid utf-8"},
    };
    for (size_t i = 0; i < CC_ARRAY_SIZE(cases); i++) {
        cc_mail_t m = {.from_name = cases[i].from_name,
                       .from_addr = cases[i].from_addr,
                       .reply_to = cases[i].reply_to,
                       .to = cases[i].to,
                       .subject = cases[i].subject,
                       .text = "body"};
        char *msg = (char *)"sentinel";
        size_t len = 99;
        int rc = cc_mail_build(&file_conf, &m, &msg, &len);
        if (rc != CC_EINVAL)
            fail_msg("case %zu gave %d", i, rc);
        assert_null(msg);
        assert_int_equal(len, 0);
        /* cc_mail_send refuses the same (before touching data_dir, which does not exist) */
        int logfd = capture_log();
        rc = cc_mail_send(&file_conf, &m);
        free(end_capture_log(logfd));
        assert_int_equal(rc, CC_EINVAL);
    }

    /* A bad envelope sender (the default From) is refused too. */
    cc_mail_config_t bad = file_conf;
    bad.envelope_from = "no-reply@x\r\nBcc: y@z";
    cc_mail_t m = {.to = "a@b.test", .subject = "s", .text = "t"};
    char *msg;
    assert_int_equal(cc_mail_build(&bad, &m, &msg, NULL), CC_EINVAL);
    /* A text part is required. */
    m.text = NULL;
    assert_int_equal(cc_mail_build(&file_conf, &m, &msg, NULL), CC_EINVAL);
}

/* ---- file delivery ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    cc_buf_t b;
    cc_buf_init(&b);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        cc_buf_append(&b, chunk, n);
    fclose(f);
    return cc_buf_steal(&b, len);
}

static void test_send_file(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/cc_mail_test.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *data_dir = cc_aprintf("%s/data", tmpl); /* created on demand */
    cc_mail_config_t conf = {
        .smtp_url = "", .data_dir = data_dir, .envelope_from = "no-reply@console.test"};
    cc_mail_t m = {.from_name = from_name_ja,
                   .to = "user@example.jp",
                   .subject = subject_ja,
                   .text = "secret activation link https://x/activate?t=abc",
                   .html = "<a href=\"https://x/activate?t=abc\">activate</a>"};

    int logfd = capture_log();
    assert_int_equal(cc_mail_send(&conf, &m), 0);
    char *log = end_capture_log(logfd);
    assert_non_null(strstr(log, "example.jp"));
    assert_null(strstr(log, "activate"));
    assert_null(strstr(log, "user@"));
    free(log);

    char *mail_dir = cc_aprintf("%s/mail", data_dir);
    struct stat st;
    assert_int_equal(stat(mail_dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    DIR *d = opendir(mail_dir);
    assert_non_null(d);
    struct dirent *e;
    char *found = NULL;
    int entries = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        entries++;
        size_t nl = strlen(e->d_name);
        assert_true(nl > 4 && strcmp(e->d_name + nl - 4, ".eml") == 0);
        assert_true(e->d_name[0] >= '2' && e->d_name[0] <= '9'); /* a UTC timestamp */
        found = cc_aprintf("%s/%s", mail_dir, e->d_name);
    }
    closedir(d);
    assert_int_equal(entries, 1); /* exactly one file, no temporary left */
    assert_int_equal(stat(found, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    size_t len;
    char *msg = read_file(found, &len);
    assert_crlf_only(msg, len);
    char *subject = header_get(msg, "Subject");
    char *dec = decode_words(subject, NULL);
    assert_string_equal(dec, subject_ja);
    char *to = header_get(msg, "To");
    assert_string_equal(to, "user@example.jp");
    char *ct = header_get(msg, "Content-Type");
    assert_true(strncmp(ct, "multipart/alternative;", 22) == 0);

    /* Same shape as cc_mail_build's output: same headers, in the same order. */
    char *built = build_ok(&m, NULL);
    const char *names[] = {"Date", "Message-ID", "From", "To", "Subject", "MIME-Version"};
    for (size_t i = 0; i < CC_ARRAY_SIZE(names); i++) {
        char *a = header_get(msg, names[i]), *b = header_get(built, names[i]);
        assert_non_null(a);
        assert_non_null(b);
        if (strcmp(names[i], "From") == 0 || strcmp(names[i], "Subject") == 0 ||
            strcmp(names[i], "To") == 0)
            assert_string_equal(a, b);
        free(a);
        free(b);
    }

    /* A second message makes a second file. */
    logfd = capture_log();
    assert_int_equal(cc_mail_send(&conf, &m), 0);
    free(end_capture_log(logfd));
    d = opendir(mail_dir);
    entries = 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            entries++;
    closedir(d);
    assert_int_equal(entries, 2);

    free(built);
    free(ct);
    free(to);
    free(dec);
    free(subject);
    free(msg);
    free(found);
    free(mail_dir);
    free(data_dir);
    test_rm_tree(tmpl);
}

static void test_send_file_unwritable(void **state)
{
    (void)state;
    cc_mail_config_t conf = {.data_dir = "/proc/cc-mail-test-no-such-dir",
                             .envelope_from = "no-reply@console.test"};
    cc_mail_t m = {.to = "a@b.test", .subject = "s", .text = "t"};
    int logfd = capture_log();
    int rc_unwritable = cc_mail_send(&conf, &m);
    conf.data_dir = NULL;
    int rc_unset = cc_mail_send(&conf, &m);
    free(end_capture_log(logfd));
    assert_int_equal(rc_unwritable, CC_EIO);
    assert_int_equal(rc_unset, CC_EINVAL);
}

/* ---- SMTP delivery against a tiny server ---- */

typedef struct smtp_server {
    int listen_fd;
    int port;
    const char *rcpt_reply; /* reply to RCPT TO */
    pthread_t thread;
    char *mail_from, *rcpt_to, *data, *auth;
    bool quit_seen;
} smtp_server_t;

static bool send_line(int fd, const char *s)
{
    size_t n = strlen(s);
    return write(fd, s, n) == (ssize_t)n;
}

/* Reads one CRLF-terminated line into a new string (without CRLF); NULL on EOF. */
static char *recv_line(int fd, cc_buf_t *in)
{
    for (;;) {
        char *eol = in->data ? strstr(in->data, "\r\n") : NULL;
        if (eol != NULL) {
            size_t l = (size_t)(eol - in->data);
            char *line = cc_strndup(in->data, l);
            memmove(in->data, eol + 2, in->len - l - 2 + 1);
            in->len -= l + 2;
            return line;
        }
        char chunk[4096];
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n <= 0)
            return NULL;
        cc_buf_append(in, chunk, (size_t)n);
    }
}

static void *smtp_main(void *p)
{
    smtp_server_t *s = p;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0)
        return NULL;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cc_buf_t in;
    cc_buf_init(&in);
    send_line(fd, "220 test ESMTP\r\n");
    char *line;
    while ((line = recv_line(fd, &in)) != NULL) {
        if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
            send_line(fd, "250-test\r\n250 AUTH PLAIN\r\n");
        } else if (strncasecmp(line, "AUTH PLAIN", 10) == 0) {
            /* The credentials come with the command (SASL-IR) or after a 334. */
            char *creds = line[10] == ' ' ? cc_strdup(line + 11) : NULL;
            if (creds == NULL) {
                send_line(fd, "334 \r\n");
                creds = recv_line(fd, &in);
            }
            free(s->auth);
            s->auth = creds;
            send_line(fd, "235 ok\r\n");
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            s->mail_from = cc_strdup(line + 10);
            send_line(fd, "250 ok\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            s->rcpt_to = cc_strdup(line + 8);
            send_line(fd, s->rcpt_reply);
        } else if (strcasecmp(line, "DATA") == 0) {
            send_line(fd, "354 go ahead\r\n");
            cc_buf_t data;
            cc_buf_init(&data);
            char *dl;
            while ((dl = recv_line(fd, &in)) != NULL && strcmp(dl, ".") != 0) {
                /* undo dot-stuffing */
                cc_buf_puts(&data, dl[0] == '.' ? dl + 1 : dl);
                cc_buf_puts(&data, "\r\n");
                free(dl);
            }
            free(dl);
            s->data = cc_buf_steal(&data, NULL);
            send_line(fd, "250 queued\r\n");
        } else if (strcasecmp(line, "QUIT") == 0) {
            s->quit_seen = true;
            send_line(fd, "221 bye\r\n");
            free(line);
            break;
        } else if (strcasecmp(line, "RSET") == 0 || strcasecmp(line, "NOOP") == 0) {
            send_line(fd, "250 ok\r\n");
        } else {
            send_line(fd, "502 not implemented\r\n");
        }
        free(line);
    }
    cc_buf_free(&in);
    close(fd);
    return NULL;
}

static void smtp_start(smtp_server_t *s, const char *rcpt_reply)
{
    memset(s, 0, sizeof(*s));
    s->rcpt_reply = rcpt_reply;
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->listen_fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->listen_fd, 1), 0);
    struct timeval tv = {5, 0}; /* accept() gives up if the client never comes */
    setsockopt(s->listen_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->listen_fd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, smtp_main, s), 0);
}

/* Waits for the session to end; the captured fields are then safe to read. */
static void smtp_join(smtp_server_t *s)
{
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
}

static void smtp_free(smtp_server_t *s)
{
    free(s->mail_from);
    free(s->rcpt_to);
    free(s->data);
    free(s->auth);
}

static void test_send_smtp(void **state)
{
    (void)state;
    smtp_server_t srv;
    smtp_start(&srv, "250 ok\r\n");
    char *url = cc_aprintf("smtp://127.0.0.1:%d", srv.port);
    cc_mail_config_t conf = {.smtp_url = url,
                             .smtp_user = "mailer",
                             .smtp_password = "pw",
                             .data_dir = "/nonexistent",
                             .envelope_from = "bounce@console.test"};
    const char *text = "こんにちは。\n.starts with a dot\nend";
    cc_mail_t m = {.from_name = from_name_ja,
                   .from_addr = "support@acme.test",
                   .to = "user@example.jp",
                   .subject = subject_ja,
                   .text = text};
    int logfd = capture_log();
    int rc = cc_mail_send(&conf, &m);
    char *log = end_capture_log(logfd);
    smtp_join(&srv);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(log, "example.jp"));
    assert_null(strstr(log, "こんにちは"));
    free(log);

    assert_non_null(srv.mail_from);
    assert_string_equal(srv.mail_from, "<bounce@console.test>");
    assert_non_null(srv.rcpt_to);
    assert_string_equal(srv.rcpt_to, "<user@example.jp>");
    assert_non_null(srv.auth); /* AUTH PLAIN: "\0user\0password" */
    size_t auth_len;
    char *auth = b64_decode(srv.auth, strlen(srv.auth), &auth_len);
    assert_int_equal(auth_len, 10);
    assert_memory_equal(auth, "\0mailer\0pw", 10);
    free(auth);
    assert_true(srv.quit_seen);
    assert_non_null(srv.data);

    char *subject = header_get(srv.data, "Subject");
    assert_non_null(subject);
    char *dec = decode_words(subject, NULL);
    assert_string_equal(dec, subject_ja);
    char *from = header_get(srv.data, "From");
    assert_non_null(strstr(from, "<support@acme.test>"));
    char *body = single_part_body(srv.data);
    assert_string_equal(body, "こんにちは。\r\n.starts with a dot\r\nend");

    free(body);
    free(from);
    free(dec);
    free(subject);
    free(url);
    smtp_free(&srv);
}

static void test_send_smtp_rejected(void **state)
{
    (void)state;
    smtp_server_t srv;
    smtp_start(&srv, "550 no such user\r\n");
    char *url = cc_aprintf("smtp://127.0.0.1:%d", srv.port);
    cc_mail_config_t conf = {.smtp_url = url, .envelope_from = "bounce@console.test"};
    cc_mail_t m = {.to = "nobody@example.jp", .subject = "s", .text = "t"};
    int logfd = capture_log();
    int rc = cc_mail_send(&conf, &m);
    free(end_capture_log(logfd));
    smtp_join(&srv);
    assert_int_equal(rc, CC_EIO);
    assert_null(srv.data);
    smtp_free(&srv);
    free(url);
}

static void test_send_smtp_unreachable(void **state)
{
    (void)state;
    /* A port that was free a moment ago: connection refused, quickly. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    char *url = cc_aprintf("smtp://127.0.0.1:%d", ntohs(a.sin_port));
    cc_mail_config_t conf = {.smtp_url = url, .envelope_from = "bounce@console.test"};
    cc_mail_t m = {.to = "a@example.jp", .subject = "s", .text = "t"};
    int logfd = capture_log();
    assert_int_equal(cc_mail_send(&conf, &m), CC_EIO);
    free(end_capture_log(logfd));
    free(url);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_brand_language),
        cmocka_unit_test(test_build_japanese_headers),
        cmocka_unit_test(test_build_long_subject_folds),
        cmocka_unit_test(test_build_ascii_headers),
        cmocka_unit_test(test_build_date_and_message_id),
        cmocka_unit_test(test_build_multipart),
        cmocka_unit_test(test_build_base64_lines),
        cmocka_unit_test(test_build_refuses_injection),
        cmocka_unit_test(test_send_file),
        cmocka_unit_test(test_send_file_unwritable),
        cmocka_unit_test(test_send_smtp),
        cmocka_unit_test(test_send_smtp_rejected),
        cmocka_unit_test(test_send_smtp_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
