/*
 * The branding store: every SQL statement of the service. Row-level security confines
 * brands to the caller's root account (schemas/branding/0001_branding.sql); the handlers
 * add the permission checks. Assets are public content read by hash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branding.h"

#define TS(col) "(" col " AT TIME ZONE 'UTC')"
#define BRAND_COLS                                                                                 \
    "product_name, primary_color, secondary_color, accent_color, support_email, support_phone,"    \
    " support_url, sender_name, sender_email, social_links::text, footer_text,"                    \
    " default_language, login_domain, logo_asset, favicon_asset, version, " TS("updated_at")

static const cc_stmt_t q_tenant = CC_STMT(
    "branding_tenant",
    "SELECT id, path::text, kind, msp_id, status FROM tenants.tenant_tree WHERE id = $1::uuid", 1);
static const cc_stmt_t q_get =
    CC_STMT("branding_get", "SELECT " BRAND_COLS " FROM brands WHERE tenant_id = $1::uuid", 1);
static const cc_stmt_t q_lock = CC_STMT(
    "branding_lock", "SELECT " BRAND_COLS " FROM brands WHERE tenant_id = $1::uuid FOR UPDATE", 1);
static const cc_stmt_t q_put = CC_STMT(
    "branding_put",
    "INSERT INTO brands AS b (tenant_id, msp_id, product_name, primary_color, secondary_color,"
    " accent_color, support_email, support_phone, support_url, sender_name, sender_email,"
    " social_links, footer_text, default_language, login_domain, updated_by)"
    " VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14,"
    " $15, $16)"
    " ON CONFLICT (tenant_id) DO UPDATE SET product_name = $3, primary_color = $4,"
    " secondary_color = $5, accent_color = $6, support_email = $7, support_phone = $8,"
    " support_url = $9, sender_name = $10, sender_email = $11, social_links = $12::jsonb,"
    " footer_text = $13, default_language = $14, login_domain = $15, updated_by = $16,"
    " updated_at = now(), version = b.version + 1"
    " RETURNING " BRAND_COLS,
    16);
static const cc_stmt_t q_set_logo =
    CC_STMT("branding_set_logo",
            "INSERT INTO brands AS b (tenant_id, msp_id, logo_asset, updated_by)"
            " VALUES ($1::uuid, $2::uuid, $3, $4)"
            " ON CONFLICT (tenant_id) DO UPDATE SET logo_asset = $3, updated_by = $4,"
            " updated_at = now(), version = b.version + 1 RETURNING " BRAND_COLS,
            4);
static const cc_stmt_t q_set_favicon =
    CC_STMT("branding_set_favicon",
            "INSERT INTO brands AS b (tenant_id, msp_id, favicon_asset, updated_by)"
            " VALUES ($1::uuid, $2::uuid, $3, $4)"
            " ON CONFLICT (tenant_id) DO UPDATE SET favicon_asset = $3, updated_by = $4,"
            " updated_at = now(), version = b.version + 1 RETURNING " BRAND_COLS,
            4);
static const cc_stmt_t q_delete =
    CC_STMT("branding_delete", "DELETE FROM brands WHERE tenant_id = $1::uuid", 1);
static const cc_stmt_t q_asset_put =
    CC_STMT("branding_asset_put",
            "INSERT INTO assets (sha256, content_type, bytes, width, height, msp_id)"
            " VALUES ($1, $2, decode($3, 'hex'), $4::int, $5::int, $6::uuid)"
            " ON CONFLICT (sha256) DO NOTHING",
            6);
static const cc_stmt_t q_asset_get =
    CC_STMT("branding_asset_get",
            "SELECT content_type, encode(bytes, 'hex') FROM assets WHERE sha256 = $1", 1);

int branding_store_tenant(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id,
                          brand_tenant_t *out)
{
    PGresult *res;
    const char *p[] = {id};
    int rc = scope ? cc_db_read(db, pool, scope, &q_tenant, p, &res)
                   : cc_db_query(db, pool, &q_tenant, p, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    out->id = cc_db_get(res, 0, 0);
    out->path = cc_db_get(res, 0, 1);
    out->kind = cc_db_get(res, 0, 2);
    out->msp_id = cc_db_get(res, 0, 3);
    out->status = cc_db_get(res, 0, 4);
    return 0;
}

static void row_to_brand(cc_pool_t *pool, const PGresult *res, stored_brand_t *b)
{
    brand_fields_t *f = &b->f;
    f->product_name = cc_db_get(res, 0, 0);
    f->primary_color = cc_db_get(res, 0, 1);
    f->secondary_color = cc_db_get(res, 0, 2);
    f->accent_color = cc_db_get(res, 0, 3);
    f->support_email = cc_db_get(res, 0, 4);
    f->support_phone = cc_db_get(res, 0, 5);
    f->support_url = cc_db_get(res, 0, 6);
    f->sender_name = cc_db_get(res, 0, 7);
    f->sender_email = cc_db_get(res, 0, 8);
    const char *links = cc_db_get(res, 0, 9);
    f->social_links = links ? cc_json_on_pool(pool, json_loads(links, 0, NULL)) : NULL;
    f->footer_text = cc_db_get(res, 0, 10);
    f->default_language = cc_db_get(res, 0, 11);
    f->login_domain = cc_db_get(res, 0, 12);
    b->logo_asset = cc_db_get(res, 0, 13);
    b->favicon_asset = cc_db_get(res, 0, 14);
    b->version = atoi(PQgetvalue(res, 0, 15));
    b->updated_at = cc_db_get_time(pool, res, 0, 16);
}

static int one_brand(int rc, cc_pool_t *pool, PGresult *res, stored_brand_t *b)
{
    memset(b, 0, sizeof(*b));
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    row_to_brand(pool, res, b);
    return 0;
}

int branding_store_get(cc_db_t *db, cc_pool_t *pool, const char *tenant_id, bool lock,
                       stored_brand_t *b)
{
    PGresult *res = NULL;
    int rc = cc_db_query(db, pool, lock ? &q_lock : &q_get, (const char *const[]){tenant_id}, &res);
    return one_brand(rc, pool, res, b);
}

int branding_store_put(cc_db_t *db, cc_pool_t *pool, const brand_tenant_t *t,
                       const brand_fields_t *f, const char *actor, stored_brand_t *b)
{
    char *links =
        f->social_links ? json_dumps(f->social_links, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    const char *p[] = {t->id,
                       t->msp_id,
                       f->product_name,
                       f->primary_color,
                       f->secondary_color,
                       f->accent_color,
                       f->support_email,
                       f->support_phone,
                       f->support_url,
                       f->sender_name,
                       f->sender_email,
                       links,
                       f->footer_text,
                       f->default_language,
                       f->login_domain,
                       actor};
    PGresult *res = NULL;
    int rc = cc_db_query(db, pool, &q_put, p, &res);
    free(links);
    if (rc == CC_EDB && strcmp(cc_db_sqlstate(db), "23505") == 0)
        return CC_ECONFLICT;
    return one_brand(rc, pool, res, b);
}

int branding_store_set_asset(cc_db_t *db, cc_pool_t *pool, const brand_tenant_t *t,
                             asset_kind_t kind, const char *sha256, const char *actor,
                             stored_brand_t *b)
{
    PGresult *res = NULL;
    int rc = cc_db_query(db, pool, kind == ASSET_LOGO ? &q_set_logo : &q_set_favicon,
                         (const char *const[]){t->id, t->msp_id, sha256, actor}, &res);
    return one_brand(rc, pool, res, b);
}

int branding_store_delete(cc_db_t *db, cc_pool_t *pool, const char *tenant_id)
{
    return cc_db_query(db, pool, &q_delete, (const char *const[]){tenant_id}, NULL);
}

int branding_store_asset_put(cc_db_t *db, cc_pool_t *pool, const char *sha256,
                             const asset_check_t *c, const char *msp_id)
{
    char *hex = cc_hex_encode(c->data, c->len);
    char w[16], h[16];
    snprintf(w, sizeof(w), "%d", c->width);
    snprintf(h, sizeof(h), "%d", c->height);
    int rc = cc_db_query(db, pool, &q_asset_put,
                         (const char *const[]){sha256, c->content_type, hex, w, h, msp_id}, NULL);
    free(hex);
    return rc;
}

int branding_store_asset_get(cc_db_t *db, cc_pool_t *pool, const char *sha256,
                             const char **content_type, uint8_t **data, size_t *len)
{
    static const cc_scope_t anyone = {.system = false};
    PGresult *res;
    int rc = cc_db_read(db, pool, &anyone, &q_asset_get, (const char *const[]){sha256}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    *content_type = cc_db_get(res, 0, 0);
    const char *hex = PQgetvalue(res, 0, 1);
    size_t n = strlen(hex) / 2;
    uint8_t *out = cc_pool_alloc(pool, n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(cc_hex_value(hex[2 * i]) << 4 | cc_hex_value(hex[2 * i + 1]));
    *data = out;
    *len = n;
    return 0;
}
