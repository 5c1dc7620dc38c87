-- presence-bridge schema, Postgres flavour. Timestamps are TIMESTAMPTZ; JSON is JSONB.
-- inbox.lease_until is epoch milliseconds so both backends compare it the same way.

CREATE TABLE users (
    teams_id TEXT PRIMARY KEY,
    upn TEXT NOT NULL,
    mail TEXT,
    display_name TEXT,
    business_phones JSONB NOT NULL DEFAULT '[]',
    mobile_phone TEXT,
    cc_connector TEXT,
    cc_agent_id TEXT,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX users_by_agent ON users (cc_connector, cc_agent_id);

CREATE TABLE agents (
    connector TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    email TEXT,
    username TEXT,
    display_name TEXT,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (connector, agent_id)
);

CREATE TABLE observed_status (
    user_id TEXT NOT NULL,
    side TEXT NOT NULL,
    status JSONB NOT NULL,
    observed_at TIMESTAMPTZ NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (user_id, side)
);

CREATE TABLE bridge_writes (
    user_id TEXT NOT NULL,
    side TEXT NOT NULL,
    status JSONB NOT NULL,
    written_at TIMESTAMPTZ NOT NULL,
    sequence TEXT,
    PRIMARY KEY (user_id, side)
);

CREATE TABLE user_state (
    user_id TEXT PRIMARY KEY,
    state JSONB NOT NULL
);

CREATE TABLE sync_accounts (
    id TEXT PRIMARY KEY,
    upn TEXT NOT NULL UNIQUE,
    user_object_id TEXT,
    encrypted_refresh_token BYTEA NOT NULL,
    state TEXT NOT NULL,
    last_refresh_at TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    shard BIGINT,
    account_id TEXT,
    resource TEXT NOT NULL,
    client_state TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    last_renewed_at TIMESTAMPTZ,
    last_reauthorized_at TIMESTAMPTZ,
    state TEXT NOT NULL,
    last_error TEXT
);

CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    user_id TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    input JSONB NOT NULL,
    rule TEXT,
    action TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX audit_log_by_user ON audit_log (user_id, at);
CREATE INDEX audit_log_by_time ON audit_log (at);

CREATE TABLE inbox (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT,
    payload JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_until BIGINT
);
