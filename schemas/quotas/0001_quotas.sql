-- Quotas per customer and resource (services/quotas): a limit (NULL = unlimited), the
-- enforcement (track: a number to watch, the guide's default; hard: ingestion refuses
-- growth past the limit, after an optional grace period), alert thresholds in percent,
-- and the alert state: the highest threshold crossed and alerted (alert_level), re-armed
-- when usage falls below, and since when the limit is exceeded.
CREATE TABLE quotas (
    tenant_id uuid NOT NULL,
    resource text NOT NULL CHECK (resource IN ('cloud_storage', 'datastore')),
    msp_id uuid NOT NULL,
    limit_bytes bigint CHECK (limit_bytes >= 0),
    enforcement text NOT NULL DEFAULT 'track' CHECK (enforcement IN ('track', 'hard')),
    alert_thresholds_pct integer[] NOT NULL DEFAULT '{80,95,100}',
    grace_period_hours integer CHECK (grace_period_hours BETWEEN 0 AND 8760),
    alert_level integer NOT NULL DEFAULT 0,
    exceeded_since timestamptz,
    version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text,
    PRIMARY KEY (tenant_id, resource)
);
CREATE INDEX quotas_msp ON quotas (msp_id);

ALTER TABLE quotas ENABLE ROW LEVEL SECURITY;
ALTER TABLE quotas FORCE ROW LEVEL SECURITY;
CREATE POLICY quotas_scope ON quotas
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));

-- Published for the usage service (hard enforcement at ingestion, account-details and
-- quota_used_pct). security_invoker: the reader's row-level security applies.
CREATE VIEW quota_limits WITH (security_invoker = true) AS
    SELECT tenant_id, msp_id, resource, limit_bytes, enforcement, grace_period_hours,
           exceeded_since,
           enforcement = 'hard' AND limit_bytes IS NOT NULL
               AND (coalesce(grace_period_hours, 0) = 0
                    OR (exceeded_since IS NOT NULL
                        AND exceeded_since + make_interval(hours => grace_period_hours) <= now()))
               AS enforced
    FROM quotas;
