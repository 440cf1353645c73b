/*
 * The check-in state machine of online activations (FAQ 1.15, 1.16): a product silent
 * for 14 days enters a 30-day grace period, then is suspended; a check-in makes it
 * active again at once. The messages follow the FAQ's escalation while silent.
 * Pure functions of (last check-in, now): the clock is the database's (licensing_now()).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "licensing.h"

lic_state_t lic_state_at(int64_t last, int64_t now)
{
    int64_t silent = now - last;
    if (silent < LIC_CHECK_IN_DAYS * LIC_DAY)
        return LIC_ACTIVE;
    if (silent < (LIC_CHECK_IN_DAYS + LIC_GRACE_DAYS) * LIC_DAY)
        return LIC_GRACE;
    return LIC_SUSPENDED;
}

const char *lic_state_name(lic_state_t s)
{
    return s == LIC_ACTIVE ? "active" : s == LIC_GRACE ? "grace" : "suspended";
}

const char *lic_time(cc_pool_t *pool, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return cc_pool_strdup(pool, buf);
}

static json_t *message(const char *code, const char *severity, const char *text)
{
    return json_pack("{s:s, s:s, s:s}", "code", code, "severity", severity, "text", text);
}

json_t *lic_messages(int64_t last, int64_t now)
{
    json_t *out = json_array();
    int64_t silent = now - last;
    int64_t ends = last + LIC_CHECK_IN_DAYS * LIC_DAY;
    int64_t suspends = ends + LIC_GRACE_DAYS * LIC_DAY;
    char date[16], sdate[16];
    time_t t1 = (time_t)ends, t2 = (time_t)suspends;
    struct tm tm;
    strftime(date, sizeof(date), "%Y/%m/%d", gmtime_r(&t1, &tm));
    strftime(sdate, sizeof(sdate), "%Y/%m/%d", gmtime_r(&t2, &tm));
    char text[256];
    switch (lic_state_at(last, now)) {
    case LIC_ACTIVE:
        if (silent >= 2 * LIC_DAY) {
            json_t *m = message("connection_lost", "warning", "The connection was lost.");
            json_object_set_new(m, "repeat_every_days", json_pack("[i, i]", 2, 3));
            json_array_append_new(out, m);
        }
        if (silent >= 5 * LIC_DAY) {
            snprintf(text, sizeof(text), "The license expires on %s.", date);
            json_t *m = message("license_expires", "error", text);
            json_object_set_new(m, "date", json_string(date));
            json_array_append_new(out, m);
        }
        break;
    case LIC_GRACE: {
        snprintf(text, sizeof(text),
                 "The license expired on %s. To keep running backups, contact support to renew "
                 "the license (suspended on %s).",
                 date, sdate);
        json_t *m = message("license_expired", "warning", text);
        json_object_set_new(m, "date", json_string(date));
        json_object_set_new(m, "suspends_on", json_string(sdate));
        json_array_append_new(out, m);
        break;
    }
    case LIC_SUSPENDED: {
        snprintf(text, sizeof(text),
                 "The license is suspended since %s; it is restored as soon as the product "
                 "checks in.",
                 sdate);
        json_t *m = message("license_suspended", "error", text);
        json_object_set_new(m, "date", json_string(sdate));
        json_array_append_new(out, m);
        break;
    }
    }
    return out;
}

json_t *lic_account_message(const char *status)
{
    bool deleted = status != NULL && strcmp(status, "deleted") == 0;
    return message(deleted ? "account_deleted" : "account_suspended", "error",
                   deleted ? "The account this license belongs to is deleted: the license is "
                             "suspended until the account is restored."
                           : "The account this license belongs to is suspended: the license is "
                             "suspended until the account is resumed.");
}
