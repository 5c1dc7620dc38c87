-- presence-bridge schema, SQLite flavour. Timestamps are TEXT (RFC 3339, UTC); JSON is TEXT.
-- inbox.lease_until is epoch milliseconds so both backends compare it the same way.

CREATE TABLE users (
    teams_id TEXT PRIMARY KEY NOT NULL,
    upn TEXT NOT NULL,
    mail TEXT,
    display_name TEXT,
    business_phones TEXT NOT NULL DEFAULT '[]',
    mobile_phone TEXT,
    cc_connector TEXT,
    cc_agent_id TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TEXT NOT NULL
);
CREATE INDEX users_by_agent ON users (cc_connector, cc_agent_id);

CREATE TABLE agents (
    connector TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    email TEXT,
    username TEXT,
    display_name TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (connector, agent_id)
);

CREATE TABLE observed_status (
    user_id TEXT NOT NULL,
    side TEXT NOT NULL,
    status TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (user_id, side)
);

CREATE TABLE bridge_writes (
    user_id TEXT NOT NULL,
    side TEXT NOT NULL,
    status TEXT NOT NULL,
    written_at TEXT NOT NULL,
    sequence TEXT,
    PRIMARY KEY (user_id, side)
);

CREATE TABLE user_state (
    user_id TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL
);

CREATE TABLE sync_accounts (
    id TEXT PRIMARY KEY NOT NULL,
    upn TEXT NOT NULL UNIQUE,
    user_object_id TEXT,
    encrypted_refresh_token BLOB NOT NULL,
    state TEXT NOT NULL,
    last_refresh_at TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    shard INTEGER,
    account_id TEXT,
    resource TEXT NOT NULL,
    client_state TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_renewed_at TEXT,
    last_reauthorized_at TEXT,
    state TEXT NOT NULL,
    last_error TEXT
);

CREATE TABLE kv (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    at TEXT NOT NULL,
    input TEXT NOT NULL,
    rule TEXT,
    action TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
CREATE INDEX audit_log_by_time ON audit_log (at);

CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    user_id TEXT,
    payload TEXT NOT NULL,
    received_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until INTEGER
);
