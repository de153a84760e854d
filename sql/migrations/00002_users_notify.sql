-- +goose Up

-- Every change to who a user is for authentication (created, role changed,
-- disabled or re-enabled, deleted) is announced on the flashsale_users
-- channel in the transaction that makes it, so API processes can keep every
-- user's standing in memory instead of reading the users table on each call
-- (internal/postgres/userdirectory.go). PostgreSQL delivers a notification
-- when its transaction commits, and in commit order.
--
-- Payloads: "u <id> <role> <disabled>" for an insert or update, "d <id>" for a
-- delete, "t" for a truncate.

-- +goose StatementBegin
CREATE FUNCTION users_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('flashsale_users', 't');
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('flashsale_users', 'd ' || OLD.id::text);
    ELSE
        PERFORM pg_notify('flashsale_users', 'u ' || NEW.id::text || ' ' || NEW.role || ' ' || NEW.disabled::text);
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER users_notify_row
AFTER INSERT OR UPDATE OF role, disabled OR DELETE ON users
FOR EACH ROW EXECUTE FUNCTION users_notify();

CREATE TRIGGER users_notify_truncate
AFTER TRUNCATE ON users
FOR EACH STATEMENT EXECUTE FUNCTION users_notify();

-- +goose Down
DROP TRIGGER users_notify_truncate ON users;
DROP TRIGGER users_notify_row ON users;
DROP FUNCTION users_notify();
