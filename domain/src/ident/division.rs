//! Administrative divisions (行政区划代码, GB/T 2260) and their names: the
//! province of Hunan (湖南省) with its 14 cities and prefectures and their
//! 122 districts, counties and county-level cities, the area a provincial
//! department runs the warehouse for; Hengyang (衡阳) is the simulated city.
//! The codes and names are those of the Ministry of Civil Affairs' list as
//! of 2023 (渌口区 since 2018, 邵东市 since 2019, 祁阳市 since 2021).

/// A division of Hunan: the province, a city (`4304 00`) or a county-level division.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Division {
    /// Six-digit GB/T 2260 code.
    pub code: &'static str,
    /// Simplified Chinese name.
    pub name: &'static str,
}

/// Hunan province, its cities and prefectures (`xxxx00`) and their county-level divisions, by code.
pub const HUNAN_DIVISIONS: [Division; 137] = [
    Division { code: "430000", name: "湖南省" },
    Division { code: "430100", name: "长沙市" },
    Division { code: "430102", name: "芙蓉区" },
    Division { code: "430103", name: "天心区" },
    Division { code: "430104", name: "岳麓区" },
    Division { code: "430105", name: "开福区" },
    Division { code: "430111", name: "雨花区" },
    Division { code: "430112", name: "望城区" },
    Division { code: "430121", name: "长沙县" },
    Division { code: "430181", name: "浏阳市" },
    Division { code: "430182", name: "宁乡市" },
    Division { code: "430200", name: "株洲市" },
    Division { code: "430202", name: "荷塘区" },
    Division { code: "430203", name: "芦淞区" },
    Division { code: "430204", name: "石峰区" },
    Division { code: "430211", name: "天元区" },
    Division { code: "430212", name: "渌口区" },
    Division { code: "430223", name: "攸县" },
    Division { code: "430224", name: "茶陵县" },
    Division { code: "430225", name: "炎陵县" },
    Division { code: "430281", name: "醴陵市" },
    Division { code: "430300", name: "湘潭市" },
    Division { code: "430302", name: "雨湖区" },
    Division { code: "430304", name: "岳塘区" },
    Division { code: "430321", name: "湘潭县" },
    Division { code: "430381", name: "湘乡市" },
    Division { code: "430382", name: "韶山市" },
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
    Division { code: "430500", name: "邵阳市" },
    Division { code: "430502", name: "双清区" },
    Division { code: "430503", name: "大祥区" },
    Division { code: "430511", name: "北塔区" },
    Division { code: "430522", name: "新邵县" },
    Division { code: "430523", name: "邵阳县" },
    Division { code: "430524", name: "隆回县" },
    Division { code: "430525", name: "洞口县" },
    Division { code: "430527", name: "绥宁县" },
    Division { code: "430528", name: "新宁县" },
    Division { code: "430529", name: "城步苗族自治县" },
    Division { code: "430581", name: "武冈市" },
    Division { code: "430582", name: "邵东市" },
    Division { code: "430600", name: "岳阳市" },
    Division { code: "430602", name: "岳阳楼区" },
    Division { code: "430603", name: "云溪区" },
    Division { code: "430611", name: "君山区" },
    Division { code: "430621", name: "岳阳县" },
    Division { code: "430623", name: "华容县" },
    Division { code: "430624", name: "湘阴县" },
    Division { code: "430626", name: "平江县" },
    Division { code: "430681", name: "汨罗市" },
    Division { code: "430682", name: "临湘市" },
    Division { code: "430700", name: "常德市" },
    Division { code: "430702", name: "武陵区" },
    Division { code: "430703", name: "鼎城区" },
    Division { code: "430721", name: "安乡县" },
    Division { code: "430722", name: "汉寿县" },
    Division { code: "430723", name: "澧县" },
    Division { code: "430724", name: "临澧县" },
    Division { code: "430725", name: "桃源县" },
    Division { code: "430726", name: "石门县" },
    Division { code: "430781", name: "津市市" },
    Division { code: "430800", name: "张家界市" },
    Division { code: "430802", name: "永定区" },
    Division { code: "430811", name: "武陵源区" },
    Division { code: "430821", name: "慈利县" },
    Division { code: "430822", name: "桑植县" },
    Division { code: "430900", name: "益阳市" },
    Division { code: "430902", name: "资阳区" },
    Division { code: "430903", name: "赫山区" },
    Division { code: "430921", name: "南县" },
    Division { code: "430922", name: "桃江县" },
    Division { code: "430923", name: "安化县" },
    Division { code: "430981", name: "沅江市" },
    Division { code: "431000", name: "郴州市" },
    Division { code: "431002", name: "北湖区" },
    Division { code: "431003", name: "苏仙区" },
    Division { code: "431021", name: "桂阳县" },
    Division { code: "431022", name: "宜章县" },
    Division { code: "431023", name: "永兴县" },
    Division { code: "431024", name: "嘉禾县" },
    Division { code: "431025", name: "临武县" },
    Division { code: "431026", name: "汝城县" },
    Division { code: "431027", name: "桂东县" },
    Division { code: "431028", name: "安仁县" },
    Division { code: "431081", name: "资兴市" },
    Division { code: "431100", name: "永州市" },
    Division { code: "431102", name: "零陵区" },
    Division { code: "431103", name: "冷水滩区" },
    Division { code: "431122", name: "东安县" },
    Division { code: "431123", name: "双牌县" },
    Division { code: "431124", name: "道县" },
    Division { code: "431125", name: "江永县" },
    Division { code: "431126", name: "宁远县" },
    Division { code: "431127", name: "蓝山县" },
    Division { code: "431128", name: "新田县" },
    Division { code: "431129", name: "江华瑶族自治县" },
    Division { code: "431181", name: "祁阳市" },
    Division { code: "431200", name: "怀化市" },
    Division { code: "431202", name: "鹤城区" },
    Division { code: "431221", name: "中方县" },
    Division { code: "431222", name: "沅陵县" },
    Division { code: "431223", name: "辰溪县" },
    Division { code: "431224", name: "溆浦县" },
    Division { code: "431225", name: "会同县" },
    Division { code: "431226", name: "麻阳苗族自治县" },
    Division { code: "431227", name: "新晃侗族自治县" },
    Division { code: "431228", name: "芷江侗族自治县" },
    Division { code: "431229", name: "靖州苗族侗族自治县" },
    Division { code: "431230", name: "通道侗族自治县" },
    Division { code: "431281", name: "洪江市" },
    Division { code: "431300", name: "娄底市" },
    Division { code: "431302", name: "娄星区" },
    Division { code: "431321", name: "双峰县" },
    Division { code: "431322", name: "新化县" },
    Division { code: "431381", name: "冷水江市" },
    Division { code: "431382", name: "涟源市" },
    Division { code: "433100", name: "湘西土家族苗族自治州" },
    Division { code: "433101", name: "吉首市" },
    Division { code: "433122", name: "泸溪县" },
    Division { code: "433123", name: "凤凰县" },
    Division { code: "433124", name: "花垣县" },
    Division { code: "433125", name: "保靖县" },
    Division { code: "433126", name: "古丈县" },
    Division { code: "433127", name: "永顺县" },
    Division { code: "433130", name: "龙山县" },
];

/// Hengyang city (430400) and its districts, counties and county-level
/// cities: the run of [`HUNAN_DIVISIONS`] from 430400 to 430482, in code order.
pub const HENGYANG_DIVISIONS: [Division; 13] = {
    const FIRST: usize = 27;
    let mut out = [HUNAN_DIVISIONS[FIRST]; 13];
    let mut i = 0;
    while i < out.len() {
        out[i] = HUNAN_DIVISIONS[FIRST + i];
        i += 1;
    }
    out
};

impl Division {
    /// Looks a division of Hunan up by its six-digit code.
    pub fn by_code(code: &str) -> Option<Division> {
        let code = code.trim();
        HUNAN_DIVISIONS.binary_search_by(|d| d.code.cmp(code)).ok().map(|i| HUNAN_DIVISIONS[i])
    }

    /// The name of the division `code` names, if it is one of Hunan's.
    pub fn name_of(code: &str) -> Option<&'static str> {
        Division::by_code(code).map(|d| d.name)
    }

    /// `珠晖区 (430405)`: the name with its code, or the code alone when it names no division of Hunan.
    pub fn label(code: &str) -> String {
        match Division::name_of(code) {
            Some(name) => format!("{name} ({code})"),
            None => code.to_owned(),
        }
    }

    /// The city or prefecture a county-level division belongs to (itself for a city).
    pub fn city(&self) -> Option<Division> {
        Division::by_code(&format!("{}00", &self.code[..4]))
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
        HUNAN_DIVISIONS.iter().copied().find(|d| d.name == simplified)
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
    fn hunan_has_fourteen_cities_and_their_counties() {
        let sorted = HUNAN_DIVISIONS.windows(2).all(|w| w[0].code < w[1].code);
        assert!(sorted, "the table is searched by code: keep it sorted");
        let cities = HUNAN_DIVISIONS.iter().filter(|d| d.code.ends_with("00") && d.code != "430000").count();
        assert_eq!(cities, 14);
        assert_eq!(HUNAN_DIVISIONS.len() - cities - 1, 122);
        for d in &HUNAN_DIVISIONS[1..] {
            assert!(d.city().is_some(), "{} has no city", d.code);
        }
        assert_eq!(HENGYANG_DIVISIONS[0].name, "衡阳市");
        assert_eq!(HENGYANG_DIVISIONS[12].code, "430482");
        for d in HENGYANG_DIVISIONS {
            assert_eq!(d.city().map(|c| c.code), Some("430400"), "{} is not Hengyang's", d.code);
        }
        let in_table = HUNAN_DIVISIONS.iter().filter(|d| d.code.starts_with("4304")).count();
        assert_eq!(in_table, HENGYANG_DIVISIONS.len(), "every division of Hengyang, none left out");
        assert_eq!(Division::name_of("433101"), Some("吉首市"));
        assert_eq!(Division::by_code("430482").and_then(|d| d.city()).map(|c| c.name), Some("衡阳市"));
        assert_eq!(Division::label("430405"), "珠晖区 (430405)");
        assert_eq!(Division::label("990101"), "990101");
    }

    #[test]
    fn court_codes_follow_the_division() {
        assert_eq!(Division::by_code("430405").map(|d| d.court_code()).as_deref(), Some("湘0405"));
        assert_eq!(Division::by_code("430400").map(|d| d.court_code()).as_deref(), Some("湘04"));
    }
}
