-- Audit records are kept CONSOLE_AUDIT_RETENTION_DAYS (default 400); a job of each
-- service removes older ones from its own schema, in system scope only.
CREATE POLICY audit_events_retention ON @schema@.audit_events FOR DELETE
    USING (@schema@.scope_system());
CREATE INDEX audit_events_at ON @schema@.audit_events (at);
