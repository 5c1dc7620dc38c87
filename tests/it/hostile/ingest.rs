//! Contact-center ingest under hostile input and failing peers: event times out of range
//! (webhooks and streams), a replay window the signature does not cover, `Retry-After`
//! beyond the configured cap, agent ids that try to leave their URL path segment, and
//! shutdown while every outbound call hangs.

mod event_time;
mod path_segment;
mod replay;
mod retry_after;
mod shutdown;
mod stored;
