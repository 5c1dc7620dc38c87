-- Work ownership between replicas sharing one database. Each row is one piece of work (the
-- engine, the Graph presence source, directory sync, one connector's event stream) owned by
-- one process until `expires_at` (the database's clock); `token` grows by one at each change
-- of owner and is the fencing token every write of the owner is checked against.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL
);

-- New inbox rows wake the engine owner (LISTEN presence_bridge_inbox), whichever replica
-- stored them. One notification per statement; Postgres folds identical ones per transaction.
CREATE FUNCTION presence_bridge_inbox_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('presence_bridge_inbox', '');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER inbox_notify AFTER INSERT ON inbox
    FOR EACH STATEMENT EXECUTE FUNCTION presence_bridge_inbox_notify();
