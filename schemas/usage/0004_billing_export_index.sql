-- The export serves a closed period's stored lines in its order (tenant name, tenant id,
-- resource) through one cursor: this index gives that order without sorting the period's
-- lines (0002's primary key is by tenant id).
CREATE INDEX billing_lines_export ON billing_lines (period, tenant_name, tenant_id, resource);
