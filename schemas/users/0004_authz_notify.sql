-- A user's deactivation ends every request of theirs at once: authorization
-- (common/authz.c) reads the status, and this trigger clears every process's cache
-- (NOTIFY console_authz) when it changes.
CREATE FUNCTION notify_authz() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM pg_notify('console_authz', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_authz AFTER UPDATE OF status OR DELETE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_authz();
