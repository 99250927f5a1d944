//! A whole housing export file (GBK CSV) and an export listing.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let _ = connectors::housing::parse_export_file("filings-20240101.csv", bytes);
    let _ = connectors::housing::parse_listing(bytes);
});
