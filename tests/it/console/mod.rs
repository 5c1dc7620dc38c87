//! The operator console: the paged team query and API, and the pages in a real browser.

mod api;
#[cfg(feature = "demo")]
mod browser;
mod people;
#[cfg(feature = "demo")]
mod webdriver;
