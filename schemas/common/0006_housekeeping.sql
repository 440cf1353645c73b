-- Housekeeping (common/housekeeping.c): outbox events past the outbox retention and
-- idempotency keys past their 24 hours are deleted hourly, in system scope only.
CREATE POLICY outbox_prune ON @schema@.outbox FOR DELETE USING (@schema@.scope_system());
CREATE INDEX outbox_created_at ON @schema@.outbox (created_at);
CREATE INDEX idempotency_keys_created_at ON @schema@.idempotency_keys (created_at);
