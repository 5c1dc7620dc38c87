//! Simulators of the outside world, used by the tests, the demo and the benchmarks: a
//! simulated Microsoft Graph tenant (with the rich-notification encryption Graph applies), a
//! simulated generic contact center, a simulated Genesys Cloud, a fake innovaphone PBX
//! (AppWebsocket), a fake Google CCAI Platform tenant and a fake Kinesis data stream (Amazon
//! Connect's agent event stream), each a real HTTP or WebSocket server on loopback with a
//! control API.
//!
//! Not production code: the module, its test signing key and the `demo` command exist only
//! with the `demo` cargo feature (on by default, off in the release image). It sits above
//! `graph` and `connectors` and may use them; they never use it, not even in their unit tests
//! (tests that need a simulator live in `tests/it`). The simulators are never the check of
//! the production code they talk to: rich-notification decryption, for one, is verified
//! against a known-answer fixture made with `openssl` (`tests/fixtures/rich-notification/`).

pub mod ccai;
pub mod contact_center;
pub mod dataverse;
pub mod genesys;
pub mod graph;
pub mod innovaphone;
pub mod kinesis;
pub mod openmessaging;
