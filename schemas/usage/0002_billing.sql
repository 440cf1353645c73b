-- billing_compute reads tenants.tenant_tree, which the tenants service may create after us
SET LOCAL check_function_bodies = off;

-- Billing: price plans per customer (or an MSP's default for its customers), the exact
-- arithmetic of the export (docs/billing.md) in numeric, and frozen lines of closed periods.

-- ISO 4217 currencies and their minor units (the exponent: JPY 0, USD 2, KWD 3).
CREATE TABLE currencies (
    code text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'),
    minor_units integer NOT NULL CHECK (minor_units BETWEEN 0 AND 4)
);
INSERT INTO currencies (code, minor_units) VALUES
 ('AED', 2), ('ARS', 2), ('AUD', 2), ('BDT', 2), ('BGN', 2), ('BHD', 3), ('BRL', 2),
 ('CAD', 2), ('CHF', 2), ('CLP', 0), ('CNY', 2), ('COP', 2), ('CZK', 2), ('DKK', 2),
 ('EGP', 2), ('EUR', 2), ('GBP', 2), ('HKD', 2), ('HUF', 2), ('IDR', 2), ('ILS', 2),
 ('INR', 2), ('ISK', 0), ('JOD', 3), ('JPY', 0), ('KRW', 0), ('KWD', 3), ('MXN', 2),
 ('MYR', 2), ('NGN', 2), ('NOK', 2), ('NZD', 2), ('OMR', 3), ('PEN', 2), ('PHP', 2),
 ('PKR', 2), ('PLN', 2), ('QAR', 2), ('RON', 2), ('SAR', 2), ('SEK', 2), ('SGD', 2),
 ('THB', 2), ('TND', 3), ('TRY', 2), ('TWD', 2), ('UAH', 2), ('USD', 2), ('VND', 0),
 ('ZAR', 2);
ALTER TABLE currencies ENABLE ROW LEVEL SECURITY;
ALTER TABLE currencies FORCE ROW LEVEL SECURITY;
CREATE POLICY currencies_read ON currencies FOR SELECT USING (true);

-- A plan on a customer applies to it; a plan on an MSP (or direct account) is the
-- default of its customers without their own. version counts changes; every version is
-- kept, and a frozen line names the version it was priced with.
CREATE TABLE billing_plans (
    tenant_id uuid PRIMARY KEY,
    msp_id uuid NOT NULL,
    unit text NOT NULL CHECK (unit IN ('GB', 'TB')),
    period text NOT NULL CHECK (period IN ('month', 'year')),
    price_per_unit numeric NOT NULL CHECK (price_per_unit >= 0 AND scale(price_per_unit) <= 6),
    currency text NOT NULL REFERENCES currencies (code),
    measure text NOT NULL DEFAULT 'peak' CHECK (measure IN ('peak', 'average')),
    tax_rate_pct numeric CHECK (tax_rate_pct BETWEEN 0 AND 100),
    discount_pct numeric CHECK (discount_pct BETWEEN 0 AND 100),
    version integer NOT NULL DEFAULT 1,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
CREATE TABLE billing_plan_versions (
    tenant_id uuid NOT NULL,
    version integer NOT NULL,
    msp_id uuid NOT NULL,
    plan jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by text,
    PRIMARY KEY (tenant_id, version)
);

-- The lines of closed periods, computed once (per root account and period) and served
-- as stored from then on: the same bytes on every fetch.
CREATE TABLE billing_frozen (
    msp_id uuid NOT NULL,
    period text NOT NULL,
    frozen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (msp_id, period)
);
CREATE TABLE billing_lines (
    period text NOT NULL,
    tenant_id uuid NOT NULL,
    resource text NOT NULL,
    msp_id uuid NOT NULL,
    tenant_name text NOT NULL,
    tenant_path ltree NOT NULL,
    measure text NOT NULL,
    usage_bytes numeric NOT NULL,
    days integer NOT NULL,
    billable_units numeric NOT NULL,
    unit text NOT NULL,
    unit_price numeric NOT NULL,
    amount numeric NOT NULL,
    discount_pct numeric,
    discount_amount numeric NOT NULL,
    tax_rate_pct numeric,
    tax_amount numeric NOT NULL,
    total_amount numeric NOT NULL,
    currency text NOT NULL,
    plan_tenant_id uuid NOT NULL,
    plan_version integer NOT NULL,
    PRIMARY KEY (period, tenant_id, resource)
);
CREATE INDEX billing_lines_msp ON billing_lines (msp_id, period);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['billing_plans', 'billing_plan_versions', 'billing_frozen',
                             'billing_lines'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (scope_msp_visible(msp_id))'
                       ' WITH CHECK (scope_msp_visible(msp_id))', t || '_scope', t);
    END LOOP;
END
$$;

-- The billable quantity of one tenant and resource over the days [first, last] (UTC),
-- from the daily rollup (change points, see daily_usage):
--   peak:    the largest daily usage, in bytes;
--   average: the sum over the days of the daily usage (byte-days), to be divided by the
--            number of days.
-- Returned as (bytes_or_byte_days, days).
CREATE FUNCTION usage_measure(p_tenant uuid, p_resource text, p_first date, p_last date,
                              p_measure text)
    RETURNS TABLE (quantity numeric, days integer)
    LANGUAGE sql STABLE SET search_path FROM CURRENT
    AS $$
    WITH points AS (
        -- the value carried into the first day, then every change inside the range
        SELECT p_first AS day,
               coalesce((SELECT d.used_bytes FROM daily_usage d
                         WHERE d.tenant_id = p_tenant AND d.resource = p_resource
                           AND d.day <= p_first ORDER BY d.day DESC LIMIT 1), 0) AS used
        UNION ALL
        SELECT d.day, d.used_bytes FROM daily_usage d
        WHERE d.tenant_id = p_tenant AND d.resource = p_resource
          AND d.day > p_first AND d.day <= p_last
    ), spans AS (
        SELECT used, coalesce(lead(day) OVER (ORDER BY day), p_last + 1) - day AS len
        FROM points
    )
    SELECT CASE p_measure WHEN 'peak' THEN max(used)::numeric
                          ELSE sum(used::numeric * len) END,
           (p_last - p_first + 1)::integer
    FROM spans
    $$;

-- The lines of a billing period for the customers (and direct accounts) at or under the
-- tree path p_under, priced with each one's effective plan of that period kind. The
-- arithmetic (docs/billing.md):
--   unit_bytes     = 10^9 (GB) or 10^12 (TB)
--   billable_units = ceil(quantity / (unit_bytes [* days for average]), 3 decimals),
--                    computed with integer division, so exactly
--   amount         = round_half_up(billable_units * unit_price, minor units)
--   discount       = round_half_up(amount * discount_pct / 100, minor units)
--   tax            = round_half_up((amount - discount) * tax_rate_pct / 100, minor units)
--   total          = amount - discount + tax
-- numeric round() rounds half away from zero, which is half up for these non-negative
-- figures.
CREATE FUNCTION billing_compute(p_period text, p_kind text, p_first date, p_last date,
                                p_under ltree)
    RETURNS TABLE (period text, tenant_id uuid, resource text, msp_id uuid, tenant_name text,
                   tenant_path ltree, measure text, usage_bytes numeric, days integer,
                   billable_units numeric, unit text, unit_price numeric, amount numeric,
                   discount_pct numeric, discount_amount numeric, tax_rate_pct numeric,
                   tax_amount numeric, total_amount numeric, currency text,
                   plan_tenant_id uuid, plan_version integer)
    LANGUAGE sql STABLE SET search_path FROM CURRENT
    AS $$
    WITH customers AS (
        SELECT t.id, t.name, t.path, t.msp_id, t.parent_id
        FROM tenants.tenant_tree t
        WHERE t.path <@ p_under AND t.kind IN ('customer', 'direct')
    ), priced AS (
        SELECT c.*, p.*
        FROM customers c
        CROSS JOIN LATERAL (
            SELECT bp.tenant_id AS plan_tenant, bp.unit, bp.price_per_unit, bp.currency,
                   bp.measure AS plan_measure, bp.tax_rate_pct AS tax, bp.discount_pct AS disc,
                   bp.version AS plan_version, cu.minor_units,
                   CASE bp.unit WHEN 'GB' THEN 1000000000::numeric
                                ELSE 1000000000000::numeric END AS unit_bytes, bp.period AS plan_period
            FROM billing_plans bp JOIN currencies cu ON cu.code = bp.currency
            WHERE bp.tenant_id IN (c.id, c.parent_id)
            ORDER BY bp.tenant_id = c.id DESC LIMIT 1) p
        WHERE p.plan_period = p_kind
    ), measured AS (
        SELECT pr.*, r.resource AS res, m.quantity, m.days,
               div(m.quantity * 1000 + pr.unit_bytes
                       * CASE pr.plan_measure WHEN 'peak' THEN 1 ELSE m.days END - 1,
                   pr.unit_bytes * CASE pr.plan_measure WHEN 'peak' THEN 1 ELSE m.days END)
                   AS milli_units
        FROM priced pr
        CROSS JOIN (VALUES ('cloud_storage'), ('datastore')) r(resource)
        CROSS JOIN LATERAL usage_measure(pr.id, r.resource, p_first, p_last, pr.plan_measure) m
    ), amounts AS (
        SELECT me.*, round(me.milli_units / 1000, 3) AS units,
               round(round(me.milli_units / 1000, 3) * me.price_per_unit, me.minor_units) AS amt
        FROM measured me
    ), discounted AS (
        SELECT a.*, round(a.amt * coalesce(a.disc, 0) / 100, a.minor_units) AS disc_amt
        FROM amounts a
    )
    SELECT p_period, d.id, d.res, d.msp_id, d.name, d.path, d.plan_measure,
           CASE d.plan_measure WHEN 'peak' THEN d.quantity
                ELSE round(d.quantity / d.days, 3) END,
           d.days, d.units, d.unit, d.price_per_unit, d.amt, d.disc, d.disc_amt, d.tax,
           round((d.amt - d.disc_amt) * coalesce(d.tax, 0) / 100, d.minor_units),
           d.amt - d.disc_amt
               + round((d.amt - d.disc_amt) * coalesce(d.tax, 0) / 100, d.minor_units),
           d.currency, d.plan_tenant, d.plan_version
    FROM discounted d
    $$;
