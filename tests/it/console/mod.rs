//! The operator console: the paged team query and API, and the pages in a real browser.

#[cfg(feature = "demo")]
mod browser;
mod api;
mod people;
#[cfg(feature = "demo")]
mod webdriver;
