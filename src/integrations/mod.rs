//! Consumers of what the connectors and Graph take in, beyond presence: the contact lifecycle
//! written to Microsoft Dynamics 365 ([`dynamics`]) and the Teams chat ⇄ Genesys Cloud Open
//! Messaging bridge ([`messaging`]). An integration does its outside work through the shared
//! durable work queue (one job per step or hop); it never decides presence and never touches
//! the engine. It sits above `connectors`, `graph` and `runtime` (whose work queue it uses)
//! and below `app`, which wires it.

pub mod dynamics;
pub mod messaging;
