-- The users API (services/users): who added a user (as lists show it), the status a
-- deactivated user goes back to on reactivation, and the view the roles service reads
-- users through (grants need the user's home account and status).
ALTER TABLE users ADD COLUMN created_by_name text;
ALTER TABLE users ADD COLUMN deactivated_at timestamptz;
ALTER TABLE users ADD COLUMN deactivated_from text
    CHECK (deactivated_from IS NULL OR deactivated_from IN ('staged', 'active'));

CREATE INDEX users_tenant_created ON users (tenant_id, created_at, id);

-- Published for the other services (roles: grants and account admins). security_invoker:
-- the reader's row-level security applies.
CREATE VIEW user_directory WITH (security_invoker = true) AS
    SELECT id, tenant_id, msp_id, username, primary_email, first_name, last_name, status
    FROM users;
