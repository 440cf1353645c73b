/*
 * Token buckets per client, in 64 shards each guarded by its own mutex, so loop threads
 * rarely contend. Idle buckets (full again) are swept when a shard grows.
 */
#include <math.h>
#include <string.h>

#include "gateway.h"

#define NSHARDS 64
#define NBUCKETS 256 /* hash chains per shard */
#define SWEEP_AT 4096

typedef struct entry {
    struct entry *next;
    double tokens;
    uint64_t last_ns;
    size_t keylen;
    char key[];
} entry_t;

typedef struct shard {
    pthread_mutex_t lock;
    entry_t *chains[NBUCKETS];
    size_t count;
} shard_t;

struct gw_ratelimit {
    double rate, burst;
    shard_t shards[NSHARDS];
};

static uint64_t hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

gw_ratelimit_t *gw_ratelimit_new(double rate_per_s, double burst)
{
    gw_ratelimit_t *rl = cc_calloc(1, sizeof(*rl));
    rl->rate = rate_per_s;
    rl->burst = burst;
    for (int i = 0; i < NSHARDS; i++)
        pthread_mutex_init(&rl->shards[i].lock, NULL);
    return rl;
}

void gw_ratelimit_free(gw_ratelimit_t *rl)
{
    if (rl == NULL)
        return;
    for (int i = 0; i < NSHARDS; i++) {
        for (int b = 0; b < NBUCKETS; b++) {
            entry_t *e = rl->shards[i].chains[b];
            while (e) {
                entry_t *n = e->next;
                free(e);
                e = n;
            }
        }
        pthread_mutex_destroy(&rl->shards[i].lock);
    }
    free(rl);
}

static double refill(const gw_ratelimit_t *rl, entry_t *e, uint64_t now_ns)
{
    double t = e->tokens + (double)(now_ns - e->last_ns) / 1e9 * rl->rate;
    return t > rl->burst ? rl->burst : t;
}

static void sweep(gw_ratelimit_t *rl, shard_t *sh, uint64_t now_ns)
{
    for (int b = 0; b < NBUCKETS; b++) {
        entry_t **pp = &sh->chains[b];
        while (*pp) {
            entry_t *e = *pp;
            if (refill(rl, e, now_ns) >= rl->burst) {
                *pp = e->next;
                free(e);
                sh->count--;
            } else {
                pp = &e->next;
            }
        }
    }
}

int gw_ratelimit_take(gw_ratelimit_t *rl, const char *key, size_t keylen, uint64_t now_ns)
{
    if (rl->rate <= 0)
        return 0;
    uint64_t h = hash(key, keylen);
    shard_t *sh = &rl->shards[h % NSHARDS];
    size_t b = (size_t)(h >> 8) % NBUCKETS;
    int wait = 0;
    pthread_mutex_lock(&sh->lock);
    entry_t *e = sh->chains[b];
    while (e && !(e->keylen == keylen && memcmp(e->key, key, keylen) == 0))
        e = e->next;
    if (e == NULL) {
        if (sh->count >= SWEEP_AT)
            sweep(rl, sh, now_ns);
        e = cc_malloc(sizeof(*e) + keylen);
        e->keylen = keylen;
        memcpy(e->key, key, keylen);
        e->tokens = rl->burst;
        e->last_ns = now_ns;
        e->next = sh->chains[b];
        sh->chains[b] = e;
        sh->count++;
    }
    e->tokens = refill(rl, e, now_ns);
    e->last_ns = now_ns;
    if (e->tokens >= 1.0) {
        e->tokens -= 1.0;
    } else {
        wait = (int)ceil((1.0 - e->tokens) / rl->rate);
        if (wait < 1)
            wait = 1;
    }
    pthread_mutex_unlock(&sh->lock);
    return wait;
}
