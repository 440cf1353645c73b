-- Ingestion, second version: the same results as 0001's ingest_samples, at a fraction of
-- the cost (docs/performance.md, "Usage"):
--   * no temporary tables: 0001 created three per batch (ON COMMIT DROP), and that catalog
--     churn cost more than the rows themselves; the batch's rows now live in arrays of
--     composite types inside the function;
--   * the batch's JSON is parsed once (0001 parsed it three times);
--   * the current usage of a tenant moves by the differences of its sources' last values
--     instead of a sum over all its sources, and tenant_totals by the changes and the new
--     sources of the batch instead of a recount (refresh_tenant_totals stays for job
--     events, which change source types);
--   * every statement is planned for its batch (plan_cache_mode), never from a plan
--     cached while the tables were empty;
--   * it returns only the (tenant, resource) pairs whose usage changed, which is all the
--     caller reads (hard quotas and the usage.changed event ignore unchanged pairs).

CREATE TYPE sample_row AS (tenant_id uuid, msp_id uuid, resource text, source_id text,
                           used_bytes bigint, at timestamptz);
-- a source's latest new sample of one UTC day (0001's ingest_days)
CREATE TYPE sample_day AS (tenant_id uuid, resource text, source_id text, day date,
                           msp_id uuid, used_bytes bigint, at timestamptz, simple boolean,
                           delta bigint, stale boolean);
CREATE TYPE usage_change AS (tenant_id uuid, msp_id uuid, resource text, before_bytes bigint,
                             after_bytes bigint);

CREATE OR REPLACE FUNCTION ingest_samples(batch jsonb)
    RETURNS TABLE (tenant_id uuid, msp_id uuid, resource text, before_bytes bigint,
                   after_bytes bigint)
    LANGUAGE plpgsql SET search_path FROM CURRENT
    -- each statement planned for the batch at hand: a plan cached on a long-lived
    -- connection while the tables were small (a nested loop over a sequential scan) is
    -- ruinous once they are not, and the arrays' sizes are only known at run time
    SET plan_cache_mode = force_custom_plan
    AS $$
#variable_conflict use_column
DECLARE
    items sample_row[];
    fresh sample_row[];
    days sample_day[];
    changes usage_change[];
    s sample_day;
    prev record;
    next_day date;
    delta bigint;
BEGIN
    SELECT array_agg(row(b.tenant_id, b.msp_id, b.resource, b.source_id, b.used_bytes,
                         b.at)::sample_row
                     ORDER BY b.tenant_id, b.resource, b.source_id, b.at)
        INTO items
        FROM jsonb_to_recordset(batch) AS b(tenant_id uuid, msp_id uuid, resource text,
                                            source_id text, used_bytes bigint, at timestamptz);
    IF items IS NULL THEN
        RETURN;
    END IF;
    -- 1. per (tenant, resource) an advisory lock, in sorted order (no deadlock between two
    -- batches): the statements below read values (a source's last one, a carried day)
    -- before they write, and each statement's snapshot is taken after these locks
    PERFORM pg_advisory_xact_lock(hashtext('console_usage'),
                                  hashtext(x.tenant_id::text || x.resource))
        FROM (SELECT DISTINCT i.tenant_id, i.resource FROM unnest(items) i ORDER BY 1, 2) x;

    -- 2. new sources, counted into the tenants' totals (every tenant of the batch gets its
    -- totals row here, so step 5 only updates)
    WITH added AS (
        INSERT INTO sources (tenant_id, source_id, msp_id)
            SELECT DISTINCT i.tenant_id, i.source_id, i.msp_id FROM unnest(items) i
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING
            RETURNING sources.tenant_id
    ), counted AS (
        SELECT a.tenant_id, count(*) AS n FROM added a GROUP BY 1
    ), per_tenant AS (
        SELECT i.tenant_id, (array_agg(i.msp_id))[1] AS msp_id FROM unnest(items) i GROUP BY 1
    )
    INSERT INTO tenant_totals AS tt (tenant_id, msp_id, sources_total)
        SELECT p.tenant_id, p.msp_id, coalesce(c.n, 0)
        FROM per_tenant p LEFT JOIN counted c ON c.tenant_id = p.tenant_id ORDER BY 1
        ON CONFLICT (tenant_id) DO UPDATE SET sources_total = tt.sources_total + excluded.sources_total
        WHERE excluded.sources_total > 0;

    -- 3. raw samples; a sample already stored (same source and time) changes nothing
    WITH ins AS (
        INSERT INTO samples (tenant_id, msp_id, resource, source_id, used_bytes, at)
            SELECT i.tenant_id, i.msp_id, i.resource, i.source_id, i.used_bytes, i.at
            FROM unnest(items) i
            ON CONFLICT DO NOTHING
            RETURNING samples.tenant_id, samples.msp_id, samples.resource, samples.source_id,
                      samples.used_bytes, samples.at
    )
    SELECT array_agg(row(ins.tenant_id, ins.msp_id, ins.resource, ins.source_id, ins.used_bytes,
                         ins.at)::sample_row)
        INTO fresh FROM ins;
    IF fresh IS NULL THEN
        RETURN; -- a replay: nothing new
    END IF;

    -- 4. each source's last value (kept only when later than the stored one), and the
    -- tenant's current usage moved by the differences; the statement's snapshot holds the
    -- values from before its own writes, so "old" is what the upsert replaces
    WITH latest AS (
        SELECT DISTINCT ON (f.tenant_id, f.resource, f.source_id) f.*
        FROM unnest(fresh) f ORDER BY f.tenant_id, f.resource, f.source_id, f.at DESC
    ), old AS (
        SELECT su.tenant_id, su.resource, su.source_id, su.used_bytes
        FROM latest l JOIN source_usage su ON su.tenant_id = l.tenant_id
            AND su.resource = l.resource AND su.source_id = l.source_id
    ), up AS (
        INSERT INTO source_usage AS u (tenant_id, resource, source_id, msp_id, used_bytes, at)
            SELECT l.tenant_id, l.resource, l.source_id, l.msp_id, l.used_bytes, l.at
            FROM latest l
            ON CONFLICT ON CONSTRAINT source_usage_pkey
            DO UPDATE SET used_bytes = excluded.used_bytes, at = excluded.at
            WHERE u.at < excluded.at
            RETURNING u.tenant_id, u.resource, u.source_id, u.msp_id, u.used_bytes
    ), diff AS (
        SELECT up.tenant_id, up.resource, (array_agg(up.msp_id))[1] AS msp_id,
               sum(up.used_bytes - coalesce(o.used_bytes, 0))::bigint AS delta
        FROM up LEFT JOIN old o ON o.tenant_id = up.tenant_id AND o.resource = up.resource
            AND o.source_id = up.source_id
        GROUP BY 1, 2
    ), moved AS (
        INSERT INTO tenant_usage AS t (tenant_id, resource, msp_id, used_bytes)
            SELECT d.tenant_id, d.resource, d.msp_id, d.delta FROM diff d ORDER BY 1, 2
            ON CONFLICT ON CONSTRAINT tenant_usage_pkey
            DO UPDATE SET used_bytes = t.used_bytes + excluded.used_bytes, updated_at = now()
            WHERE excluded.used_bytes <> 0
            RETURNING t.tenant_id, t.msp_id, t.resource, t.used_bytes
    )
    SELECT array_agg(row(m.tenant_id, m.msp_id, m.resource, m.used_bytes - d.delta,
                         m.used_bytes)::usage_change)
        INTO changes
        FROM moved m JOIN diff d ON d.tenant_id = m.tenant_id AND d.resource = m.resource
        WHERE d.delta <> 0;

    -- 5. the published totals of the tenants whose usage changed
    UPDATE tenant_totals tt
        SET cloud_usage_bytes = coalesce(c.cloud, tt.cloud_usage_bytes),
            datastore_usage_bytes = coalesce(c.datastore, tt.datastore_usage_bytes)
        FROM (SELECT x.tenant_id,
                     max(x.after_bytes) FILTER (WHERE x.resource = 'cloud_storage') AS cloud,
                     max(x.after_bytes) FILTER (WHERE x.resource = 'datastore') AS datastore
              FROM unnest(changes) x GROUP BY 1) c
        WHERE tt.tenant_id = c.tenant_id;

    -- 6. the daily rollup, per source and UTC day of the batch (its latest new sample):
    -- its end-of-day value becomes this sample unless a later sample of that day is
    -- already there; the difference applies to the tenant's days from that day until
    -- the source's next day with a sample
    SELECT array_agg(row(d.tenant_id, d.resource, d.source_id, d.day, d.msp_id, d.used_bytes,
                         d.at,
                         -- simple: the source's only day in the batch and none stored after
                         d.ndays = 1 AND NOT EXISTS (
                             SELECT 1 FROM source_daily sd WHERE sd.tenant_id = d.tenant_id
                             AND sd.resource = d.resource AND sd.source_id = d.source_id
                             AND sd.day > d.day),
                         d.used_bytes - coalesce(p.used_bytes, 0),
                         coalesce(p.day = d.day AND p.at >= d.at, false))::sample_day)
        INTO days
        FROM (SELECT x.*, count(*) OVER (PARTITION BY x.tenant_id, x.resource, x.source_id)
                         AS ndays
              FROM (SELECT DISTINCT ON (n.tenant_id, n.resource, n.source_id,
                                        (n.at AT TIME ZONE 'UTC')::date)
                           n.tenant_id, n.resource, n.source_id, n.msp_id, n.used_bytes, n.at,
                           (n.at AT TIME ZONE 'UTC')::date AS day
                    FROM unnest(fresh) n
                    ORDER BY n.tenant_id, n.resource, n.source_id,
                             (n.at AT TIME ZONE 'UTC')::date, n.at DESC) x) d
        LEFT JOIN LATERAL (
            SELECT sd.day, sd.used_bytes, sd.at FROM source_daily sd
            WHERE sd.tenant_id = d.tenant_id AND sd.resource = d.resource
              AND sd.source_id = d.source_id AND sd.day <= d.day
            ORDER BY sd.day DESC LIMIT 1) p ON true;

    -- 6a. the usual case, set-based: a source's new day is its latest, so its difference
    -- applies to every day of the tenant from that day on
    INSERT INTO source_daily AS sd (tenant_id, resource, source_id, day, msp_id, used_bytes, at)
        SELECT i.tenant_id, i.resource, i.source_id, i.day, i.msp_id, i.used_bytes, i.at
        FROM unnest(days) i WHERE i.simple AND NOT i.stale ORDER BY 1, 2, 3, 4
        ON CONFLICT ON CONSTRAINT source_daily_pkey
        DO UPDATE SET used_bytes = excluded.used_bytes, at = excluded.at;
    INSERT INTO daily_usage (tenant_id, resource, day, msp_id, used_bytes)
        SELECT DISTINCT i.tenant_id, i.resource, i.day, i.msp_id,
               coalesce((SELECT du.used_bytes FROM daily_usage du
                         WHERE du.tenant_id = i.tenant_id AND du.resource = i.resource
                           AND du.day < i.day ORDER BY du.day DESC LIMIT 1), 0)
        FROM unnest(days) i WHERE i.simple AND NOT i.stale
        ORDER BY 1, 2, 3
        ON CONFLICT DO NOTHING;
    WITH agg AS (
        SELECT i.tenant_id, i.resource, i.day, sum(i.delta) AS delta
        FROM unnest(days) i WHERE i.simple AND NOT i.stale GROUP BY 1, 2, 3
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

    -- 6b. late samples (a day before the source's latest, or several days of one source):
    -- one (source, day) at a time; the difference applies from that day until the
    -- source's next stored day
    FOR s IN
        SELECT i.* FROM unnest(days) i WHERE NOT i.simple
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

    RETURN QUERY SELECT c.tenant_id, c.msp_id, c.resource, c.before_bytes, c.after_bytes
        FROM unnest(changes) c ORDER BY 1, 3;
END
$$;

-- Job events, set-based (0001 ran four statements per event in a loop): the same results.
-- A job counts once: the batch's new job ids (a batch never holds one twice: the service
-- refuses that) select the events that count; each source takes its latest counted job
-- when that is not older than the one it has.
CREATE OR REPLACE FUNCTION ingest_job_events(batch jsonb) RETURNS integer
    LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_custom_plan
    AS $$
DECLARE
    added integer;
BEGIN
    WITH b AS (
        SELECT x.* FROM jsonb_to_recordset(batch) AS x(tenant_id uuid, msp_id uuid, job_id text,
            source_id text, source_type text, status text, started_at timestamptz,
            finished_at timestamptz, bytes_transferred bigint)
    ), new_ids AS (
        INSERT INTO job_ids (tenant_id, job_id, msp_id)
            SELECT b.tenant_id, b.job_id, b.msp_id FROM b ORDER BY 1, 2
            ON CONFLICT DO NOTHING
            RETURNING job_ids.tenant_id, job_ids.job_id
    ), fresh AS (
        SELECT b.* FROM b JOIN new_ids n ON n.tenant_id = b.tenant_id AND n.job_id = b.job_id
    ), events AS (
        INSERT INTO job_events (tenant_id, msp_id, job_id, source_id, source_type, status,
                                started_at, finished_at, bytes_transferred)
            SELECT f.tenant_id, f.msp_id, f.job_id, f.source_id, f.source_type, f.status,
                   f.started_at, f.finished_at, f.bytes_transferred
            FROM fresh f ORDER BY f.tenant_id, f.finished_at, f.job_id
    ), days AS (
        INSERT INTO daily_jobs AS j (tenant_id, day, source_type, msp_id, completed, warning,
                                     failed, not_run, canceled, bytes_transferred)
            SELECT f.tenant_id, (f.finished_at AT TIME ZONE 'UTC')::date, f.source_type,
                   (array_agg(f.msp_id))[1],
                   count(*) FILTER (WHERE f.status = 'completed'),
                   count(*) FILTER (WHERE f.status = 'warning'),
                   count(*) FILTER (WHERE f.status = 'failed'),
                   count(*) FILTER (WHERE f.status = 'not_run'),
                   count(*) FILTER (WHERE f.status = 'canceled'), sum(f.bytes_transferred)
            FROM fresh f GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            ON CONFLICT ON CONSTRAINT daily_jobs_pkey DO UPDATE SET
                completed = j.completed + excluded.completed,
                warning = j.warning + excluded.warning, failed = j.failed + excluded.failed,
                not_run = j.not_run + excluded.not_run, canceled = j.canceled + excluded.canceled,
                bytes_transferred = j.bytes_transferred + excluded.bytes_transferred
    ), last_jobs AS (
        INSERT INTO sources AS so (tenant_id, source_id, msp_id, source_type, last_job_id,
                                   last_status, last_job_at)
            SELECT DISTINCT ON (f.tenant_id, f.source_id) f.tenant_id, f.source_id, f.msp_id,
                   f.source_type, f.job_id, f.status, f.finished_at
            FROM fresh f ORDER BY f.tenant_id, f.source_id, f.finished_at DESC, f.job_id DESC
            ON CONFLICT ON CONSTRAINT sources_pkey DO UPDATE SET
                source_type = excluded.source_type, last_job_id = excluded.last_job_id,
                last_status = excluded.last_status, last_job_at = excluded.last_job_at
            WHERE so.last_job_at IS NULL OR so.last_job_at <= excluded.last_job_at
    )
    SELECT count(*) INTO added FROM fresh;
    PERFORM refresh_tenant_totals(ARRAY(SELECT DISTINCT b.tenant_id FROM jsonb_to_recordset(batch)
                                        AS b(tenant_id uuid)));
    RETURN added;
END
$$;
