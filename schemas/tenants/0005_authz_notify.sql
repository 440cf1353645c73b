-- Every process caches callers' grants and home-tenant status for a moment
-- (common/authz.c); a change of a tenant's status (suspend, resume, delete, restore,
-- purge) tells them at commit through NOTIFY console_authz, so it takes effect at once.
CREATE FUNCTION notify_authz() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('console_authz', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_notify_authz AFTER UPDATE OF status OR DELETE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_authz();
