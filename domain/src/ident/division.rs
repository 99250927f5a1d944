//! Hengyang administrative divisions (行政区划代码) and their names.

/// A county-level division of Hengyang (or the city itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Division {
    /// Six-digit GB/T 2260 code.
    pub code: &'static str,
    /// Simplified Chinese name.
    pub name: &'static str,
}

/// Hengyang city and its districts, counties and county-level cities.
pub const HENGYANG_DIVISIONS: [Division; 13] = [
    Division { code: "430400", name: "衡阳市" },
    Division { code: "430405", name: "珠晖区" },
    Division { code: "430406", name: "雁峰区" },
    Division { code: "430407", name: "石鼓区" },
    Division { code: "430408", name: "蒸湘区" },
    Division { code: "430412", name: "南岳区" },
    Division { code: "430421", name: "衡阳县" },
    Division { code: "430422", name: "衡南县" },
    Division { code: "430423", name: "衡山县" },
    Division { code: "430424", name: "衡东县" },
    Division { code: "430426", name: "祁东县" },
    Division { code: "430481", name: "耒阳市" },
    Division { code: "430482", name: "常宁市" },
];

impl Division {
    /// Looks a division up by its six-digit code.
    pub fn by_code(code: &str) -> Option<Division> {
        HENGYANG_DIVISIONS.iter().copied().find(|d| d.code == code)
    }

    /// Looks a division up by its name, simplified or traditional (`珠暉區`).
    pub fn by_name(name: &str) -> Option<Division> {
        let simplified: String = name
            .trim()
            .chars()
            .map(|c| match c {
                '陽' => '阳',
                '暉' => '晖',
                '區' => '区',
                '縣' => '县',
                '嶽' => '岳',
                '東' => '东',
                '寧' => '宁',
                other => other,
            })
            .collect();
        HENGYANG_DIVISIONS.iter().copied().find(|d| d.name == simplified)
    }

    /// The court code of this division's basic court (`湘` + last four digits),
    /// or the intermediate court's (`湘04`) for the city itself.
    pub fn court_code(&self) -> String {
        if self.code.ends_with("00") { format!("湘{}", &self.code[2..4]) } else { format!("湘{}", &self.code[2..6]) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_by_code_and_name() {
        assert_eq!(Division::by_code("430405").map(|d| d.name), Some("珠晖区"));
        assert_eq!(Division::by_name("珠暉區").map(|d| d.code), Some("430405"));
        assert_eq!(Division::by_name("常宁市").map(|d| d.code), Some("430482"));
        assert_eq!(Division::by_code("110105"), None);
    }

    #[test]
    fn court_codes_follow_the_division() {
        assert_eq!(Division::by_code("430405").map(|d| d.court_code()).as_deref(), Some("湘0405"));
        assert_eq!(Division::by_code("430400").map(|d| d.court_code()).as_deref(), Some("湘04"));
    }
}
