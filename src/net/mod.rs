//! Outbound HTTP policy shared by Microsoft Graph and the contact-center connectors: one
//! `Retry-After` parser, one token bucket, one refreshing client-credential token.

pub(crate) mod bucket;
pub(crate) mod retry_after;
