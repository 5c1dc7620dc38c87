//! Outbound HTTP policy shared by Microsoft Graph (`graph`) and the contact-center connectors
//! (`connectors`), one of each:
//!
//! - [`retry_after`]: the `Retry-After` parser (delta-seconds and HTTP-date);
//! - [`bucket`]: the token bucket that keeps an API inside its request budget and pauses
//!   every caller after a throttled answer;
//! - [`token`]: the refreshing access token (refresh ahead of expiry, single flight, keep the
//!   live token while a refresh fails, invalidate on 401), generic over how a token is
//!   fetched;
//! - [`transport`]: one sentence for a request that got no answer (host, cause, hint).
//!
//! It knows no API: which budgets exist, how tokens are requested and how errors are typed
//! belong to the callers. It sits below both and imports neither; only std and external
//! crates.

pub(crate) mod bucket;
pub(crate) mod retry_after;
pub(crate) mod token;
pub mod transport;
