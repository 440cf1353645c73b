-- The tenant lifecycle (suspend, delete into a recycle bin, restore, purge), names
-- compared case- and width-insensitively, subtree-level row-level security, and the
-- view other services read the tree through.

-- The comparison key of a name: NFKC folds full-width Latin and half-width katakana to
-- their usual forms (ＡＢＣ = ABC, ｶｲｼｬ = カイシャ), lower() folds case. IMMUTABLE so it
-- can back indexes; the database is UTF-8 (deploy/local/pg).
CREATE FUNCTION name_key(name text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(normalize(name, NFKC)) $$;

UPDATE tenants SET name_key = name_key(name);

ALTER TABLE tenants
    ADD COLUMN updated_by text,
    ADD COLUMN suspended_at timestamptz,
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN deleted_by text,
    ADD COLUMN deleted_by_name text,
    ADD COLUMN purge_at timestamptz,
    ADD CONSTRAINT tenants_name_key CHECK (name_key = name_key(name)),
    ADD CONSTRAINT tenants_deleted CHECK ((status = 'deleted') = (purge_at IS NOT NULL));

-- Lists are keyset-paginated per parent: by name (then id) or by creation (then id), in
-- the database's collation. Name searches (prefix or substring) use the trigram index.
CREATE INDEX tenants_parent_name ON tenants (parent_id, name_key, id);
CREATE INDEX tenants_parent_created ON tenants (parent_id, created_at, id);
-- Substring search (LIKE '%abc%') on any script, through trigrams.
CREATE INDEX tenants_name_trgm ON tenants USING gin (name_key gin_trgm_ops);
CREATE INDEX tenants_purge ON tenants (purge_at) WHERE status = 'deleted';

-- Subtree-level row-level security. console.msp_wide is on for callers holding a grant
-- on their root account (it is checked first, so most requests never reach the ltree
-- test); other callers see the subtrees listed in console.paths (space-separated
-- ltree paths), and nothing when it is empty.
CREATE FUNCTION scope_tree_visible(row_msp uuid, row_path ltree) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(current_setting('console.system', true), '') = 'on'
        OR coalesce(current_setting('console.platform', true), '') = 'on'
        OR (row_msp IS NOT NULL
            AND row_msp::text = current_setting('console.msp_id', true)
            AND (coalesce(current_setting('console.msp_wide', true), '') = 'on'
                 OR row_path <@ ANY (string_to_array(
                        nullif(current_setting('console.paths', true), ''), ' ')::ltree[])))
    $$;

DROP POLICY tenants_scope ON tenants;
CREATE POLICY tenants_scope ON tenants
    USING (scope_tree_visible(msp_id, path))
    WITH CHECK (scope_tree_visible(msp_id, path));

-- Published for the other services (the common authorization module reads grants'
-- tenants and the caller's home tenant through it). Nothing else of this schema is API.
CREATE VIEW tenant_tree WITH (security_barrier) AS
    SELECT id, parent_id, kind, name, path, msp_id, status FROM tenants;
