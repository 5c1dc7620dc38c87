-- The durable work queue of the integrations (Dynamics steps, messaging hops, alerts): one row
-- per job. Jobs with the same (queue, key) run strictly in push order: only the oldest pending
-- job of a key is handed out. dedupe, when given, is unique within its queue, so a redelivered
-- job is stored once; done jobs are kept (done_at set) until store::prune::JOB_RETENTION so a
-- redelivery after completion is still recognised. Times are epoch milliseconds.
CREATE TABLE jobs (
    id BIGSERIAL PRIMARY KEY,
    queue TEXT NOT NULL,
    key TEXT NOT NULL,
    dedupe TEXT,
    payload JSONB NOT NULL,
    not_before BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    lease_until BIGINT,
    lease_owner TEXT,
    done_at BIGINT,
    UNIQUE (queue, dedupe)
);
CREATE INDEX jobs_pending ON jobs (queue, key, id) WHERE done_at IS NULL;
CREATE INDEX jobs_done ON jobs (done_at) WHERE done_at IS NOT NULL;
