//! Real-estate unit number (不动产单元号, GB/T 37346-2019).
//!
//! 28 characters: division code (6) + cadastral zone (地籍区, 3) + cadastral
//! subzone (地籍子区, 3) + parcel feature code (宗地特征码, 2: ownership letter
//! `G`/`J`/`Z` then a parcel type letter) + parcel sequence (5) + fixture
//! feature code (定着物特征码, 1: `F` house, `L` trees, `Q` other, `W` none) +
//! building (4) + unit (4). There is no check character. Shown to people
//! grouped 6 6 7 9: `430405 001002 GB00001 F00010001`.

use super::IdentError;

/// Parcel type letters allowed in the second position of the parcel feature code.
const PARCEL_TYPE_LETTERS: &str = "ABSXCDEFHGWY";

/// Ownership of the land, first letter of the parcel feature code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LandOwnership {
    /// `G`: state-owned land.
    State,
    /// `J`: collectively owned land.
    Collective,
    /// `Z`: ownership in dispute or undetermined.
    Disputed,
}

/// What stands on the parcel (定着物特征码).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FixtureKind {
    /// `F`: a house or other building (房屋).
    House,
    /// `L`: trees (林木).
    Trees,
    /// `Q`: another fixture (其他).
    Other,
    /// `W`: no fixture; the unit is the land itself (无定着物).
    None,
}

impl FixtureKind {
    /// The letter used in the unit number.
    pub fn letter(self) -> char {
        match self {
            Self::House => 'F',
            Self::Trees => 'L',
            Self::Other => 'Q',
            Self::None => 'W',
        }
    }
}

/// A structurally valid 28-character real-estate unit number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitNo(String);

impl UnitNo {
    /// Parses a unit number; spaces used for grouping are ignored and letters upper-cased.
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let text: String = input.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        let chars: Vec<char> = text.chars().collect();
        if chars.len() != 28 {
            return Err(IdentError::Length { expected: "28", found: chars.len() });
        }
        let digits = |range: std::ops::Range<usize>| -> Result<(), IdentError> {
            for position in range {
                if !chars[position].is_ascii_digit() {
                    return Err(IdentError::InvalidCharacter { position, found: chars[position] });
                }
            }
            Ok(())
        };
        digits(0..12)?;
        if !matches!(chars[12], 'G' | 'J' | 'Z') {
            return Err(IdentError::InvalidSegment {
                segment: "parcel ownership letter (宗地特征码, G/J/Z)",
                found: chars[12].to_string(),
            });
        }
        if !PARCEL_TYPE_LETTERS.contains(chars[13]) {
            return Err(IdentError::InvalidSegment {
                segment: "parcel type letter (宗地特征码, one of ABSXCDEFHGWY)",
                found: chars[13].to_string(),
            });
        }
        digits(14..19)?;
        if !matches!(chars[19], 'F' | 'L' | 'Q' | 'W') {
            return Err(IdentError::InvalidSegment {
                segment: "fixture feature code (定着物特征码, F/L/Q/W)",
                found: chars[19].to_string(),
            });
        }
        digits(20..28)?;
        Ok(Self(text))
    }

    /// The 28 characters, ungrouped.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Six-digit county-level division code.
    pub fn division_code(&self) -> &str {
        &self.0[0..6]
    }

    /// Three-digit cadastral zone (地籍区).
    pub fn cadastral_zone(&self) -> &str {
        &self.0[6..9]
    }

    /// Three-digit cadastral subzone (地籍子区).
    pub fn cadastral_subzone(&self) -> &str {
        &self.0[9..12]
    }

    /// The two-letter parcel feature code (宗地特征码), e.g. `GB`.
    pub fn parcel_feature_code(&self) -> &str {
        &self.0[12..14]
    }

    /// Land ownership from the first parcel feature letter.
    pub fn land_ownership(&self) -> LandOwnership {
        match self.0.as_bytes()[12] {
            b'G' => LandOwnership::State,
            b'J' => LandOwnership::Collective,
            _ => LandOwnership::Disputed,
        }
    }

    /// Parcel type letter (second parcel feature letter).
    pub fn parcel_type(&self) -> char {
        self.0.as_bytes()[13] as char
    }

    /// Five-digit parcel sequence within the subzone.
    pub fn parcel_sequence(&self) -> &str {
        &self.0[14..19]
    }

    /// What stands on the parcel.
    pub fn fixture_kind(&self) -> FixtureKind {
        match self.0.as_bytes()[19] {
            b'F' => FixtureKind::House,
            b'L' => FixtureKind::Trees,
            b'Q' => FixtureKind::Other,
            _ => FixtureKind::None,
        }
    }

    /// Four-digit building number (幢号).
    pub fn building(&self) -> &str {
        &self.0[20..24]
    }

    /// Four-digit unit (household) number within the building (户号).
    pub fn unit(&self) -> &str {
        &self.0[24..28]
    }

    /// The form shown to people, grouped 6 6 7 9.
    pub fn grouped(&self) -> String {
        format!("{} {} {} {}", &self.0[0..6], &self.0[6..12], &self.0[12..19], &self.0[19..28])
    }
}

impl std::fmt::Display for UnitNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_domain_example_into_its_parts() {
        let unit = UnitNo::parse("430405001002GB00001F00010001").expect("valid");
        assert_eq!(unit.division_code(), "430405");
        assert_eq!(unit.cadastral_zone(), "001");
        assert_eq!(unit.cadastral_subzone(), "002");
        assert_eq!(unit.parcel_feature_code(), "GB");
        assert_eq!(unit.land_ownership(), LandOwnership::State);
        assert_eq!(unit.parcel_type(), 'B');
        assert_eq!(unit.parcel_sequence(), "00001");
        assert_eq!(unit.fixture_kind(), FixtureKind::House);
        assert_eq!(unit.building(), "0001");
        assert_eq!(unit.unit(), "0001");
        assert_eq!(unit.grouped(), "430405 001002 GB00001 F00010001");
    }

    #[test]
    fn grouped_input_is_accepted() {
        assert!(UnitNo::parse("430405 001002 GB00001 F00010001").is_ok());
    }

    #[test]
    fn unknown_segment_letters_are_refused() {
        assert!(matches!(UnitNo::parse("430405001002XB00001F00010001"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(UnitNo::parse("430405001002GK00001F00010001"), Err(IdentError::InvalidSegment { .. })));
        assert!(matches!(UnitNo::parse("430405001002GB00001H00010001"), Err(IdentError::InvalidSegment { .. })));
    }

    #[test]
    fn wrong_length_and_stray_letters_are_refused() {
        assert_eq!(UnitNo::parse("430405001002GB00001F0001000"), Err(IdentError::Length { expected: "28", found: 27 }));
        assert!(matches!(
            UnitNo::parse("4304050010A2GB00001F00010001"),
            Err(IdentError::InvalidCharacter { position: 10, found: 'A' })
        ));
    }
}
