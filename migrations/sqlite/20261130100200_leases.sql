-- Work ownership between replicas is a Postgres feature: a SQLite database serves one
-- process, which holds an exclusive lock on `<database>.lock` while it runs (a second one is
-- refused at start). The table exists so both schemas have the same tables; no SQLite
-- deployment writes to it.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    token BIGINT NOT NULL,
    expires_at TEXT NOT NULL,
    acquired_at TEXT NOT NULL
);
