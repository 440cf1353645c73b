-- Signing keys: ES256 key pairs; the private key sealed with AES-256-GCM under the
-- master key (aad "identity.signing_keys:<kid>"). A retired key stays published until
-- expires_at, so tokens it signed still verify until they expire.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    alg text NOT NULL DEFAULT 'ES256' CHECK (alg = 'ES256'),
    private_key_sealed text NOT NULL,
    public_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    retired_at timestamptz,
    expires_at timestamptz
);

-- OAuth clients: the first-party public client console-web, and API clients
-- (confidential, client_credentials) that act in one tenant with one role. Secrets are
-- 256-bit random values, so a SHA-256 digest is a sufficient one-way hash (a password
-- KDF would only slow every token request); compared in constant time.
CREATE TABLE clients (
    id uuid PRIMARY KEY,
    client_id text NOT NULL UNIQUE CHECK (char_length(client_id) BETWEEN 1 AND 128),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('public', 'confidential')),
    secret_hash text,
    tenant_id uuid,
    msp_id uuid,
    role text,
    scopes text[] NOT NULL DEFAULT '{}',
    grant_types text[] NOT NULL,
    redirect_uris text[] NOT NULL DEFAULT '{}',
    first_party boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    revoked_at timestamptz,
    CHECK ((kind = 'confidential') = (secret_hash IS NOT NULL)),
    CHECK ((tenant_id IS NULL) = (msp_id IS NULL))
);

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE clients FORCE ROW LEVEL SECURITY;
CREATE POLICY clients_scope ON clients
    USING (msp_id IS NULL OR scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));

-- Single-use activation links (the token itself is only ever mailed or printed).
CREATE TABLE activation_tokens (
    token_hash text PRIMARY KEY,
    user_id uuid NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activation_tokens_user ON activation_tokens (user_id);

ALTER TABLE activation_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE activation_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY activation_tokens_system ON activation_tokens
    USING (scope_system())
    WITH CHECK (scope_system());
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY signing_keys_system ON signing_keys
    USING (scope_system())
    WITH CHECK (scope_system());
