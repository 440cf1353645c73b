-- Forgotten passwords: a mailed single-use link (stored hashed, 1 hour) AND the answer to
-- the recovery question are both needed to set a new password; the second factor is
-- still required afterwards. attempts counts wrong answers (the link dies after five).
CREATE TABLE recovery_tokens (
    token_hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recovery_tokens_user ON recovery_tokens (user_id);

ALTER TABLE recovery_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY recovery_tokens_system ON recovery_tokens
    USING (scope_system())
    WITH CHECK (scope_system());
