-- Brands (white label): one row per tenant that sets any field. An MSP's row is its
-- brand; a customer's row overrides its MSP's field by field; the platform tenant's row
-- replaces the built-in defaults for everyone. NULL means "inherit". msp_id is the root
-- account (RLS key), as everywhere.
CREATE TABLE brands (
    tenant_id uuid PRIMARY KEY,
    msp_id uuid NOT NULL,
    product_name text CHECK (char_length(product_name) BETWEEN 1 AND 64),
    logo_asset text CHECK (logo_asset ~ '^[0-9a-f]{64}$'),
    favicon_asset text CHECK (favicon_asset ~ '^[0-9a-f]{64}$'),
    primary_color text CHECK (primary_color ~ '^#[0-9a-f]{6}$'),
    secondary_color text CHECK (secondary_color ~ '^#[0-9a-f]{6}$'),
    accent_color text CHECK (accent_color ~ '^#[0-9a-f]{6}$'),
    support_email text CHECK (char_length(support_email) <= 254),
    support_phone text CHECK (char_length(support_phone) <= 32),
    support_url text CHECK (support_url LIKE 'https://%' AND char_length(support_url) <= 2048),
    sender_name text CHECK (char_length(sender_name) BETWEEN 1 AND 64),
    sender_email text CHECK (char_length(sender_email) <= 254),
    social_links jsonb CHECK (social_links IS NULL OR jsonb_typeof(social_links) = 'object'),
    footer_text text CHECK (char_length(footer_text) <= 500),
    default_language text CHECK (default_language IN ('en', 'ja')),
    login_domain text CHECK (login_domain ~ '^[a-z0-9.-]{1,253}$'),
    version integer NOT NULL DEFAULT 1,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);
-- a login domain names one brand on the whole platform
CREATE UNIQUE INDEX brands_login_domain ON brands (login_domain) WHERE login_domain IS NOT NULL;
CREATE INDEX brands_msp ON brands (msp_id);

ALTER TABLE brands ENABLE ROW LEVEL SECURITY;
ALTER TABLE brands FORCE ROW LEVEL SECURITY;
CREATE POLICY brands_scope ON brands
    USING (scope_msp_visible(msp_id))
    WITH CHECK (scope_msp_visible(msp_id));

-- Uploaded logos and favicons, checked by content (services/branding/assets.c) and
-- addressed by the SHA-256 of the bytes served: public content (a login page shows it to
-- anyone), so anyone reads an asset by its hash; the uploader's account is recorded.
CREATE TABLE assets (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (content_type IN ('image/png', 'image/jpeg', 'image/webp',
                                                        'image/x-icon', 'image/svg+xml')),
    bytes bytea NOT NULL CHECK (octet_length(bytes) BETWEEN 1 AND 524288),
    width integer NOT NULL CHECK (width BETWEEN 1 AND 4096),
    height integer NOT NULL CHECK (height BETWEEN 1 AND 4096),
    msp_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE assets FORCE ROW LEVEL SECURITY;
CREATE POLICY assets_read ON assets FOR SELECT USING (true);
CREATE POLICY assets_add ON assets FOR INSERT WITH CHECK (scope_msp_visible(msp_id));
CREATE POLICY assets_remove ON assets FOR DELETE USING (scope_system());

-- Published for every service that shows the product to a person (identity's pages and
-- mail, quotas and licensing mail): a tenant's brand merged field by field over its root
-- account's and the platform's (common/brand.c adds the built-in defaults last). Read in
-- system scope by trusted code; it carries no secret.
CREATE VIEW effective_brands WITH (security_barrier) AS
    SELECT t.id AS tenant_id, t.msp_id,
           coalesce(o.product_name, m.product_name, p.product_name) AS product_name,
           coalesce(o.logo_asset, m.logo_asset, p.logo_asset) AS logo_asset,
           coalesce(o.favicon_asset, m.favicon_asset, p.favicon_asset) AS favicon_asset,
           coalesce(o.primary_color, m.primary_color, p.primary_color) AS primary_color,
           coalesce(o.secondary_color, m.secondary_color, p.secondary_color) AS secondary_color,
           coalesce(o.accent_color, m.accent_color, p.accent_color) AS accent_color,
           coalesce(o.support_email, m.support_email, p.support_email) AS support_email,
           coalesce(o.support_phone, m.support_phone, p.support_phone) AS support_phone,
           coalesce(o.support_url, m.support_url, p.support_url) AS support_url,
           coalesce(o.sender_name, m.sender_name, p.sender_name) AS sender_name,
           coalesce(o.sender_email, m.sender_email, p.sender_email) AS sender_email,
           coalesce(o.social_links, m.social_links, p.social_links) AS social_links,
           coalesce(o.footer_text, m.footer_text, p.footer_text) AS footer_text,
           coalesce(o.default_language, m.default_language, p.default_language)
               AS default_language
    FROM tenants.tenant_tree t
    LEFT JOIN brands o ON o.tenant_id = t.id
    LEFT JOIN brands m ON m.tenant_id = t.msp_id AND t.msp_id <> t.id
    LEFT JOIN brands p ON p.tenant_id = (SELECT id FROM tenants.tenant_tree WHERE kind = 'platform')
                      AND t.kind <> 'platform';

-- The tenant a login domain names (login pages and ?host=).
CREATE VIEW login_domains WITH (security_barrier) AS
    SELECT login_domain, tenant_id FROM brands WHERE login_domain IS NOT NULL;
