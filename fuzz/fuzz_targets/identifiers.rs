//! Every identifier parser, and masking, on any text.
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let _ = domain::ident::ResidentId::parse(&text);
    let _ = domain::ident::CreditCode::parse(&text);
    let _ = domain::ident::UnitNo::parse(&text);
    let _ = domain::ident::CertificateNo::parse(&text);
    let _ = domain::ident::CaseNo::parse(&text);
    assert_eq!(domain::ident::mask_id_number(&text).chars().count(), text.chars().count());
});
