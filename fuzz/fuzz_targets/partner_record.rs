//! One record of a partner feed; the first byte picks the feed.
#![no_main]

const FEEDS: [&str; 7] =
    ["registry", "registry-qc", "registry-evaluations", "housing", "provident_fund", "court_platform", "bank:icbc"];

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let Some((first, payload)) = bytes.split_first() else { return };
    let _ = connectors::replay::validate_record(FEEDS[usize::from(*first) % FEEDS.len()], payload);
});
