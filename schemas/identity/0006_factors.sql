-- Second factors, part 2 (issue 10): WebAuthn credentials and challenges, one-time
-- recovery codes. A WebAuthn factor keeps its credential in factors.profile
-- (credential_id and public_key as base64url, alg, sign_count, uv, aaguid, fmt,
-- attestation); a credential id belongs to one factor of one user only.
CREATE UNIQUE INDEX factors_webauthn_credential ON factors ((profile->>'credential_id'))
    WHERE type = 'webauthn' AND profile ? 'credential_id';

-- Outstanding WebAuthn challenges (32 random bytes, base64url; 5 minutes; one per
-- factor). A challenge is taken (deleted) by the first response to it, right or wrong,
-- so no response can be replayed. state_hash ties a sign-in challenge to its
-- authentication transaction; registration challenges have none.
CREATE TABLE webauthn_challenges (
    challenge text PRIMARY KEY,
    user_id uuid NOT NULL,
    factor_id uuid NOT NULL,
    purpose text NOT NULL CHECK (purpose IN ('register', 'authenticate')),
    state_hash text,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webauthn_challenges_factor ON webauthn_challenges (factor_id);

ALTER TABLE webauthn_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE webauthn_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY webauthn_challenges_system ON webauthn_challenges
    USING (scope_system())
    WITH CHECK (scope_system());

-- One-time recovery codes: ten per set, shown once; stored as HMAC-SHA256 under the
-- master key (a database copy alone cannot test guesses), each usable once. A new set
-- replaces the old one.
CREATE TABLE recovery_codes (
    code_hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    used_at timestamptz
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

ALTER TABLE recovery_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY recovery_codes_system ON recovery_codes
    USING (scope_system())
    WITH CHECK (scope_system());
