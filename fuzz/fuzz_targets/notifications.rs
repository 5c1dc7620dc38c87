//! A Graph notification batch: JSON parsing, then decryption of every encrypted item.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use presence_bridge::fuzzing::Notifications;

static TARGET: OnceLock<Notifications> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    TARGET.get_or_init(Notifications::default).run(data);
});
