-- Sign-in state of users (the authentication API, the authorization code flow and
-- refresh tokens). Every secret is stored hashed (SHA-256 hex of a 256-bit random
-- token) or sealed (TOTP seeds, AES-256-GCM, aad "identity.factors:<id>"); these tables
-- are reached only by identity's own trusted code, so their policies admit the system
-- scope alone.

-- One row per user who has started activation: the password (argon2id, PHC string with
-- its parameters), the recovery question and its normalized answer (argon2id), the
-- security image, and the failed-attempt window behind LOCKED_OUT.
-- status: password_set (activation link used, MFA not yet enrolled) -> active.
CREATE TABLE credentials (
    user_id uuid PRIMARY KEY,
    msp_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('password_set', 'active')),
    password_hash text NOT NULL,
    password_set_at timestamptz NOT NULL DEFAULT now(),
    recovery_question text NOT NULL,
    recovery_answer_hash text NOT NULL,
    security_image text,
    failed_count integer NOT NULL DEFAULT 0,
    failed_since timestamptz,
    locked_until timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Second factors. A new kind is a new value of type plus its handler: secret_sealed
-- holds a TOTP seed, profile what other kinds need (a WebAuthn credential id and public
-- key, a phone number), last_step the last accepted TOTP time step (a code is accepted
-- once).
CREATE TABLE factors (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    type text NOT NULL CHECK (type IN ('totp', 'email', 'webauthn', 'sms', 'voice')),
    status text NOT NULL CHECK (status IN ('pending', 'active')),
    secret_sealed text,
    profile jsonb NOT NULL DEFAULT '{}',
    last_step bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    activated_at timestamptz,
    last_used_at timestamptz
);
CREATE INDEX factors_user ON factors (user_id);

-- Authentication transactions of the authentication API (the state_token).
-- status: MFA_ENROLL | MFA_REQUIRED (waiting for a factor) -> SUCCESS; attempts counts
-- wrong pass codes (the transaction dies after five).
CREATE TABLE authn_transactions (
    state_hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    status text NOT NULL CHECK (status IN ('MFA_ENROLL', 'MFA_REQUIRED', 'SUCCESS', 'FAILED')),
    attempts integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX authn_transactions_user ON authn_transactions (user_id);

-- One-time e-mail codes (the email factor): 6 digits, 10 minutes, 5 tries.
CREATE TABLE email_codes (
    factor_id uuid PRIMARY KEY,
    code_hash text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Session tokens: the proof of a completed sign-in (password + factor) that
-- /oauth2/authorize exchanges for a code; single use, 5 minutes.
CREATE TABLE session_tokens (
    token_hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    amr text[] NOT NULL,
    auth_time timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

-- Browser sessions at the OP (cookie console_session holds the token).
CREATE TABLE sessions (
    id uuid PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    user_id uuid NOT NULL,
    amr text[] NOT NULL,
    auth_time timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_user ON sessions (user_id);

-- A grant to a client: what a code or a refresh token chain was issued under. Access
-- tokens carry its id as "sid"; revoking it (logout, code reuse, refresh-token reuse,
-- RFC 7009 revocation) revokes the whole family.
CREATE TABLE token_families (
    id uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    client_id text NOT NULL,
    session_id uuid,
    scope text NOT NULL,
    amr text[] NOT NULL,
    auth_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX token_families_session ON token_families (session_id);

-- Authorization codes: single use, 2 minutes; a second use revokes the family issued
-- from the first.
CREATE TABLE authorization_codes (
    code_hash text PRIMARY KEY,
    client_id text NOT NULL,
    user_id uuid NOT NULL,
    session_id uuid,
    redirect_uri text NOT NULL,
    code_challenge text,
    nonce text,
    scope text NOT NULL,
    amr text[] NOT NULL,
    auth_time timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    family_id uuid
);

-- Refresh tokens: opaque, rotated on every use; presenting a rotated one again is reuse
-- and revokes its family.
CREATE TABLE refresh_tokens (
    token_hash text PRIMARY KEY,
    family_id uuid NOT NULL REFERENCES token_families (id),
    parent_hash text,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- RP-initiated logout redirects only to registered URIs.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris text[] NOT NULL DEFAULT '{}';

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['credentials', 'factors', 'authn_transactions', 'email_codes',
                             'session_tokens', 'sessions', 'token_families',
                             'authorization_codes', 'refresh_tokens'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (scope_system()) WITH CHECK (scope_system())',
                       t || '_system', t);
    END LOOP;
END $$;
