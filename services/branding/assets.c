/*
 * Uploaded logos and favicons, checked by their content, never by the declared type:
 * PNG, JPEG, WebP and ICO are recognized by their magic bytes and their pixel size read
 * from their headers (nothing is decoded); SVG is parsed with libxml2 (no DTD, no
 * network, no entity substitution) and rebuilt from an allowlist, so what is stored and
 * served is only what the allowlist let through. Pure functions, tested without a
 * database (tests/unit/branding/assets.c, with a corpus of hostile SVGs).
 */
#include <ctype.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "branding.h"

#define SVG_NS "http://www.w3.org/2000/svg"
#define XLINK_NS "http://www.w3.org/1999/xlink"
#define XML_NS "http://www.w3.org/XML/1998/namespace"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static unsigned le16(const uint8_t *p)
{
    return (unsigned)p[1] << 8 | p[0];
}

/* ---- raster formats: magic bytes and the size from the header ---- */

int branding_png_size(const uint8_t *p, size_t n, int *w, int *h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    if (n < 8 || memcmp(p, sig, 8) != 0)
        return 0;
    /* IHDR first, 13 bytes; the file ends with IEND */
    if (n < 8 + 25 + 12 || be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) != 0 ||
        memcmp(p + n - 12, iend, 12) != 0)
        return -1;
    uint32_t ww = be32(p + 16), hh = be32(p + 20);
    if (ww == 0 || hh == 0 || ww > 0x7fffffff || hh > 0x7fffffff)
        return -1;
    *w = ww > 100000 ? 100000 : (int)ww;
    *h = hh > 100000 ? 100000 : (int)hh;
    return 1;
}

int branding_jpeg_size(const uint8_t *p, size_t n, int *w, int *h)
{
    if (n < 4 || p[0] != 0xff || p[1] != 0xd8 || p[2] != 0xff)
        return 0;
    size_t i = 2;
    while (i + 4 <= n) {
        if (p[i] != 0xff)
            return -1;
        while (i < n && p[i] == 0xff)
            i++;
        if (i >= n)
            return -1;
        uint8_t m = p[i++];
        if (m == 0x01 || (m >= 0xd0 && m <= 0xd8))
            continue; /* markers without a length */
        if (m == 0xd9 || m == 0xda || i + 2 > n)
            return -1; /* end of image or scan before any frame header */
        size_t len = (size_t)p[i] << 8 | p[i + 1];
        if (len < 2 || i + len > n)
            return -1;
        if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
            if (len < 7)
                return -1;
            int hh = p[i + 3] << 8 | p[i + 4], ww = p[i + 5] << 8 | p[i + 6];
            if (ww == 0 || hh == 0)
                return -1;
            *w = ww;
            *h = hh;
            return 1;
        }
        i += len;
    }
    return -1;
}

int branding_webp_size(const uint8_t *p, size_t n, int *w, int *h)
{
    if (n < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WEBP", 4) != 0)
        return 0;
    uint32_t riff = le32(p + 4);
    if (n < 30 || riff < 4 || (size_t)riff + 8 > n)
        return -1;
    const uint8_t *c = p + 12;
    if (memcmp(c, "VP8 ", 4) == 0) {
        if (c[11] != 0x9d || c[12] != 0x01 || c[13] != 0x2a)
            return -1;
        *w = (int)(le16(c + 14) & 0x3fff);
        *h = (int)(le16(c + 16) & 0x3fff);
    } else if (memcmp(c, "VP8L", 4) == 0) {
        if (c[8] != 0x2f)
            return -1;
        uint32_t bits = le32(c + 9);
        *w = (int)(bits & 0x3fff) + 1;
        *h = (int)((bits >> 14) & 0x3fff) + 1;
    } else if (memcmp(c, "VP8X", 4) == 0) {
        *w = (int)(c[12] | c[13] << 8 | c[14] << 16) + 1;
        *h = (int)(c[15] | c[16] << 8 | c[17] << 16) + 1;
    } else {
        return -1;
    }
    return *w > 0 && *h > 0 ? 1 : -1;
}

int branding_ico_size(const uint8_t *p, size_t n, int *w, int *h)
{
    if (n < 6 || p[0] != 0 || p[1] != 0 || p[2] != 1 || p[3] != 0)
        return 0;
    unsigned count = le16(p + 4);
    if (count == 0 || count > 64 || n < 6 + 16 * (size_t)count)
        return -1;
    int bw = 0, bh = 0;
    for (unsigned i = 0; i < count; i++) {
        const uint8_t *e = p + 6 + 16 * i;
        int ew = e[0] ? e[0] : 256, eh = e[1] ? e[1] : 256;
        uint32_t size = le32(e + 8), off = le32(e + 12);
        if (off < 6 + 16 * count || size < 8 || (uint64_t)off + size > n)
            return -1;
        /* each image is a PNG or a BITMAPINFOHEADER (40 bytes) */
        static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (memcmp(p + off, png, 8) != 0 && le32(p + off) != 40)
            return -1;
        if (ew * eh > bw * bh)
            bw = ew, bh = eh;
    }
    *w = bw;
    *h = bh;
    return 1;
}

/* ---- SVG ---- */

static const char *const svg_elements[] = {"svg",
                                           "g",
                                           "defs",
                                           "title",
                                           "desc",
                                           "symbol",
                                           "use",
                                           "path",
                                           "rect",
                                           "circle",
                                           "ellipse",
                                           "line",
                                           "polyline",
                                           "polygon",
                                           "text",
                                           "tspan",
                                           "textPath",
                                           "linearGradient",
                                           "radialGradient",
                                           "stop",
                                           "clipPath",
                                           "mask",
                                           "pattern",
                                           "image",
                                           "filter",
                                           "feGaussianBlur",
                                           "feOffset",
                                           "feBlend",
                                           "feColorMatrix",
                                           "feFlood",
                                           "feComposite",
                                           "feMerge",
                                           "feMergeNode",
                                           "feDropShadow",
                                           NULL};

static const char *const svg_attributes[] = {"id",
                                             "class",
                                             "x",
                                             "y",
                                             "x1",
                                             "y1",
                                             "x2",
                                             "y2",
                                             "cx",
                                             "cy",
                                             "r",
                                             "rx",
                                             "ry",
                                             "fx",
                                             "fy",
                                             "fr",
                                             "width",
                                             "height",
                                             "d",
                                             "points",
                                             "viewBox",
                                             "preserveAspectRatio",
                                             "transform",
                                             "fill",
                                             "fill-opacity",
                                             "fill-rule",
                                             "stroke",
                                             "stroke-width",
                                             "stroke-linecap",
                                             "stroke-linejoin",
                                             "stroke-miterlimit",
                                             "stroke-dasharray",
                                             "stroke-dashoffset",
                                             "stroke-opacity",
                                             "opacity",
                                             "offset",
                                             "stop-color",
                                             "stop-opacity",
                                             "gradientUnits",
                                             "gradientTransform",
                                             "spreadMethod",
                                             "clip-path",
                                             "clip-rule",
                                             "mask",
                                             "font-family",
                                             "font-size",
                                             "font-weight",
                                             "font-style",
                                             "text-anchor",
                                             "dominant-baseline",
                                             "letter-spacing",
                                             "word-spacing",
                                             "dx",
                                             "dy",
                                             "rotate",
                                             "textLength",
                                             "lengthAdjust",
                                             "patternUnits",
                                             "patternContentUnits",
                                             "patternTransform",
                                             "maskUnits",
                                             "maskContentUnits",
                                             "clipPathUnits",
                                             "version",
                                             "style",
                                             "visibility",
                                             "display",
                                             "color",
                                             "filter",
                                             "stdDeviation",
                                             "in",
                                             "in2",
                                             "result",
                                             "mode",
                                             "values",
                                             "type",
                                             "operator",
                                             "k1",
                                             "k2",
                                             "k3",
                                             "k4",
                                             "flood-color",
                                             "flood-opacity",
                                             "filterUnits",
                                             "primitiveUnits",
                                             "vector-effect",
                                             "shape-rendering",
                                             "color-interpolation-filters",
                                             "href",
                                             NULL};

static bool in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool ns_is(const xmlNs *ns, const char *href)
{
    return ns != NULL && ns->href != NULL && strcmp((const char *)ns->href, href) == 0;
}

/* A lower-cased copy without whitespace and control characters (what a browser's URL and
 * CSS parsers would skip), for pattern checks. Caller frees. */
static char *squeeze(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f)
            continue;
        *o++ = (char)tolower(c);
    }
    *o = '\0';
    return out;
}

/* True when every url( in v points inside the document (url(#id)) and nothing else in it
 * can reach out or run: javascript:, data:, @import, expression(), bindings, escapes. */
static bool value_safe(const char *v)
{
    char *s = squeeze(v);
    bool ok = strstr(s, "javascript:") == NULL && strstr(s, "vbscript:") == NULL &&
              strstr(s, "data:") == NULL && strstr(s, "@import") == NULL &&
              strstr(s, "expression(") == NULL && strstr(s, "-moz-binding") == NULL &&
              strstr(s, "behavior:") == NULL && strchr(s, '\\') == NULL && strchr(s, '<') == NULL &&
              strstr(s, "&#") == NULL;
    for (const char *p = s; ok && (p = strstr(p, "url(")) != NULL; p += 4) {
        const char *q = p + 4;
        if (*q == '"' || *q == '\'')
            q++;
        ok = *q == '#';
    }
    free(s);
    return ok;
}

/* href on image: only an embedded raster picture; elsewhere only a fragment (#id). */
static bool href_safe(const char *element, const char *v)
{
    while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
        v++;
    if (strcmp(element, "image") == 0) {
        static const char *const ok[] = {"data:image/png;base64,", "data:image/jpeg;base64,",
                                         "data:image/webp;base64,", "data:image/gif;base64,", NULL};
        for (size_t i = 0; ok[i]; i++)
            if (strncmp(v, ok[i], strlen(ok[i])) == 0) {
                for (const char *c = v + strlen(ok[i]); *c; c++)
                    if (!isalnum((unsigned char)*c) && !strchr("+/=\r\n ", *c))
                        return false;
                return true;
            }
        return false;
    }
    if (v[0] != '#')
        return false;
    for (const char *c = v + 1; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("-_.:", *c))
            return false;
    return true;
}

/* text and attribute values are escaped with cc_buf_html: the five XML special characters */
typedef struct svg_out {
    cc_buf_t buf;
    int removed;
    bool xlink; /* xlink:href written: the root declares the namespace */
} svg_out_t;

static void write_element(svg_out_t *o, xmlNode *el, bool root)
{
    const char *name = (const char *)el->name;
    cc_buf_printf(&o->buf, "<%s", name);
    if (root)
        cc_buf_puts(&o->buf, " xmlns=\"" SVG_NS "\" xmlns:xlink=\"" XLINK_NS "\"");
    for (xmlAttr *a = el->properties; a; a = a->next) {
        const char *an = (const char *)a->name;
        bool xlink = ns_is(a->ns, XLINK_NS), xmlns = ns_is(a->ns, XML_NS);
        bool allowed = (a->ns == NULL && in_list(an, svg_attributes)) ||
                       (xlink && strcmp(an, "href") == 0) || (xmlns && strcmp(an, "space") == 0);
        xmlChar *val = allowed ? xmlNodeListGetString(el->doc, a->children, 1) : NULL;
        const char *v = val ? (const char *)val : "";
        if (allowed && strcmp(an, "href") == 0)
            allowed = href_safe(name, v);
        else if (allowed)
            allowed = value_safe(v);
        if (allowed && strlen(v) > 65536)
            allowed = false;
        if (!allowed) {
            o->removed++;
        } else {
            cc_buf_printf(&o->buf, " %s%s=\"", xlink ? "xlink:" : xmlns ? "xml:" : "", an);
            cc_buf_html(&o->buf, v);
            cc_buf_putc(&o->buf, '"');
        }
        xmlFree(val);
    }
    cc_buf_putc(&o->buf, '>');
    for (xmlNode *c = el->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content)
                cc_buf_html(&o->buf, (const char *)c->content);
        } else if (c->type == XML_ELEMENT_NODE) {
            if (ns_is(c->ns, SVG_NS) && in_list((const char *)c->name, svg_elements) &&
                strcmp((const char *)c->name, "svg") != 0)
                write_element(o, c, false);
            else
                o->removed++; /* script, style, foreignObject, animation, other namespaces */
        } else if (c->type != XML_COMMENT_NODE) {
            o->removed++; /* processing instructions, entity references */
        }
    }
    cc_buf_printf(&o->buf, "</%s>", name);
}

/* A length attribute as pixels ("120", "120px", "120.5"); 0 when absent or relative. */
static double length_px(xmlNode *el, const char *attr)
{
    xmlChar *v = xmlGetNoNsProp(el, (const xmlChar *)attr);
    if (v == NULL)
        return 0;
    char *end;
    double d = strtod((const char *)v, &end);
    bool ok = end != (char *)v && (*end == '\0' || strcmp(end, "px") == 0);
    xmlFree(v);
    return ok && d > 0 ? d : 0;
}

static int clamp_px(double d)
{
    return d < 1 ? 1 : d > 4096 ? 4096 : (int)(d + 0.5);
}

int branding_svg_sanitize(const uint8_t *in, size_t n, char **out, size_t *outlen, int *removed,
                          int *w, int *h, const char **reason)
{
    *out = NULL;
    *reason = NULL;
    /* no DTD at all: entity declarations (billion laughs, external entities) never reach
     * the parser; <?xml-stylesheet?> and other instructions are refused too */
    for (size_t i = 0; i + 1 < n; i++) {
        if (in[i] == 0) {
            *reason = "The SVG contains a NUL byte.";
            return -1;
        }
        if (in[i] != '<')
            continue;
        if (in[i + 1] == '!' && i + 2 < n && in[i + 2] != '-' && in[i + 2] != '[') {
            *reason = "The SVG has a DOCTYPE or an entity declaration; remove it.";
            return -1;
        }
        if (in[i + 1] == '?' &&
            !(i + 5 < n && strncasecmp((const char *)in + i + 2, "xml ", 4) == 0 &&
              strncmp((const char *)in + i + 2, "xml", 3) == 0)) {
            *reason = "The SVG has a processing instruction (such as a style sheet); remove it.";
            return -1;
        }
    }
    if (!cc_utf8_valid((const char *)in, n)) {
        *reason = "The SVG is not UTF-8 text.";
        return -1;
    }
    xmlDoc *doc = xmlReadMemory((const char *)in, (int)n, "upload.svg", "UTF-8",
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (doc == NULL) {
        *reason = "The SVG is not well-formed XML.";
        return -1;
    }
    int rc = -1;
    xmlNode *root = xmlDocGetRootElement(doc);
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        *reason = "The SVG has a DOCTYPE; remove it.";
        goto Exit;
    }
    if (root == NULL || strcmp((const char *)root->name, "svg") != 0 || !ns_is(root->ns, SVG_NS)) {
        *reason = "The document is not an SVG image (root <svg> in the SVG namespace).";
        goto Exit;
    }
    double dw = length_px(root, "width"), dh = length_px(root, "height");
    if (dw == 0 || dh == 0) {
        xmlChar *vb = xmlGetNoNsProp(root, (const xmlChar *)"viewBox");
        double x, y, vw = 0, vh = 0;
        if (vb != NULL) {
            char *s = (char *)vb;
            for (char *c = s; *c; c++)
                if (*c == ',')
                    *c = ' ';
            if (sscanf(s, "%lf %lf %lf %lf", &x, &y, &vw, &vh) != 4)
                vw = vh = 0;
            xmlFree(vb);
        }
        if (vw <= 0 || vh <= 0) {
            *reason = "The SVG has no size: give it width and height or a viewBox.";
            goto Exit;
        }
        dw = dw ? dw : vw;
        dh = dh ? dh : vh;
    }
    /* a vector image scales: keep its aspect, within 4096 pixels */
    double scale = dw > dh ? (dw > 4096 ? 4096 / dw : 1) : (dh > 4096 ? 4096 / dh : 1);
    *w = clamp_px(dw * scale);
    *h = clamp_px(dh * scale);
    svg_out_t o = {.removed = 0};
    cc_buf_init(&o.buf);
    write_element(&o, root, true);
    *removed = o.removed;
    *out = cc_buf_steal(&o.buf, outlen);
    rc = 0;
Exit:
    xmlFreeDoc(doc);
    return rc;
}

/* ---- the check of an upload ---- */

static int refuse(asset_check_t *c, const char *code, const char *error)
{
    c->code = code;
    c->error = error;
    return -1;
}

int branding_asset_check(const uint8_t *data, size_t n, asset_kind_t kind, asset_check_t *c)
{
    memset(c, 0, sizeof(*c));
    if (n == 0)
        return refuse(c, "asset_type", "The upload is empty.");
    if (n > BRANDING_ASSET_MAX)
        return refuse(c, "asset_too_large", "The image is larger than 512 KiB.");
    int w = 0, h = 0, r;
    if ((r = branding_png_size(data, n, &w, &h)) != 0)
        c->content_type = "image/png";
    else if ((r = branding_jpeg_size(data, n, &w, &h)) != 0)
        c->content_type = "image/jpeg";
    else if ((r = branding_webp_size(data, n, &w, &h)) != 0)
        c->content_type = "image/webp";
    else if ((r = branding_ico_size(data, n, &w, &h)) != 0)
        c->content_type = "image/x-icon";
    if (r < 0)
        return refuse(c, "asset_malformed", "The image's header is damaged or truncated.");
    if (c->content_type == NULL) {
        /* not a raster format we know: SVG text, or refused */
        size_t i = 0;
        if (n >= 3 && data[0] == 0xef && data[1] == 0xbb && data[2] == 0xbf)
            i = 3; /* UTF-8 byte order mark */
        while (i < n && isspace(data[i]))
            i++;
        if (i >= n || data[i] != '<')
            return refuse(c, "asset_type",
                          "The content is not a PNG, JPEG, WebP, ICO or SVG image.");
        char *svg;
        size_t len;
        const char *reason;
        if (branding_svg_sanitize(data + i, n - i, &svg, &len, &c->removed, &w, &h, &reason) != 0)
            return refuse(c, "svg_unsafe", reason);
        c->content_type = "image/svg+xml";
        c->data = (uint8_t *)svg;
        c->len = len;
    } else {
        if (kind == ASSET_LOGO && strcmp(c->content_type, "image/x-icon") == 0)
            return refuse(c, "asset_type",
                          "An icon file is for the favicon; upload the logo as "
                          "PNG, JPEG, WebP or SVG.");
        if (kind == ASSET_FAVICON && strcmp(c->content_type, "image/jpeg") == 0)
            return refuse(c, "asset_type", "A favicon is PNG, ICO, WebP or SVG.");
        c->data = malloc(n);
        memcpy(c->data, data, n);
        c->len = n;
    }
    c->width = w;
    c->height = h;
    int max = kind == ASSET_FAVICON ? 512 : 4096, min = 16;
    if (w < min || h < min || w > max || h > max) {
        free(c->data);
        c->data = NULL;
        return refuse(c, "asset_dimensions",
                      kind == ASSET_FAVICON
                          ? "A favicon is between 16 and 512 pixels wide and high."
                          : "A logo is between 16 and 4096 pixels wide and high.");
    }
    if (c->len > BRANDING_ASSET_MAX) {
        free(c->data);
        c->data = NULL;
        return refuse(c, "asset_too_large", "The image is larger than 512 KiB.");
    }
    return 0;
}
