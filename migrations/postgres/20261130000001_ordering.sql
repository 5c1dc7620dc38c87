-- Ordering and replay protection that survive a restart.
-- inbox.lease_owner: the instance (store.instance_id) holding the lease, so a restarted
-- process takes its own leases back at once instead of waiting for them to run out.
ALTER TABLE inbox ADD COLUMN lease_owner TEXT;

-- Contact-center event ids already taken in, per connector (replay and redelivery guard).
-- Times are epoch milliseconds so both backends compare them the same way.
CREATE TABLE ingest_events (
    id BIGSERIAL PRIMARY KEY,
    connector TEXT NOT NULL,
    event_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    UNIQUE (connector, event_id)
);
CREATE INDEX ingest_events_by_time ON ingest_events (seen_at);
CREATE INDEX ingest_events_by_agent ON ingest_events (connector, agent_id, seen_at);

-- Per agent, the time of the newest event taken in: older events are stale.
CREATE TABLE ingest_agents (
    connector TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    last_at BIGINT NOT NULL,
    PRIMARY KEY (connector, agent_id)
);
