/*
 * The branding service's internal interfaces: brand validation, asset checks (content
 * sniffing, dimensions, SVG sanitizing), the store and the handlers. Only this service
 * (and its tests) include this header.
 */
#ifndef BRANDING_H
#define BRANDING_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "console/brand.h"
#include "console/http.h"
#include "console/json.h"
#include "console/outbox.h"
#include "console/service.h"

typedef struct branding_app {
    cc_service_t *svc;
} branding_app_t;

/* ---- validate.c ---- */

/** The fields of a brand as stored: NULL = inherit. Strings in pool memory. */
typedef struct brand_fields {
    const char *product_name, *primary_color, *secondary_color, *accent_color, *support_email,
        *support_phone, *support_url, *sender_name, *sender_email, *footer_text, *default_language,
        *login_domain;
    json_t *social_links; /* object or NULL; borrowed (pool) */
} brand_fields_t;

/** "#rrggbb" (lower or upper case hex). */
bool branding_color_valid(const char *s);
/** An absolute https: URL with a host name, no credentials, no spaces/controls, <= 2048. */
bool branding_https_url_valid(const char *s);
/** A DNS host name (labels of [a-z0-9-], no leading/trailing '-', a dot, <= 253). Lower-case. */
bool branding_hostname_valid(const char *s);

/**
 * Validates a PUT/preview body into f (every field optional; null or absent = inherit):
 * unknown fields, types, lengths, control characters, colours, https URLs, e-mail
 * addresses, phone, social networks, language, login domain. Colours and the login
 * domain come out lower-case.
 */
void branding_validate(cc_validator_t *v, json_t *body, brand_fields_t *f);

/* ---- assets.c ---- */

typedef enum { ASSET_LOGO, ASSET_FAVICON } asset_kind_t;

#define BRANDING_ASSET_MAX (512 * 1024)

/** The result of checking an upload. */
typedef struct asset_check {
    const char *content_type; /* from the content */
    int width, height;
    uint8_t *data; /* the bytes to store (sanitized SVG, or the upload); caller frees */
    size_t len;
    int removed;       /* SVG: elements and attributes removed by the sanitizer */
    const char *error; /* the reason when refused (a sentence) */
    const char *code;  /* "asset_type" | "asset_dimensions" | "svg_unsafe" | "asset_malformed" */
} asset_check_t;

/** Width and height from a PNG/JPEG/WebP/ICO header; 0 or -1 (not that format / malformed). */
int branding_png_size(const uint8_t *p, size_t n, int *w, int *h);
int branding_jpeg_size(const uint8_t *p, size_t n, int *w, int *h);
int branding_webp_size(const uint8_t *p, size_t n, int *w, int *h);
int branding_ico_size(const uint8_t *p, size_t n, int *w, int *h);

/**
 * Sanitizes an SVG document: refuses a DOCTYPE or entity declaration (no entity
 * expansion), malformed XML and a root that is not <svg>; rebuilds the document from an
 * allowlist of SVG elements and attributes, dropping scripts, event handlers, foreignObject,
 * style elements, external references (href other than "#fragment", url() other than
 * url(#…)) and other namespaces. 0 with *out (caller frees), *removed and the size from
 * width/height or viewBox; -1 with *reason otherwise.
 */
int branding_svg_sanitize(const uint8_t *in, size_t n, char **out, size_t *outlen, int *removed,
                          int *w, int *h, const char **reason);

/** Checks an upload by its content (never its declared type). 0, or -1 with c->error set. */
int branding_asset_check(const uint8_t *data, size_t n, asset_kind_t kind, asset_check_t *c);

/* ---- store.c ---- */

/** The tenant a brand belongs to (tenants.tenant_tree). Strings in pool memory. */
typedef struct brand_tenant {
    const char *id, *path, *kind, *msp_id, *status;
} brand_tenant_t;

/** A stored brand row. */
typedef struct stored_brand {
    brand_fields_t f;
    const char *logo_asset, *favicon_asset, *updated_at;
    int version; /* 0: no row (everything inherited) */
} stored_brand_t;

/** The tenant id as the scope sees it: with scope a read of its own, NULL inside the open
 * transaction. 0, CC_ENOENT or a db error. */
int branding_store_tenant(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id,
                          brand_tenant_t *out);
/** The tenant's own brand row (lock: FOR UPDATE), in the open transaction. 0 or CC_ENOENT. */
int branding_store_get(cc_db_t *db, cc_pool_t *pool, const char *tenant_id, bool lock,
                       stored_brand_t *b);
/** Replaces every field (assets kept). 0, CC_ECONFLICT (login domain taken) or a db error. */
int branding_store_put(cc_db_t *db, cc_pool_t *pool, const brand_tenant_t *t,
                       const brand_fields_t *f, const char *actor, stored_brand_t *b);
/** Sets the logo or favicon (sha256 of a stored asset, or NULL to remove it). */
int branding_store_set_asset(cc_db_t *db, cc_pool_t *pool, const brand_tenant_t *t,
                             asset_kind_t kind, const char *sha256, const char *actor,
                             stored_brand_t *b);
/** Removes the tenant's brand row (it inherits everything again). */
int branding_store_delete(cc_db_t *db, cc_pool_t *pool, const char *tenant_id);
/** Stores a checked asset under its hash (kept when already there). */
int branding_store_asset_put(cc_db_t *db, cc_pool_t *pool, const char *sha256,
                             const asset_check_t *c, const char *msp_id);
/** An asset's type and bytes (pool) by hash. 0, CC_ENOENT or a db error. */
int branding_store_asset_get(cc_db_t *db, cc_pool_t *pool, const char *sha256,
                             const char **content_type, uint8_t **data, size_t *len);

/* ---- events.c ---- */

/** tenants.outbox consumer: "tenant.purged" removes the tenant's brand and unused assets. */
int branding_on_tenants_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg);

/* ---- handlers.c ---- */
extern const cc_route_t branding_routes[];
extern const size_t branding_nroutes;

#endif
