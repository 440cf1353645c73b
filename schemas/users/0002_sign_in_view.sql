-- What the identity service reads about a user to sign them in and fill ID tokens.
-- Published by the users schema so that identity depends on this view, not on the
-- table's layout. security_invoker: the reader's row-level security applies.
CREATE VIEW sign_in_profiles WITH (security_invoker = true) AS
    SELECT id, tenant_id, msp_id, username, primary_email, first_name, last_name, language,
           time_zone, status
    FROM users;
