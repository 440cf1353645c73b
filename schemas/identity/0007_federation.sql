-- Federation: a tenant (MSP or customer) may connect its own upstream OpenID Provider.
-- Identity is then a relying party (authorization code + PKCE) for the people of that
-- tenant's e-mail domains. The client secret is sealed with AES-256-GCM under the
-- master key (aad "identity.identity_providers:<tenant_id>"); the endpoints come from
-- the upstream's discovery document, fetched and checked when the configuration is saved.
CREATE TABLE identity_providers (
    tenant_id uuid PRIMARY KEY,
    msp_id uuid NOT NULL,
    issuer text NOT NULL CHECK (char_length(issuer) BETWEEN 8 AND 512),
    client_id text NOT NULL CHECK (char_length(client_id) BETWEEN 1 AND 255),
    client_secret_sealed text NOT NULL,
    scopes text[] NOT NULL,
    claim_mappings jsonb NOT NULL DEFAULT '[]',
    email_domains text[] NOT NULL,
    mfa_acr_values text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    authorization_endpoint text NOT NULL,
    token_endpoint text NOT NULL,
    userinfo_endpoint text,
    jwks_uri text NOT NULL,
    token_auth_method text NOT NULL CHECK (token_auth_method IN ('client_secret_basic',
                                                                'client_secret_post')),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1
);

-- Home-realm discovery: an e-mail domain belongs to at most one tenant's provider, so a
-- typed address sends its owner to exactly one upstream, and no upstream can claim the
-- addresses of another tenant.
CREATE TABLE identity_provider_domains (
    domain text PRIMARY KEY CHECK (domain = lower(domain) AND char_length(domain) BETWEEN 3 AND 253),
    tenant_id uuid NOT NULL REFERENCES identity_providers (tenant_id) ON DELETE CASCADE,
    msp_id uuid NOT NULL
);
CREATE INDEX identity_provider_domains_tenant ON identity_provider_domains (tenant_id);

-- A sign-in sent to an upstream, waiting for its callback: the state (in the URL) and the
-- browser binding (an HttpOnly cookie) are stored hashed; the nonce and the PKCE verifier
-- live here only. Single use, 10 minutes.
CREATE TABLE federation_logins (
    state_hash text PRIMARY KEY,
    browser_hash text NOT NULL,
    tenant_id uuid NOT NULL,
    nonce text NOT NULL,
    code_verifier text NOT NULL,
    continue_query text,
    login_hint text,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);

-- Who an upstream subject is here: (tenant, issuer, sub) -> the console user, created
-- just in time on the first sign-in or linked to the tenant's user of that e-mail.
CREATE TABLE federated_identities (
    tenant_id uuid NOT NULL,
    issuer text NOT NULL,
    subject text NOT NULL,
    user_id uuid NOT NULL UNIQUE,
    msp_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz,
    PRIMARY KEY (tenant_id, issuer, subject)
);

ALTER TABLE identity_providers ENABLE ROW LEVEL SECURITY;
ALTER TABLE identity_providers FORCE ROW LEVEL SECURITY;
CREATE POLICY identity_providers_scope ON identity_providers
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['identity_provider_domains', 'federation_logins',
                             'federated_identities'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
CREATE POLICY identity_provider_domains_scope ON identity_provider_domains
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));
CREATE POLICY federation_logins_system ON federation_logins
    USING (scope_system()) WITH CHECK (scope_system());
CREATE POLICY federated_identities_system ON federated_identities
    USING (scope_system()) WITH CHECK (scope_system());
