//! Real-estate certificate numbers (不动产权证书号 and 不动产登记证明号).
//!
//! `湘(2024)衡阳市不动产权第0001234号` is a property certificate;
//! `湘(2024)衡阳市不动产证明第0001234号` a registration certificate (mortgage,
//! pre-notice …). Brackets may be half-width `()`, full-width `（）` or `〔〕`;
//! the serial's digit count varies by place. Traditional characters
//! (`不動產權`, `證明`, `號`) are accepted as they appear in scanned records.

use super::IdentError;

/// Province-level abbreviations that open a certificate or case number.
pub const PROVINCE_ABBREVIATIONS: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼港澳台";

/// Which certificate a number belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertificateKind {
    /// 不动产权证书: ownership and use rights.
    Property,
    /// 不动产登记证明: mortgage, pre-notice and other registrations.
    Registration,
}

/// A parsed certificate number, kept in its normalised simplified form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateNo {
    text: String,
    kind: CertificateKind,
    province: char,
    year: u16,
    place: String,
    serial: String,
}

impl CertificateNo {
    /// Parses a certificate number.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let normalized = normalize(input.trim());
        let mut chars = normalized.chars();
        let province = chars.next().ok_or(IdentError::Length { expected: "at least 15", found: 0 })?;
        if !PROVINCE_ABBREVIATIONS.contains(province) {
            return Err(IdentError::InvalidSegment { segment: "province abbreviation", found: province.to_string() });
        }
        let rest: &str = chars.as_str();
        let (year, rest) = parse_bracketed_year(rest)?;
        let (kind, marker) = if let Some(i) = rest.find("不动产权第") {
            (CertificateKind::Property, i)
        } else if let Some(i) = rest.find("不动产证明第") {
            (CertificateKind::Registration, i)
        } else {
            return Err(IdentError::InvalidSegment {
                segment: "certificate kind (不动产权第… or 不动产证明第…)",
                found: rest.to_owned(),
            });
        };
        let place = &rest[..marker];
        if place.is_empty() {
            return Err(IdentError::MissingSegment { segment: "place name before the certificate kind" });
        }
        let after = &rest[marker..];
        let after = after.trim_start_matches("不动产权第").trim_start_matches("不动产证明第");
        let serial = after.strip_suffix('号').ok_or(IdentError::MissingSegment { segment: "closing 号" })?;
        if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_digit()) {
            return Err(IdentError::InvalidSegment { segment: "serial number (digits)", found: serial.to_owned() });
        }
        let open = '(';
        let close = ')';
        let kind_text = match kind {
            CertificateKind::Property => "不动产权",
            CertificateKind::Registration => "不动产证明",
        };
        let text = format!("{province}{open}{year}{close}{place}{kind_text}第{serial}号");
        Ok(Self { text, kind, province, year, place: place.to_owned(), serial: serial.to_owned() })
    }

    /// The number with half-width brackets and simplified characters.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Property certificate or registration certificate.
    pub fn kind(&self) -> CertificateKind {
        self.kind
    }

    /// The province abbreviation, e.g. `湘`.
    pub fn province(&self) -> char {
        self.province
    }

    /// Year of issue.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Issuing place, e.g. `衡阳市`.
    pub fn place(&self) -> &str {
        &self.place
    }

    /// The serial digits as written (leading zeros kept).
    pub fn serial(&self) -> &str {
        &self.serial
    }
}

impl std::fmt::Display for CertificateNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Folds bracket variants to half-width and traditional characters to simplified.
pub(crate) fn normalize(input: &str) -> String {
    input
        .chars()
        .map(|c| match c {
            '（' | '〔' | '［' | '[' => '(',
            '）' | '〕' | '］' | ']' => ')',
            '動' => '动',
            '產' => '产',
            '權' => '权',
            '證' => '证',
            '號' => '号',
            '陽' => '阳',
            '執' => '执',
            '復' => '复',
            '監' => '监',
            '異' => '异',
            '財' => '财',
            '訴' => '诉',
            '終' => '终',
            other => other,
        })
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Reads `(yyyy)` from the start of `rest`, returning the year and what follows.
pub(crate) fn parse_bracketed_year(rest: &str) -> Result<(u16, &str), IdentError> {
    let rest =
        rest.strip_prefix('(').ok_or(IdentError::MissingSegment { segment: "opening bracket before the year" })?;
    let close = rest.find(')').ok_or(IdentError::MissingSegment { segment: "closing bracket after the year" })?;
    let year_text = &rest[..close];
    let year: u16 = year_text
        .parse()
        .ok()
        .filter(|y| (1949..=2199).contains(y) && year_text.len() == 4)
        .ok_or_else(|| IdentError::InvalidSegment { segment: "year (four digits)", found: year_text.to_owned() })?;
    Ok((year, &rest[close + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_certificate_with_half_width_brackets() {
        let cert = CertificateNo::parse("湘(2024)衡阳市不动产权第0001234号").expect("valid");
        assert_eq!(cert.kind(), CertificateKind::Property);
        assert_eq!(cert.province(), '湘');
        assert_eq!(cert.year(), 2024);
        assert_eq!(cert.place(), "衡阳市");
        assert_eq!(cert.serial(), "0001234");
    }

    #[test]
    fn registration_certificate_with_full_width_brackets_and_traditional_characters() {
        let cert = CertificateNo::parse("湘（2024）衡陽市不動產證明第12345號").expect("valid");
        assert_eq!(cert.kind(), CertificateKind::Registration);
        assert_eq!(cert.place(), "衡阳市");
        assert_eq!(cert.serial(), "12345");
        assert_eq!(cert.as_str(), "湘(2024)衡阳市不动产证明第12345号");
    }

    #[test]
    fn bad_certificate_numbers_name_the_problem() {
        assert!(matches!(CertificateNo::parse("X(2024)衡阳市不动产权第1号"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(CertificateNo::parse("湘2024衡阳市不动产权第1号"), Err(IdentError::MissingSegment { .. })));
        assert!(matches!(CertificateNo::parse("湘(24)衡阳市不动产权第1号"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(CertificateNo::parse("湘(2024)衡阳市房产证第1号"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(
            CertificateNo::parse("湘(2024)衡阳市不动产权第12A号"),
            Err(IdentError::InvalidSegment { .. })
        ));
        assert!(matches!(CertificateNo::parse("湘(2024)衡阳市不动产权第123"), Err(IdentError::MissingSegment { .. })));
    }
}
