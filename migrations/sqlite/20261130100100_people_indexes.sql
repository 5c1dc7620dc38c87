-- The team page and GET /api/v1/users list active users by name (the user principal name when
-- there is none), then agents matched to no active user by name: indexes in those orders let a
-- page be read without sorting the whole table.
CREATE INDEX users_active_by_name ON users (COALESCE(display_name, upn), teams_id) WHERE active;
CREATE INDEX agents_by_name ON agents (COALESCE(display_name, agent_id), connector, agent_id);
