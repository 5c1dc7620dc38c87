//! An http connector's inbound webhook body: event extraction (JSON or form).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    presence_bridge::fuzzing::http_events(data);
});
