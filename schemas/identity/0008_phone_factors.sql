-- SMS and voice-call factors (issue 10). A phone factor keeps its E.164 number in
-- factors.profile ({"phone": "+81…"}); its one-time codes live in email_codes like the
-- e-mail factor's (one live code per factor, 5 tries), but shorter-lived (5 minutes) and
-- stored as HMAC-SHA256 under the master key, so a copy of the database cannot test the
-- million possible codes.
--
-- Every code sent to a phone is recorded here, for the rate limits of both the user and
-- the number (CONSOLE_SMS_*: a minimum gap per user, a cap per user and per number per
-- hour). Rows older than a day go when the same user or number is sent to again.
CREATE TABLE phone_code_sends (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    phone text NOT NULL,
    channel text NOT NULL CHECK (channel IN ('sms', 'voice')),
    sent_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX phone_code_sends_user ON phone_code_sends (user_id, sent_at);
CREATE INDEX phone_code_sends_phone ON phone_code_sends (phone, sent_at);

ALTER TABLE phone_code_sends ENABLE ROW LEVEL SECURITY;
ALTER TABLE phone_code_sends FORCE ROW LEVEL SECURITY;
CREATE POLICY phone_code_sends_system ON phone_code_sends
    USING (scope_system())
    WITH CHECK (scope_system());
