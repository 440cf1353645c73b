/*
 * The tenants store: every SQL statement of the service. Row-level security confines
 * every statement to the caller's scope (schemas/tenants/0002_lifecycle.sql); the
 * handlers add the permission checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/json.h"
#include "console/log.h"
#include "tenants.h"

/* the list's usage columns: the usage service's published view (a key lookup per row) */
#define USAGE(col)                                                                                 \
    "coalesce((SELECT u." col " FROM usage.tenant_usage_summary u WHERE u.tenant_id = t.id), 0)"
/* quota_used_pct (usage over quota, the larger of the two resources, 2 decimals; -1 without
 * a quota), from the usage and quotas services' published views */
#define QUOTA_PART(res, col)                                                                       \
    "coalesce((SELECT u." col " FROM usage.tenant_usage_summary u WHERE u.tenant_id = t.id), 0)"   \
    " * 100.0 / nullif((SELECT q.limit_bytes FROM quotas.quota_limits q WHERE q.tenant_id = t.id"  \
    " AND q.resource = '" res "'), 0)"
#define QUOTA_PCT                                                                                  \
    "coalesce(round(greatest(" QUOTA_PART("cloud_storage", "cloud_usage_bytes") ", " QUOTA_PART(   \
        "datastore", "datastore_usage_bytes") "), 2), -1)"
/* timestamps leave as UTC timestamps; cc_db_get_time writes RFC 3339 (no to_char per row) */
#define TS(col) "(" col " AT TIME ZONE 'UTC')"
/* clang-format off */
#define COLS                                                                                       \
    "t.id, t.name, t.kind, t.parent_id, t.status, " TS("t.created_at") ", t.created_by_name, "     \
    "t.created_by, t.version, " TS("t.updated_at") ", " TS("t.deleted_at") ", " TS("t.purge_at")  \
    ", t.path::text, t.msp_id, t.allow_msp_access, " USAGE("sources_total") ", "                 \
    USAGE("cloud_usage_bytes") ", " USAGE("datastore_usage_bytes")
/* clang-format on */
#define NCOLS 18

static const cc_stmt_t q_get =
    CC_STMT("tenants_get", "SELECT " COLS ", NULL FROM tenants t WHERE t.id = $1::uuid", 1);
static const cc_stmt_t q_lock = CC_STMT(
    "tenants_lock", "SELECT " COLS ", NULL FROM tenants t WHERE t.id = $1::uuid FOR UPDATE", 1);
static const cc_stmt_t q_lock_parent =
    CC_STMT("tenants_lock_parent",
            "SELECT " COLS ", NULL FROM tenants t WHERE t.id = $1::uuid FOR SHARE", 1);
static const cc_stmt_t q_insert = CC_STMT(
    "tenants_insert",
    "INSERT INTO tenants AS t (id, parent_id, kind, name, name_key, path, msp_id, created_by,"
    " created_by_name, updated_by)"
    " SELECT $1::uuid, p.id, $2, $3, name_key($3), p.path || text2ltree(replace($1::text, '-', "
    "'')),"
    " CASE WHEN p.kind = 'platform' THEN $1::uuid ELSE p.msp_id END, $4, $5, $4"
    " FROM tenants p WHERE p.id = $6::uuid"
    " RETURNING " COLS ", NULL",
    6);
static const cc_stmt_t q_rename = CC_STMT(
    "tenants_update",
    "UPDATE tenants t SET name = coalesce($2, name), name_key = name_key(coalesce($2, name)),"
    " allow_msp_access = coalesce($4::boolean, allow_msp_access), updated_at = now(),"
    " updated_by = $3, version = version + 1 WHERE id = $1::uuid RETURNING " COLS ", NULL",
    4);
static const cc_stmt_t q_status =
    CC_STMT("tenants_status",
            "UPDATE tenants t SET status = $2,"
            " suspended_at = CASE WHEN $2 = 'suspended' THEN now() ELSE NULL END,"
            " updated_at = now(), updated_by = $3, version = version + 1"
            " WHERE id = $1::uuid RETURNING " COLS ", NULL",
            3);
static const cc_stmt_t q_delete =
    CC_STMT("tenants_soft_delete",
            "UPDATE tenants t SET status = 'deleted', deleted_at = now(), deleted_by = $3,"
            " deleted_by_name = $4, purge_at = now() + make_interval(days => $2::int),"
            " updated_at = now(), updated_by = $3, version = version + 1"
            " WHERE id = $1::uuid RETURNING " COLS ", NULL",
            4);
static const cc_stmt_t q_restore =
    CC_STMT("tenants_restore",
            "UPDATE tenants t SET"
            " status = CASE WHEN suspended_at IS NULL THEN 'active' ELSE 'suspended' END,"
            " deleted_at = NULL, deleted_by = NULL, deleted_by_name = NULL, purge_at = NULL,"
            " updated_at = now(), updated_by = $2, version = version + 1"
            " WHERE id = $1::uuid RETURNING " COLS ", NULL",
            2);
static const cc_stmt_t q_children =
    CC_STMT("tenants_live_children",
            "SELECT count(*) FROM tenants WHERE parent_id = $1::uuid AND status <> 'deleted'", 1);
/* Counts from the parent's counters (schemas/tenants/0003_child_counts.sql), for callers
 * who see every child; the row is absent when the parent is not visible. */
static const cc_stmt_t q_counted =
    CC_STMT("tenants_counted",
            "SELECT CASE $2 WHEN '' THEN children_active + children_suspended"
            " WHEN 'active' THEN children_active WHEN 'suspended' THEN children_suspended"
            " ELSE children_deleted END, 1 FROM tenants WHERE id = $1::uuid",
            2);
static const cc_stmt_t q_summary_counted =
    CC_STMT("tenants_summary_counted",
            "SELECT children_active + children_suspended, children_active, children_suspended,"
            " children_deleted, 1 FROM tenants WHERE id = $1::uuid",
            1);
static const cc_stmt_t q_summary = CC_STMT("tenants_summary",
                                           "SELECT count(*) FILTER (WHERE status <> 'deleted'),"
                                           " count(*) FILTER (WHERE status = 'active'),"
                                           " count(*) FILTER (WHERE status = 'suspended'),"
                                           " count(*) FILTER (WHERE status = 'deleted'),"
                                           " (SELECT count(*) FROM tenants p WHERE p.id = $1::uuid)"
                                           " FROM tenants WHERE parent_id = $1::uuid",
                                           1);

/* Lists: one statement per sort order, with and without a search pattern, first page or
 * after a cursor, so that each is a plain index range scan with its own plan. */
#define STATUS_COND "(CASE WHEN $2 = '' THEN t.status <> 'deleted' ELSE t.status = $2 END)"

static const struct sort_def {
    const char *name;
    const char *key;   /* the sort key as text, returned for the cursor */
    const char *order; /* ORDER BY */
    const char *after; /* keyset condition on $3 (key) and $4 (id) */
} sorts[SORT_COUNT] = {
    [SORT_NAME] = {"name", "t.name_key", "t.name_key, t.id",
                   "(t.name_key, t.id) > ($3::text, $4::uuid)"},
    [SORT_NAME_DESC] = {"-name", "t.name_key", "t.name_key DESC, t.id DESC",
                        "(t.name_key, t.id) < ($3::text, $4::uuid)"},
    [SORT_CREATED] = {"created_at", TS("t.created_at"), "t.created_at, t.id",
                      "(t.created_at, t.id) > ($3::timestamptz, $4::uuid)"},
    [SORT_CREATED_DESC] = {"-created_at", TS("t.created_at"), "t.created_at DESC, t.id DESC",
                           "(t.created_at, t.id) < ($3::timestamptz, $4::uuid)"},
    /* no index: the parent's children are sorted (tenants without a quota come as -1) */
    [SORT_QUOTA] = {"quota_used_pct", QUOTA_PCT "::text", QUOTA_PCT ", t.id",
                    "(" QUOTA_PCT ", t.id) > ($3::numeric, $4::uuid)"},
    [SORT_QUOTA_DESC] = {"-quota_used_pct", QUOTA_PCT "::text", QUOTA_PCT " DESC, t.id DESC",
                         "(" QUOTA_PCT ", t.id) < ($3::numeric, $4::uuid)"},
};

/*
 * The search conditions on the normalized query ($n): compared as name_key() compares
 * (NFKC, case-folded).
 * - q, a substring: LIKE with its metacharacters taken literally. LIKE is not leakproof,
 *   so under row-level security PostgreSQL evaluates it after the policy and cannot use
 *   the trigram index: the match scans the parent's children through the parent index.
 * - prefix: a range on the list's own index (comparison operators and starts_with are
 *   leakproof, so they become index conditions even under row-level security). The upper
 *   bound appends U+10FFFF, exact in the code-point order of the database's C.UTF-8
 *   collation; starts_with keeps the result exact whatever the collation.
 */
static const char *search_cond(int mode, const char *param)
{
    static char buf[3][2][320];
    int i = strcmp(param, "$5") == 0;
    if (mode == SEARCH_SUBSTRING)
        snprintf(buf[mode][i], sizeof(buf[mode][i]),
                 "t.name_key LIKE ('%%' || replace(replace(replace(name_key(%s::text), '\\', "
                 "'\\\\'), '%%', '\\%%'), '_', '\\_') || '%%')",
                 param);
    else
        snprintf(buf[mode][i], sizeof(buf[mode][i]),
                 "t.name_key >= name_key(%s::text) AND t.name_key < name_key(%s::text) || "
                 "chr(1114111) AND starts_with(t.name_key, name_key(%s::text))",
                 param, param, param);
    return buf[mode][i];
}

static cc_stmt_t list_stmts[SORT_COUNT][SEARCH_MODES][2]; /* [sort][search][after] */
static cc_stmt_t count_stmts[SEARCH_MODES];               /* [search] */

void tenants_store_init(void)
{
    for (int s = 0; s < SORT_COUNT; s++) {
        for (int q = 0; q < SEARCH_MODES; q++) {
            for (int a = 0; a < 2; a++) {
                cc_stmt_t *st = &list_stmts[s][q][a];
                st->name = cc_aprintf("tenants_list_%d_%d_%d", s, q, a);
                st->sql = cc_aprintf(
                    "SELECT " COLS
                    ", %s FROM tenants t WHERE t.parent_id = $1::uuid AND " STATUS_COND
                    " AND %s AND %s ORDER BY %s LIMIT $6",
                    sorts[s].key, q ? search_cond(q, "$5") : "$5::text IS NULL",
                    a ? sorts[s].after : "$3::text IS NULL AND $4::text IS NULL", sorts[s].order);
                st->nparams = 6;
            }
        }
    }
    for (int q = 0; q < SEARCH_MODES; q++) {
        count_stmts[q].name = cc_aprintf("tenants_count_%d", q);
        count_stmts[q].sql =
            cc_aprintf("SELECT count(*), (SELECT count(*) FROM tenants p WHERE p.id = $1::uuid)"
                       " FROM tenants t WHERE t.parent_id = $1::uuid AND " STATUS_COND " AND %s",
                       q ? search_cond(q, "$3") : "$3::text IS NULL");
        count_stmts[q].nparams = 3;
    }
}

void tenants_store_dispose(void)
{
    for (int s = 0; s < SORT_COUNT; s++)
        for (int q = 0; q < SEARCH_MODES; q++)
            for (int a = 0; a < 2; a++) {
                free((char *)list_stmts[s][q][a].name);
                free((char *)list_stmts[s][q][a].sql);
            }
    for (int q = 0; q < SEARCH_MODES; q++) {
        free((char *)count_stmts[q].name);
        free((char *)count_stmts[q].sql);
    }
}

int tenants_sort_parse(const char *s)
{
    for (int i = 0; i < SORT_COUNT; i++)
        if (strcmp(sorts[i].name, s) == 0)
            return i;
    return -1;
}

const char *tenants_sort_name(tenant_sort_t sort)
{
    return sorts[sort].name;
}

static void row_of(cc_pool_t *pool, const PGresult *res, int r, tenant_t *t)
{
    t->id = cc_db_get(res, r, 0);
    t->name = cc_db_get(res, r, 1);
    t->kind = cc_db_get(res, r, 2);
    t->parent_id = cc_db_get(res, r, 3);
    t->status = cc_db_get(res, r, 4);
    t->created_at = cc_db_get_time(pool, res, r, 5);
    t->created_by_name = cc_db_get(res, r, 6);
    t->created_by = cc_db_get(res, r, 7);
    t->version = atoi(PQgetvalue(res, r, 8));
    t->updated_at = cc_db_get_time(pool, res, r, 9);
    t->deleted_at = cc_db_get_time(pool, res, r, 10);
    t->purge_at = cc_db_get_time(pool, res, r, 11);
    t->path = cc_db_get(res, r, 12);
    t->msp_id = cc_db_get(res, r, 13);
    t->allow_msp_access = strcmp(PQgetvalue(res, r, 14), "t") == 0;
    t->sources_total = atoll(PQgetvalue(res, r, 15));
    t->cloud_usage_bytes = atoll(PQgetvalue(res, r, 16));
    t->datastore_usage_bytes = atoll(PQgetvalue(res, r, 17));
    t->sort_key = cc_db_get(res, r, NCOLS);
}

/* One row or CC_ENOENT. */
static int one(cc_pool_t *pool, PGresult *res, tenant_t *out)
{
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    row_of(pool, res, 0, out);
    return 0;
}

int tenants_get(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id,
                tenant_t *out)
{
    PGresult *res;
    const char *params[] = {id};
    int rc = cc_db_read(db, pool, scope, &q_get, params, &res);
    return rc ? rc : one(pool, res, out);
}

static int run_one(cc_db_t *db, cc_pool_t *pool, const cc_stmt_t *st, const char *const *params,
                   tenant_t *out)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, st, params, &res);
    if (rc == CC_EDB && strcmp(cc_db_sqlstate(db), "23505") == 0)
        return CC_ECONFLICT; /* the sibling-name index */
    return rc ? rc : one(pool, res, out);
}

int tenants_lock(cc_db_t *db, cc_pool_t *pool, const char *id, tenant_t *out)
{
    return run_one(db, pool, &q_lock, (const char *[]){id}, out);
}

int tenants_lock_parent(cc_db_t *db, cc_pool_t *pool, const char *id, tenant_t *out)
{
    return run_one(db, pool, &q_lock_parent, (const char *[]){id}, out);
}

int tenants_insert(cc_db_t *db, cc_pool_t *pool, const tenant_t *parent, const char *id,
                   const char *kind, const char *name, const char *actor, const char *actor_name,
                   tenant_t *out)
{
    const char *params[] = {id, kind, name, actor, actor_name, parent->id};
    return run_one(db, pool, &q_insert, params, out);
}

int tenants_update(cc_db_t *db, cc_pool_t *pool, const char *id, const char *name,
                   const char *allow_msp_access, const char *actor, tenant_t *out)
{
    return run_one(db, pool, &q_rename, (const char *[]){id, name, actor, allow_msp_access}, out);
}

int tenants_set_status(cc_db_t *db, cc_pool_t *pool, const char *id, const char *status,
                       const char *actor, tenant_t *out)
{
    return run_one(db, pool, &q_status, (const char *[]){id, status, actor}, out);
}

int tenants_soft_delete(cc_db_t *db, cc_pool_t *pool, const char *id, int retention_days,
                        const char *actor, const char *actor_name, tenant_t *out)
{
    char days[16];
    snprintf(days, sizeof(days), "%d", retention_days);
    return run_one(db, pool, &q_delete, (const char *[]){id, days, actor, actor_name}, out);
}

int tenants_restore(cc_db_t *db, cc_pool_t *pool, const char *id, const char *actor, tenant_t *out)
{
    return run_one(db, pool, &q_restore, (const char *[]){id, actor}, out);
}

int tenants_live_children(cc_db_t *db, cc_pool_t *pool, const char *id, long long *n)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_children, (const char *[]){id}, &res);
    if (rc == 0)
        *n = atoll(PQgetvalue(res, 0, 0));
    return rc;
}

int tenants_list(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const tenant_filter_t *f,
                 tenant_t **items, int *n, long long *total, bool *parent_visible)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", f->limit + 1);
    int searching = f->pattern == NULL ? SEARCH_NONE : f->search;
    int after = f->after_key != NULL;
    const char *lp[] = {f->parent_id, f->status, f->after_key, f->after_id, f->pattern, limit};
    const char *cp[] = {f->parent_id, f->status, f->pattern};
    PGresult *rows = NULL, *count = NULL;
    /* who sees every child of the parent reads its counters; others count what they see */
    bool counted = !searching && (scope->platform || scope->msp_wide);
    cc_db_step_t steps[] = {
        {&list_stmts[f->sort][searching][after], lp, &rows},
        counted ? (cc_db_step_t){&q_counted, cp, &count}
                : (cc_db_step_t){&count_stmts[searching], cp, &count},
    };
    int rc = cc_db_read_many(db, pool, scope, steps, total ? 2 : 1);
    if (rc != 0)
        return rc;
    *n = PQntuples(rows);
    *items = cc_pool_alloc(pool, sizeof(tenant_t) * (size_t)(*n ? *n : 1));
    for (int r = 0; r < *n; r++) {
        row_of(pool, rows, r, &(*items)[r]);
        if (f->sort == SORT_CREATED || f->sort == SORT_CREATED_DESC)
            (*items)[r].sort_key = (*items)[r].created_at; /* the key, as RFC 3339 */
    }
    if (total) {
        bool row = PQntuples(count) == 1;
        *total = row ? atoll(PQgetvalue(count, 0, 0)) : 0;
        *parent_visible = row && atoll(PQgetvalue(count, 0, 1)) > 0;
    }
    return 0;
}

int tenants_summary(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *parent_id,
                    json_t **out, bool *parent_visible)
{
    PGresult *res;
    bool counted = scope->platform || scope->msp_wide;
    int rc = cc_db_read(db, pool, scope, counted ? &q_summary_counted : &q_summary,
                        (const char *[]){parent_id}, &res);
    if (rc != 0)
        return rc;
    if (PQntuples(res) == 0) { /* counted, and the parent is not visible */
        *parent_visible = false;
        *out = json_pack("{s:i, s:i, s:i, s:i}", "customers_total", 0, "active_total", 0,
                         "suspended_total", 0, "deleted_total", 0);
        return 0;
    }
    *parent_visible = atoll(PQgetvalue(res, 0, 4)) > 0;
    *out = json_pack("{s:I, s:I, s:I, s:I}", "customers_total",
                     (json_int_t)atoll(PQgetvalue(res, 0, 0)), "active_total",
                     (json_int_t)atoll(PQgetvalue(res, 0, 1)), "suspended_total",
                     (json_int_t)atoll(PQgetvalue(res, 0, 2)), "deleted_total",
                     (json_int_t)atoll(PQgetvalue(res, 0, 3)));
    return 0;
}

json_t *tenants_json(const tenant_t *t)
{
    /* sources and usage: the usage service's published view (usage.tenant_usage_summary) */
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s?, s:s, s:I, s:I, s:I, s:i}", "id", t->id, "name",
        t->name, "kind", t->kind, "parent_id", t->parent_id, "status", t->status, "created_at",
        t->created_at, "created_by", t->created_by_name, "created_by_id", t->created_by,
        "updated_at", t->updated_at, "sources_total", (json_int_t)t->sources_total,
        "cloud_usage_bytes", (json_int_t)t->cloud_usage_bytes, "datastore_usage_bytes",
        (json_int_t)t->datastore_usage_bytes, "version", t->version);
    if (strcmp(t->kind, "customer") == 0)
        json_object_set_new(o, "allow_msp_access", json_boolean(t->allow_msp_access));
    if (t->deleted_at != NULL) {
        json_object_set_new(o, "deleted_at", json_string(t->deleted_at));
        json_object_set_new(o, "purge_at", json_string(t->purge_at));
    }
    return o;
}

void tenants_json_write(cc_buf_t *b, const tenant_t *t)
{
    /* the same members as tenants_json, written without building a tree (lists, exports) */
    cc_buf_putc(b, '{');
    cc_jw_kv_str(b, "id", t->id, true);
    cc_jw_kv_str(b, "name", t->name, false);
    cc_jw_kv_str(b, "kind", t->kind, false);
    cc_jw_kv_str(b, "parent_id", t->parent_id, false);
    cc_jw_kv_str(b, "status", t->status, false);
    cc_jw_kv_str(b, "created_at", t->created_at, false);
    cc_jw_kv_str(b, "created_by", t->created_by_name, false);
    cc_jw_kv_str(b, "created_by_id", t->created_by, false);
    cc_jw_kv_str(b, "updated_at", t->updated_at, false);
    cc_jw_kv_int(b, "sources_total", t->sources_total, false);
    cc_jw_kv_int(b, "cloud_usage_bytes", t->cloud_usage_bytes, false);
    cc_jw_kv_int(b, "datastore_usage_bytes", t->datastore_usage_bytes, false);
    cc_jw_kv_int(b, "version", t->version, false);
    if (strcmp(t->kind, "customer") == 0)
        cc_jw_kv_bool(b, "allow_msp_access", t->allow_msp_access, false);
    if (t->deleted_at != NULL) {
        cc_jw_kv_str(b, "deleted_at", t->deleted_at, false);
        cc_jw_kv_str(b, "purge_at", t->purge_at, false);
    }
    cc_buf_putc(b, '}');
}
