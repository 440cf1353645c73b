/*
 * The partition keeper: a thread with its own connection that creates the monthly
 * partitions of samples and job events (last month, this month and the next two) at
 * start and hourly, so rows land in their month's partition rather than the default one.
 */
#include <pthread.h>
#include <time.h>

#include "console/log.h"
#include "usage.h"

static const cc_stmt_t q_partitions = CC_STMT(
    "usage_partitions", "SELECT ensure_partitions((now() AT TIME ZONE 'UTC')::date - 31, 4)", 0);

int usage_partitions_ensure(cc_db_t *db)
{
    const cc_scope_t system = {.system = true};
    int rc = cc_db_begin(db, &system);
    if (rc == 0)
        rc = cc_db_query(db, NULL, &q_partitions, NULL, NULL) == 0 ? cc_db_commit(db) : CC_EDB;
    if (rc != 0)
        cc_db_rollback(db);
    return rc;
}

static struct {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    cc_db_t *db;
    bool stop, running;
} keeper = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void *keeper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&keeper.lock);
    while (!keeper.stop) {
        pthread_mutex_unlock(&keeper.lock);
        int rc = usage_partitions_ensure(keeper.db);
        if (rc != 0)
            cc_log_warn("usage partitions: %s; retrying later", cc_strerror(rc));
        pthread_mutex_lock(&keeper.lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 3600;
        while (!keeper.stop && pthread_cond_timedwait(&keeper.cond, &keeper.lock, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&keeper.lock);
    return NULL;
}

int usage_keeper_start(const cc_env_t *env)
{
    int rc = cc_service_db_connect(env, "usage-keeper", "usage, public", &keeper.db);
    if (rc != 0)
        return rc;
    keeper.stop = false;
    pthread_cond_init(&keeper.cond, NULL);
    if (pthread_create(&keeper.thread, NULL, keeper_main, NULL) != 0) {
        cc_db_close(keeper.db);
        keeper.db = NULL;
        return CC_EIO;
    }
    keeper.running = true;
    return 0;
}

void usage_keeper_stop(void)
{
    if (!keeper.running)
        return;
    pthread_mutex_lock(&keeper.lock);
    keeper.stop = true;
    pthread_cond_broadcast(&keeper.cond);
    pthread_mutex_unlock(&keeper.lock);
    pthread_join(keeper.thread, NULL);
    pthread_cond_destroy(&keeper.cond);
    cc_db_close(keeper.db);
    keeper.db = NULL;
    keeper.running = false;
}
