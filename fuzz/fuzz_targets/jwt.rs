//! Validation tokens of a rich notification batch (one per line).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use presence_bridge::fuzzing::Jwt;

static TARGET: OnceLock<Jwt> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    TARGET.get_or_init(Jwt::default).run(data);
});
