#include "console/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "console/str.h"

static const char *log_service = "console";
static cc_log_level_t log_level = CC_LOG_INFO;
static int log_fd = 2;
static _Thread_local char ctx_request_id[80];
static _Thread_local char ctx_tenant_id[40];

static const char *level_names[] = {"debug", "info", "warn", "error"};

void cc_log_init(const char *service, cc_log_level_t level)
{
    log_service = service;
    log_level = level;
}

int cc_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

bool cc_log_enabled(cc_log_level_t level)
{
    return level >= log_level;
}

void cc_log_set_fd(int fd)
{
    log_fd = fd < 0 ? 2 : fd;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    if (src == NULL) {
        dst[0] = '\0';
        return;
    }
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void cc_log_set_context(const char *request_id, const char *tenant_id)
{
    copy_field(ctx_request_id, sizeof(ctx_request_id), request_id);
    copy_field(ctx_tenant_id, sizeof(ctx_tenant_id), tenant_id);
}

static void put_kv(cc_buf_t *b, const char *k, const char *v)
{
    cc_buf_puts(b, ",\"");
    cc_buf_json_escape(b, k, strlen(k));
    cc_buf_puts(b, "\":\"");
    cc_buf_json_escape(b, v, strlen(v));
    cc_buf_putc(b, '"');
}

void cc_log_write(cc_log_level_t level, json_t *fields, const char *fmt, ...)
{
    if (level < log_level)
        return;
    char ts[40];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", now.tv_nsec / 1000000);

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_puts(&b, "{\"ts\":\"");
    cc_buf_puts(&b, ts);
    cc_buf_putc(&b, '"');
    put_kv(&b, "level", level_names[level]);
    put_kv(&b, "service", log_service);
    if (ctx_request_id[0])
        put_kv(&b, "request_id", ctx_request_id);
    if (ctx_tenant_id[0])
        put_kv(&b, "tenant_id", ctx_tenant_id);
    put_kv(&b, "msg", msg);
    if (fields != NULL && json_is_object(fields)) {
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v)
        {
            char *enc = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            if (enc == NULL)
                continue;
            cc_buf_puts(&b, ",\"");
            cc_buf_json_escape(&b, k, strlen(k));
            cc_buf_puts(&b, "\":");
            cc_buf_puts(&b, enc);
            free(enc);
        }
    }
    cc_buf_puts(&b, "}\n");
    ssize_t off = 0;
    while ((size_t)off < b.len) {
        ssize_t w = write(log_fd, b.data + off, b.len - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
    cc_buf_free(&b);
}
