//! The TOML configuration: parsing and validation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_bridge::fuzzing::config(data);
});
