/* consolectl's internal interface. */
#ifndef CONSOLECTL_H
#define CONSOLECTL_H

#include "console/service.h"

/** Creates (idempotently, in one transaction) the platform tenant, the platform
 * super-admin with a fresh activation link, the console-web client and, when
 * configured, the bootstrap API client. Prints what it did. Returns 0 or an error. */
int ctl_bootstrap(const cc_env_t *env, cc_db_t *db);

/** Creates an API client with role on tenant_id (the platform tenant when NULL) and
 * prints its client_id and secret, once. */
int ctl_create_api_client(const cc_env_t *env, cc_db_t *db, const char *name, const char *tenant_id,
                          const char *role);

/** Retires the active license signing key (licensing.signing_keys, in one transaction
 * under the licensing service's advisory lock) and prints its kid. The licensing service
 * generates the successor, which signs every new license, on its next request; the
 * retired key stays published for CONSOLE_LICENSE_KEY_OVERLAP_DAYS. */
int ctl_rotate_license_key(const cc_env_t *env, cc_db_t *db);

#endif
