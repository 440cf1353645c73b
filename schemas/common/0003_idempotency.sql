-- Idempotency keys of schema @schema@ (API.md: POSTs that create accept Idempotency-Key;
-- a replay returns the first answer). The first answer is stored in the same transaction
-- as the change it reports, so a key is remembered exactly when its change happened.
-- Keys are per principal and kept 24 hours; an older row is ignored and replaced.
CREATE TABLE @schema@.idempotency_keys (
    principal_id text NOT NULL,
    key text NOT NULL,
    request_hash text NOT NULL,
    status integer NOT NULL,
    body text NOT NULL,
    location text,
    etag text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal_id, key)
);

ALTER TABLE @schema@.idempotency_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE @schema@.idempotency_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_own ON @schema@.idempotency_keys
    USING (@schema@.scope_system()
           OR principal_id = current_setting('console.principal_id', true))
    WITH CHECK (@schema@.scope_system()
                OR principal_id = current_setting('console.principal_id', true));
