-- Subtree scope for the rows of schema @schema@ that belong to one account: a row with
-- the account's root (msp_id) and ltree path is visible in system and platform scope,
-- to a caller whose grants cover its whole root account (console.msp_wide), and
-- otherwise only inside the subtrees listed in console.paths (space-separated ltree
-- paths that cc_db_begin() sets from the caller's grants). The same rule as the tenants
-- schema's scope_tree_visible, for the other schemas' per-account rows.
CREATE OR REPLACE FUNCTION @schema@.scope_path_visible(row_msp uuid, row_path ltree)
    RETURNS boolean
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
