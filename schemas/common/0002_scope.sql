-- Row-level security helpers of schema @schema@. The caller's scope travels in
-- transaction-local settings that cc_db_begin() sets (common/db.c):
--   console.system    'on' for trusted background work (bootstrap, outbox consumers)
--   console.platform  'on' when the caller acts for the platform operator (every MSP)
--   console.msp_id    the root account (MSP or direct) the caller is confined to
--   console.tenant_id the caller's tenant (finer checks are the service's own)
-- A policy written as USING (@schema@.scope_msp_visible(msp_id)) refuses every row of
-- another tree, so a forgotten WHERE clause cannot leak another MSP's data.
CREATE OR REPLACE FUNCTION @schema@.scope_system() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT coalesce(current_setting('console.system', true), '') = 'on' $$;

CREATE OR REPLACE FUNCTION @schema@.scope_msp_visible(row_msp uuid) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(current_setting('console.system', true), '') = 'on'
        OR coalesce(current_setting('console.platform', true), '') = 'on'
        OR (row_msp IS NOT NULL AND row_msp::text = current_setting('console.msp_id', true))
    $$;

-- The common tables obey the same rule. Audit events are read within the caller's tree
-- (platform-level events, msp_id NULL, by the platform only); any scope may append.
ALTER TABLE @schema@.audit_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE @schema@.audit_events FORCE ROW LEVEL SECURITY;
CREATE POLICY audit_events_read ON @schema@.audit_events FOR SELECT
    USING (@schema@.scope_msp_visible(msp_id));
CREATE POLICY audit_events_append ON @schema@.audit_events FOR INSERT
    WITH CHECK (msp_id IS NULL OR @schema@.scope_msp_visible(msp_id));

-- Outbox events are appended by requests in any scope and read only by trusted
-- consumers (system scope), which hand them on.
ALTER TABLE @schema@.outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE @schema@.outbox FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_read ON @schema@.outbox FOR SELECT USING (@schema@.scope_system());
CREATE POLICY outbox_append ON @schema@.outbox FOR INSERT WITH CHECK (true);
ALTER TABLE @schema@.outbox_positions ENABLE ROW LEVEL SECURITY;
ALTER TABLE @schema@.outbox_positions FORCE ROW LEVEL SECURITY;
CREATE POLICY outbox_positions_system ON @schema@.outbox_positions
    USING (@schema@.scope_system()) WITH CHECK (@schema@.scope_system());
