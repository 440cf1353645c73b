-- Usage: samples of stored bytes per source and backup job events, ingested in batches
-- (services/usage/ingest.c), kept raw in monthly partitions and rolled up as they arrive
-- so that reports and billing never scan raw samples.
--
-- Every row carries tenant_id and its root account msp_id; row-level security confines
-- every statement to the caller's root account (scope_msp_visible), and the service's
-- queries join tenants.tenant_tree (itself confined to the caller's subtrees) for the
-- finer scope.

-- ---- raw data, partitioned by month ------------------------------------------------

CREATE TABLE samples (
    tenant_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    resource text NOT NULL CHECK (resource IN ('cloud_storage', 'datastore')),
    source_id text NOT NULL,
    used_bytes bigint NOT NULL CHECK (used_bytes >= 0),
    at timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, resource, source_id, at)
) PARTITION BY RANGE (at);
CREATE TABLE samples_default PARTITION OF samples DEFAULT;

CREATE TABLE job_events (
    tenant_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    job_id text NOT NULL,
    source_id text NOT NULL,
    source_type text NOT NULL CHECK (source_type IN ('agent', 'agentless', 'unc')),
    status text NOT NULL
        CHECK (status IN ('completed', 'warning', 'failed', 'not_run', 'canceled')),
    started_at timestamptz,
    finished_at timestamptz NOT NULL,
    bytes_transferred bigint NOT NULL CHECK (bytes_transferred >= 0),
    received_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (finished_at);
CREATE TABLE job_events_default PARTITION OF job_events DEFAULT;
CREATE INDEX job_events_tenant_finished ON job_events (tenant_id, finished_at);

-- A job counts once: the first event of a job_id (per tenant) wins, later ones are ignored.
CREATE TABLE job_ids (
    tenant_id uuid NOT NULL,
    job_id text NOT NULL,
    msp_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, job_id)
);

-- Monthly partitions [first of month, first of next month), named samples_YYYYMM. The
-- service creates the months around now at start and hourly; rows of other months land
-- in the default partition (a month is never created once its rows are there).
CREATE FUNCTION ensure_partitions(from_month date, months integer) RETURNS void
    LANGUAGE plpgsql SET search_path FROM CURRENT
    AS $$
DECLARE
    m date;
    t text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        m := date_trunc('month', from_month)::date + make_interval(months => i);
        FOREACH t IN ARRAY ARRAY['samples', 'job_events'] LOOP
            IF to_regclass(format('%s_%s', t, to_char(m, 'YYYYMM'))) IS NULL THEN
                BEGIN
                    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                                   t || '_' || to_char(m, 'YYYYMM'), t,
                                   (m::timestamp AT TIME ZONE 'UTC'),
                                   ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
                EXCEPTION WHEN check_violation OR duplicate_table THEN
                    NULL; -- rows of that month already in the default partition, or a race
                END;
            END IF;
        END LOOP;
    END LOOP;
END
$$;
SELECT ensure_partitions((now() AT TIME ZONE 'UTC')::date - 31, 4);

-- ---- current state and rollups -------------------------------------------------------

-- The last value of each source (by sample time).
CREATE TABLE source_usage (
    tenant_id uuid NOT NULL,
    resource text NOT NULL,
    source_id text NOT NULL,
    msp_id uuid NOT NULL,
    used_bytes bigint NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, resource, source_id)
);

-- Each source's latest sample of each UTC day on which it sent one.
CREATE TABLE source_daily (
    tenant_id uuid NOT NULL,
    resource text NOT NULL,
    source_id text NOT NULL,
    day date NOT NULL,
    msp_id uuid NOT NULL,
    used_bytes bigint NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, resource, source_id, day)
);

-- A tenant's current usage per resource: the sum of its sources' last values.
CREATE TABLE tenant_usage (
    tenant_id uuid NOT NULL,
    resource text NOT NULL,
    msp_id uuid NOT NULL,
    used_bytes bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, resource)
);

-- The daily rollup: a tenant's usage of a resource at the end of each UTC day on which
-- any of its sources' end-of-day value changed. The usage of a day without a row is that
-- of the latest earlier row (nothing changed), so the rows are change points: the value
-- of day D = the row with the greatest day <= D (0 before the first).
CREATE TABLE daily_usage (
    tenant_id uuid NOT NULL,
    resource text NOT NULL,
    day date NOT NULL,
    msp_id uuid NOT NULL,
    used_bytes bigint NOT NULL,
    PRIMARY KEY (tenant_id, resource, day)
);

-- Sources: known from samples and job events; type, last job and its status from events.
CREATE TABLE sources (
    tenant_id uuid NOT NULL,
    source_id text NOT NULL,
    msp_id uuid NOT NULL,
    source_type text CHECK (source_type IN ('agent', 'agentless', 'unc')),
    last_job_id text,
    last_status text,
    last_job_at timestamptz,
    first_seen timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, source_id)
);

-- Jobs per tenant, UTC day and source type: counts by status and bytes transferred.
CREATE TABLE daily_jobs (
    tenant_id uuid NOT NULL,
    day date NOT NULL,
    source_type text NOT NULL,
    msp_id uuid NOT NULL,
    completed integer NOT NULL DEFAULT 0,
    warning integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    not_run integer NOT NULL DEFAULT 0,
    canceled integer NOT NULL DEFAULT 0,
    bytes_transferred bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day, source_type)
);

-- ---- ingestion -------------------------------------------------------------------------

-- Applies a validated batch of samples (a JSON array of {tenant_id, msp_id, resource,
-- source_id, used_bytes, at}) and returns, per tenant and resource it touched, the
-- current usage before and after. The caller checks hard quotas on that and rolls back.
-- Per (tenant, resource) an advisory lock, taken in sorted order, serializes concurrent
-- batches (the rollup reads a carried value before it writes).
--   1. raw samples: one INSERT; a sample already stored (same source and time) is skipped
--      and changes nothing;
--   2. the last value per source: one upsert of each source's latest new sample, kept
--      only when later than the stored one; the tenant's current usage is then the sum;
--   3. the daily rollup, per source and UTC day (the day's latest new sample): its
--      end-of-day value becomes this sample unless a later sample of that day is already
--      there; the difference applies to the tenant's days from that day until the
--      source's next day with a sample. Set-based when that day is the source's latest
--      (the usual case), one (source, day) at a time for late samples.
CREATE FUNCTION ingest_samples(batch jsonb)
    RETURNS TABLE (tenant_id uuid, msp_id uuid, resource text, before_bytes bigint,
                   after_bytes bigint)
    LANGUAGE plpgsql SET search_path FROM CURRENT
    AS $$
DECLARE
    s record;
    prev record;
    next_day date;
    delta bigint;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ingest_touched (
        tenant_id uuid, msp_id uuid, resource text, before_bytes bigint,
        PRIMARY KEY (tenant_id, resource)) ON COMMIT DROP;
    TRUNCATE ingest_touched;
    INSERT INTO ingest_touched
        SELECT DISTINCT b.tenant_id, b.msp_id, b.resource, 0::bigint
        FROM jsonb_to_recordset(batch) AS b(tenant_id uuid, msp_id uuid, resource text);
    -- the locks in one statement, in sorted order (no deadlock between two batches)
    PERFORM pg_advisory_xact_lock(hashtext('console_usage'),
                                  hashtext(x.tenant_id::text || x.resource))
        FROM (SELECT t.tenant_id, t.resource FROM ingest_touched t ORDER BY 1, 2) x;
    UPDATE ingest_touched t SET before_bytes = u.used_bytes FROM tenant_usage u
        WHERE u.tenant_id = t.tenant_id AND u.resource = t.resource;
    INSERT INTO sources (tenant_id, source_id, msp_id)
        SELECT DISTINCT b.tenant_id, b.source_id, b.msp_id
        FROM jsonb_to_recordset(batch) AS b(tenant_id uuid, source_id text, msp_id uuid)
        ORDER BY 1, 2
        ON CONFLICT DO NOTHING;

    CREATE TEMP TABLE IF NOT EXISTS ingest_new (
        tenant_id uuid, msp_id uuid, resource text, source_id text, used_bytes bigint,
        at timestamptz) ON COMMIT DROP;
    TRUNCATE ingest_new;
    WITH ins AS (
        INSERT INTO samples (tenant_id, msp_id, resource, source_id, used_bytes, at)
            SELECT b.tenant_id, b.msp_id, b.resource, b.source_id, b.used_bytes, b.at
            FROM jsonb_to_recordset(batch) AS b(tenant_id uuid, msp_id uuid, resource text,
                                                source_id text, used_bytes bigint,
                                                at timestamptz)
            ORDER BY b.tenant_id, b.resource, b.source_id, b.at
            ON CONFLICT DO NOTHING
            RETURNING samples.tenant_id, samples.msp_id, samples.resource, samples.source_id,
                      samples.used_bytes, samples.at)
    INSERT INTO ingest_new SELECT * FROM ins;

    -- 2. the last value per source, then the tenants' current usage
    INSERT INTO source_usage AS u (tenant_id, resource, source_id, msp_id, used_bytes, at)
        SELECT DISTINCT ON (n.tenant_id, n.resource, n.source_id)
               n.tenant_id, n.resource, n.source_id, n.msp_id, n.used_bytes, n.at
        FROM ingest_new n ORDER BY n.tenant_id, n.resource, n.source_id, n.at DESC
        ON CONFLICT ON CONSTRAINT source_usage_pkey
        DO UPDATE SET used_bytes = excluded.used_bytes, at = excluded.at
        WHERE u.at < excluded.at;
    INSERT INTO tenant_usage AS u (tenant_id, resource, msp_id, used_bytes)
        SELECT t.tenant_id, t.resource, t.msp_id,
               coalesce((SELECT sum(su.used_bytes) FROM source_usage su
                         WHERE su.tenant_id = t.tenant_id AND su.resource = t.resource), 0)
        FROM ingest_touched t ORDER BY 1, 2
        ON CONFLICT ON CONSTRAINT tenant_usage_pkey
        DO UPDATE SET used_bytes = excluded.used_bytes, updated_at = now()
        WHERE u.used_bytes <> excluded.used_bytes;

    -- 3. the daily rollup, per source and UTC day of the batch (its latest sample)
    CREATE TEMP TABLE IF NOT EXISTS ingest_days (
        tenant_id uuid, resource text, source_id text, day date, msp_id uuid,
        used_bytes bigint, at timestamptz, simple boolean, delta bigint, stale boolean)
        ON COMMIT DROP;
    TRUNCATE ingest_days;
    INSERT INTO ingest_days
        SELECT d.tenant_id, d.resource, d.source_id, d.day, d.msp_id, d.used_bytes, d.at,
               -- simple: the source's only day in the batch and none stored after it
               d.ndays = 1 AND NOT EXISTS (
                   SELECT 1 FROM source_daily sd WHERE sd.tenant_id = d.tenant_id
                   AND sd.resource = d.resource AND sd.source_id = d.source_id
                   AND sd.day > d.day),
               d.used_bytes - coalesce(p.used_bytes, 0),
               coalesce(p.day = d.day AND p.at >= d.at, false)
        FROM (SELECT x.*, count(*) OVER (PARTITION BY x.tenant_id, x.resource, x.source_id)
                         AS ndays
              FROM (SELECT DISTINCT ON (n.tenant_id, n.resource, n.source_id,
                                        (n.at AT TIME ZONE 'UTC')::date)
                           n.tenant_id, n.resource, n.source_id, n.msp_id, n.used_bytes, n.at,
                           (n.at AT TIME ZONE 'UTC')::date AS day
                    FROM ingest_new n
                    ORDER BY n.tenant_id, n.resource, n.source_id,
                             (n.at AT TIME ZONE 'UTC')::date, n.at DESC) x) d
        LEFT JOIN LATERAL (
            SELECT sd.day, sd.used_bytes, sd.at FROM source_daily sd
            WHERE sd.tenant_id = d.tenant_id AND sd.resource = d.resource
              AND sd.source_id = d.source_id AND sd.day <= d.day
            ORDER BY sd.day DESC LIMIT 1) p ON true;

    -- 3a. the usual case, set-based: a source's new day is its latest, so its difference
    -- applies to every day of the tenant from that day on
    INSERT INTO source_daily AS sd (tenant_id, resource, source_id, day, msp_id, used_bytes, at)
        SELECT i.tenant_id, i.resource, i.source_id, i.day, i.msp_id, i.used_bytes, i.at
        FROM ingest_days i WHERE i.simple AND NOT i.stale ORDER BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT source_daily_pkey
        DO UPDATE SET used_bytes = excluded.used_bytes, at = excluded.at;
    INSERT INTO daily_usage (tenant_id, resource, day, msp_id, used_bytes)
        SELECT DISTINCT i.tenant_id, i.resource, i.day, i.msp_id,
               coalesce((SELECT du.used_bytes FROM daily_usage du
                         WHERE du.tenant_id = i.tenant_id AND du.resource = i.resource
                           AND du.day < i.day ORDER BY du.day DESC LIMIT 1), 0)
        FROM ingest_days i WHERE i.simple AND NOT i.stale
        ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING;
    WITH agg AS (
        SELECT i.tenant_id, i.resource, i.day, sum(i.delta) AS delta
        FROM ingest_days i WHERE i.simple AND NOT i.stale GROUP BY 1, 2, 3
    ), cum AS (
        SELECT a.tenant_id, a.resource, a.day,
               sum(a.delta) OVER (PARTITION BY a.tenant_id, a.resource ORDER BY a.day) AS delta,
               lead(a.day) OVER (PARTITION BY a.tenant_id, a.resource ORDER BY a.day) AS next
        FROM agg a
    )
    UPDATE daily_usage du SET used_bytes = du.used_bytes + c.delta
        FROM cum c
        WHERE du.tenant_id = c.tenant_id AND du.resource = c.resource AND du.day >= c.day
          AND (c.next IS NULL OR du.day < c.next) AND c.delta <> 0;

    -- 3b. late samples (a day before the source's latest, or several days of one source):
    -- one (source, day) at a time; the difference applies from that day until the
    -- source's next stored day
    FOR s IN
        SELECT i.* FROM ingest_days i WHERE NOT i.simple
        ORDER BY i.tenant_id, i.resource, i.source_id, i.day
    LOOP
        SELECT sd.day, sd.used_bytes, sd.at INTO prev FROM source_daily sd
            WHERE sd.tenant_id = s.tenant_id AND sd.resource = s.resource
              AND sd.source_id = s.source_id AND sd.day <= s.day
            ORDER BY sd.day DESC LIMIT 1;
        CONTINUE WHEN FOUND AND prev.day = s.day AND prev.at >= s.at;
        delta := s.used_bytes - CASE WHEN FOUND THEN prev.used_bytes ELSE 0 END;
        SELECT min(sd.day) INTO next_day FROM source_daily sd
            WHERE sd.tenant_id = s.tenant_id AND sd.resource = s.resource
              AND sd.source_id = s.source_id AND sd.day > s.day;
        INSERT INTO source_daily AS sd VALUES (s.tenant_id, s.resource, s.source_id, s.day,
                                               s.msp_id, s.used_bytes, s.at)
            ON CONFLICT ON CONSTRAINT source_daily_pkey
            DO UPDATE SET used_bytes = excluded.used_bytes, at = excluded.at;
        INSERT INTO daily_usage (tenant_id, resource, day, msp_id, used_bytes)
            SELECT s.tenant_id, s.resource, s.day, s.msp_id,
                   coalesce((SELECT du.used_bytes FROM daily_usage du
                             WHERE du.tenant_id = s.tenant_id AND du.resource = s.resource
                               AND du.day < s.day ORDER BY du.day DESC LIMIT 1), 0) + delta
            ON CONFLICT ON CONSTRAINT daily_usage_pkey
            DO UPDATE SET used_bytes = daily_usage.used_bytes + delta;
        IF delta <> 0 THEN
            UPDATE daily_usage du SET used_bytes = du.used_bytes + delta
                WHERE du.tenant_id = s.tenant_id AND du.resource = s.resource
                  AND du.day > s.day AND (next_day IS NULL OR du.day < next_day);
        END IF;
    END LOOP;

    PERFORM refresh_tenant_totals(ARRAY(SELECT DISTINCT t.tenant_id FROM ingest_touched t));
    RETURN QUERY
        SELECT t.tenant_id, t.msp_id, t.resource, t.before_bytes, coalesce(u.used_bytes, 0)
        FROM ingest_touched t
        LEFT JOIN tenant_usage u ON u.tenant_id = t.tenant_id AND u.resource = t.resource
        ORDER BY 1, 3;
END
$$;

-- Applies a validated batch of job events ({tenant_id, msp_id, job_id, source_id,
-- source_type, status, started_at, finished_at, bytes_transferred}); returns how many
-- were new (a job_id already seen for the tenant is skipped).
CREATE FUNCTION ingest_job_events(batch jsonb) RETURNS integer
    LANGUAGE plpgsql SET search_path FROM CURRENT
    AS $$
DECLARE
    e record;
    n integer;
    added integer := 0;
BEGIN
    FOR e IN
        SELECT b.* FROM jsonb_to_recordset(batch) AS b(tenant_id uuid, msp_id uuid, job_id text,
            source_id text, source_type text, status text, started_at timestamptz,
            finished_at timestamptz, bytes_transferred bigint)
        ORDER BY b.tenant_id, b.finished_at, b.job_id
    LOOP
        INSERT INTO job_ids VALUES (e.tenant_id, e.job_id, e.msp_id) ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        CONTINUE WHEN n = 0;
        added := added + 1;
        INSERT INTO job_events (tenant_id, msp_id, job_id, source_id, source_type, status,
                                started_at, finished_at, bytes_transferred)
            VALUES (e.tenant_id, e.msp_id, e.job_id, e.source_id, e.source_type, e.status,
                    e.started_at, e.finished_at, e.bytes_transferred);
        INSERT INTO daily_jobs AS j (tenant_id, day, source_type, msp_id, completed, warning,
                                     failed, not_run, canceled, bytes_transferred)
            VALUES (e.tenant_id, (e.finished_at AT TIME ZONE 'UTC')::date, e.source_type,
                    e.msp_id, (e.status = 'completed')::int, (e.status = 'warning')::int,
                    (e.status = 'failed')::int, (e.status = 'not_run')::int,
                    (e.status = 'canceled')::int, e.bytes_transferred)
            ON CONFLICT ON CONSTRAINT daily_jobs_pkey DO UPDATE SET
                completed = j.completed + excluded.completed,
                warning = j.warning + excluded.warning, failed = j.failed + excluded.failed,
                not_run = j.not_run + excluded.not_run, canceled = j.canceled + excluded.canceled,
                bytes_transferred = j.bytes_transferred + excluded.bytes_transferred;
        INSERT INTO sources AS so (tenant_id, source_id, msp_id, source_type, last_job_id,
                                   last_status, last_job_at)
            VALUES (e.tenant_id, e.source_id, e.msp_id, e.source_type, e.job_id, e.status,
                    e.finished_at)
            ON CONFLICT ON CONSTRAINT sources_pkey DO UPDATE SET
                source_type = excluded.source_type, last_job_id = excluded.last_job_id,
                last_status = excluded.last_status, last_job_at = excluded.last_job_at
            WHERE so.last_job_at IS NULL OR so.last_job_at <= excluded.last_job_at;
    END LOOP;
    PERFORM refresh_tenant_totals(ARRAY(SELECT DISTINCT b.tenant_id FROM jsonb_to_recordset(batch)
                                        AS b(tenant_id uuid)));
    RETURN added;
END
$$;

-- ---- published for other services (read-only) -----------------------------------------

-- The tenants list's usage columns: a row per tenant with usage or sources, kept by the
-- ingest functions (a primary-key lookup per listed tenant).
CREATE TABLE tenant_totals (
    tenant_id uuid PRIMARY KEY,
    msp_id uuid NOT NULL,
    sources_total bigint NOT NULL DEFAULT 0,
    cloud_usage_bytes bigint NOT NULL DEFAULT 0,
    datastore_usage_bytes bigint NOT NULL DEFAULT 0,
    agent_sources bigint NOT NULL DEFAULT 0,
    agentless_sources bigint NOT NULL DEFAULT 0,
    unc_sources bigint NOT NULL DEFAULT 0
);

CREATE FUNCTION refresh_tenant_totals(tenants uuid[]) RETURNS void
    LANGUAGE sql SET search_path FROM CURRENT
    AS $$
    INSERT INTO tenant_totals AS tt (tenant_id, msp_id, sources_total, cloud_usage_bytes,
                                     datastore_usage_bytes, agent_sources, agentless_sources,
                                     unc_sources)
        SELECT x.id, coalesce(s.msp_id, u.msp_id), coalesce(s.total, 0), coalesce(u.cloud, 0),
               coalesce(u.datastore, 0), coalesce(s.agent, 0), coalesce(s.agentless, 0),
               coalesce(s.unc, 0)
        FROM (SELECT DISTINCT unnest(tenants) AS id ORDER BY 1) x
        LEFT JOIN LATERAL (
            SELECT min(so.msp_id::text)::uuid AS msp_id, count(*) AS total,
                   count(*) FILTER (WHERE so.source_type = 'agent') AS agent,
                   count(*) FILTER (WHERE so.source_type = 'agentless') AS agentless,
                   count(*) FILTER (WHERE so.source_type = 'unc') AS unc
            FROM sources so WHERE so.tenant_id = x.id) s ON true
        LEFT JOIN LATERAL (
            SELECT min(tu.msp_id::text)::uuid AS msp_id,
                   sum(tu.used_bytes) FILTER (WHERE tu.resource = 'cloud_storage') AS cloud,
                   sum(tu.used_bytes) FILTER (WHERE tu.resource = 'datastore') AS datastore
            FROM tenant_usage tu WHERE tu.tenant_id = x.id) u ON true
        WHERE coalesce(s.msp_id, u.msp_id) IS NOT NULL
    ON CONFLICT (tenant_id) DO UPDATE SET sources_total = excluded.sources_total,
        cloud_usage_bytes = excluded.cloud_usage_bytes,
        datastore_usage_bytes = excluded.datastore_usage_bytes,
        agent_sources = excluded.agent_sources, agentless_sources = excluded.agentless_sources,
        unc_sources = excluded.unc_sources
    $$;

-- Published for the tenants service's list columns (read-only).
CREATE VIEW tenant_usage_summary WITH (security_invoker = true) AS
    SELECT tenant_id, msp_id, sources_total, cloud_usage_bytes, datastore_usage_bytes
    FROM tenant_totals;

-- Published for the quotas service: each tenant's current usage per resource.
CREATE VIEW current_usage WITH (security_invoker = true) AS
    SELECT tenant_id, msp_id, resource, used_bytes FROM tenant_usage;

-- ---- row-level security -------------------------------------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['samples', 'job_events', 'job_ids', 'source_usage', 'source_daily',
                             'tenant_usage', 'daily_usage', 'sources', 'daily_jobs',
                             'tenant_totals'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (scope_msp_visible(msp_id))'
                       ' WITH CHECK (scope_msp_visible(msp_id))', t || '_scope', t);
    END LOOP;
END
$$;
