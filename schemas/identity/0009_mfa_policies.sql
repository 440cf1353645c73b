-- Second-factor policy per account (issue 10): which factor types may be enrolled and
-- used to sign in, whether a second factor is required, and remember-device (not built:
-- always false). An MSP's row applies to the MSP and to every customer under it that has
-- no row of its own (a customer overrides the whole policy, not single fields); an
-- account without either gets the built-in default (every type, MFA required).
CREATE TABLE mfa_policies (
    tenant_id uuid PRIMARY KEY,
    msp_id uuid NOT NULL,
    allowed_factors text[] NOT NULL
        CHECK (cardinality(allowed_factors) BETWEEN 1 AND 5
               AND allowed_factors <@ ARRAY['totp', 'email', 'webauthn', 'sms', 'voice']),
    mfa_required boolean NOT NULL DEFAULT true,
    remember_device boolean NOT NULL DEFAULT false CHECK (NOT remember_device),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL
);
CREATE INDEX mfa_policies_msp ON mfa_policies (msp_id);

ALTER TABLE mfa_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE mfa_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY mfa_policies_system ON mfa_policies
    USING (scope_system())
    WITH CHECK (scope_system());
