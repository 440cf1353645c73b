-- Signing-key rotation: a key is retired when a successor takes over signing (consolectl
-- rotate-license-key retires the active key; the service then generates the successor,
-- or rotates by itself after CONSOLE_LICENSE_KEY_ROTATION_DAYS). A retired key stays
-- published, and keeps verifying the licenses it signed, for CONSOLE_LICENSE_KEY_OVERLAP_DAYS
-- after retired_at. Rows are never deleted: every key carries the same product-key HMAC
-- secret (copied, resealed under the new kid), so product keys outlive rotations. Key
-- ages are on the licensing clock like every other licensing time.
ALTER TABLE signing_keys ADD COLUMN retired_at timestamptz;
ALTER TABLE signing_keys ALTER COLUMN created_at SET DEFAULT licensing_now();
