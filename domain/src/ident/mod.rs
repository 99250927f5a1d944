//! Identifier newtypes. Each has one constructor, `parse(&str) -> Result`,
//! and accessors for its parts; past the edge, holding one is the proof that
//! the text was checked.

mod case_no;
mod cert_no;
mod credit_code;
mod division;
mod resident_id;
mod unit_no;

pub use case_no::{CaseNo, CourtLevel};
pub use cert_no::{CertificateKind, CertificateNo, PROVINCE_ABBREVIATIONS};
pub use credit_code::{CreditCode, CreditCodeWarning};
pub use division::{Division, HENGYANG_DIVISIONS, HUNAN_DIVISIONS};
pub use resident_id::{ResidentId, ResidentIdForm, mask_id_number};
pub use unit_no::{FixtureKind, LandOwnership, UnitNo};

/// Why a piece of text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    /// Wrong number of characters.
    #[error("wrong length: expected {expected} characters, found {found}")]
    Length { expected: &'static str, found: usize },
    /// A character not allowed at this position.
    #[error("character {found:?} is not allowed at position {position} (counting from 0)")]
    InvalidCharacter { position: usize, found: char },
    /// The check character does not match the rest.
    #[error("check character is {found}, expected {expected}")]
    CheckDigit { expected: char, found: char },
    /// The embedded birth date does not exist.
    #[error("birth date {found} does not exist")]
    BirthDate { found: String },
    /// A structured part has an unknown value.
    #[error("invalid {segment}: {found:?}")]
    InvalidSegment { segment: &'static str, found: String },
    /// A structured part is missing.
    #[error("missing {segment}")]
    MissingSegment { segment: &'static str },
}
