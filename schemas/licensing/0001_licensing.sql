-- Licensing: orders (Order ID + Fulfillment Number), their lines, license pools,
-- activations of products (online and offline), single-use mail tokens, trials and
-- product keys. Every tenant-owned row carries msp_id and the owning account's path
-- (copied from tenants.tenant_tree when the order is added) for row-level security.
-- Products reach this schema without a bearer token (order + fulfillment number, or
-- their activation secret, is the proof): those requests run in system scope and every
-- statement of theirs names the order or activation it touches.

-- The service's clock. Every time that decides a state (check-in silence, grace, link
-- and trial expiry) is licensing_now(), which is the database's now() plus this offset.
-- Nothing in the service or the API writes it: it stays 0 in production and only tests
-- (as the database owner, in system scope) move it forward to pass days without sleeping.
CREATE TABLE clock (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    offset_s bigint NOT NULL DEFAULT 0
);
INSERT INTO clock VALUES (true, 0);
ALTER TABLE clock ENABLE ROW LEVEL SECURITY;
ALTER TABLE clock FORCE ROW LEVEL SECURITY;
CREATE POLICY clock_read ON clock FOR SELECT USING (true);
CREATE POLICY clock_system ON clock FOR UPDATE USING (scope_system()) WITH CHECK (scope_system());

CREATE FUNCTION licensing_now() RETURNS timestamptz
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT now() + make_interval(secs => (SELECT offset_s FROM clock)) $$;

-- Subtree visibility, as tenants.scope_tree_visible: the whole root account for callers
-- holding a grant on it (console.msp_wide), else the granted subtrees (console.paths).
CREATE FUNCTION scope_tree_visible(row_msp uuid, row_path ltree) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT coalesce(current_setting('console.system', true), '') = 'on'
        OR coalesce(current_setting('console.platform', true), '') = 'on'
        OR (row_msp IS NOT NULL
            AND row_msp::text = current_setting('console.msp_id', true)
            AND (coalesce(current_setting('console.msp_wide', true), '') = 'on'
                 OR row_path <@ ANY (string_to_array(
                        nullif(current_setting('console.paths', true), ''), ' ')::ltree[])))
    $$;

-- Ed25519 signing keys; the private half (raw 32 bytes) and the product-key HMAC secret
-- sealed with the master key (aad "licensing.signing_keys:<kid>").
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    private_key_sealed text NOT NULL,
    public_key text NOT NULL,
    key_secret_sealed text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE signing_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE signing_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY signing_keys_system ON signing_keys USING (scope_system()) WITH CHECK (scope_system());

CREATE TABLE orders (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    order_number text NOT NULL UNIQUE CHECK (char_length(order_number) BETWEEN 1 AND 64),
    fulfillment_number text NOT NULL CHECK (char_length(fulfillment_number) BETWEEN 1 AND 64),
    end_user_email text,
    account_email text,
    method text CHECK (method IN ('online', 'offline')),
    renews_order uuid REFERENCES orders (id),
    created_at timestamptz NOT NULL DEFAULT licensing_now(),
    created_by text
);
CREATE INDEX orders_tenant ON orders (tenant_id);
CREATE INDEX orders_account ON orders (lower(account_email));

CREATE TABLE order_lines (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    msp_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    position integer NOT NULL,
    product text NOT NULL,
    edition text NOT NULL,
    quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000000),
    license_type text NOT NULL CHECK (license_type IN ('perpetual', 'subscription')),
    term_months integer CHECK (term_months BETWEEN 1 AND 120),
    unit text NOT NULL CHECK (unit IN ('server', 'socket', 'host')),
    agents_per_unit integer CHECK (agents_per_unit BETWEEN 1 AND 100000),
    keys_capped boolean NOT NULL DEFAULT false,
    expires_at timestamptz,
    CHECK ((license_type = 'subscription') = (term_months IS NOT NULL))
);
CREATE INDEX order_lines_order ON order_lines (order_id, position);

-- A pool holds some of one line's licenses: the line's Default (Unassigned Licenses)
-- pool holds what no other pool holds, so quantity >= 0 on it is the over-allocation
-- check. A server's pool has its activation_id; tenant_id is the account the licenses
-- are allocated to (an MSP's customer when sub-allocated).
CREATE TABLE pools (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_id uuid NOT NULL REFERENCES order_lines (id) ON DELETE CASCADE,
    msp_id uuid NOT NULL,
    tenant_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    quantity integer NOT NULL CHECK (quantity >= 0),
    is_default boolean NOT NULL DEFAULT false,
    activation_id uuid,
    created_at timestamptz NOT NULL DEFAULT licensing_now(),
    updated_at timestamptz NOT NULL DEFAULT licensing_now(),
    version integer NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX pools_one_default ON pools (line_id) WHERE is_default;
CREATE INDEX pools_order ON pools (order_id);
CREATE INDEX pools_activation ON pools (activation_id);

CREATE TABLE activations (
    id uuid PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    msp_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    method text NOT NULL CHECK (method IN ('online', 'offline')),
    status text NOT NULL CHECK (status IN ('active', 'pending_approval', 'deactivated', 'refused')),
    email text NOT NULL,
    computer_name text NOT NULL,
    fingerprint jsonb NOT NULL,
    fingerprint_hash text NOT NULL,
    name text,
    company text,
    phone text,
    secret_hash text NOT NULL,
    last_check_in_at timestamptz NOT NULL DEFAULT licensing_now(),
    registered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT licensing_now(),
    updated_at timestamptz NOT NULL DEFAULT licensing_now(),
    deactivated_at timestamptz
);
CREATE UNIQUE INDEX activations_live_fingerprint ON activations (order_id, fingerprint_hash)
    WHERE status IN ('active', 'pending_approval');
CREATE INDEX activations_order ON activations (order_id);

-- Single-use links mailed by the service: registration (72 h), approval, e-mail change.
CREATE TABLE mail_tokens (
    token_hash text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('registration', 'approval', 'email_change')),
    activation_id uuid NOT NULL REFERENCES activations (id) ON DELETE CASCADE,
    order_id uuid NOT NULL,
    msp_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    email text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX mail_tokens_activation ON mail_tokens (activation_id);

-- First sight of a product on a machine that never activated: its 30-day trial.
CREATE TABLE trials (
    fingerprint_hash text NOT NULL,
    product text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT licensing_now(),
    PRIMARY KEY (fingerprint_hash, product)
);

CREATE SEQUENCE product_key_serial;
CREATE TABLE product_keys (
    serial bigint PRIMARY KEY,
    order_id uuid NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_id uuid NOT NULL REFERENCES order_lines (id) ON DELETE CASCADE,
    msp_id uuid NOT NULL,
    tenant_path ltree NOT NULL,
    version text NOT NULL,
    product_key text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT licensing_now(),
    created_by text
);
CREATE INDEX product_keys_line ON product_keys (line_id);

-- Failed order/fulfillment-number proofs per order number (hashed) and window: the
-- public activation endpoints refuse after too many (the gateway limits per address).
CREATE TABLE proof_failures (
    key_hash text PRIMARY KEY,
    window_start timestamptz NOT NULL,
    failures integer NOT NULL
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['orders', 'order_lines', 'pools', 'activations', 'mail_tokens',
                             'product_keys'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (scope_tree_visible(msp_id, tenant_path))'
                       ' WITH CHECK (scope_tree_visible(msp_id, tenant_path))', t || '_scope', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['trials', 'proof_failures'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I USING (scope_system()) WITH CHECK (scope_system())',
                       t || '_system', t);
    END LOOP;
END $$;
