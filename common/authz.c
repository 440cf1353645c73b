/*
 * Authorization from grants (console/authz.h).
 *
 * One read per caller: the home tenant's status (the worst of it and its ancestors) and
 * every grant with its tenant's path and the role's permissions, through the views the
 * tenants and roles schemas publish. The rows are kept in a small per-process cache
 * (direct-mapped, keyed by principal and home tenant, lifetime CONSOLE_AUTHZ_CACHE_MS)
 * as one flat block of NUL-separated strings, copied into the request pool on a hit.
 */
#include "console/authz.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "console/errors.h"
#include "console/log.h"
#include "console/str.h"

static const cc_stmt_t q_authz =
    CC_STMT("cc_authz_load",
            "SELECT 'home', NULL, NULL, NULL, NULL,"
            " CASE WHEN EXISTS (SELECT 1 FROM users.sign_in_profiles u"
            "   WHERE u.id = $3::uuid AND u.status = 'deactivated') THEN 'deactivated'"
            " WHEN $4 = 'user' AND NOT EXISTS (SELECT 1 FROM users.sign_in_profiles u"
            "   WHERE u.id = $3::uuid) THEN 'gone' ELSE"
            " (SELECT CASE WHEN count(*) = 0 THEN NULL"
            "   WHEN bool_or(a.status = 'deleted') THEN 'deleted'"
            "   WHEN bool_or(a.status = 'suspended') THEN 'suspended' ELSE 'active' END"
            "  FROM tenants.tenant_tree h JOIN tenants.tenant_tree a ON a.path @> h.path"
            "  WHERE h.id = $2::uuid) END, NULL"
            " UNION ALL"
            " SELECT 'grant', g.role, g.tenant_id::text, t.path::text, t.kind, t.status,"
            "  array_to_string(g.permissions, ' ')"
            " FROM roles.principal_grants g JOIN tenants.tenant_tree t ON t.id = g.tenant_id"
            " WHERE g.principal_id = $1::uuid",
            4);

/* An impersonation token (act.sub set, services/identity/impersonate.c) holds exactly
 * one built-in customer role, named by its signed imp_role claim, on its tid. */
static const cc_stmt_t q_authz_imp =
    CC_STMT("cc_authz_load_imp",
            "SELECT 'home', NULL, NULL, NULL, NULL,"
            " CASE WHEN EXISTS (SELECT 1 FROM users.sign_in_profiles u"
            "   WHERE u.id = $3::uuid AND u.status = 'deactivated') THEN 'deactivated'"
            " WHEN $4 = 'user' AND NOT EXISTS (SELECT 1 FROM users.sign_in_profiles u"
            "   WHERE u.id = $3::uuid) THEN 'gone' ELSE"
            " (SELECT CASE WHEN count(*) = 0 THEN NULL"
            "   WHEN bool_or(a.status = 'deleted') THEN 'deleted'"
            "   WHEN bool_or(a.status = 'suspended') THEN 'suspended' ELSE 'active' END"
            "  FROM tenants.tenant_tree h JOIN tenants.tenant_tree a ON a.path @> h.path"
            "  WHERE h.id = $2::uuid) END, NULL"
            " UNION ALL"
            " SELECT 'grant', r.id, t.id::text, t.path::text, t.kind, t.status,"
            "  array_to_string(r.permissions, ' ')"
            " FROM roles.roles r JOIN tenants.tenant_tree t ON t.id = $2::uuid"
            " WHERE r.id = $1 AND r.builtin AND r.id IN ('tenant_admin', 'tenant_monitor')"
            " AND t.kind = 'customer'",
            4);

#define NFIELDS 6 /* role, tenant_id, path, kind, status, permissions */

/* ---- the cache ---- */

#define CACHE_SLOTS 1024

typedef struct entry {
    char key[80]; /* principal id + '/' + tenant id */
    uint64_t expires_ns;
    char *home_status; /* in blob */
    size_t ngrants;
    char *blob; /* home status, then NFIELDS strings per grant, NUL-separated */
    size_t bloblen;
} entry_t;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static entry_t cache[CACHE_SLOTS];
static _Atomic int cache_ms = 1000;

void cc_authz_set_cache_ms(int ms)
{
    atomic_store(&cache_ms, ms < 0 ? 0 : ms);
}

void cc_authz_cache_clear(void)
{
    pthread_mutex_lock(&cache_lock);
    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        free(cache[i].blob);
        memset(&cache[i], 0, sizeof(cache[i]));
    }
    pthread_mutex_unlock(&cache_lock);
}

static size_t slot_of(const char *key)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % CACHE_SLOTS);
}

/* Rebuilds a's status and grants from a blob copied into pool. */
static void unpack(cc_pool_t *pool, const char *blob, size_t len, size_t ngrants, cc_authz_t *a)
{
    char *copy = cc_pool_alloc(pool, len);
    memcpy(copy, blob, len);
    const char *p = copy;
    a->home_status = *p ? p : NULL;
    p += strlen(p) + 1;
    a->grants = cc_pool_alloc(pool, sizeof(cc_grant_t) * (ngrants ? ngrants : 1));
    a->ngrants = ngrants;
    for (size_t i = 0; i < ngrants; i++) {
        const char *f[NFIELDS];
        for (int k = 0; k < NFIELDS; k++) {
            f[k] = p;
            p += strlen(p) + 1;
        }
        a->grants[i] = (cc_grant_t){f[0], f[1], f[2], f[3], f[4], f[5]};
    }
}

static bool cache_get(const char *key, cc_pool_t *pool, cc_authz_t *a)
{
    int ms = atomic_load(&cache_ms);
    if (ms == 0)
        return false;
    bool hit = false;
    entry_t *e = &cache[slot_of(key)];
    pthread_mutex_lock(&cache_lock);
    if (e->blob != NULL && strcmp(e->key, key) == 0 && cc_now_ns() < e->expires_ns) {
        unpack(pool, e->blob, e->bloblen, e->ngrants, a);
        hit = true;
    }
    pthread_mutex_unlock(&cache_lock);
    return hit;
}

static void cache_put(const char *key, const char *blob, size_t len, size_t ngrants)
{
    int ms = atomic_load(&cache_ms);
    if (ms == 0 || strlen(key) >= sizeof(cache[0].key))
        return;
    char *copy = malloc(len);
    if (copy == NULL)
        return;
    memcpy(copy, blob, len);
    entry_t *e = &cache[slot_of(key)];
    pthread_mutex_lock(&cache_lock);
    free(e->blob);
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->blob = copy;
    e->bloblen = len;
    e->ngrants = ngrants;
    e->expires_ns = cc_now_ns() + (uint64_t)ms * 1000000ull;
    pthread_mutex_unlock(&cache_lock);
}

/* ---- loading ---- */

static bool has_word(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; p && *p;) {
        while (*p == ' ')
            p++;
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0 && ((len == n && memcmp(p, word, n) == 0) || (len == 1 && *p == '*')))
            return true;
        p += len;
    }
    return false;
}

/* True when path equals base or lies below it ("a.b" covers "a.b" and "a.b.c"). */
static bool path_covers(const char *base, const char *path)
{
    size_t n = strlen(base);
    return strncmp(base, path, n) == 0 && (path[n] == '\0' || path[n] == '.');
}

static void build_scope(cc_pool_t *pool, const cc_principal_t *p, cc_authz_t *a)
{
    cc_buf_t paths;
    cc_buf_init(&paths);
    a->platform = false;
    bool wide = false;
    for (size_t i = 0; i < a->ngrants; i++) {
        const cc_grant_t *g = &a->grants[i];
        if (strcmp(g->kind, "platform") == 0 && has_word(g->permissions, "*"))
            a->platform = true;
        if (p->msp_id != NULL && strcmp(g->tenant_id, p->msp_id) == 0)
            wide = true;
        if (paths.len)
            cc_buf_append(&paths, " ", 1);
        cc_buf_append(&paths, g->path, strlen(g->path));
    }
    a->scope = (cc_scope_t){
        .tenant_id = p->tenant_id,
        .msp_id = p->msp_id,
        .principal_id = p->sub,
        .platform = a->platform,
        .msp_wide = wide,
        .paths = cc_pool_strndup(pool, paths.data ? paths.data : "", paths.len),
    };
    cc_buf_free(&paths);
}

int cc_authz_load(cc_db_t *db, cc_pool_t *pool, const cc_principal_t *p, cc_authz_t **out)
{
    *out = NULL;
    if (p == NULL || !cc_is_uuid(p->sub) || p->tenant_id == NULL || !cc_is_uuid(p->tenant_id) ||
        (p->act_sub != NULL && !cc_is_uuid(p->act_sub)))
        return CC_ENOENT;
    cc_authz_t *a = cc_pool_alloc(pool, sizeof(*a));
    memset(a, 0, sizeof(*a));
    a->principal_id = p->sub;
    a->tenant_id = p->tenant_id;
    a->msp_id = p->msp_id;

    char key[80];
    snprintf(key, sizeof(key), "%s/%s", p->sub, p->tenant_id);
    if (!cache_get(key, pool, a)) {
        const cc_scope_t system = {.system = true};
        /* $3: the person whose deactivation ends everything, the real actor when acting */
        /* $4: whether $3 is a person who must exist (a deleted user's token ends at once) */
        const char *params[] = {p->sub, p->tenant_id, p->act_sub ? p->act_sub : p->sub,
                                p->act_sub || p->kind == CC_PRINCIPAL_USER ? "user" : "client"};
        const cc_stmt_t *st = &q_authz;
        if (p->act_sub != NULL) { /* acting for someone: only the role the token names */
            json_t *role = p->claims ? json_object_get(p->claims, "imp_role") : NULL;
            params[0] = json_is_string(role) ? json_string_value(role) : "";
            st = &q_authz_imp;
        }
        PGresult *res;
        int rc = cc_db_read(db, pool, &system, st, params, &res);
        if (rc != 0)
            return rc;
        /* flatten into a blob: the cache's form, and unpack() gives the pool form */
        cc_buf_t blob;
        cc_buf_init(&blob);
        const char *home = NULL;
        size_t ngrants = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            if (strcmp(PQgetvalue(res, r, 0), "home") == 0)
                home = cc_db_get(res, r, 5);
        }
        cc_buf_append(&blob, home ? home : "", home ? strlen(home) + 1 : 1);
        for (int r = 0; r < PQntuples(res); r++) {
            if (strcmp(PQgetvalue(res, r, 0), "grant") != 0 ||
                strcmp(PQgetvalue(res, r, 5), "deleted") == 0)
                continue; /* a grant on a tenant in the recycle bin confers nothing */
            for (int k = 1; k <= NFIELDS; k++) {
                const char *v = PQgetvalue(res, r, k);
                cc_buf_append(&blob, v, strlen(v) + 1);
            }
            ngrants++;
        }
        unpack(pool, blob.data, blob.len, ngrants, a);
        cache_put(key, blob.data, blob.len, ngrants);
        cc_buf_free(&blob);
    }
    if (a->home_status == NULL)
        return CC_ENOENT;
    build_scope(pool, p, a);
    *out = a;
    return 0;
}

bool cc_authz_can(const cc_authz_t *a, const char *perm, const char *path)
{
    if (a == NULL || path == NULL)
        return false;
    for (size_t i = 0; i < a->ngrants; i++) {
        const cc_grant_t *g = &a->grants[i];
        if (has_word(g->permissions, perm) && path_covers(g->path, path))
            return true;
    }
    return false;
}

bool cc_authz_can_above(const cc_authz_t *a, const char *perm, const char *path)
{
    if (a == NULL || path == NULL)
        return false;
    for (size_t i = 0; i < a->ngrants; i++) {
        const cc_grant_t *g = &a->grants[i];
        if (has_word(g->permissions, perm) && strcmp(g->path, path) != 0 &&
            path_covers(g->path, path))
            return true;
    }
    return false;
}

bool cc_authz_sees(const cc_authz_t *a, const char *path)
{
    if (a == NULL || path == NULL)
        return false;
    if (a->platform)
        return true;
    for (size_t i = 0; i < a->ngrants; i++)
        if (path_covers(a->grants[i].path, path) || path_covers(path, a->grants[i].path))
            return true;
    return false;
}

bool cc_authz_may_grant(const cc_authz_t *a, const char *account_kind, const char *role_kind,
                        const char *path)
{
    return cc_authz_can(a, "access:manage", path) ||
           (account_kind != NULL && role_kind != NULL && strcmp(account_kind, "customer") == 0 &&
            strcmp(role_kind, "customer") == 0 && cc_authz_can(a, "users:manage", path));
}

bool cc_authz_enforce(cc_req_t *req)
{
    if (req->principal == NULL || req->db == NULL)
        return true;
    cc_authz_t *a = NULL;
    int rc = cc_authz_load(req->db, req->pool, req->principal, &a);
    if (rc == CC_ENOENT) {
        cc_log_info("authorization refused: the caller's home tenant does not exist");
        cc_res_problem(req, CC_ERR_UNAUTHORIZED, "The caller's account no longer exists.");
        return false;
    }
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return false;
    }
    if (strcmp(a->home_status, "deactivated") == 0) {
        cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This user account is deactivated.");
        return false;
    }
    if (strcmp(a->home_status, "gone") == 0) {
        cc_res_problem(req, CC_ERR_UNAUTHORIZED, "This user no longer exists.");
        return false;
    }
    if (strcmp(a->home_status, "active") != 0) {
        cc_res_problem(req, CC_ERR_TENANT_SUSPENDED,
                       strcmp(a->home_status, "deleted") == 0
                           ? "The caller's account is deleted (in the recycle bin)."
                           : "The caller's account is suspended.");
        return false;
    }
    req->authz = a;
    return true;
}

const cc_scope_t *cc_req_scope(cc_req_t *req)
{
    static const cc_scope_t none = {0};
    return req->authz ? &req->authz->scope : &none;
}

/* ---- invalidation: LISTEN console_authz ---- */

#define AUTHZ_CHANNEL "console_authz"

static struct {
    pthread_t thread;
    bool running;
    _Atomic bool stop;
    int wake[2];
    char *conninfo;
} listener = {.wake = {-1, -1}};

static int on_connect_listen(PGconn *conn, void *arg)
{
    (void)arg;
    PGresult *r = PQexec(conn, "LISTEN " AUTHZ_CHANNEL);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(r);
    /* whatever changed while we were not listening is unknown: start afresh */
    cc_authz_cache_clear();
    return rc;
}

static void *listener_main(void *arg)
{
    (void)arg;
    cc_db_t *db = NULL;
    cc_db_open(listener.conninfo, "authz-listener", NULL, &db);
    if (db == NULL) {
        cc_log_error("authorization cache: cannot open the listening connection");
        return NULL;
    }
    cc_db_set_on_connect(db, on_connect_listen, NULL);
    while (!atomic_load(&listener.stop)) {
        PGconn *conn = cc_db_conn(db);
        if (PQstatus(conn) != CONNECTION_OK) {
            cc_authz_cache_clear();
            if (!cc_db_ping(db)) { /* reconnects (and LISTENs again) when it can */
                struct pollfd w = {.fd = listener.wake[0], .events = POLLIN};
                poll(&w, 1, 1000);
            }
            continue;
        }
        struct pollfd fds[2] = {{.fd = listener.wake[0], .events = POLLIN},
                                {.fd = PQsocket(conn), .events = POLLIN}};
        if (poll(fds, 2, 10000) <= 0 || (fds[0].revents & POLLIN))
            continue;
        if (!PQconsumeInput(conn)) {
            cc_authz_cache_clear();
            continue;
        }
        bool changed = false;
        PGnotify *n;
        while ((n = PQnotifies(conn)) != NULL) {
            changed = true;
            PQfreemem(n);
        }
        if (changed)
            cc_authz_cache_clear();
    }
    cc_db_close(db);
    return NULL;
}

int cc_authz_listen_start(const char *conninfo)
{
    if (listener.running)
        return 0;
    if (pipe(listener.wake) != 0)
        return CC_EIO;
    listener.conninfo = cc_strdup(conninfo);
    atomic_store(&listener.stop, false);
    if (pthread_create(&listener.thread, NULL, listener_main, NULL) != 0) {
        close(listener.wake[0]);
        close(listener.wake[1]);
        free(listener.conninfo);
        return CC_EIO;
    }
    listener.running = true;
    return 0;
}

void cc_authz_listen_stop(void)
{
    if (!listener.running)
        return;
    atomic_store(&listener.stop, true);
    ssize_t w = write(listener.wake[1], "x", 1);
    (void)w;
    pthread_join(listener.thread, NULL);
    close(listener.wake[0]);
    close(listener.wake[1]);
    free(listener.conninfo);
    listener.conninfo = NULL;
    listener.running = false;
    cc_authz_cache_clear();
}
