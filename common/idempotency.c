#include "console/idempotency.h"

#include <stdlib.h>
#include <string.h>

#include "console/authz.h"
#include "console/crypto.h"
#include "console/log.h"

static const cc_stmt_t q_find =
    CC_STMT("cc_idem_find",
            "SELECT request_hash, status, body, location, etag FROM idempotency_keys"
            " WHERE principal_id = $1 AND key = $2 AND created_at > now() - interval '24 hours'",
            2);
static const cc_stmt_t q_remember = CC_STMT(
    "cc_idem_remember",
    "INSERT INTO idempotency_keys AS k (principal_id, key, request_hash, status, body, location,"
    " etag) VALUES ($1, $2, $3, $4::int, $5, $6, $7)"
    " ON CONFLICT (principal_id, key) DO UPDATE SET request_hash = EXCLUDED.request_hash,"
    " status = EXCLUDED.status, body = EXCLUDED.body, location = EXCLUDED.location,"
    " etag = EXCLUDED.etag, created_at = now()"
    " WHERE k.created_at <= now() - interval '24 hours'",
    7);

/* The key, or NULL (none); *bad when present but malformed. */
static const char *key_of(cc_req_t *req, bool *bad)
{
    *bad = false;
    const char *k = cc_req_header(req, "idempotency-key");
    if (k == NULL)
        return NULL;
    size_t n = strlen(k);
    *bad = n == 0 || n > 255;
    for (size_t i = 0; i < n && !*bad; i++)
        *bad = k[i] < 0x21 || k[i] > 0x7e;
    return k;
}

/* SHA-256 of what makes two requests the same request. */
static void request_hash(cc_req_t *req, char out[65])
{
    cc_buf_t b;
    cc_buf_init(&b);
    cc_buf_printf(&b, "%s\n%s?%s\n", req->method, req->path, req->query);
    cc_buf_append(&b, req->body ? req->body : "", req->body_len);
    cc_sha256_hex(b.data, b.len, out);
    cc_buf_free(&b);
}

int cc_idem_replay(cc_req_t *req)
{
    bool bad;
    const char *key = key_of(req, &bad);
    if (key == NULL)
        return 0;
    if (bad || req->principal == NULL) {
        cc_res_problem(req, CC_ERR_INVALID_PARAMETER,
                       "Idempotency-Key must be 1-255 visible ASCII characters.");
        return 1;
    }
    PGresult *res;
    const char *params[] = {req->principal->sub, key};
    int rc = cc_db_read(req->db, req->pool, cc_req_scope(req), &q_find, params, &res);
    if (rc != 0) {
        cc_res_db_error(req, rc);
        return 1;
    }
    if (PQntuples(res) == 0)
        return 0;
    char hash[65];
    request_hash(req, hash);
    if (!cc_ct_equal(hash, PQgetvalue(res, 0, 0), 64) || strlen(PQgetvalue(res, 0, 0)) != 64) {
        cc_res_problem(req, CC_ERR_IDEMPOTENCY_KEY_REUSED,
                       "This Idempotency-Key was used with a different request.");
        return 1;
    }
    if (cc_db_get(res, 0, 3))
        cc_res_header(req, "location", cc_db_get(res, 0, 3));
    if (cc_db_get(res, 0, 4))
        cc_res_header(req, "etag", cc_db_get(res, 0, 4));
    cc_res_header(req, "idempotent-replayed", "true");
    const char *body = PQgetvalue(res, 0, 2);
    cc_res_text(req, atoi(PQgetvalue(res, 0, 1)), "application/json", body, strlen(body));
    return 1;
}

int cc_idem_remember(cc_req_t *req, int status, json_t *body, const char *location,
                     const char *etag)
{
    bool bad;
    const char *key = key_of(req, &bad);
    if (key == NULL || bad || req->principal == NULL)
        return 0;
    char hash[65], st[16];
    request_hash(req, hash);
    snprintf(st, sizeof(st), "%d", status);
    char *text = json_dumps(body, JSON_COMPACT);
    const char *params[] = {req->principal->sub, key, hash, st, text, location, etag};
    PGresult *res;
    int rc = cc_db_query(req->db, req->pool, &q_remember, params, &res);
    free(text);
    if (rc == 0 && strcmp(PQcmdTuples(res), "1") != 0)
        rc = CC_ECONFLICT;
    return rc;
}
