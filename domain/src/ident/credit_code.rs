//! Unified social credit code (统一社会信用代码, GB 32100-2015).
//!
//! Eighteen characters from `0123456789ABCDEFGHJKLMNPQRTUWXY` (I, O, S, V, Z
//! unused): registration authority (1), entity type (1), division code (6),
//! organisation code (9), check character (1). Some genuine codes from the
//! early pilots fail the checksum, so a checksum failure is not a format error:
//! the code parses and carries a [`CreditCodeWarning`] for quality control.

use super::IdentError;

/// The 31 characters a credit code may use, in value order.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of the 17 information characters.
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Something wrong with a code that is still accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditCodeWarning {
    /// The check character does not match; early pilot codes do this.
    ChecksumMismatch { expected: char, found: char },
}

impl std::fmt::Display for CreditCodeWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ChecksumMismatch { expected, found } => {
                write!(
                    f,
                    "check character is {found}, GB 32100 gives {expected} (accepted: early pilot codes fail the checksum)"
                )
            }
        }
    }
}

/// A structurally valid unified social credit code, upper-case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreditCode {
    text: String,
    warning: Option<CreditCodeWarning>,
}

impl CreditCode {
    /// Parses a credit code. Wrong length or characters outside the alphabet
    /// are errors; a wrong check character is a warning on the result.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let text = input.trim().to_ascii_uppercase();
        let chars: Vec<char> = text.chars().collect();
        if chars.len() != 18 {
            return Err(IdentError::Length { expected: "18", found: chars.len() });
        }
        let mut values = [0u32; 18];
        for (position, c) in chars.iter().enumerate() {
            values[position] = value_of(*c).ok_or(IdentError::InvalidCharacter { position, found: *c })?;
        }
        let sum: u32 = values[..17].iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        let expected = ALPHABET[((31 - sum % 31) % 31) as usize] as char;
        let warning =
            (expected != chars[17]).then_some(CreditCodeWarning::ChecksumMismatch { expected, found: chars[17] });
        Ok(Self { text, warning })
    }

    /// The check character for 17 information characters, for building valid
    /// codes (generators, tests); `None` if a character is outside the alphabet.
    pub fn check_char_for(first17: &str) -> Option<char> {
        let values: Option<Vec<u32>> = first17.chars().map(value_of).collect();
        let values = values.filter(|v| v.len() == 17)?;
        let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
        Some(ALPHABET[((31 - sum % 31) % 31) as usize] as char)
    }

    /// The code, upper-case.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Registration authority code (1 机构编制, 5 民政, 9 工商, Y 其他 …).
    pub fn authority_code(&self) -> char {
        self.text.as_bytes()[0] as char
    }

    /// Entity type code within the authority.
    pub fn entity_type_code(&self) -> char {
        self.text.as_bytes()[1] as char
    }

    /// The six-digit division code of the registering authority.
    pub fn division_code(&self) -> &str {
        &self.text[2..8]
    }

    /// The nine-character organisation code (GB 11714) embedded in the code.
    pub fn organization_code(&self) -> &str {
        &self.text[8..17]
    }

    /// The check character as written.
    pub fn check_char(&self) -> char {
        self.text.as_bytes()[17] as char
    }

    /// The warning, if the code was accepted despite a checksum mismatch.
    pub fn warning(&self) -> Option<CreditCodeWarning> {
        self.warning
    }

    /// True when the check character is right.
    pub fn checksum_ok(&self) -> bool {
        self.warning.is_none()
    }
}

fn value_of(c: char) -> Option<u32> {
    let b = u8::try_from(c).ok()?;
    ALPHABET.iter().position(|a| *a == b).map(|p| p as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a code with the right check character from 17 information characters.
    fn with_check(first17: &str) -> String {
        let sum: u32 = first17.chars().zip(WEIGHTS).map(|(c, w)| value_of(c).expect("alphabet") * w).sum();
        format!("{first17}{}", ALPHABET[((31 - sum % 31) % 31) as usize] as char)
    }

    #[test]
    fn a_well_formed_code_parses_without_warning() {
        // A widely published real code (a state-owned enterprise).
        let code = CreditCode::parse("91350100M000100Y43").expect("valid");
        assert!(code.checksum_ok(), "{:?}", code.warning());
        assert_eq!(code.authority_code(), '9');
        assert_eq!(code.entity_type_code(), '1');
        assert_eq!(code.division_code(), "350100");
        assert_eq!(code.organization_code(), "M000100Y4");
        assert_eq!(code.check_char(), '3');
    }

    #[test]
    fn generated_codes_round_trip() {
        let text = with_check("91430405MA4L00001");
        assert!(CreditCode::parse(&text).expect("valid").checksum_ok());
    }

    #[test]
    fn checksum_failure_is_a_warning_not_an_error() {
        let good = with_check("91430405MA4L00001");
        let last = good.chars().last().expect("18 chars");
        let wrong = if last == '0' { '1' } else { '0' };
        let bad = format!("{}{}", &good[..17], wrong);
        let code = CreditCode::parse(&bad).expect("accepted with a warning");
        assert_eq!(code.warning(), Some(CreditCodeWarning::ChecksumMismatch { expected: last, found: wrong }));
    }

    #[test]
    fn unused_letters_are_format_errors() {
        for letter in ['I', 'O', 'S', 'V', 'Z'] {
            let text = format!("9143040{letter}MA4L000010");
            assert!(
                matches!(CreditCode::parse(&text), Err(IdentError::InvalidCharacter { position: 7, .. })),
                "{letter}"
            );
        }
    }

    #[test]
    fn wrong_length_is_a_format_error() {
        assert_eq!(CreditCode::parse("91430405MA4L0000"), Err(IdentError::Length { expected: "18", found: 16 }));
    }

    #[test]
    fn lowercase_is_normalised() {
        let text = with_check("91430405MA4L00001").to_ascii_lowercase();
        assert!(CreditCode::parse(&text).expect("valid").checksum_ok());
    }
}
