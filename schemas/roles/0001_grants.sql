-- Grants: a role held by a principal (user or API client) on a tenant. The role
-- catalogue and its permissions arrive with the users-and-roles work; the bootstrap
-- grant of platform_super_admin lives here from the start.
CREATE TABLE grants (
    id uuid PRIMARY KEY,
    principal_id uuid NOT NULL,
    principal_kind text NOT NULL CHECK (principal_kind IN ('user', 'api_client')),
    role text NOT NULL,
    tenant_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    UNIQUE (principal_id, role, tenant_id)
);

CREATE INDEX grants_tenant ON grants (tenant_id);

ALTER TABLE grants ENABLE ROW LEVEL SECURITY;
ALTER TABLE grants FORCE ROW LEVEL SECURITY;
CREATE POLICY grants_scope ON grants
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));
