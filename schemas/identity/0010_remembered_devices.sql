-- Remember-device (issue 10): an account's policy may let a person skip the second factor
-- on a browser where they verified one and ticked "remember this browser", for
-- remember_device_days (1..90). The browser keeps a random token in an HttpOnly cookie;
-- only its HMAC-SHA256 under the master key is stored here, bound to the user. A row is
-- used only for its own user, only while the policy still allows remembering and only if
-- it was made after the password was last set; the rows go when the password is reset, the
-- factors are reset, or the user is deactivated or deleted. MSP and platform staff are
-- never remembered (docs/architecture.md).
ALTER TABLE mfa_policies DROP CONSTRAINT mfa_policies_remember_device_check;
ALTER TABLE mfa_policies
    ADD COLUMN remember_device_days integer NOT NULL DEFAULT 30
        CHECK (remember_device_days BETWEEN 1 AND 90);

CREATE TABLE remembered_devices (
    id uuid PRIMARY KEY,
    token_hash text NOT NULL UNIQUE,
    user_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    label text NOT NULL,  -- the browser's User-Agent (200 characters at most), shown to its user
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    expires_at timestamptz NOT NULL
);
CREATE INDEX remembered_devices_user ON remembered_devices (user_id, created_at);

ALTER TABLE remembered_devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE remembered_devices FORCE ROW LEVEL SECURITY;
CREATE POLICY remembered_devices_system ON remembered_devices
    USING (scope_system())
    WITH CHECK (scope_system());
