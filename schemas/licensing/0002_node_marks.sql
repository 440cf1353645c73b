-- Per-node license use (FAQ 3.12): the protected machines a server's product counts
-- against its licenses, as the product reports them at check-in. A mark released in the
-- portal stays (released_at set) until the product stops reporting it, and every
-- check-in tells the product which of its marks to drop.
CREATE TABLE node_marks (
    activation_id uuid NOT NULL REFERENCES activations (id) ON DELETE CASCADE,
    node text NOT NULL CHECK (char_length(node) BETWEEN 1 AND 255),
    msp_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    marked_at timestamptz NOT NULL DEFAULT licensing_now(),
    released_at timestamptz,
    PRIMARY KEY (activation_id, node)
);
ALTER TABLE node_marks ENABLE ROW LEVEL SECURITY;
ALTER TABLE node_marks FORCE ROW LEVEL SECURITY;
CREATE POLICY node_marks_scope ON node_marks USING (scope_tree_visible(msp_id, tenant_path))
    WITH CHECK (scope_tree_visible(msp_id, tenant_path));
