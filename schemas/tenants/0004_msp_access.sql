-- The customer's consent to "view as end-user admin": when false, the MSP cannot
-- impersonate the customer's admin (identity refuses with msp_access_refused). Only the
-- customer's own administrators change it (services/tenants, PATCH).
ALTER TABLE tenants ADD COLUMN allow_msp_access boolean NOT NULL DEFAULT true;

CREATE OR REPLACE VIEW tenant_tree WITH (security_barrier) AS
    SELECT id, parent_id, kind, name, path, msp_id, status, allow_msp_access FROM tenants;
