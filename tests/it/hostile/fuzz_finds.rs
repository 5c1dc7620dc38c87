//! Inputs the fuzz targets (`fuzz/`) found crashing, replayed through the same entry points
//! on every test run. Each input is also a seed of its target, under `fuzz/seeds/`.

/// A validation token naming a key the cache does not hold makes the cache fetch the key set
/// again, with a timeout: the JWT entry point's runtime had no timers and panicked.
#[test]
fn a_token_with_an_unknown_key_id_is_refused_without_a_panic() {
    let input = include_bytes!("../../../fuzz/seeds/jwt/unknown-kid-refetch");
    presence_bridge::fuzzing::Jwt::default().run(input);
}

/// Loops nested five deep in a request template ran for hundreds of millions of steps and
/// ran out of memory: a render is now bounded in steps and in output.
#[test]
fn a_template_of_nested_loops_stops_at_its_step_budget() {
    let input = include_bytes!("../../../fuzz/seeds/template/nested-loops");
    let refused = presence_bridge::fuzzing::template(input).expect("refused");
    assert!(refused.contains("the template runs past"), "{refused}");
}
