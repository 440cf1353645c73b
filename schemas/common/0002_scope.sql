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
