//! Court case numbers (案号), e.g. `(2024)湘0405执123号`.
//!
//! Structure: bracketed year, court code (province abbreviation alone for a
//! high court, plus the last two digits of the division code for an
//! intermediate court, or the last four for a basic court), case type
//! (执, 执恢, 执保, 执异, 执复, 执监, 民初 …), serial number, `号`. Brackets may be
//! half-width, full-width or `〔〕`.

use super::IdentError;
use super::cert_no::{PROVINCE_ABBREVIATIONS, normalize, parse_bracketed_year};

/// Level of the court, read from the length of its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CourtLevel {
    /// Province abbreviation only, e.g. `湘`.
    High,
    /// Two digits, e.g. `湘04` (衡阳市中级人民法院).
    Intermediate,
    /// Four digits, e.g. `湘0405` (珠晖区人民法院).
    Basic,
}

/// A parsed court case number in normalised (half-width, simplified) form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CaseNo {
    text: String,
    year: u16,
    court_code: String,
    case_type: String,
    serial: u32,
}

impl CaseNo {
    /// Parses a court case number.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let normalized = normalize(input.trim());
        let (year, rest) = parse_bracketed_year(&normalized)?;
        let mut chars = rest.chars();
        let province = chars.next().ok_or(IdentError::MissingSegment { segment: "court code" })?;
        if !PROVINCE_ABBREVIATIONS.contains(province) {
            return Err(IdentError::InvalidSegment {
                segment: "court code province abbreviation",
                found: province.to_string(),
            });
        }
        let rest = chars.as_str();
        let digits_len = rest.chars().take_while(char::is_ascii_digit).count();
        if !matches!(digits_len, 0 | 2 | 4) {
            return Err(IdentError::InvalidSegment {
                segment: "court code digits (none, 2 or 4)",
                found: rest[..digits_len].to_owned(),
            });
        }
        let court_code = format!("{province}{}", &rest[..digits_len]);
        let rest = &rest[digits_len..];
        let type_end =
            rest.find(|c: char| c.is_ascii_digit()).ok_or(IdentError::MissingSegment { segment: "serial number" })?;
        let case_type = &rest[..type_end];
        if case_type.is_empty() || case_type.chars().count() > 4 || !case_type.chars().all(is_cjk) {
            return Err(IdentError::InvalidSegment {
                segment: "case type (e.g. 执, 执恢, 民初)",
                found: case_type.to_owned(),
            });
        }
        let rest = &rest[type_end..];
        let serial_text = rest.strip_suffix('号').ok_or(IdentError::MissingSegment { segment: "closing 号" })?;
        let serial: u32 = serial_text
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| IdentError::InvalidSegment { segment: "serial number", found: serial_text.to_owned() })?;
        let text = format!("({year}){court_code}{case_type}{serial}号");
        Ok(Self { text, year, court_code, case_type: case_type.to_owned(), serial })
    }

    /// The normalised case number.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Year the case was filed.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Court code, e.g. `湘0405`.
    pub fn court_code(&self) -> &str {
        &self.court_code
    }

    /// Court level implied by the code's length.
    pub fn court_level(&self) -> CourtLevel {
        match self.court_code.chars().count() {
            1 => CourtLevel::High,
            3 => CourtLevel::Intermediate,
            _ => CourtLevel::Basic,
        }
    }

    /// Case type characters, e.g. `执` or `执恢`.
    pub fn case_type(&self) -> &str {
        &self.case_type
    }

    /// True for enforcement and preservation cases (执…, 财保, 诉保), the ones that seize property.
    pub fn is_enforcement_or_preservation(&self) -> bool {
        self.case_type.starts_with('执') || self.case_type.ends_with('保')
    }

    /// Serial number within the court, year and type.
    pub fn serial(&self) -> u32 {
        self.serial
    }
}

impl std::fmt::Display for CaseNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_cjk(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_basic_court_enforcement_case() {
        let case = CaseNo::parse("(2024)湘0405执123号").expect("valid");
        assert_eq!(case.year(), 2024);
        assert_eq!(case.court_code(), "湘0405");
        assert_eq!(case.court_level(), CourtLevel::Basic);
        assert_eq!(case.case_type(), "执");
        assert_eq!(case.serial(), 123);
        assert!(case.is_enforcement_or_preservation());
    }

    #[test]
    fn parses_intermediate_court_and_full_width_brackets() {
        let case = CaseNo::parse("（2023）湘04执恢7号").expect("valid");
        assert_eq!(case.court_level(), CourtLevel::Intermediate);
        assert_eq!(case.case_type(), "执恢");
        assert_eq!(case.as_str(), "(2023)湘04执恢7号");
        let case = CaseNo::parse("〔2024〕湘0407民初88号").expect("valid");
        assert!(!case.is_enforcement_or_preservation());
    }

    #[test]
    fn bad_case_numbers_name_the_problem() {
        assert!(matches!(CaseNo::parse("(2024)湘045执1号"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(CaseNo::parse("(2024)湘0405123号"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(CaseNo::parse("(2024)湘0405执号"), Err(IdentError::MissingSegment { .. })));
        assert!(matches!(CaseNo::parse("(2024)湘0405执12"), Err(IdentError::MissingSegment { .. })));
        assert!(matches!(CaseNo::parse("2024湘0405执12号"), Err(IdentError::MissingSegment { .. })));
        assert!(matches!(CaseNo::parse("(2024)Q0405执12号"), Err(IdentError::InvalidSegment { .. })));
    }
}
