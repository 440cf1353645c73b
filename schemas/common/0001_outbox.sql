-- Common template, applied to every service schema: @schema@ is replaced by the
-- (validated) schema name. The runtime role owns these tables (it runs the migrations).

-- Transactional outbox: events written in the same transaction as the change.
CREATE TABLE @schema@.outbox (
    id bigserial PRIMARY KEY,
    type text NOT NULL,
    aggregate_id text,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Where each consumer of this service stands in each source schema's outbox.
CREATE TABLE @schema@.outbox_positions (
    consumer text,
    source_schema text,
    last_id bigint NOT NULL DEFAULT 0,
    updated_at timestamptz,
    PRIMARY KEY (consumer, source_schema)
);

-- Consumers read ids in increasing order and remember the last one, so ids must become
-- visible in increasing order: a transaction that took id 10 and commits after the one
-- that took id 11 would otherwise be skipped. Writers therefore take a transaction-scoped
-- advisory lock before their ids are drawn and keep it until they commit (emit events
-- at the end of a transaction to keep that short).
CREATE FUNCTION @schema@.outbox_serialize() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('console_outbox'), hashtext('@schema@'));
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_serialize BEFORE INSERT ON @schema@.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION @schema@.outbox_serialize();

-- Wakes the consumers (LISTEN console_outbox) when the transaction commits; the payload
-- names the source schema.
CREATE FUNCTION @schema@.outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('console_outbox', '@schema@');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON @schema@.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION @schema@.outbox_notify();

-- Audit trail of the service's changes.
CREATE TABLE @schema@.audit_events (
    id uuid PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor_id text,
    actor_kind text,
    acting_as text,
    tenant_id uuid,
    msp_id uuid,
    action text NOT NULL,
    target_type text,
    target_id text,
    request_id text,
    details jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX audit_events_tenant_at ON @schema@.audit_events (tenant_id, at);
