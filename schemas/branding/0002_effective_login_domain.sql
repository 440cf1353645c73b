-- The effective brand names its login domain too (the customer's own, else its MSP's;
-- never the platform's): links in branded mail lead to the MSP's login domain, so a
-- white-labelled deployment never shows the platform's host to the MSP's customers.
CREATE OR REPLACE VIEW effective_brands WITH (security_barrier) AS
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
               AS default_language,
           coalesce(o.login_domain, m.login_domain) AS login_domain
    FROM tenants.tenant_tree t
    LEFT JOIN brands o ON o.tenant_id = t.id
    LEFT JOIN brands m ON m.tenant_id = t.msp_id AND t.msp_id <> t.id
    LEFT JOIN brands p ON p.tenant_id = (SELECT id FROM tenants.tenant_tree WHERE kind = 'platform')
                      AND t.kind <> 'platform';
