//! A pushed court body: XML (no DOCTYPE, no entities), then each order's fields.
#![no_main]

libfuzzer_sys::fuzz_target!(|body: &[u8]| {
    let _ = gateway::court::decode_orders(body);
});
