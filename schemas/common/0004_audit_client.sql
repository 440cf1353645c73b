-- Where a change came from: the client's address (the gateway's X-Forwarded-For entry)
-- and its user agent (truncated), on every audit record of schema @schema@.
ALTER TABLE @schema@.audit_events
    ADD COLUMN client_addr text,
    ADD COLUMN user_agent text;
