/*
 * Unit tests for services/branding/assets.c: raster formats recognized by their bytes and
 * measured from their headers, and the SVG sanitizer against a corpus of hostile
 * documents (scripts, event handlers, javascript: and external references, style sheets,
 * foreignObject, animation, entity expansion and external entities, instructions). Every
 * sanitized output must parse again as an SVG document and contain none of the payloads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libxml/parser.h>

#include "branding.h"

/* ---- SVG: refused outright ---- */

static const char *const refused[] = {
    /* billion laughs */
    "<?xml version=\"1.0\"?><!DOCTYPE svg [<!ENTITY a \"ha\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">"
    "<!ENTITY c \"&b;&b;&b;&b;&b;&b;\">]><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" "
    "height=\"9\"><text>&c;</text></svg>",
    /* an external entity (XXE) */
    "<!DOCTYPE svg [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><svg "
    "xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"><text>&x;</text></svg>",
    /* a parameter entity fetching a remote DTD */
    "<!DOCTYPE svg [<!ENTITY % p SYSTEM \"https://evil.example/x.dtd\"> %p;]><svg "
    "xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"/>",
    /* the SVG 1.1 DOCTYPE (an external DTD) */
    "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" "
    "\"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\"><svg "
    "xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"/>",
    /* a DOCTYPE after a comment, in lower case */
    "<!-- x --><!doctype svg><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" "
    "height=\"9\"/>",
    /* a style sheet instruction */
    "<?xml-stylesheet type=\"text/css\" href=\"https://evil.example/x.css\"?><svg "
    "xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"/>",
    /* another instruction inside */
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"><?php echo 1; ?></svg>",
    /* not well-formed */
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\"><g></svg>",
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\"",
    /* not SVG */
    "<html xmlns=\"http://www.w3.org/1999/xhtml\"><body onload=\"alert(1)\"/></html>",
    "<svg width=\"9\" height=\"9\"/>", /* no SVG namespace */
    /* no size at all */
    "<svg xmlns=\"http://www.w3.org/2000/svg\"><rect width=\"1\" height=\"1\"/></svg>",
    /* XInclude is another namespace, but a DOCTYPE-free entity trick: an undeclared entity */
    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\">&xxe;</svg>",
    NULL,
};

static void test_svg_refused(void **state)
{
    (void)state;
    for (int i = 0; refused[i]; i++) {
        char *out = NULL;
        size_t len;
        int removed, w, h;
        const char *reason = NULL;
        int rc = branding_svg_sanitize((const uint8_t *)refused[i], strlen(refused[i]), &out, &len,
                                       &removed, &w, &h, &reason);
        if (rc == 0)
            fail_msg("refused[%d] was accepted: %s", i, out);
        assert_null(out);
        assert_non_null(reason);
    }
    /* a NUL byte and invalid UTF-8 */
    const uint8_t nul[] =
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\">\0</svg>";
    const uint8_t latin1[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" "
                             "height=\"9\"><text>\xe9</text></svg>";
    char *out;
    size_t len;
    int removed, w, h;
    const char *reason;
    assert_int_equal(
        branding_svg_sanitize(nul, sizeof(nul) - 1, &out, &len, &removed, &w, &h, &reason), -1);
    assert_int_equal(
        branding_svg_sanitize(latin1, sizeof(latin1) - 1, &out, &len, &removed, &w, &h, &reason),
        -1);
}

/* ---- SVG: sanitized ---- */

typedef struct hostile {
    const char *svg;
    const char *gone[4]; /* none of these may remain */
    const char *kept;    /* this must remain (or NULL) */
} hostile_t;

#define OPEN                                                                                       \
    "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "      \
    "width=\"100\" height=\"50\">"

static const hostile_t hostile[] = {
    {OPEN "<script>alert(1)</script><rect width=\"1\" height=\"1\"/></svg>",
     {"script", "alert"},
     "<rect width=\"1\" height=\"1\">"},
    {OPEN "<script><![CDATA[alert(document.cookie)]]></script></svg>", {"script", "cookie"}, NULL},
    {"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\" onload=\"alert(1)\"/>",
     {"onload", "alert"},
     "width=\"9\""},
    {OPEN
     "<rect onclick=\"x()\" onmouseover=\"y()\" ONLOAD=\"z()\" width=\"1\" height=\"1\"/></svg>",
     {"onclick", "onmouseover", "ONLOAD"},
     "<rect width"},
    {OPEN "<a xlink:href=\"javascript:alert(1)\"><text>x</text></a></svg>",
     {"javascript", "<a"},
     NULL},
    {OPEN "<a href=\"javascript&#58;alert(1)\"><text>x</text></a></svg>", {"javascript"}, NULL},
    {OPEN "<use xlink:href=\"https://evil.example/s.svg#i\"/><use href=\"#local\"/></svg>",
     {"evil.example"},
     "<use href=\"#local\">"},
    {OPEN "<use xlink:href=\"  javascript:alert(1)\"/></svg>", {"javascript"}, NULL},
    {OPEN "<use xlink:href=\"#ok\"/></svg>", {"javascript"}, "xlink:href=\"#ok\""},
    {OPEN "<image href=\"https://evil.example/t.png\" width=\"1\" height=\"1\"/></svg>",
     {"evil.example"},
     NULL},
    {OPEN "<image href=\"data:image/svg+xml;base64,PHN2Zz48c2NyaXB0Lz48L3N2Zz4=\"/></svg>",
     {"data:", "svg+xml"},
     NULL},
    {OPEN "<image href=\"data:image/png;base64,iVBORw0KGgo=\" width=\"1\" height=\"1\"/></svg>",
     {"javascript"},
     "href=\"data:image/png;base64,iVBORw0KGgo=\""},
    {OPEN "<foreignObject width=\"9\" height=\"9\"><body xmlns=\"http://www.w3.org/1999/xhtml\">"
          "<iframe src=\"https://evil.example\"/></body></foreignObject></svg>",
     {"foreignObject", "iframe", "evil.example", "body"},
     NULL},
    {OPEN "<style>@import url(https://evil.example/x.css); rect{fill:red}</style></svg>",
     {"style", "@import", "evil"},
     NULL},
    {OPEN "<rect width=\"1\" height=\"1\" style=\"fill:url(https://evil.example/p)\"/></svg>",
     {"evil", "style="},
     "<rect width=\"1\" height=\"1\">"},
    {OPEN
     "<rect width=\"1\" height=\"1\" style=\"background:u\\72l(https://evil.example)\"/></svg>",
     {"evil", "style="},
     NULL},
    {OPEN "<rect width=\"1\" height=\"1\" style=\"fill:#f00;stroke:blue\"/></svg>",
     {"evil"},
     "style=\"fill:#f00;stroke:blue\""},
    {OPEN "<rect width=\"1\" height=\"1\" fill=\"url(#g)\"/><rect fill=\"url( "
          "'https://evil.example/#g')\"/></svg>",
     {"evil"},
     "fill=\"url(#g)\""},
    {OPEN "<a href=\"#x\"><animate attributeName=\"href\" to=\"javascript:alert(1)\"/>"
          "<set attributeName=\"onclick\" to=\"alert(1)\"/></a></svg>",
     {"animate", "<set", "javascript", "onclick"},
     NULL},
    {"<svg:svg xmlns:svg=\"http://www.w3.org/2000/svg\" width=\"9\" height=\"9\">"
     "<svg:script>alert(1)</svg:script><svg:rect width=\"1\" height=\"1\"/></svg:svg>",
     {"script", "alert"},
     "<rect width=\"1\" height=\"1\">"},
    {OPEN "<x:script xmlns:x=\"http://www.w3.org/1999/xhtml\">alert(1)</x:script>"
          "<sodipodi:namedview xmlns:sodipodi=\"http://sodipodi.sourceforge.net/\"/></svg>",
     {"script", "alert", "sodipodi"},
     NULL},
    {OPEN "<text>&lt;script&gt;alert(1)&lt;/script&gt;</text></svg>",
     {"<script"},
     "&lt;script&gt;"},
    {OPEN "<text id=\"a&quot; onload=&quot;alert(1)\">t</text></svg>",
     {"\" onload=\""},
     "&quot; onload=&quot;"},
    {OPEN "<svg width=\"9\" height=\"9\" onload=\"alert(1)\"/></svg>", {"onload"}, NULL},
    {OPEN "<handler xmlns=\"http://www.w3.org/2000/svg\" type=\"application/ecmascript\">alert(1)"
          "</handler><listener event=\"load\" handler=\"#h\"/></svg>",
     {"handler", "listener", "alert"},
     NULL},
    {OPEN "<metadata><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"/>"
          "</metadata><!-- a comment --><g/></svg>",
     {"metadata", "rdf", "comment"},
     "<g></g>"},
    {OPEN "<rect width=\"1\" height=\"1\" xml:base=\"https://evil.example/\"/></svg>",
     {"evil", "xml:base"},
     NULL},
    {OPEN "<rect width=\"1\" height=\"1\" filter=\"url(https://evil.example/f.svg#f)\"/>"
          "<feImage href=\"https://evil.example/i.png\"/></svg>",
     {"evil", "feImage"},
     NULL},
};

static void test_svg_hostile(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        const hostile_t *c = &hostile[i];
        char *out = NULL;
        size_t len;
        int removed = 0, w, h;
        const char *reason = NULL;
        int rc = branding_svg_sanitize((const uint8_t *)c->svg, strlen(c->svg), &out, &len,
                                       &removed, &w, &h, &reason);
        if (rc != 0)
            fail_msg("hostile[%zu] refused (%s); it should be sanitized", i, reason);
        for (int g = 0; g < 4 && c->gone[g]; g++)
            if (strstr(out, c->gone[g]) != NULL)
                fail_msg("hostile[%zu]: '%s' survived: %s", i, c->gone[g], out);
        if (c->kept && strstr(out, c->kept) == NULL)
            fail_msg("hostile[%zu]: '%s' lost: %s", i, c->kept, out);
        assert_true(removed > 0 || strstr(c->svg, "comment") != NULL || c->kept != NULL);
        /* the output is an SVG document again, and sanitizing it again changes nothing */
        xmlDoc *doc = xmlReadMemory(out, (int)len, "out.svg", "UTF-8",
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (doc == NULL)
            fail_msg("hostile[%zu]: output does not parse: %s", i, out);
        assert_string_equal((const char *)xmlDocGetRootElement(doc)->name, "svg");
        xmlFreeDoc(doc);
        char *again;
        size_t len2;
        int removed2;
        assert_int_equal(branding_svg_sanitize((const uint8_t *)out, len, &again, &len2, &removed2,
                                               &w, &h, &reason),
                         0);
        assert_int_equal(removed2, 0);
        assert_string_equal(again, out);
        free(again);
        free(out);
    }
}

static void test_svg_size(void **state)
{
    (void)state;
    struct {
        const char *svg;
        int w, h;
    } cases[] = {
        {"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"40\"/>", 120, 40},
        {"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120px\" height=\"40.4px\"/>", 120, 40},
        {"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 300 100\"/>", 300, 100},
        {"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0,0,64,32\"/>", 64,
         32},
        {"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 20000 10000\"/>", 4096, 2048},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *out;
        size_t len;
        int removed, w = 0, h = 0;
        const char *reason;
        assert_int_equal(branding_svg_sanitize((const uint8_t *)cases[i].svg, strlen(cases[i].svg),
                                               &out, &len, &removed, &w, &h, &reason),
                         0);
        assert_int_equal(w, cases[i].w);
        assert_int_equal(h, cases[i].h);
        free(out);
    }
}

/* ---- raster headers ---- */

static size_t make_png(uint8_t *p, uint32_t w, uint32_t h)
{
    static const uint8_t head[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                   0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    memcpy(p, head, sizeof(head));
    uint8_t *q = p + 16;
    q[0] = (uint8_t)(w >> 24), q[1] = (uint8_t)(w >> 16), q[2] = (uint8_t)(w >> 8),
    q[3] = (uint8_t)w;
    q[4] = (uint8_t)(h >> 24), q[5] = (uint8_t)(h >> 16), q[6] = (uint8_t)(h >> 8),
    q[7] = (uint8_t)h;
    memset(q + 8, 0, 9); /* depth, colour type, …, CRC (not checked: nothing is decoded) */
    q[8] = 8;
    q[9] = 6;
    memcpy(p + 33, iend, 12);
    return 45;
}

static void test_png(void **state)
{
    (void)state;
    uint8_t p[64];
    size_t n = make_png(p, 300, 120);
    int w = 0, h = 0;
    assert_int_equal(branding_png_size(p, n, &w, &h), 1);
    assert_int_equal(w, 300);
    assert_int_equal(h, 120);
    assert_int_equal(branding_png_size(p, 30, &w, &h), -1); /* truncated */
    p[12] = 'X';
    assert_int_equal(branding_png_size(p, n, &w, &h), -1); /* no IHDR first */
    n = make_png(p, 0, 10);
    assert_int_equal(branding_png_size(p, n, &w, &h), -1); /* zero width */
    assert_int_equal(branding_png_size((const uint8_t *)"GIF89a", 6, &w, &h), 0);
}

static void test_jpeg(void **state)
{
    (void)state;
    /* SOI, APP0 (JFIF, 16 bytes), DQT (short), SOF0 with 480 x 640, EOI */
    const uint8_t j[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 'J',  'F',  'I',  'F',  0,    1,
                         1,    0,    0,    1,    0,    1,    0,    0,    0xff, 0xdb, 0x00, 0x03,
                         0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x03, 1,
                         0x22, 0,    2,    0x11, 1,    3,    0x11, 1,    0xff, 0xd9};
    int w = 0, h = 0;
    assert_int_equal(branding_jpeg_size(j, sizeof(j), &w, &h), 1);
    assert_int_equal(w, 640);
    assert_int_equal(h, 480);
    const uint8_t nosof[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0, 0, 0xff, 0xd9};
    assert_int_equal(branding_jpeg_size(nosof, sizeof(nosof), &w, &h), -1);
    const uint8_t overrun[] = {0xff, 0xd8, 0xff, 0xe0, 0x7f, 0xff, 0, 0};
    assert_int_equal(branding_jpeg_size(overrun, sizeof(overrun), &w, &h), -1);
    assert_int_equal(branding_jpeg_size((const uint8_t *)"\x89PNG", 4, &w, &h), 0);
}

static void test_webp(void **state)
{
    (void)state;
    uint8_t v[40] = {'R', 'I', 'F', 'F', 32, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
    v[24] = 199, v[25] = 0, v[26] = 0; /* width - 1 = 199 */
    v[27] = 99, v[28] = 0, v[29] = 0;  /* height - 1 = 99 */
    int w = 0, h = 0;
    assert_int_equal(branding_webp_size(v, sizeof(v), &w, &h), 1);
    assert_int_equal(w, 200);
    assert_int_equal(h, 100);
    uint8_t l[40] = {'R', 'I', 'F', 'F', 32, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'};
    l[20] = 0x2f;
    uint32_t bits = (64 - 1) | (uint32_t)(32 - 1) << 14;
    l[21] = (uint8_t)bits, l[22] = (uint8_t)(bits >> 8), l[23] = (uint8_t)(bits >> 16);
    l[24] = (uint8_t)(bits >> 24);
    assert_int_equal(branding_webp_size(l, sizeof(l), &w, &h), 1);
    assert_int_equal(w, 64);
    assert_int_equal(h, 32);
    uint8_t lossy[40] = {'R', 'I', 'F', 'F', 32, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '};
    lossy[23] = 0x9d, lossy[24] = 0x01, lossy[25] = 0x2a;
    lossy[26] = 48, lossy[28] = 16;
    assert_int_equal(branding_webp_size(lossy, sizeof(lossy), &w, &h), 1);
    assert_int_equal(w, 48);
    assert_int_equal(h, 16);
    v[4] = 200; /* RIFF size beyond the data */
    assert_int_equal(branding_webp_size(v, sizeof(v), &w, &h), -1);
}

static void test_ico(void **state)
{
    (void)state;
    uint8_t ico[6 + 16 + 45] = {0, 0, 1, 0, 1, 0};
    uint8_t *e = ico + 6;
    e[0] = 32, e[1] = 32;
    e[8] = 45;      /* size */
    e[12] = 6 + 16; /* offset */
    make_png(ico + 22, 32, 32);
    int w = 0, h = 0;
    assert_int_equal(branding_ico_size(ico, sizeof(ico), &w, &h), 1);
    assert_int_equal(w, 32);
    assert_int_equal(h, 32);
    e[12] = 200; /* the image beyond the file */
    assert_int_equal(branding_ico_size(ico, sizeof(ico), &w, &h), -1);
    e[12] = 22;
    ico[22] = 'X'; /* neither PNG nor a BMP header */
    assert_int_equal(branding_ico_size(ico, sizeof(ico), &w, &h), -1);
}

static void test_asset_check(void **state)
{
    (void)state;
    asset_check_t c;
    uint8_t p[64];
    size_t n = make_png(p, 200, 50);
    assert_int_equal(branding_asset_check(p, n, ASSET_LOGO, &c), 0);
    assert_string_equal(c.content_type, "image/png");
    assert_int_equal(c.len, n);
    assert_memory_equal(c.data, p, n);
    free(c.data);
    /* the favicon is at most 512 pixels a side; a logo at least 16 */
    n = make_png(p, 1024, 1024);
    assert_int_equal(branding_asset_check(p, n, ASSET_FAVICON, &c), -1);
    assert_string_equal(c.code, "asset_dimensions");
    n = make_png(p, 8, 8);
    assert_int_equal(branding_asset_check(p, n, ASSET_LOGO, &c), -1);
    assert_string_equal(c.code, "asset_dimensions");
    n = make_png(p, 5000, 100);
    assert_int_equal(branding_asset_check(p, n, ASSET_LOGO, &c), -1);
    /* not an image at all */
    assert_int_equal(branding_asset_check((const uint8_t *)"hello", 5, ASSET_LOGO, &c), -1);
    assert_string_equal(c.code, "asset_type");
    assert_int_equal(branding_asset_check((const uint8_t *)"", 0, ASSET_LOGO, &c), -1);
    /* SVG with a byte order mark and leading space: sanitized, typed by content */
    const char *svg = "\xef\xbb\xbf \n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" "
                      "height=\"64\"><script>x</script></svg>";
    assert_int_equal(branding_asset_check((const uint8_t *)svg, strlen(svg), ASSET_FAVICON, &c), 0);
    assert_string_equal(c.content_type, "image/svg+xml");
    assert_int_equal(c.removed, 1);
    assert_null(strstr((const char *)c.data, "script"));
    free(c.data);
    /* a JPEG is no favicon; an icon file is no logo */
    uint8_t ico[6 + 16 + 45] = {0, 0, 1, 0, 1, 0};
    ico[6] = 32, ico[7] = 32, ico[14] = 45, ico[18] = 22;
    make_png(ico + 22, 32, 32);
    assert_int_equal(branding_asset_check(ico, sizeof(ico), ASSET_LOGO, &c), -1);
    assert_string_equal(c.code, "asset_type");
    assert_int_equal(branding_asset_check(ico, sizeof(ico), ASSET_FAVICON, &c), 0);
    assert_string_equal(c.content_type, "image/x-icon");
    free(c.data);
    /* larger than 512 KiB */
    size_t big = BRANDING_ASSET_MAX + 1;
    uint8_t *b = calloc(1, big);
    make_png(b, 64, 64);
    assert_int_equal(branding_asset_check(b, big, ASSET_LOGO, &c), -1);
    assert_string_equal(c.code, "asset_too_large");
    free(b);
}

int main(void)
{
    xmlInitParser();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_svg_refused), cmocka_unit_test(test_svg_hostile),
        cmocka_unit_test(test_svg_size),    cmocka_unit_test(test_png),
        cmocka_unit_test(test_jpeg),        cmocka_unit_test(test_webp),
        cmocka_unit_test(test_ico),         cmocka_unit_test(test_asset_check),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    xmlCleanupParser();
    return rc;
}
