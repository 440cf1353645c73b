/*
 * libFuzzer driver: uploads through the asset check (magic bytes, header sizes, the SVG
 * sanitizer). Whatever the sanitizer accepts must parse again as an SVG document and
 * come out unchanged when sanitized a second time (nothing it lets through is active).
 */
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/branding/branding.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        xmlInitParser();
        init = 1;
    }
    asset_check_t c;
    if (branding_asset_check(data, size, ASSET_LOGO, &c) == 0) {
        if (strcmp(c.content_type, "image/svg+xml") == 0) {
            char *again;
            size_t len;
            int removed, w, h;
            const char *reason;
            if (branding_svg_sanitize(c.data, c.len, &again, &len, &removed, &w, &h, &reason) !=
                    0 ||
                removed != 0 || len != c.len || memcmp(again, c.data, len) != 0)
                abort();
            free(again);
        }
        free(c.data);
    }
    return 0;
}
