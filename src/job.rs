//! A background job: a name for the logs and a future that ends when its cancellation token
//! fires. Subsystem builders return their jobs; the application spawns and drains them.

use std::future::Future;
use std::pin::Pin;

pub type Job = (&'static str, Pin<Box<dyn Future<Output = ()> + Send>>);
