-- Users and their profiles. A user's id is its `sub` in every token identity issues.
-- Usernames are unique platform-wide, compared case-insensitively.
CREATE TABLE users (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    username text NOT NULL CHECK (char_length(username) BETWEEN 1 AND 254),
    primary_email text NOT NULL CHECK (char_length(primary_email) BETWEEN 3 AND 254),
    first_name text NOT NULL,
    last_name text NOT NULL,
    language text NOT NULL DEFAULT 'en',
    time_zone text NOT NULL DEFAULT 'UTC',
    status text NOT NULL DEFAULT 'staged' CHECK (status IN ('staged', 'active', 'deactivated')),
    profile jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1
);

CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE INDEX users_tenant ON users (tenant_id);

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_scope ON users
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));
