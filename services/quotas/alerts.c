/*
 * Quota alerts. The alert state of a quota is alert_level: the highest threshold (in %)
 * that usage has reached and that was alerted. When usage reaches a higher threshold, one
 * alert is raised (for the highest threshold reached, even when a jump passes several)
 * and the level moves up; when usage falls, the level falls with it, so the next upward
 * crossing alerts again. An alert is an audit record and a quota.threshold_crossed event
 * in the same transaction as the state change; the mail to the root account's admins
 * (in each one's language) is sent by this service's own outbox consumer after the
 * commit, so a rolled-back change mails nothing and a failed mail is retried.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console/audit.h"
#include "console/brand.h"
#include "console/log.h"
#include "console/mail.h"
#include "quotas.h"

/* Moves the state and returns the levels before and after. */
static const cc_stmt_t q_evaluate = CC_STMT(
    "quotas_evaluate",
    "WITH cur AS (SELECT q.tenant_id, q.resource, q.alert_level AS old_level, q.limit_bytes,"
    " coalesce(u.used_bytes, 0) AS used,"
    " CASE WHEN q.limit_bytes IS NULL THEN 0 ELSE coalesce((SELECT max(th)"
    " FROM unnest(q.alert_thresholds_pct) th"
    " WHERE coalesce(u.used_bytes, 0)::numeric * 100 >= th::numeric * q.limit_bytes), 0) END"
    " AS new_level"
    " FROM quotas q LEFT JOIN usage.current_usage u ON u.tenant_id = q.tenant_id"
    " AND u.resource = q.resource WHERE q.tenant_id = $1::uuid AND q.resource = $2 FOR UPDATE OF q)"
    " UPDATE quotas q SET alert_level = cur.new_level,"
    " exceeded_since = CASE WHEN cur.limit_bytes IS NOT NULL AND cur.used > cur.limit_bytes"
    " THEN coalesce(q.exceeded_since, now()) END"
    " FROM cur WHERE q.tenant_id = cur.tenant_id AND q.resource = cur.resource"
    " RETURNING cur.old_level, cur.new_level, cur.used, cur.limit_bytes, q.msp_id,"
    " round(cur.used * 100.0 / nullif(cur.limit_bytes, 0), 2)::text,"
    " (SELECT t.name FROM tenants.tenant_tree t WHERE t.id = q.tenant_id)",
    2);

int quotas_evaluate(cc_db_t *db, cc_pool_t *pool, cc_req_t *req, const char *tenant_id,
                    const char *resource, int *crossed)
{
    PGresult *res;
    if (crossed != NULL)
        *crossed = 0;
    int rc = cc_db_query(db, pool, &q_evaluate, (const char *[]){tenant_id, resource}, &res);
    if (rc != 0 || PQntuples(res) == 0)
        return rc;
    int before = atoi(PQgetvalue(res, 0, 0)), after = atoi(PQgetvalue(res, 0, 1));
    if (after <= before)
        return 0;
    const char *msp = PQgetvalue(res, 0, 4);
    json_t *details = json_pack(
        "{s:s, s:s, s:s?, s:s, s:i, s:I, s:I, s:s?}", "tenant_id", tenant_id, "msp_id", msp,
        "tenant_name", cc_db_get(res, 0, 6), "resource", resource, "threshold_pct", after,
        "used_bytes", (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10), "limit_bytes",
        (json_int_t)strtoll(PQgetvalue(res, 0, 3), NULL, 10), "used_pct", cc_db_get(res, 0, 5));
    cc_audit_t a = {.action = "quota.threshold_crossed",
                    .target_type = "quota",
                    .target_id = tenant_id,
                    .tenant_id = tenant_id,
                    .msp_id = msp,
                    .details = details};
    rc = req != NULL ? cc_audit_write(req, &a) : cc_audit_write_system(db, pool, "quotas", &a);
    if (rc == 0)
        rc = cc_outbox_emit(db, pool, "quota.threshold_crossed", tenant_id, details);
    json_decref(details);
    if (rc == 0 && crossed != NULL)
        *crossed = after;
    return rc;
}

/* The changed accounts and resources that have a quota (most have none). */
static const cc_stmt_t q_with_quota =
    CC_STMT("quotas_with_quota",
            "SELECT DISTINCT q.tenant_id, q.resource FROM quotas q"
            " JOIN json_to_recordset($1::json) c(tenant_id uuid, resource text)"
            " ON c.tenant_id = q.tenant_id AND c.resource = q.resource ORDER BY 1, 2",
            1);

int quotas_on_usage_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->type, "usage.changed") != 0)
        return 0;
    /* one event per ingested batch: {changes: [{tenant_id, resource, ...}]} */
    json_t *changes = json_object_get(ev->payload, "changes");
    if (!json_is_array(changes)) {
        cc_log_error("usage event %lld is malformed; skipped", (long long)ev->id);
        return 0;
    }
    char *text = json_dumps(changes, JSON_COMPACT);
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_with_quota, (const char *[]){text}, &res);
    free(text);
    for (int r = 0; rc == 0 && r < PQntuples(res); r++)
        rc = quotas_evaluate(db, pool, NULL, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1), NULL);
    return rc;
}

/* The admins of a root account (MSP or direct): active users holding its super-admin or
 * admin role on it. */
static const cc_stmt_t q_admins = CC_STMT(
    "quotas_admins",
    "SELECT DISTINCT p.primary_email, coalesce(p.language, 'en'), p.first_name,"
    " p.last_name FROM roles.grants g JOIN users.sign_in_profiles p ON p.id = g.principal_id"
    " WHERE g.principal_kind = 'user' AND g.tenant_id = $1::uuid AND p.status = 'active'"
    " AND g.role IN ('msp_super_admin', 'msp_admin', 'super_admin', 'admin')"
    " ORDER BY 1",
    1);

static const char *str(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

static const char *html(cc_pool_t *pool, const char *s)
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_html(&b, s);
    const char *out = cc_pool_strdup(pool, b.data ? b.data : "");
    cc_buf_free(&b);
    return out;
}

int quotas_on_own_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    quotas_app_t *app = arg;
    if (strcmp(ev->type, "quota.threshold_crossed") != 0)
        return 0;
    const char *msp = str(ev->payload, "msp_id");
    if (!cc_is_uuid(msp))
        return 0;
    PGresult *res;
    int rc = cc_db_query(db, pool, &q_admins, (const char *[]){msp}, &res);
    if (rc != 0)
        return rc;
    const char *name = str(ev->payload, "tenant_name"), *resource = str(ev->payload, "resource");
    bool cloud = strcmp(resource, "cloud_storage") == 0;
    long long used = (long long)json_integer_value(json_object_get(ev->payload, "used_bytes"));
    long long limit = (long long)json_integer_value(json_object_get(ev->payload, "limit_bytes"));
    int th = (int)json_integer_value(json_object_get(ev->payload, "threshold_pct"));
    const char *pct = str(ev->payload, "used_pct");
    /* decimal GB with two decimals, from integers (no floating point in the figures) */
    const char *used_gb = cc_pool_printf(pool, "%lld.%02lld", used / 1000000000LL,
                                         (used % 1000000000LL) / 10000000LL);
    const char *limit_gb = cc_pool_printf(pool, "%lld.%02lld", limit / 1000000000LL,
                                          (limit % 1000000000LL) / 10000000LL);
    /* the mail wears the MSP's brand (sender, Reply-To its support address, its name) */
    cc_brand_t brand;
    if ((rc = cc_brand_for_tenant(db, pool, msp, &brand)) != 0)
        return rc;
    for (int r = 0; r < PQntuples(res); r++) {
        bool ja = strncmp(PQgetvalue(res, r, 1), "ja", 2) == 0;
        const char *subject, *text;
        if (ja) {
            subject = cc_pool_printf(pool, "クォータ警告: %s の%sが %d%% に達しました", name,
                                     cloud ? "クラウドストレージ" : "データストア", th);
            text = cc_pool_printf(pool,
                                  "%s %s 様\r\n\r\n顧客アカウント「%s」の%s使用量が、"
                                  "クォータの %d%% のしきい値に達しました。\r\n\r\n"
                                  "使用量: %s GB / クォータ: %s GB (%s%%)\r\n\r\n"
                                  "コンソールでクォータまたは使用量を確認してください。\r\n",
                                  PQgetvalue(res, r, 3), PQgetvalue(res, r, 2), name,
                                  cloud ? "クラウドストレージ" : "データストア", th, used_gb,
                                  limit_gb, pct);
        } else {
            subject = cc_pool_printf(pool, "Quota alert: %s reached %d%% of its %s quota", name, th,
                                     cloud ? "cloud storage" : "datastore");
            text = cc_pool_printf(pool,
                                  "Hello %s,\r\n\r\nThe %s usage of the customer account "
                                  "\"%s\" reached the %d%% threshold of its quota.\r\n\r\n"
                                  "Used: %s GB of %s GB (%s%%)\r\n\r\n"
                                  "Review the quota or the usage in the console.\r\n",
                                  PQgetvalue(res, r, 2), cloud ? "cloud storage" : "datastore",
                                  name, th, used_gb, limit_gb, pct);
        }
        const char *body_html = cc_pool_printf(
            pool, "<pre style=\"font-family:sans-serif;white-space:pre-wrap\">%s</pre>",
            html(pool, text));
        cc_brand_message_t m = {.to = PQgetvalue(res, r, 0),
                                .lang = ja ? "ja" : "en",
                                .subject = subject,
                                .text = text,
                                .html = body_html};
        if (cc_brand_mail_send(&app->svc->mail, &brand, app->svc->issuer, &m) != 0) {
            cc_log_error("quota alert mail could not be sent; retrying later");
            return CC_EIO;
        }
    }
    return 0;
}

static const cc_stmt_t q_purge =
    CC_STMT("quotas_purge", "DELETE FROM quotas WHERE tenant_id = $1::uuid", 1);

int quotas_on_tenant_event(cc_db_t *db, cc_pool_t *pool, const cc_outbox_event_t *ev, void *arg)
{
    (void)arg;
    if (strcmp(ev->type, "tenant.purged") != 0)
        return 0;
    json_t *id = json_object_get(ev->payload, "id");
    if (!json_is_string(id) || !cc_is_uuid(json_string_value(id)))
        return 0;
    return cc_db_query(db, pool, &q_purge, (const char *[]){json_string_value(id)}, NULL);
}
