//! Resident identity card number (居民身份证号码, GB 11643-1999).
//!
//! The 18-character form is six digits of address code, eight of birth date,
//! three of sequence and one check character computed with ISO 7064 MOD 11-2.
//! The legacy 15-digit form (six address digits, a six-digit `yymmdd` birth
//! date in the 1900s, three sequence digits, no check character) is still met
//! in old registers: it is accepted and marked [`ResidentIdForm::Legacy15`].

use chrono::NaiveDate;

use super::IdentError;

/// Weights of ISO 7064 MOD 11-2 for the first 17 characters.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check character for each remainder `r = Σ aᵢwᵢ mod 11`.
const CHECK_CHARS: &[u8; 11] = b"10X98765432";

/// Which of the two official forms a number was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResidentIdForm {
    /// The current 18-character form with a check character.
    Standard18,
    /// The pre-1999 15-digit form: two-digit birth year, no check character.
    Legacy15,
}

/// A resident identity card number whose structure (and, for the 18-character
/// form, check character) has been verified. Always stored upper-case.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId {
    text: String,
    form: ResidentIdForm,
    birth_date: NaiveDate,
}

impl ResidentId {
    /// Parses and verifies a resident ID number; a lowercase `x` check
    /// character is accepted and normalised to `X`.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let text = input.trim().to_ascii_uppercase();
        let bytes = text.as_bytes();
        match bytes.len() {
            18 => {
                if let Some(position) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
                    return Err(IdentError::InvalidCharacter { position, found: char_at(&text, position) });
                }
                let last = bytes[17];
                if !(last.is_ascii_digit() || last == b'X') {
                    return Err(IdentError::InvalidCharacter { position: 17, found: char_at(&text, 17) });
                }
                let birth_date = parse_birth_date(&text[6..14])?;
                let expected = check_char(&bytes[..17]);
                if expected != last {
                    return Err(IdentError::CheckDigit { expected: expected as char, found: last as char });
                }
                Ok(Self { text, form: ResidentIdForm::Standard18, birth_date })
            }
            15 => {
                if let Some(position) = bytes.iter().position(|b| !b.is_ascii_digit()) {
                    return Err(IdentError::InvalidCharacter { position, found: char_at(&text, position) });
                }
                let birth_date = parse_birth_date(&format!("19{}", &text[6..12]))?;
                Ok(Self { text, form: ResidentIdForm::Legacy15, birth_date })
            }
            found => Err(IdentError::Length { expected: "18 (or legacy 15)", found }),
        }
    }

    /// The number as written, upper-case.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Standard 18-character or legacy 15-digit form.
    pub fn form(&self) -> ResidentIdForm {
        self.form
    }

    /// True for the legacy 15-digit form.
    pub fn is_legacy(&self) -> bool {
        self.form == ResidentIdForm::Legacy15
    }

    /// The six-digit administrative division code of the place of first registration.
    pub fn address_code(&self) -> &str {
        &self.text[..6]
    }

    /// The holder's date of birth.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// The three-digit sequence code; odd for men, even for women.
    pub fn sequence(&self) -> &str {
        match self.form {
            ResidentIdForm::Standard18 => &self.text[14..17],
            ResidentIdForm::Legacy15 => &self.text[12..15],
        }
    }

    /// The check character, absent in the legacy form.
    pub fn check_char(&self) -> Option<char> {
        match self.form {
            ResidentIdForm::Standard18 => self.text.chars().nth(17),
            ResidentIdForm::Legacy15 => None,
        }
    }

    /// The check character for the first 17 digits, for building valid numbers
    /// (generators, tests); `None` unless given exactly 17 ASCII digits.
    pub fn check_char_for(first17: &str) -> Option<char> {
        let bytes = first17.as_bytes();
        (bytes.len() == 17 && bytes.iter().all(u8::is_ascii_digit)).then(|| check_char(bytes) as char)
    }

    /// The form shown to people: address code and last four characters kept,
    /// the rest starred (`430405********123X`). Use this everywhere a number is displayed.
    pub fn masked(&self) -> String {
        mask_id_number(&self.text)
    }
}

/// Masks any identity-like number for display: the first six and last four
/// characters stay, the rest become `*`. Short inputs are starred entirely.
pub fn mask_id_number(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= 10 {
        return "*".repeat(chars.len());
    }
    let mut out = String::with_capacity(chars.len());
    out.extend(&chars[..6]);
    out.extend(std::iter::repeat_n('*', chars.len() - 10));
    out.extend(&chars[chars.len() - 4..]);
    out
}

/// Shows the masked form: a resident ID is never printed in full by accident.
impl std::fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResidentId").field(&self.masked()).finish()
    }
}

/// Shows the masked form; use [`ResidentId::as_str`] where the full number is needed for matching.
impl std::fmt::Display for ResidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

/// The MOD 11-2 check character for the first 17 digits.
pub(crate) fn check_char(first17: &[u8]) -> u8 {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    CHECK_CHARS[(sum % 11) as usize]
}

fn parse_birth_date(yyyymmdd: &str) -> Result<NaiveDate, IdentError> {
    let invalid = || IdentError::BirthDate { found: yyyymmdd.to_owned() };
    let year: i32 = yyyymmdd[..4].parse().map_err(|_| invalid())?;
    let month: u32 = yyyymmdd[4..6].parse().map_err(|_| invalid())?;
    let day: u32 = yyyymmdd[6..8].parse().map_err(|_| invalid())?;
    if year < 1850 {
        return Err(invalid());
    }
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(invalid)
}

fn char_at(text: &str, position: usize) -> char {
    text.chars().nth(position).unwrap_or('\u{FFFD}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_gb11643_example() {
        let id = ResidentId::parse("11010519491231002X").expect("valid");
        assert_eq!(id.address_code(), "110105");
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).expect("date"));
        assert_eq!(id.sequence(), "002");
        assert_eq!(id.check_char(), Some('X'));
        assert!(!id.is_legacy());
    }

    #[test]
    fn lowercase_x_is_accepted_and_normalised() {
        let id = ResidentId::parse("11010519491231002x").expect("valid");
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn wrong_check_digit_is_refused_with_the_expected_one() {
        let err = ResidentId::parse("110105194912310021").expect_err("invalid");
        assert_eq!(err, IdentError::CheckDigit { expected: 'X', found: '1' });
    }

    #[test]
    fn impossible_birth_date_is_refused() {
        // 1949-02-30 does not exist; the check character is computed to be right.
        let mut first17 = *b"11010519490230002";
        let check = check_char(&first17);
        let text = format!("{}{}", std::str::from_utf8(&first17).expect("ascii"), check as char);
        assert!(matches!(ResidentId::parse(&text), Err(IdentError::BirthDate { .. })));
        first17[10] = b'1';
        first17[11] = b'3';
        let check = check_char(&first17);
        let text = format!("{}{}", std::str::from_utf8(&first17).expect("ascii"), check as char);
        assert!(matches!(ResidentId::parse(&text), Err(IdentError::BirthDate { .. })));
    }

    #[test]
    fn wrong_length_is_refused() {
        assert_eq!(
            ResidentId::parse("11010519491231002"),
            Err(IdentError::Length { expected: "18 (or legacy 15)", found: 17 })
        );
    }

    #[test]
    fn letters_in_the_body_are_refused() {
        assert!(matches!(
            ResidentId::parse("1101051949123A002X"),
            Err(IdentError::InvalidCharacter { position: 13, found: 'A' })
        ));
    }

    #[test]
    fn legacy_fifteen_digit_form_is_accepted_and_marked() {
        let id = ResidentId::parse("430405491231002").expect("valid legacy");
        assert!(id.is_legacy());
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).expect("date"));
        assert_eq!(id.check_char(), None);
        assert_eq!(id.masked(), "430405*****1002");
    }

    #[test]
    fn display_and_debug_are_masked() {
        let id = ResidentId::parse("11010519491231002X").expect("valid");
        assert_eq!(id.to_string(), "110105********002X");
        assert!(!format!("{id:?}").contains("19491231"));
    }
}
