//! A request template rendered with the variables of a status write.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = presence_bridge::fuzzing::template(data);
});
