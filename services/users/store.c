/*
 * The users store: every SQL statement of the service. Row-level security confines the
 * users table to the caller's root account (schemas/users/0001_users.sql); joining the
 * tenants' published view (tenants.tenant_tree, whose policy follows the caller's granted
 * subtrees) confines every read further to the accounts the caller sees. The handlers
 * add the permission checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/log.h"
#include "users.h"

#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
/* a user's roles: [{role, tenant_ids}] from the roles schema's published view */
#define ROLES                                                                                      \
    "(SELECT coalesce(json_agg(json_build_object('role', x.role, 'tenant_ids', x.tids)"            \
    " ORDER BY x.role), '[]')::text FROM (SELECT g.role, json_agg(g.tenant_id ORDER BY"            \
    " g.tenant_id) AS tids FROM roles.principal_grants g WHERE g.principal_id = u.id"              \
    " GROUP BY g.role) x)"
#define COLS                                                                                       \
    "u.id, u.tenant_id, u.msp_id, u.username, u.primary_email, u.first_name, u.last_name,"         \
    " u.language, u.time_zone, u.status, u.profile::text, " TS(                                    \
        "u.created_at") ","                                                                        \
                        " u.created_by_name, " TS(                                                 \
                            "u.updated_at") ", u.version, t.path::text, t.kind, " ROLES
#define NCOLS 18
#define FROM " FROM users u JOIN tenants.tenant_tree t ON t.id = u.tenant_id"
#define SEARCH                                                                                     \
    "($2::text IS NULL OR strpos(lower(u.first_name || ' ' || u.last_name || ' ' ||"               \
    " u.last_name || ' ' || u.first_name || ' ' || u.username || ' ' || u.primary_email),"         \
    " lower($2::text)) > 0)"
#define SUPER "ARRAY['access:manage', '*']"

static const cc_stmt_t q_get =
    CC_STMT("users_get", "SELECT " COLS ", NULL" FROM " WHERE u.id = $1::uuid", 1);
static const cc_stmt_t q_lock =
    CC_STMT("users_lock", "SELECT " COLS ", NULL" FROM " WHERE u.id = $1::uuid FOR UPDATE OF u", 1);
static const cc_stmt_t q_tenant =
    CC_STMT("users_tenant",
            "SELECT id, path::text, kind, status, coalesce(msp_id, id)"
            " FROM tenants.tenant_tree WHERE id = $1::uuid",
            1);
static const cc_stmt_t q_insert = CC_STMT(
    "users_insert",
    "INSERT INTO users (id, tenant_id, msp_id, username, primary_email, first_name, last_name,"
    " language, time_zone, status, profile, created_by, created_by_name)"
    " VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, $8, $9, 'staged', $10::jsonb, $11,"
    " $12)",
    12);
static const cc_stmt_t q_update =
    CC_STMT("users_update",
            "UPDATE users SET username = $2, primary_email = $3, first_name = $4, last_name = $5,"
            " language = $6, time_zone = $7, profile = $8::jsonb, updated_at = now(),"
            " version = version + 1 WHERE id = $1::uuid",
            8);
static const cc_stmt_t q_delete =
    CC_STMT("users_delete", "DELETE FROM users WHERE id = $1::uuid", 1);
static const cc_stmt_t q_status =
    CC_STMT("users_status",
            "UPDATE users SET"
            " status = CASE WHEN $2 = 'deactivated' THEN 'deactivated'"
            "  ELSE coalesce(deactivated_from, 'active') END,"
            " deactivated_from = CASE WHEN $2 = 'deactivated' THEN status ELSE NULL END,"
            " deactivated_at = CASE WHEN $2 = 'deactivated' THEN now() ELSE NULL END,"
            " updated_at = now(), version = version + 1 WHERE id = $1::uuid",
            2);
static const cc_stmt_t q_super_paths =
    CC_STMT("users_super_paths",
            "SELECT t.path::text FROM roles.principal_grants g JOIN tenants.tenant_tree t"
            " ON t.id = g.tenant_id WHERE g.principal_id = $1::uuid AND g.permissions && " SUPER,
            1);
static const cc_stmt_t q_super_lock =
    CC_STMT("users_super_lock",
            "SELECT pg_advisory_xact_lock(hashtextextended('console.super_admins.' || $1, 0))", 1);
static const cc_stmt_t q_last_super =
    CC_STMT("users_last_super",
            "SELECT count(*) FROM roles.principal_grants g WHERE g.principal_id = $1::uuid"
            " AND g.permissions && " SUPER " AND NOT EXISTS (SELECT 1 FROM roles.principal_grants o"
            " JOIN users ou ON ou.id = o.principal_id WHERE o.tenant_id = g.tenant_id"
            " AND o.principal_id <> $1::uuid AND o.permissions && " SUPER
            " AND ou.status <> 'deactivated')",
            1);

static const struct sort_def {
    const char *name, *key;
} sorts[USORT_COUNT] = {
    [USORT_NAME] = {"name", "lower(u.last_name || ' ' || u.first_name)"},
    [USORT_NAME_DESC] = {"-name", "lower(u.last_name || ' ' || u.first_name)"},
    [USORT_EMAIL] = {"email", "lower(u.primary_email)"},
    [USORT_EMAIL_DESC] = {"-email", "lower(u.primary_email)"},
    [USORT_USERNAME] = {"username", "lower(u.username)"},
    [USORT_USERNAME_DESC] = {"-username", "lower(u.username)"},
    [USORT_CREATED] = {"created_at", TS("u.created_at")},
    [USORT_CREATED_DESC] = {"-created_at", TS("u.created_at")},
};

static cc_stmt_t list_stmts[USORT_COUNT][2];
static const cc_stmt_t q_count =
    CC_STMT("users_count", "SELECT count(*)" FROM " WHERE u.tenant_id = $1::uuid AND " SEARCH, 2);

void users_store_init(void)
{
    for (int s = 0; s < USORT_COUNT; s++) {
        bool desc = sorts[s].name[0] == '-';
        for (int a = 0; a < 2; a++) {
            cc_stmt_t *st = &list_stmts[s][a];
            char after[256];
            if (a)
                snprintf(after, sizeof(after), "(%s, u.id) %s ($3::text, $4::uuid)", sorts[s].key,
                         desc ? "<" : ">");
            else
                snprintf(after, sizeof(after), "$3::text IS NULL AND $4::text IS NULL");
            st->name = cc_aprintf("users_list_%d_%d", s, a);
            st->sql = cc_aprintf(
                "SELECT " COLS ", %s" FROM " WHERE u.tenant_id = $1::uuid AND " SEARCH
                " AND %s ORDER BY %s %s, u.id %s LIMIT $5",
                sorts[s].key, after, sorts[s].key, desc ? "DESC" : "", desc ? "DESC" : "");
            st->nparams = 5;
        }
    }
}

void users_store_dispose(void)
{
    for (int s = 0; s < USORT_COUNT; s++)
        for (int a = 0; a < 2; a++) {
            free((char *)list_stmts[s][a].name);
            free((char *)list_stmts[s][a].sql);
            list_stmts[s][a].name = list_stmts[s][a].sql = NULL;
        }
}

int users_sort_parse(const char *s)
{
    for (int i = 0; i < USORT_COUNT; i++)
        if (strcmp(sorts[i].name, s) == 0)
            return i;
    return -1;
}

const char *users_sort_name(user_sort_t s)
{
    return sorts[s].name;
}

static const char *pstr(cc_pool_t *pool, json_t *profile, const char *key)
{
    const char *s = json_string_value(json_object_get(profile, key));
    return s ? cc_pool_strdup(pool, s) : NULL;
}

static void row_of(cc_pool_t *pool, const PGresult *res, int r, user_t *u)
{
    memset(u, 0, sizeof(*u));
    u->id = cc_db_get(res, r, 0);
    u->tenant_id = cc_db_get(res, r, 1);
    u->msp_id = cc_db_get(res, r, 2);
    u->p.username = cc_db_get(res, r, 3);
    u->p.primary_email = cc_db_get(res, r, 4);
    u->p.first_name = cc_db_get(res, r, 5);
    u->p.last_name = cc_db_get(res, r, 6);
    u->p.language = cc_db_get(res, r, 7);
    u->p.time_zone = cc_db_get(res, r, 8);
    u->status = cc_db_get(res, r, 9);
    json_t *profile = json_loads(PQgetvalue(res, r, 10), 0, NULL);
    u->p.title = pstr(pool, profile, "title");
    u->p.preferred_currency = pstr(pool, profile, "preferred_currency");
    u->p.secondary_email = pstr(pool, profile, "secondary_email");
    u->p.phone = pstr(pool, profile, "phone");
    u->p.mobile = pstr(pool, profile, "mobile");
    u->p.street = pstr(pool, profile, "street");
    u->p.city = pstr(pool, profile, "city");
    u->p.state = pstr(pool, profile, "state");
    u->p.country = pstr(pool, profile, "country");
    u->p.postal_code = pstr(pool, profile, "postal_code");
    json_decref(profile);
    u->created_at = cc_db_get(res, r, 11);
    u->created_by = cc_db_get(res, r, 12);
    u->updated_at = cc_db_get(res, r, 13);
    u->version = atoi(PQgetvalue(res, r, 14));
    u->tenant_path = cc_db_get(res, r, 15);
    u->tenant_kind = cc_db_get(res, r, 16);
    u->roles_json = cc_db_get(res, r, 17);
    u->sort_key = cc_db_get(res, r, NCOLS);
}

static int one(cc_pool_t *pool, PGresult *res, user_t *out)
{
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    row_of(pool, res, 0, out);
    return 0;
}

int users_get(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id, user_t *out)
{
    PGresult *res;
    int rc = cc_db_read(db, pool, scope, &q_get, (const char *[]){id}, &res);
    return rc ? rc : one(pool, res, out);
}

int users_lock(cc_db_t *db, cc_pool_t *pool, const char *id, user_t *out)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_lock, (const char *[]){id}, &res);
    return rc ? rc : one(pool, res, out);
}

static int tenant_of(PGresult *res, user_tenant_t *out)
{
    if (PQntuples(res) != 1)
        return CC_ENOENT;
    out->id = cc_db_get(res, 0, 0);
    out->path = cc_db_get(res, 0, 1);
    out->kind = cc_db_get(res, 0, 2);
    out->status = cc_db_get(res, 0, 3);
    out->msp_id = cc_db_get(res, 0, 4);
    return 0;
}

int users_tenant_get(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const char *id,
                     user_tenant_t *out)
{
    PGresult *res;
    int rc = cc_db_read(db, pool, scope, &q_tenant, (const char *[]){id}, &res);
    return rc ? rc : tenant_of(res, out);
}

int users_tenant_tx(cc_db_t *db, cc_pool_t *pool, const char *id, user_tenant_t *out)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_tenant, (const char *[]){id}, &res);
    return rc ? rc : tenant_of(res, out);
}

int users_list(cc_db_t *db, cc_pool_t *pool, const cc_scope_t *scope, const user_filter_t *f,
               user_t **items, int *n, long long *total)
{
    char limit[16];
    snprintf(limit, sizeof(limit), "%d", f->limit + 1);
    const char *lp[] = {f->tenant_id, f->q, f->after_key, f->after_id, limit};
    const char *cp[] = {f->tenant_id, f->q};
    PGresult *rows = NULL, *count = NULL;
    cc_db_step_t steps[] = {
        {&list_stmts[f->sort][f->after_key != NULL], lp, &rows},
        {&q_count, cp, &count},
    };
    int rc = cc_db_read_many(db, pool, scope, steps, 2);
    if (rc != 0)
        return rc;
    *n = PQntuples(rows);
    *items = cc_pool_alloc(pool, sizeof(user_t) * (size_t)(*n ? *n : 1));
    for (int r = 0; r < *n; r++)
        row_of(pool, rows, r, &(*items)[r]);
    *total = atoll(PQgetvalue(count, 0, 0));
    return 0;
}

/* The profile fields kept in the jsonb column (the others have columns). */
static char *profile_text(const user_profile_t *p)
{
    json_t *o = json_object();
    const struct {
        const char *k, *v;
    } f[] = {{"title", p->title},
             {"preferred_currency", p->preferred_currency},
             {"secondary_email", p->secondary_email},
             {"phone", p->phone},
             {"mobile", p->mobile},
             {"street", p->street},
             {"city", p->city},
             {"state", p->state},
             {"country", p->country},
             {"postal_code", p->postal_code}};
    for (size_t i = 0; i < CC_ARRAY_SIZE(f); i++)
        if (f[i].v != NULL && *f[i].v != '\0')
            json_object_set_new(o, f[i].k, json_string(f[i].v));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static int change(cc_db_t *db, cc_pool_t *pool, const cc_stmt_t *st, const char *const *params)
{
    int rc = cc_db_query(db, pool, st, params, NULL);
    if (rc == CC_EDB && strcmp(cc_db_sqlstate(db), "23505") == 0)
        return CC_ECONFLICT; /* users_username_key */
    return rc;
}

int users_insert(cc_db_t *db, cc_pool_t *pool, const char *id, const user_tenant_t *t,
                 const user_profile_t *p, const char *actor, const char *actor_name, user_t *out)
{
    char *profile = profile_text(p);
    const char *params[] = {id,
                            t->id,
                            t->msp_id,
                            p->username,
                            p->primary_email,
                            p->first_name,
                            p->last_name,
                            p->language,
                            p->time_zone,
                            profile,
                            actor,
                            actor_name};
    int rc = change(db, pool, &q_insert, params);
    free(profile);
    return rc ? rc : users_lock(db, pool, id, out);
}

int users_update(cc_db_t *db, cc_pool_t *pool, const char *id, const user_profile_t *p, user_t *out)
{
    char *profile = profile_text(p);
    const char *params[] = {id,           p->username, p->primary_email, p->first_name,
                            p->last_name, p->language, p->time_zone,     profile};
    int rc = change(db, pool, &q_update, params);
    free(profile);
    return rc ? rc : users_lock(db, pool, id, out);
}

int users_set_status(cc_db_t *db, cc_pool_t *pool, const char *id, const char *status, user_t *out)
{
    int rc = change(db, pool, &q_status, (const char *[]){id, status});
    return rc ? rc : users_lock(db, pool, id, out);
}

int users_delete(cc_db_t *db, cc_pool_t *pool, const char *id)
{
    return cc_db_query(db, pool, &q_delete, (const char *[]){id}, NULL);
}

int users_super_paths(cc_db_t *db, cc_pool_t *pool, const char *id, const char ***paths, int *n)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_super_paths, (const char *[]){id}, &res);
    if (rc != 0)
        return rc;
    *n = PQntuples(res);
    *paths = cc_pool_alloc(pool, sizeof(char *) * (size_t)(*n ? *n : 1));
    for (int r = 0; r < *n; r++)
        (*paths)[r] = PQgetvalue(res, r, 0);
    return 0;
}

int users_lock_super_admins(cc_db_t *db, cc_pool_t *pool, const char *msp_id)
{
    return cc_db_query(db, pool, &q_super_lock, (const char *[]){msp_id}, NULL);
}

int users_is_last_super_admin(cc_db_t *db, cc_pool_t *pool, const char *id, bool *last)
{
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_last_super, (const char *[]){id}, &res);
    if (rc == 0)
        *last = atoll(PQgetvalue(res, 0, 0)) > 0;
    return rc;
}

json_t *users_json(const user_t *u)
{
    const user_profile_t *p = &u->p;
    json_t *roles = u->roles_json ? json_loads(u->roles_json, 0, NULL) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s, s:s?, s:s, s:s, s:s, s:s?}", "id",
                          u->id, "tenant_id", u->tenant_id, "msp_id", u->msp_id, "status",
                          u->status, "title", p->title, "first_name", p->first_name, "last_name",
                          p->last_name, "preferred_currency", p->preferred_currency, "language",
                          p->language, "primary_email", p->primary_email, "username", p->username,
                          "secondary_email", p->secondary_email);
    json_t *o2 =
        json_pack("{s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:s, s:i}", "phone",
                  p->phone, "mobile", p->mobile, "street", p->street, "city", p->city, "state",
                  p->state, "country", p->country, "postal_code", p->postal_code, "time_zone",
                  p->time_zone, "created_at", u->created_at, "created_by", u->created_by,
                  "updated_at", u->updated_at, "version", u->version);
    json_object_update(o, o2);
    json_decref(o2);
    json_object_set_new(o, "roles", roles ? roles : json_array());
    return o;
}
