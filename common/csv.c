#include "console/csv.h"

#include <string.h>

void cc_csv_text(cc_buf_t *b, const char *v, bool first)
{
    if (!first)
        cc_buf_putc(b, ',');
    if (v == NULL)
        return;
    bool formula = strchr("=+-@\t\r", v[0]) != NULL && v[0] != '\0';
    bool quote = formula || strpbrk(v, ",\"\r\n") != NULL;
    if (quote)
        cc_buf_putc(b, '"');
    if (formula)
        cc_buf_putc(b, '\'');
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            cc_buf_putc(b, '"');
        cc_buf_putc(b, *p);
    }
    if (quote)
        cc_buf_putc(b, '"');
}

void cc_csv_raw(cc_buf_t *b, const char *v, bool first)
{
    if (!first)
        cc_buf_putc(b, ',');
    if (v != NULL)
        cc_buf_puts(b, v);
}

void cc_csv_end(cc_buf_t *b)
{
    cc_buf_append(b, "\r\n", 2);
}
