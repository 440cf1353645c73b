-- Usage ingestion and billing plans (services/usage).
-- usage:write is for data-plane API clients (backup agents, storage services) that post
-- usage samples and job events for the tenants under their grant; billing:manage sets
-- billing plans. Two built-in roles for ingestion clients: on the platform (every MSP's
-- tenants) and on one MSP (its customers).
-- The catalogue has no write policy (it changes only here): lifted for this transaction.
ALTER TABLE permissions NO FORCE ROW LEVEL SECURITY;
INSERT INTO permissions (id, description, position) VALUES
 ('usage:write', 'Post usage samples and backup job events (data-plane API clients)', 14),
 ('billing:manage', 'Set billing plans (price, unit, period, currency)', 15);
ALTER TABLE permissions FORCE ROW LEVEL SECURITY;

-- Built-in roles are written in system scope only (roles_write).
SELECT set_config('console.system', 'on', true);

INSERT INTO roles (id, name, account_kind, builtin, permissions) VALUES
 ('usage_writer', 'Usage Writer', 'platform', true, '{usage:write}'),
 ('msp_usage_writer', 'MSP Usage Writer', 'msp', true, '{usage:write}');

UPDATE roles SET permissions = permissions || '{billing:manage}'::text[]
    WHERE builtin AND id IN ('msp_super_admin', 'msp_admin', 'super_admin', 'admin');
SELECT set_config('console.system', 'off', true);
