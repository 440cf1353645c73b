-- The tenant tree: the platform (root, the vendor) -> MSP or direct accounts ->
-- customers, and deeper levels later. path is an ltree of ids (hyphens removed, as
-- ltree labels allow only [A-Za-z0-9_]); msp_id is the root account under the
-- platform (the platform row points at itself): the distribution and RLS key.
CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    parent_id uuid REFERENCES tenants (id),
    kind text NOT NULL CHECK (kind IN ('platform', 'msp', 'customer', 'direct')),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    name_key text NOT NULL,
    path ltree NOT NULL,
    msp_id uuid NOT NULL,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    created_by_name text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1,
    CHECK ((kind = 'platform') = (parent_id IS NULL))
);

CREATE UNIQUE INDEX tenants_one_platform ON tenants ((true)) WHERE kind = 'platform';
CREATE UNIQUE INDEX tenants_sibling_name ON tenants (parent_id, name_key) WHERE status <> 'deleted';
CREATE INDEX tenants_path ON tenants USING gist (path);
CREATE INDEX tenants_msp ON tenants (msp_id);

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenants_scope ON tenants
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));
