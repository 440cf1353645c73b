/*
 * The brand a person sees (white label): the effective brand of a tenant or of a login
 * domain, read from the branding schema's published view (branding.effective_brands: the
 * tenant's own fields over its root account's over the platform's), with the built-in
 * defaults last; and the pieces every service that shows the product builds on: the page
 * chrome of the hosted HTML pages (style, header with logo, footer with support contacts
 * and social links) and branded mail (sender name and address, Reply-To the support
 * address, the product in subject and body, HTML and plain-text parts). One place, so
 * identity's pages and mail, and quotas' and licensing's mail, look the same.
 *
 * Blocking (database, mail): call from a worker thread. Thread-safe.
 */
#ifndef CONSOLE_BRAND_H
#define CONSOLE_BRAND_H

#include <jansson.h>
#include <stdbool.h>

#include "console/db.h"
#include "console/errors.h"
#include "console/mail.h"
#include "console/str.h"

/** The social networks a brand may link (plus "other"), in display order. */
extern const char *const cc_brand_networks[];

/** An effective brand: every field set (defaults fill the gaps). Strings in pool memory. */
typedef struct cc_brand {
    const char *product_name;
    const char *logo_asset, *favicon_asset; /* SHA-256 hex of an asset, or NULL */
    const char *primary_color, *secondary_color, *accent_color; /* "#rrggbb" */
    const char *support_email, *support_phone, *support_url;    /* NULL when unset */
    const char *sender_name, *sender_email; /* sender_email NULL: the platform's */
    json_t *social_links;                   /* object network -> https URL; borrowed (pool) */
    const char *footer_text;                /* NULL when unset */
    const char *default_language;           /* "en" | "ja" */
    const char *login_domain; /* the customer's or its MSP's login domain; NULL when none */
} cc_brand_t;

/** Fills b with the built-in defaults (product "Console", the platform's colours). */
void cc_brand_defaults(cc_brand_t *b);

/**
 * The effective brand of tenant_id, read in system scope (inside an open transaction with
 * cc_db_query, else in a read of its own). An unknown tenant gets the defaults. Returns 0
 * or a cc_db_* error (b then holds the defaults, so a page can still be shown).
 */
int cc_brand_for_tenant(cc_db_t *db, cc_pool_t *pool, const char *tenant_id, cc_brand_t *b);

/**
 * The effective brand of the tenant whose login domain is host (lower-cased, any
 * ":port" removed). Returns 0, CC_ENOENT (no brand has this domain: b holds the
 * platform's brand), or a cc_db_* error. *tenant_id (may be NULL) gets the tenant.
 */
int cc_brand_for_host(cc_db_t *db, cc_pool_t *pool, const char *host, cc_brand_t *b,
                      const char **tenant_id);

/** The host of a request's Host value without port, lower-cased, or NULL when not a host name. */
const char *cc_brand_host_normalize(cc_pool_t *pool, const char *host);

/**
 * The base URL of links and images a person gets from this brand (pool memory): public_url
 * (CONSOLE_PUBLIC_URL) with its host replaced by the brand's login domain, scheme, port and
 * path kept, so mail of a white-labelled MSP leads to the MSP's domain; public_url itself
 * when the brand has no login domain or public_url has no "scheme://host".
 */
const char *cc_brand_base_url(cc_pool_t *pool, const cc_brand_t *b, const char *public_url);

/** "/branding/assets/<sha256>" (pool), or NULL when asset is NULL. */
const char *cc_brand_asset_path(cc_pool_t *pool, const char *asset);

/**
 * The public JSON of a brand: presentation fields only (no ids, no sender address, no
 * login domain). New reference. base (may be NULL) prefixes asset URLs.
 */
json_t *cc_brand_public_json(const cc_brand_t *b, const char *base);

/* ---- pages ---- */

/** The CSS of the brand's pages (colours validated #rrggbb at write time). Pool memory. */
const char *cc_brand_page_css(cc_pool_t *pool, const cc_brand_t *b);
/** The CSP source that allows exactly css as an inline style: "'sha256-…'". Pool memory. */
const char *cc_brand_css_hash(cc_pool_t *pool, const char *css);

/**
 * Writes the start of a branded HTML page: doctype, head (title "<title> - <product>",
 * favicon, the inline style css), the header with the logo and product name, and opens
 * <main>. lang "en" or "ja".
 */
void cc_brand_page_open(cc_buf_t *out, const cc_brand_t *b, const char *lang, const char *title,
                        const char *css);
/** Closes <main>, writes the footer (support contacts, social links, footer text) and ends. */
void cc_brand_page_close(cc_buf_t *out, const cc_brand_t *b, const char *lang);

/* ---- mail ---- */

/**
 * The language of a message to a person: "ja" or "en" as preferred says (a BCP 47 tag
 * such as "ja-JP" counts as its primary language; NULL or another language: none), else
 * the brand's default language. A static string.
 */
const char *cc_brand_language(const cc_brand_t *b, const char *preferred);

/** A message before branding: subject and bodies in the recipient's language. */
typedef struct cc_brand_message {
    const char *to;
    const char *lang;    /* "en" | "ja" */
    const char *subject; /* without the product name: it is prefixed ("Acme Backup: …") */
    const char *text;    /* plain text, CRLF line ends */
    const char *html;    /* an HTML fragment (escaped by the caller) */
} cc_brand_message_t;

/**
 * Builds the branded message: From "<sender_name>" <sender_email or the platform's>,
 * envelope sender the platform's, Reply-To the support address, subject "<product>: …",
 * the HTML part laid out with logo (public_url + asset path), colours and footer, the
 * text part with a signature of the support contacts. *out pool memory.
 */
void cc_brand_mail_compose(cc_pool_t *pool, const cc_brand_t *b, const char *public_url,
                           const cc_brand_message_t *m, cc_mail_t *out);
/** Composes and sends (cc_mail_send). Returns 0, CC_EINVAL or CC_EIO. */
int cc_brand_mail_send(const cc_mail_config_t *conf, const cc_brand_t *b, const char *public_url,
                       const cc_brand_message_t *m);

#endif
