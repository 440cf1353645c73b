-- licensing:read: the licensing view of an account (its orders, activated servers, license
-- pools, product keys, and the licenses an MSP sub-allocated to it) without managing it.
-- A customer's Tenant Admin reads its own licensing; the roles that manage licensing read
-- it too (the licensing service also takes licensing:manage as the right to read).
-- The catalogue has no write policy (it changes only here): lifted for this transaction.
ALTER TABLE permissions NO FORCE ROW LEVEL SECURITY;
INSERT INTO permissions (id, description, position)
    SELECT 'licensing:read', 'See orders, activated servers, license pools and product keys',
           max(position) + 1 FROM permissions;
ALTER TABLE permissions FORCE ROW LEVEL SECURITY;

-- Built-in roles are written in system scope only (roles_write).
SELECT set_config('console.system', 'on', true);
UPDATE roles SET permissions = permissions || '{licensing:read}'::text[]
    WHERE builtin AND id IN ('tenant_admin', 'msp_super_admin', 'super_admin');
SELECT set_config('console.system', 'off', true);
