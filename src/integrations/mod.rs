//! Consumers of contact events and messages that are neither presence nor a contact center:
//! the Teams chat ⇄ Genesys Cloud Open Messaging bridge ([`messaging`]).
//!
//! Sits between the connectors and the application: may use the model, store, net, graph and
//! connectors; never the runtime, the HTTP layer, the app wiring or the CLI.

pub mod messaging;
