-- Contact events (offered, connected, ended, recording available) as the connectors report
-- them, kept for a bounded time (store::prune::CONTACT_EVENT_RETENTION) and served read-only
-- by GET /api/v1/contacts. dedupe_key is the platform's event id, or "contact_id/kind" when
-- it sends none: a redelivered event is stored once. Times are epoch milliseconds.
CREATE TABLE contact_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    connector TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    agent_id TEXT,
    at INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (connector, dedupe_key)
);
CREATE INDEX contact_events_by_contact ON contact_events (connector, contact_id, at);
CREATE INDEX contact_events_by_agent ON contact_events (agent_id, at);
CREATE INDEX contact_events_by_time ON contact_events (received_at);
