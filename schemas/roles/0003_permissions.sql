-- The permission catalogue (GET /api/v1/permissions): every permission a role may list.
-- Roles name permissions from here; custom roles may not invent others.
CREATE TABLE permissions (
    id text PRIMARY KEY CHECK (id ~ '^[a-z]+:[a-z]+$'),
    description text NOT NULL,
    position integer NOT NULL UNIQUE
);

INSERT INTO permissions (id, description, position) VALUES
 ('tenants:read', 'See accounts, their status, usage columns and summaries', 1),
 ('tenants:write', 'Add, rename, suspend and resume accounts', 2),
 ('tenants:delete', 'Delete accounts into the recycle bin and restore them', 3),
 ('tenants:impersonate', 'View as end-user admin: act inside a customer account, audited', 4),
 ('users:manage', 'Add, edit, deactivate users; resend activation', 5),
 ('access:manage', 'Grant roles and define custom roles', 6),
 ('branding:manage', 'Set the brand of the console, the login pages and mail', 7),
 ('licensing:manage', 'Orders, activations, license pools and product keys', 8),
 ('quotas:manage', 'Set quotas, enforcement and alert thresholds', 9),
 ('reports:read', 'Dashboards, jobs, logs and reports', 10),
 ('restore:run', 'Run restores', 11),
 ('billing:read', 'Billing exports and rated usage', 12),
 ('audit:read', 'The audit log', 13);

ALTER TABLE permissions ENABLE ROW LEVEL SECURITY;
ALTER TABLE permissions FORCE ROW LEVEL SECURITY;
CREATE POLICY permissions_read ON permissions FOR SELECT USING (true);

-- Custom role names are unique within their root account, compared case-insensitively.
CREATE UNIQUE INDEX roles_custom_name ON roles (msp_id, lower(name)) WHERE NOT builtin;
-- Every permission a role lists exists in the catalogue ('*' is the platform's).
CREATE FUNCTION permissions_known(perms text[]) RETURNS boolean
    LANGUAGE sql STABLE SET search_path FROM CURRENT
    AS $$ SELECT NOT EXISTS (SELECT 1 FROM unnest(perms) p
                             WHERE p <> '*' AND p NOT IN (SELECT id FROM permissions)) $$;
ALTER TABLE roles ADD CONSTRAINT roles_permissions_known CHECK (permissions_known(permissions));
