//! Simulators of the outside world, used by the tests, the demo and the benchmarks: a
//! simulated Microsoft Graph tenant and a simulated contact center, each a real HTTP server on
//! loopback with a control API.

pub mod contact_center;
pub mod genesys;
pub mod graph;
