-- What an integration keeps per contact (the Dynamics 365 steps: values captured from earlier
-- responses, steps done), read before each step and kept for the integration's retention
-- (pruned by updated_at). integration names the integration and its instance
-- ("dynamics:{environment}"). Times are epoch milliseconds.
CREATE TABLE integration_contact_state (
    integration TEXT NOT NULL,
    connector TEXT NOT NULL,
    contact_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (integration, connector, contact_id)
);
CREATE INDEX integration_contact_state_by_time ON integration_contact_state (integration, updated_at);
