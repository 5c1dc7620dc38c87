-- Where a connector's event source resumes after a restart: one opaque value per key (for an
-- Amazon Connect Kinesis stream, one per shard: the last processed sequence number, or that
-- the shard was read to its end). updated_at is epoch milliseconds.
CREATE TABLE connector_cursors (
    connector TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (connector, key)
);
