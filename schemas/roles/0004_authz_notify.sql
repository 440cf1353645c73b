-- Grants and role permissions are cached by every process for a moment (common/authz.c):
-- a change tells them at commit through NOTIFY console_authz, so a revoked grant or a
-- narrowed custom role stops working at once, not when the cache entry ages out.
CREATE FUNCTION notify_authz() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('console_authz', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER grants_notify_authz AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_authz();
CREATE TRIGGER roles_notify_authz AFTER INSERT OR UPDATE OR DELETE ON roles
    FOR EACH STATEMENT EXECUTE FUNCTION notify_authz();
