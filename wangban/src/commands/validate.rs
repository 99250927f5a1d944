//! `wangban validate KIND VALUE`: parse an identifier, print its parts as JSON.

use std::process::ExitCode;

use domain::ident::{
    CaseNo, CertificateKind, CertificateNo, CourtLevel, CreditCode, FixtureKind, LandOwnership, ResidentId, UnitNo,
};
use serde_json::{Value, json};

use crate::cli::{IdKind, ValidateArgs};

/// Prints the JSON result; exit 0 when valid (warnings included), 1 when invalid.
pub(crate) fn run(args: &ValidateArgs) -> ExitCode {
    let (valid, output) = validate(args.kind, &args.value);
    println!("{}", serde_json::to_string_pretty(&output).unwrap_or_else(|_| output.to_string()));
    if valid { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn kind_name(kind: IdKind) -> &'static str {
    match kind {
        IdKind::IdCard => "id-card",
        IdKind::CreditCode => "credit-code",
        IdKind::UnitNo => "unit-no",
        IdKind::CertNo => "cert-no",
        IdKind::CaseNo => "case-no",
    }
}

/// `(valid, json)` for one identifier.
pub(crate) fn validate(kind: IdKind, value: &str) -> (bool, Value) {
    let parsed: Result<(String, Value, Vec<String>), String> = match kind {
        IdKind::IdCard => ResidentId::parse(value).map_err(|e| e.to_string()).map(|id| {
            (
                id.as_str().to_owned(),
                json!({
                    "form": if id.is_legacy() { "legacy15" } else { "standard18" },
                    "address_code": id.address_code(),
                    "birth_date": id.birth_date().to_string(),
                    "sequence": id.sequence(),
                    "check_char": id.check_char().map(String::from),
                    "masked": id.masked(),
                }),
                if id.is_legacy() {
                    vec!["legacy 15-digit form: no check character to verify".to_owned()]
                } else {
                    vec![]
                },
            )
        }),
        IdKind::CreditCode => CreditCode::parse(value).map_err(|e| e.to_string()).map(|c| {
            (
                c.as_str().to_owned(),
                json!({
                    "authority_code": c.authority_code().to_string(),
                    "entity_type_code": c.entity_type_code().to_string(),
                    "division_code": c.division_code(),
                    "organization_code": c.organization_code(),
                    "check_char": c.check_char().to_string(),
                    "checksum_ok": c.checksum_ok(),
                }),
                c.warning().map(|w| w.to_string()).into_iter().collect(),
            )
        }),
        IdKind::UnitNo => UnitNo::parse(value).map_err(|e| e.to_string()).map(|u| {
            (
                u.as_str().to_owned(),
                json!({
                    "division_code": u.division_code(),
                    "cadastral_zone": u.cadastral_zone(),
                    "cadastral_subzone": u.cadastral_subzone(),
                    "parcel_feature_code": u.parcel_feature_code(),
                    "land_ownership": match u.land_ownership() {
                        LandOwnership::State => "state",
                        LandOwnership::Collective => "collective",
                        LandOwnership::Disputed => "disputed",
                    },
                    "parcel_sequence": u.parcel_sequence(),
                    "fixture_kind": match u.fixture_kind() {
                        FixtureKind::House => "house",
                        FixtureKind::Trees => "trees",
                        FixtureKind::Other => "other",
                        FixtureKind::None => "none",
                    },
                    "building": u.building(),
                    "unit": u.unit(),
                    "grouped": u.grouped(),
                }),
                vec![],
            )
        }),
        IdKind::CertNo => CertificateNo::parse(value).map_err(|e| e.to_string()).map(|c| {
            (
                c.as_str().to_owned(),
                json!({
                    "kind": match c.kind() {
                        CertificateKind::Property => "property",
                        CertificateKind::Registration => "registration",
                    },
                    "province": c.province().to_string(),
                    "year": c.year(),
                    "place": c.place(),
                    "serial": c.serial(),
                }),
                vec![],
            )
        }),
        IdKind::CaseNo => CaseNo::parse(value).map_err(|e| e.to_string()).map(|c| {
            (
                c.as_str().to_owned(),
                json!({
                    "year": c.year(),
                    "court_code": c.court_code(),
                    "court_level": match c.court_level() {
                        CourtLevel::High => "high",
                        CourtLevel::Intermediate => "intermediate",
                        CourtLevel::Basic => "basic",
                    },
                    "case_type": c.case_type(),
                    "serial": c.serial(),
                }),
                vec![],
            )
        }),
    };
    match parsed {
        Ok((normalized, parts, warnings)) => (
            true,
            json!({ "kind": kind_name(kind), "input": value, "valid": true, "normalized": normalized, "parts": parts, "warnings": warnings }),
        ),
        Err(error) => (false, json!({ "kind": kind_name(kind), "input": value, "valid": false, "error": error })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_id_card_prints_parts() {
        let (valid, out) = validate(IdKind::IdCard, "11010519491231002x");
        assert!(valid);
        assert_eq!(out["normalized"], "11010519491231002X");
        assert_eq!(out["parts"]["birth_date"], "1949-12-31");
    }

    #[test]
    fn credit_code_checksum_failure_is_valid_with_a_warning() {
        let (valid, out) = validate(IdKind::CreditCode, "91350100M000100Y40");
        assert!(valid);
        assert_eq!(out["parts"]["checksum_ok"], false);
        assert_eq!(out["warnings"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn invalid_input_gives_the_reason() {
        let (valid, out) = validate(IdKind::UnitNo, "430405001002XB00001F00010001");
        assert!(!valid);
        assert!(out["error"].as_str().unwrap_or_default().contains("parcel ownership"), "{out}");
    }
}
