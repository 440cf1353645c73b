/*
 * Ingestion: POST /api/v1/usage/samples and POST /api/v1/usage/job-events (API.md).
 *
 * A batch (at most 10 000 items, 8 MiB) comes from a data-plane API client holding
 * usage:write on every tenant it names. Each item is validated; any bad item refuses the
 * whole batch with every bad item named (errors[].field "[3].used_bytes"). A valid batch
 * is applied in one transaction by the schema's ingest functions (last value per source,
 * daily rollups, jobs once per job_id), hard quotas are checked on the result, and the
 * Idempotency-Key answer is stored in the same transaction: a replay returns the first
 * answer and counts nothing twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "console/authz.h"
#include "console/idempotency.h"
#include "console/json.h"
#include "console/log.h"
#include "console/outbox.h"
#include "usage.h"

#define MAX_ERRORS 100        /* errors listed in one answer */
#define MAX_BYTES (1LL << 60) /* 1 EiB for one source: anything larger is absurd */
#define MIN_TIME 946684800LL  /* 2000-01-01T00:00:00Z */

bool usage_time_parse(const char *s, int64_t *out)
{
    /* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) */
    const char *p = s;
    int v[6];
    const int len[6] = {4, 2, 2, 2, 2, 2};
    const char sep[6] = {'-', '-', 'T', ':', ':', '\0'};
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int k = 0; k < len[i]; k++, p++) {
            if (*p < '0' || *p > '9')
                return false;
            v[i] = v[i] * 10 + (*p - '0');
        }
        if (sep[i] != '\0') {
            if (*p != sep[i] && !(i == 2 && *p == 't'))
                return false;
            p++;
        }
    }
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9')
            p++, digits++;
        if (digits == 0 || digits > 9)
            return false;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, hh = 0, mm = 0;
        p++;
        for (int k = 0; k < 2; k++, p++) {
            if (*p < '0' || *p > '9')
                return false;
            hh = hh * 10 + (*p - '0');
        }
        if (*p++ != ':')
            return false;
        for (int k = 0; k < 2; k++, p++) {
            if (*p < '0' || *p > '9')
                return false;
            mm = mm * 10 + (*p - '0');
        }
        if (hh > 23 || mm > 59)
            return false;
        offset = sign * (hh * 3600 + mm * 60);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int year = v[0], mon = v[1], day = v[2];
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (mon < 1 || mon > 12 || day < 1 || day > mdays[mon - 1] ||
        (mon == 2 && day == 29 && !leap) || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return false;
    struct tm tm = {.tm_year = year - 1900,
                    .tm_mon = mon - 1,
                    .tm_mday = day,
                    .tm_hour = v[3],
                    .tm_min = v[4],
                    .tm_sec = v[5] == 60 ? 59 : v[5]};
    *out = (int64_t)timegm(&tm) - offset;
    return true;
}

/* A field of item i that must be a timestamp within [2000, now + leeway]. */
static const char *item_time(cc_validator_t *v, json_t *item, size_t i, const char *field,
                             bool required, int64_t now)
{
    json_t *x = json_object_get(item, field);
    if (x == NULL || json_is_null(x)) {
        if (required)
            cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field), "required",
                     "%s is required.", field);
        return NULL;
    }
    int64_t t;
    if (!json_is_string(x) || !usage_time_parse(json_string_value(x), &t)) {
        cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field), "format",
                 "%s must be an RFC 3339 time such as 2026-11-23T07:00:00Z.", field);
        return NULL;
    }
    if (t > now + USAGE_FUTURE_LEEWAY_S) {
        cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field), "in_future",
                 "%s is in the future.", field);
        return NULL;
    }
    if (t < MIN_TIME) {
        cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field), "range", "%s is before 2000.",
                 field);
        return NULL;
    }
    return json_string_value(x);
}

static const char *item_string(cc_validator_t *v, json_t *item, size_t i, const char *field,
                               size_t max)
{
    json_t *x = json_object_get(item, field);
    const char *s = json_is_string(x) ? json_string_value(x) : NULL;
    size_t n = s ? cc_utf8_length(s, json_string_length(x)) : 0;
    bool ok = s != NULL && n >= 1 && n <= max;
    for (size_t k = 0; ok && s[k]; k++)
        if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
            ok = false;
    if (!ok)
        cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field),
                 x == NULL || json_is_null(x) ? "required" : "format",
                 "%s must be a string of 1 to %zu characters without control characters.", field,
                 max);
    return ok ? s : NULL;
}

static const char *item_enum(cc_validator_t *v, json_t *item, size_t i, const char *field,
                             const char *const *values)
{
    json_t *x = json_object_get(item, field);
    if (json_is_string(x))
        for (size_t k = 0; values[k]; k++)
            if (strcmp(values[k], json_string_value(x)) == 0)
                return values[k];
    cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field),
             x == NULL || json_is_null(x) ? "required" : "enum",
             "%s is not one of the accepted values.", field);
    return NULL;
}

static bool item_bytes(cc_validator_t *v, json_t *item, size_t i, const char *field)
{
    json_t *x = json_object_get(item, field);
    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > MAX_BYTES) {
        cc_v_add(v, cc_pool_printf(v->pool, "[%zu].%s", i, field),
                 x == NULL || json_is_null(x) ? "required" : "range",
                 "%s must be an integer number of bytes from 0 to 2^60.", field);
        return false;
    }
    return true;
}

static bool too_many(const cc_validator_t *v)
{
    return json_array_size(v->errors) >= MAX_ERRORS;
}

/* The batch as a JSON array, 1..USAGE_BATCH_MAX items; answers and returns NULL otherwise. */
static json_t *batch_of(cc_req_t *req)
{
    json_t *body;
    if (cc_req_query_allowed(req, (const char *const[]){NULL}) != 0 || cc_req_json(req, &body) != 0)
        return NULL;
    if (req->principal->kind != CC_PRINCIPAL_API_CLIENT) {
        cc_res_problem(req, CC_ERR_FORBIDDEN,
                       "Usage is posted by data-plane API clients (usage:write), not by people.");
        return NULL;
    }
    bool writer = false; /* usage:write somewhere; each tenant is checked below */
    for (size_t i = 0; req->authz != NULL && i < req->authz->ngrants && !writer; i++)
        writer = cc_authz_can(req->authz, "usage:write", req->authz->grants[i].path);
    if (!writer) {
        cc_res_problem(req, CC_ERR_FORBIDDEN, "Posting usage needs the usage:write permission.");
        return NULL;
    }
    if (!json_is_array(body) || json_array_size(body) == 0) {
        cc_validator_t v;
        cc_v_init(&v, req->pool);
        cc_v_add(&v, "", "type", "The body must be a non-empty JSON array of items.");
        cc_res_invalid(req, &v);
        return NULL;
    }
    if (json_array_size(body) > USAGE_BATCH_MAX) {
        cc_res_problem_ext(req, CC_ERR_PAYLOAD_TOO_LARGE,
                           json_pack("{s:i}", "max_items", USAGE_BATCH_MAX),
                           "A batch holds at most %d items; this one has %zu.", USAGE_BATCH_MAX,
                           json_array_size(body));
        return NULL;
    }
    return body;
}

static const cc_stmt_t q_tenants =
    CC_STMT("usage_batch_tenants",
            /* one key lookup per distinct tenant of the batch (LIMIT 1 keeps the lateral
             * from being flattened into a hash join over a scan of every tenant) */
            "SELECT t.id, t.msp_id, t.path::text, t.kind, t.status"
            " FROM (SELECT DISTINCT x::uuid AS id FROM json_array_elements_text($1::json) x) b"
            " CROSS JOIN LATERAL (SELECT * FROM tenants.tenant_tree t WHERE t.id = b.id LIMIT 1) t",
            1);

/*
 * A data-plane client on the platform spans every MSP, which no request scope covers: the
 * batch's tenants are looked up and written in system scope, and the gate is the grant
 * check of each tenant (usage:write on its path) before anything is written.
 */
static const cc_scope_t system_scope = {.system = true};

/*
 * Resolves the batch's tenants (each item's tenant_id already a UUID or NULL): known, not the
 * platform or deleted, and covered by a usage:write grant. Adds an error per item naming another;
 * msp[i] gets each item's root account.
 */
static int resolve_tenants(cc_req_t *req, cc_validator_t *v, json_t *batch, const char **ids,
                           const char **msp)
{
    size_t n = json_array_size(batch);
    json_t *distinct = json_array(), *seen = json_object();
    for (size_t i = 0; i < n; i++)
        if (ids[i] != NULL && json_object_get(seen, ids[i]) == NULL) {
            json_object_set_new(seen, ids[i], json_true());
            json_array_append_new(distinct, json_string(ids[i]));
        }
    char *text = json_dumps(distinct, JSON_COMPACT);
    json_decref(distinct);
    json_object_clear(seen);
    PGresult *res;
    int rc =
        cc_db_read(req->db, req->pool, &system_scope, &q_tenants, (const char *[]){text}, &res);
    free(text);
    if (rc != 0) {
        json_decref(seen);
        return rc;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        const char *kind = PQgetvalue(res, r, 3), *status = PQgetvalue(res, r, 4);
        bool ok = strcmp(kind, "platform") != 0 && strcmp(status, "deleted") != 0 &&
                  cc_authz_can(req->authz, "usage:write", PQgetvalue(res, r, 2));
        if (ok)
            json_object_set_new(seen, PQgetvalue(res, r, 0), json_string(PQgetvalue(res, r, 1)));
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL)
            continue;
        json_t *m = json_object_get(seen, ids[i]);
        if (m == NULL) {
            if (!too_many(v))
                cc_v_add(v, cc_pool_printf(req->pool, "[%zu].tenant_id", i), "unknown_tenant",
                         "No account %s that this client may post usage for.", ids[i]);
        } else {
            msp[i] = cc_pool_strdup(req->pool, json_string_value(m));
        }
    }
    json_decref(seen);
    return 0;
}

/*
 * The start of item i shared by both batch kinds: an object of known fields with a
 * tenant_id (ids[i], or NULL after an error). Returns the item, or NULL when it is not an
 * object (nothing more to check).
 */
static json_t *item_head(cc_req_t *req, cc_validator_t *v, json_t *batch, size_t i,
                         const char *const *fields, const char **ids)
{
    json_t *item = json_array_get(batch, i);
    ids[i] = NULL;
    if (!json_is_object(item)) {
        cc_v_add(v, cc_pool_printf(req->pool, "[%zu]", i), "type", "Each item is an object.");
        return NULL;
    }
    const char *key;
    json_t *val;
    json_object_foreach(item, key, val)
    {
        bool known = false;
        for (size_t k = 0; fields[k]; k++)
            known = known || strcmp(key, fields[k]) == 0;
        if (!known && v->unknown_field == NULL)
            v->unknown_field = cc_pool_printf(req->pool, "[%zu].%s", i, key);
    }
    json_t *tid = json_object_get(item, "tenant_id");
    if (json_is_string(tid) && cc_is_uuid(json_string_value(tid)))
        ids[i] = json_string_value(tid);
    else
        cc_v_add(v, cc_pool_printf(req->pool, "[%zu].tenant_id", i), "format",
                 "tenant_id must be an account id (UUID).");
    return item;
}

/* After the items: the tenants resolved (msp[i] filled), then 400 with every error, or the
 * Idempotency-Key replay. True when the handler goes on to write. */
static bool batch_valid(cc_req_t *req, cc_validator_t *v, json_t *batch, const char **ids,
                        const char **msp)
{
    if (v->unknown_field == NULL && !too_many(v)) {
        int rc = resolve_tenants(req, v, batch, ids, msp);
        if (rc != 0) {
            cc_res_db_error(req, rc);
            return false;
        }
    }
    if (!cc_v_ok(v)) {
        cc_res_invalid(req, v);
        return false;
    }
    return cc_idem_replay(req) == 0;
}

/* Opens the batch's transaction and runs the ingest statement on the batch b (freed);
 * NULL when it failed (rolled back and answered), else the result, transaction open. */
static PGresult *apply(cc_req_t *req, const cc_stmt_t *stmt, cc_buf_t *b)
{
    PGresult *res = NULL;
    int rc = cc_db_begin(req->db, &system_scope);
    if (rc == 0)
        rc = cc_db_query(req->db, req->pool, stmt, (const char *[]){b->data}, &res);
    cc_buf_free(b);
    if (rc != 0) {
        cc_db_rollback(req->db);
        cc_log_error("usage: %s failed: %s", stmt->name, cc_db_errmsg(req->db));
        cc_res_db_error(req, rc);
        return NULL;
    }
    return res;
}

static const char *const sample_fields[] = {"tenant_id",  "resource", "source_id",
                                            "used_bytes", "at",       NULL};
static const char *const resources[] = {"cloud_storage", "datastore", NULL};

static const cc_stmt_t q_ingest_samples = CC_STMT(
    "usage_ingest_samples",
    "SELECT c.tenant_id, c.msp_id, c.resource, c.before_bytes, c.after_bytes, q.limit_bytes,"
    " coalesce(q.enforced AND c.after_bytes > c.before_bytes AND c.after_bytes > q.limit_bytes,"
    " false)"
    " FROM ingest_samples($1::jsonb) c"
    " LEFT JOIN quotas.quota_limits q ON q.tenant_id = c.tenant_id AND q.resource = c.resource",
    1);

/* Commits with the stored answer, or rolls back and answers the error. */
static void finish(cc_req_t *req, int rc, json_t *out)
{
    if (rc == 0)
        rc = cc_idem_remember(req, 200, out, NULL, NULL);
    if (rc == 0)
        rc = cc_db_commit(req->db);
    if (rc != 0) {
        cc_db_rollback(req->db);
        json_decref(out);
        if (rc == CC_ECONFLICT)
            cc_res_problem(req, CC_ERR_CONFLICT,
                           "A request with the same Idempotency-Key committed first; retry to "
                           "get its answer.");
        else
            cc_res_db_error(req, rc);
        return;
    }
    cc_res_json(req, 200, out);
}

void usage_handle_samples(cc_req_t *req)
{
    json_t *batch = batch_of(req);
    if (batch == NULL)
        return;
    size_t n = json_array_size(batch);
    int64_t now = (int64_t)time(NULL);
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    const char **ids = cc_pool_alloc(req->pool, n * sizeof(*ids));
    const char **msp = cc_pool_alloc(req->pool, n * sizeof(*msp));
    for (size_t i = 0; i < n && !too_many(&v); i++) {
        msp[i] = NULL;
        json_t *item = item_head(req, &v, batch, i, sample_fields, ids);
        if (item == NULL)
            continue;
        item_enum(&v, item, i, "resource", resources);
        item_string(&v, item, i, "source_id", 256);
        item_bytes(&v, item, i, "used_bytes");
        item_time(&v, item, i, "at", true, now);
    }
    if (!batch_valid(req, &v, batch, ids, msp))
        return;

    /* the batch for the database: the items with their root account */
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(batch, i);
        cc_buf_puts(&b, i ? ",{" : "{");
        cc_jw_kv_str(&b, "tenant_id", ids[i], true);
        cc_jw_kv_str(&b, "msp_id", msp[i], false);
        cc_jw_kv_str(&b, "resource", json_string_value(json_object_get(item, "resource")), false);
        cc_jw_kv_str(&b, "source_id", json_string_value(json_object_get(item, "source_id")), false);
        cc_jw_kv_int(&b, "used_bytes",
                     (long long)json_integer_value(json_object_get(item, "used_bytes")), false);
        cc_jw_kv_str(&b, "at", json_string_value(json_object_get(item, "at")), false);
        cc_buf_putc(&b, '}');
    }
    cc_buf_putc(&b, ']');

    PGresult *res = apply(req, &q_ingest_samples, &b);
    if (res == NULL)
        return;
    int rc = 0;
    /* hard quotas: growth past an enforced limit refuses the batch, naming the items of the
     * tenants and resources over it */
    json_t *refused = NULL;
    for (int r = 0; r < PQntuples(res); r++) {
        if (strcmp(PQgetvalue(res, r, 6), "t") != 0)
            continue;
        const char *tenant = PQgetvalue(res, r, 0), *resource = PQgetvalue(res, r, 2);
        if (refused == NULL)
            refused = json_array();
        for (size_t i = 0; i < n && json_array_size(refused) < MAX_ERRORS; i++) {
            json_t *item = json_array_get(batch, i);
            if (strcmp(ids[i], tenant) == 0 &&
                strcmp(json_string_value(json_object_get(item, "resource")), resource) == 0)
                json_array_append_new(
                    refused, json_pack("{s:s, s:s, s:s}", "field",
                                       cc_pool_printf(req->pool, "[%zu].used_bytes", i), "code",
                                       "quota_exceeded", "message",
                                       cc_pool_printf(req->pool,
                                                      "Account %s would use %s bytes of %s, over "
                                                      "its hard quota of %s bytes.",
                                                      tenant, PQgetvalue(res, r, 4), resource,
                                                      PQgetvalue(res, r, 5))));
        }
    }
    if (refused != NULL) {
        cc_db_rollback(req->db);
        cc_res_problem_ext(req, CC_ERR_QUOTA_EXCEEDED, json_pack("{s:o}", "errors", refused),
                           "The batch would grow usage past a hard quota; nothing was stored. "
                           "Send the other items without those named.");
        return;
    }
    /* the quotas service follows usage changes through the outbox (thresholds, alerts):
     * one event per batch listing every account and resource whose usage changed */
    int changed = 0;
    json_t *changes = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        if (strcmp(PQgetvalue(res, r, 3), PQgetvalue(res, r, 4)) == 0)
            continue;
        changed++;
        json_array_append_new(
            changes, json_pack("{s:s, s:s, s:s, s:I, s:I}", "tenant_id", PQgetvalue(res, r, 0),
                               "msp_id", PQgetvalue(res, r, 1), "resource", PQgetvalue(res, r, 2),
                               "before_bytes", (json_int_t)strtoll(PQgetvalue(res, r, 3), NULL, 10),
                               "used_bytes", (json_int_t)strtoll(PQgetvalue(res, r, 4), NULL, 10)));
    }
    if (changed > 0) {
        json_t *ev = json_pack("{s:o}", "changes", changes);
        rc = cc_outbox_emit(req->db, req->pool, "usage.changed", NULL, ev);
        json_decref(ev);
    } else {
        json_decref(changes);
    }
    finish(req, rc, json_pack("{s:I, s:i}", "accepted", (json_int_t)n, "usage_changed", changed));
}

static const char *const job_fields[] = {
    "tenant_id",  "source_id",   "source_type",       "job_id", "status",
    "started_at", "finished_at", "bytes_transferred", NULL};
static const char *const source_types[] = {"agent", "agentless", "unc", NULL};
static const char *const statuses[] = {"completed", "warning",  "failed",
                                       "not_run",   "canceled", NULL};

static const cc_stmt_t q_ingest_jobs =
    CC_STMT("usage_ingest_jobs", "SELECT ingest_job_events($1::jsonb)", 1);

void usage_handle_job_events(cc_req_t *req)
{
    json_t *batch = batch_of(req);
    if (batch == NULL)
        return;
    size_t n = json_array_size(batch);
    int64_t now = (int64_t)time(NULL);
    cc_validator_t v;
    cc_v_init(&v, req->pool);
    const char **ids = cc_pool_alloc(req->pool, n * sizeof(*ids));
    const char **msp = cc_pool_alloc(req->pool, n * sizeof(*msp));
    json_t *jobs = json_object(); /* job ids of the batch: one event per job */
    for (size_t i = 0; i < n && !too_many(&v); i++) {
        msp[i] = NULL;
        json_t *item = item_head(req, &v, batch, i, job_fields, ids);
        if (item == NULL)
            continue;
        item_string(&v, item, i, "source_id", 256);
        item_enum(&v, item, i, "source_type", source_types);
        const char *job = item_string(&v, item, i, "job_id", 128);
        item_enum(&v, item, i, "status", statuses);
        const char *started = item_time(&v, item, i, "started_at", false, now);
        const char *finished = item_time(&v, item, i, "finished_at", true, now);
        item_bytes(&v, item, i, "bytes_transferred");
        int64_t s, f;
        if (started && finished && usage_time_parse(started, &s) &&
            usage_time_parse(finished, &f) && s > f)
            cc_v_add(&v, cc_pool_printf(req->pool, "[%zu].finished_at", i), "range",
                     "finished_at is before started_at.");
        if (job != NULL && ids[i] != NULL) {
            const char *k = cc_pool_printf(req->pool, "%s/%s", ids[i], job);
            if (json_object_get(jobs, k) != NULL)
                cc_v_add(&v, cc_pool_printf(req->pool, "[%zu].job_id", i), "duplicate",
                         "The batch holds this job twice.");
            json_object_set_new(jobs, k, json_true());
        }
    }
    json_decref(jobs);
    if (!batch_valid(req, &v, batch, ids, msp))
        return;
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_array_get(batch, i);
        json_t *started = json_object_get(item, "started_at");
        cc_buf_puts(&b, i ? ",{" : "{");
        cc_jw_kv_str(&b, "tenant_id", ids[i], true);
        cc_jw_kv_str(&b, "msp_id", msp[i], false);
        static const char *const copied[] = {"job_id", "source_id",   "source_type",
                                             "status", "finished_at", NULL};
        for (size_t k = 0; copied[k]; k++)
            cc_jw_kv_str(&b, copied[k], json_string_value(json_object_get(item, copied[k])), false);
        cc_jw_kv_str(&b, "started_at", json_is_string(started) ? json_string_value(started) : NULL,
                     false);
        cc_jw_kv_int(&b, "bytes_transferred",
                     (long long)json_integer_value(json_object_get(item, "bytes_transferred")),
                     false);
        cc_buf_putc(&b, '}');
    }
    cc_buf_putc(&b, ']');
    PGresult *res = apply(req, &q_ingest_jobs, &b);
    if (res == NULL)
        return;
    long long added = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    finish(req, 0,
           json_pack("{s:I, s:I, s:I}", "accepted", (json_int_t)n, "new_jobs", (json_int_t)added,
                     "duplicate_jobs", (json_int_t)((long long)n - added)));
}
