/*
 * CSV output (RFC 4180): fields separated by commas, records ended by CRLF, a field
 * quoted when it holds a comma, a quote, CR or LF (quotes doubled). Exports are opened
 * in spreadsheets, so a text field that a spreadsheet would run as a formula (it starts
 * with =, +, -, @, TAB or CR) is prefixed with an apostrophe (OWASP "CSV injection").
 */
#ifndef CONSOLE_CSV_H
#define CONSOLE_CSV_H

#include <stdbool.h>

#include "console/str.h"

/** The UTF-8 byte order mark that makes Excel read UTF-8 (?bom=true). */
#define CC_CSV_BOM "\xEF\xBB\xBF"

/** Appends one text field (NULL = empty), preceded by a comma unless first. */
void cc_csv_text(cc_buf_t *b, const char *v, bool first);
/** Appends a number or other field that needs neither quoting nor formula protection. */
void cc_csv_raw(cc_buf_t *b, const char *v, bool first);
/** Ends the record (CRLF). */
void cc_csv_end(cc_buf_t *b);

#endif
