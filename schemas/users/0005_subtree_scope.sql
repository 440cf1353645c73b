-- Row-level security down to the account: a user row carries its home account's path, and
-- a caller confined to some customers (a tenant admin, an account admin) sees only the
-- users of those customers, whatever a statement forgets. Callers whose grants cover the
-- whole root account (MSP roles) and the platform see the whole tree as before.
SELECT set_config('console.system', 'on', true); -- this migration's backfill sees every row

ALTER TABLE users ADD COLUMN tenant_path ltree;

-- The path comes from the tenants service's published tree, read at insert in the
-- inserter's scope (an account it cannot see leaves the path empty, and the policy then
-- refuses the row); an account's path never changes. Resolved when the trigger runs, so
-- this schema does not need the tenants schema at migration time.
CREATE FUNCTION users_fill_tenant_path() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    SELECT t.path INTO NEW.tenant_path FROM tenants.tenant_tree t WHERE t.id = NEW.tenant_id;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_tenant_path BEFORE INSERT ON users
    FOR EACH ROW EXECUTE FUNCTION users_fill_tenant_path();

DO $$
BEGIN
    IF to_regclass('tenants.tenant_tree') IS NOT NULL THEN
        UPDATE users u SET tenant_path = t.path
            FROM tenants.tenant_tree t WHERE t.id = u.tenant_id;
    END IF;
END
$$;

CREATE INDEX users_tenant_path ON users USING gist (tenant_path);

DROP POLICY users_scope ON users;
CREATE POLICY users_scope ON users
    USING (scope_path_visible(msp_id, tenant_path))
    WITH CHECK (scope_path_visible(msp_id, tenant_path));
