-- The role catalogue: every role with its permission list. The built-in roles (ids fixed
-- by API.md, meanings in DOMAIN.md section 2) are rows here, so custom roles per MSP are
-- only more rows, and authorization (common/authz.c) reads permissions as data.
-- account_kind: the kind of tenant a grant of the role may be placed on.
CREATE TABLE roles (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9_:-]{1,64}$'),
    name text NOT NULL,
    account_kind text NOT NULL CHECK (account_kind IN ('platform', 'msp', 'customer', 'direct')),
    builtin boolean NOT NULL DEFAULT false,
    msp_id uuid,
    permissions text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (builtin = (msp_id IS NULL))
);

-- '*' is every permission everywhere (the platform operator). A grant covers its tenant
-- and the tenant's descendants.
INSERT INTO roles (id, name, account_kind, builtin, permissions) VALUES
 ('platform_super_admin', 'Platform Super Admin', 'platform', true, '{*}'),
 ('msp_super_admin', 'MSP Super Admin', 'msp', true,
  '{tenants:read,tenants:write,tenants:delete,tenants:impersonate,users:manage,access:manage,branding:manage,licensing:manage,quotas:manage,reports:read,restore:run,billing:read,audit:read}'),
 ('msp_admin', 'MSP Admin', 'msp', true,
  '{tenants:read,tenants:write,tenants:delete,tenants:impersonate,quotas:manage,reports:read,restore:run,billing:read,audit:read}'),
 ('msp_monitor', 'MSP Monitor', 'msp', true, '{tenants:read,reports:read,audit:read}'),
 ('msp_recovery', 'MSP Recovery', 'msp', true, '{tenants:read,reports:read,audit:read,restore:run}'),
 ('msp_account_admin', 'MSP Account Admin', 'customer', true,
  '{tenants:read,tenants:write,tenants:impersonate,quotas:manage,reports:read,restore:run,audit:read}'),
 ('msp_account_monitor', 'MSP Account Monitor', 'customer', true, '{tenants:read,reports:read,audit:read}'),
 ('msp_account_recovery', 'MSP Account Recovery', 'customer', true,
  '{tenants:read,reports:read,audit:read,restore:run}'),
 ('tenant_admin', 'Tenant Admin', 'customer', true,
  '{tenants:read,users:manage,reports:read,restore:run,audit:read}'),
 ('tenant_monitor', 'Tenant Monitor', 'customer', true, '{tenants:read,reports:read}'),
 ('tenant_recovery', 'Tenant Recovery', 'customer', true, '{tenants:read,reports:read,restore:run}'),
 ('super_admin', 'Super Admin', 'direct', true,
  '{tenants:read,tenants:write,users:manage,access:manage,branding:manage,licensing:manage,quotas:manage,reports:read,restore:run,billing:read,audit:read}'),
 ('admin', 'Admin', 'direct', true,
  '{tenants:read,tenants:write,quotas:manage,reports:read,restore:run,billing:read,audit:read}'),
 ('monitor', 'Monitor', 'direct', true, '{tenants:read,reports:read,audit:read}'),
 ('recovery', 'Recovery', 'direct', true, '{tenants:read,reports:read,audit:read,restore:run}');

-- Built-in rows change only through migrations (system scope); custom roles within the
-- MSP that owns them.
ALTER TABLE roles ENABLE ROW LEVEL SECURITY;
ALTER TABLE roles FORCE ROW LEVEL SECURITY;
CREATE POLICY roles_read ON roles FOR SELECT USING (builtin OR scope_msp_visible(msp_id));
CREATE POLICY roles_write ON roles FOR ALL
    USING (scope_system() OR (NOT builtin AND scope_msp_visible(msp_id)))
    WITH CHECK (scope_system() OR (NOT builtin AND scope_msp_visible(msp_id)));

-- Published for the other services: a principal's grants with their permissions.
CREATE VIEW principal_grants WITH (security_barrier) AS
    SELECT g.principal_id, g.role, g.tenant_id, g.msp_id, r.permissions
    FROM grants g JOIN roles r ON r.id = g.role;
