-- "View as end-user admin" sessions: who acted as the admin of which customer, why, and
-- until when. The token of a session carries sub = the session id and act.sub = the real
-- user, so every audit record under it names both.
CREATE TABLE impersonations (
    id uuid PRIMARY KEY,
    actor_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    read_only boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    request_id text
);
CREATE INDEX impersonations_tenant ON impersonations (tenant_id, created_at);

ALTER TABLE impersonations ENABLE ROW LEVEL SECURITY;
ALTER TABLE impersonations FORCE ROW LEVEL SECURITY;
CREATE POLICY impersonations_scope ON impersonations
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));
