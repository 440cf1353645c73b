/*
 * Idempotency-Key for POSTs that create (API.md conventions): a client that retries with
 * the same key gets the first answer back instead of a second resource.
 *
 * In a creating handler:
 *   if (cc_idem_replay(req) != 0) return;        // answered: a replay, or a bad key
 *   ... cc_db_begin, the change ...
 *   cc_idem_remember(req, 201, body, location, etag) inside the same transaction
 *   ... commit, answer ...
 * Keys are per principal, 1-255 visible ASCII characters, kept 24 hours. The same key
 * with a different request (method, path, body) answers 422 idempotency_key_reused; a
 * concurrent request with the same key that commits first makes the later one answer
 * 409 conflict (retry it to get the first answer).
 */
#ifndef CONSOLE_IDEMPOTENCY_H
#define CONSOLE_IDEMPOTENCY_H

#include <jansson.h>

#include "console/http.h"

/**
 * Looks the request's Idempotency-Key up (none: returns 0 at once). Returns 1 when it
 * answered (the stored answer, 422 for a different request, 400 for a malformed key, or
 * a database error), 0 when the handler should go on.
 */
int cc_idem_replay(cc_req_t *req);

/**
 * Inside the handler's open transaction: remembers the answer (body borrowed) for the
 * request's key, if it has one. Returns 0, CC_ECONFLICT (the same key committed by a
 * concurrent request: roll back and answer 409) or a database error.
 */
int cc_idem_remember(cc_req_t *req, int status, json_t *body, const char *location,
                     const char *etag);

#endif
