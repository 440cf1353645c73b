#include "console/audit.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "console/crypto.h"
#include "console/log.h"

static const cc_stmt_t q_audit = CC_STMT(
    "cc_audit_insert",
    "INSERT INTO audit_events (id, actor_id, actor_kind, acting_as, tenant_id, msp_id, action,"
    " target_type, target_id, request_id, details, client_addr, user_agent)"
    " VALUES ($1, $2, $3, $4, $5::uuid, $6::uuid, $7, $8, $9, $10, coalesce($11::jsonb, '{}'),"
    " $12, $13)",
    13);

static int insert(cc_db_t *db, cc_pool_t *pool, const char *actor, const char *kind,
                  const char *acting_as, const char *request_id, const char *client_addr,
                  const char *user_agent, const cc_audit_t *a)
{
    if (db == NULL || !cc_db_in_tx(db))
        return CC_EINVAL;
    char id[37];
    cc_uuid_new(id);
    char *details = a->details ? json_dumps(a->details, JSON_COMPACT) : NULL;
    const char *params[] = {id,        actor,       kind,           acting_as,    a->tenant_id,
                            a->msp_id, a->action,   a->target_type, a->target_id, request_id,
                            details,   client_addr, user_agent};
    int rc = cc_db_query(db, pool, &q_audit, params, NULL);
    free(details);
    return rc;
}

/* The client: behind the gateway (a loopback peer) the first X-Forwarded-For entry the
 * gateway wrote, else the peer itself. Printable ASCII only, at most 64 characters. */
const char *cc_req_client(cc_req_t *req)
{
    const char *peer = req->client_addr;
    const char *fwd = cc_req_header(req, "x-forwarded-for");
    const char *v = peer;
    if (fwd != NULL && peer != NULL && (strncmp(peer, "127.", 4) == 0 || strcmp(peer, "::1") == 0))
        v = fwd;
    if (v == NULL)
        return NULL;
    size_t n = strcspn(v, ", ");
    if (n > 64)
        n = 64;
    char *out = cc_pool_strndup(req->pool, v, n);
    for (char *c = out; *c; c++)
        if (*c < 0x21 || *c > 0x7e)
            *c = '?';
    return out;
}

/* The User-Agent, printable ASCII only (other bytes become '?'), at most 256 characters. */
static const char *agent_of(cc_req_t *req)
{
    const char *ua = cc_req_header(req, "user-agent");
    if (ua == NULL)
        return NULL;
    size_t n = strlen(ua);
    char *out = cc_pool_strndup(req->pool, ua, n > 256 ? 256 : n);
    for (char *c = out; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            *c = '?';
    return out;
}

int cc_audit_write(cc_req_t *req, const cc_audit_t *a)
{
    const cc_principal_t *p = req->principal;
    const char *actor = NULL, *kind = NULL, *acting_as = NULL;
    if (p != NULL) {
        actor = p->act_sub ? p->act_sub : p->sub;
        acting_as = p->act_sub ? p->sub : NULL;
        kind = p->kind == CC_PRINCIPAL_API_CLIENT ? "api_client" : "user";
    }
    return insert(req->db, req->pool, actor, kind, acting_as, req->request_id, cc_req_client(req),
                  agent_of(req), a);
}

int cc_audit_write_system(cc_db_t *db, cc_pool_t *pool, const char *job, const cc_audit_t *a)
{
    return insert(db, pool, job, "system", NULL, NULL, NULL, NULL, a);
}

static const char *claim(const cc_principal_t *p, const char *name)
{
    json_t *v = p->claims ? json_object_get(p->claims, name) : NULL;
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

const char *cc_audit_actor_name(const cc_req_t *req)
{
    const cc_principal_t *p = req->principal;
    if (p == NULL)
        return "anonymous";
    const char *v = claim(p, "name");
    if (v == NULL)
        v = claim(p, "email");
    if (v == NULL && p->kind == CC_PRINCIPAL_API_CLIENT && p->client_id && *p->client_id)
        return cc_pool_printf(req->pool, "API client %s", p->client_id);
    return v ? v : p->sub;
}

/* ---- retention ---- */

static const cc_stmt_t q_prune =
    CC_STMT("cc_audit_prune",
            "DELETE FROM audit_events WHERE at < now() - make_interval(days => $1::int)", 1);

static struct {
    pthread_t thread;
    bool running;
    _Atomic bool stop;
    int wake[2];
    char *conninfo, *search_path;
    int days;
} retention = {.wake = {-1, -1}};

static void *retention_main(void *arg)
{
    (void)arg;
    cc_db_t *db = NULL;
    cc_db_open(retention.conninfo, "audit-retention", retention.search_path, &db);
    if (db == NULL)
        return NULL;
    char days[16];
    snprintf(days, sizeof(days), "%d", retention.days);
    while (!atomic_load(&retention.stop)) {
        static const cc_scope_t system = {.system = true};
        cc_pool_t *pool = cc_pool_new();
        PGresult *res = NULL;
        int rc = cc_db_begin(db, &system);
        if (rc == 0)
            rc = cc_db_query(db, pool, &q_prune, (const char *[]){days}, &res);
        if (rc == 0)
            rc = cc_db_commit(db);
        if (rc != 0)
            cc_db_rollback(db);
        else if (res != NULL && atoi(PQcmdTuples(res)) > 0)
            cc_log_info("audit retention: %s record(s) older than %s days removed",
                        PQcmdTuples(res), days);
        cc_pool_free(pool);
        struct pollfd w = {.fd = retention.wake[0], .events = POLLIN};
        poll(&w, 1, 3600 * 1000);
    }
    cc_db_close(db);
    return NULL;
}

int cc_audit_retention_start(const char *conninfo, const char *search_path, int retention_days)
{
    if (retention.running)
        return 0;
    if (pipe(retention.wake) != 0)
        return CC_EIO;
    retention.conninfo = cc_strdup(conninfo);
    retention.search_path = cc_strdup(search_path);
    retention.days = retention_days;
    atomic_store(&retention.stop, false);
    if (pthread_create(&retention.thread, NULL, retention_main, NULL) != 0) {
        close(retention.wake[0]);
        close(retention.wake[1]);
        free(retention.conninfo);
        free(retention.search_path);
        return CC_EIO;
    }
    retention.running = true;
    return 0;
}

void cc_audit_retention_stop(void)
{
    if (!retention.running)
        return;
    atomic_store(&retention.stop, true);
    ssize_t w = write(retention.wake[1], "x", 1);
    (void)w;
    pthread_join(retention.thread, NULL);
    close(retention.wake[0]);
    close(retention.wake[1]);
    free(retention.conninfo);
    free(retention.search_path);
    retention.running = false;
}
