#include <stdio.h>
#include <string.h>

#include "console/service.h"

const char *const cc_service_names[8] = {"identity", "tenants", "users",    "roles",
                                         "quotas",   "usage",   "branding", "licensing"};

int cc_service_index(const char *name)
{
    for (int i = 0; i < 8; i++)
        if (strcmp(cc_service_names[i], name) == 0)
            return i;
    return -1;
}

int cc_service_port(const cc_env_t *env, const char *name)
{
    int i = cc_service_index(name);
    return i < 0 ? -1 : (int)env->port_base + i + 1;
}

char *cc_upstream_url(const cc_env_t *env, const char *name)
{
    int i = cc_service_index(name);
    if (i < 0)
        return NULL;
    if (env->upstream[i] != NULL && env->upstream[i][0] != '\0') {
        size_t n = strlen(env->upstream[i]);
        while (n > 0 && env->upstream[i][n - 1] == '/')
            n--;
        return cc_strndup(env->upstream[i], n);
    }
    return cc_aprintf("http://127.0.0.1:%d", cc_service_port(env, name));
}
