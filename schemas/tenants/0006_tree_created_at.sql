-- tenant_tree publishes created_at too (the usage service's account-details report read it
-- with a second key lookup per customer from the table behind the view).
CREATE OR REPLACE VIEW tenant_tree WITH (security_barrier) AS
    SELECT id, parent_id, kind, name, path, msp_id, status, allow_msp_access, created_at
    FROM tenants;
