//! The 16 districts of Shanghai: GB/T 2260 division codes, and how residents and
//! enterprises are spread over them.

/// One district of Shanghai.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct District {
    /// Chinese name as written in addresses, e.g. `浦东新区`; the `district` attribute.
    pub name: &'static str,
    /// GB/T 2260 administrative division code, e.g. `310115`.
    pub code: &'static str,
    /// Resident weight: 7th census (2020) resident population in units of 100 people,
    /// rounded (so the shares are the census shares, approximately).
    pub resident_weight: u32,
    /// Enterprise weight: share of registered enterprises, in per mille (approximate:
    /// Pudong leads; Chongming, Fengxian and the outer districts host many registrations).
    pub enterprise_weight: u32,
}

/// All 16 districts, in the order of their division codes.
pub const DISTRICTS: [District; 16] = [
    District {
        name: "黄浦区",
        code: "310101",
        resident_weight: 6620,
        enterprise_weight: 25,
    },
    District {
        name: "徐汇区",
        code: "310104",
        resident_weight: 11131,
        enterprise_weight: 35,
    },
    District {
        name: "长宁区",
        code: "310105",
        resident_weight: 6931,
        enterprise_weight: 30,
    },
    District {
        name: "静安区",
        code: "310106",
        resident_weight: 9757,
        enterprise_weight: 35,
    },
    District {
        name: "普陀区",
        code: "310107",
        resident_weight: 12398,
        enterprise_weight: 30,
    },
    District {
        name: "虹口区",
        code: "310109",
        resident_weight: 7574,
        enterprise_weight: 25,
    },
    District {
        name: "杨浦区",
        code: "310110",
        resident_weight: 12425,
        enterprise_weight: 30,
    },
    District {
        name: "闵行区",
        code: "310112",
        resident_weight: 26535,
        enterprise_weight: 90,
    },
    District {
        name: "宝山区",
        code: "310113",
        resident_weight: 22352,
        enterprise_weight: 70,
    },
    District {
        name: "嘉定区",
        code: "310114",
        resident_weight: 18343,
        enterprise_weight: 90,
    },
    District {
        name: "浦东新区",
        code: "310115",
        resident_weight: 56815,
        enterprise_weight: 200,
    },
    District {
        name: "金山区",
        code: "310116",
        resident_weight: 8228,
        enterprise_weight: 50,
    },
    District {
        name: "松江区",
        code: "310117",
        resident_weight: 19097,
        enterprise_weight: 80,
    },
    District {
        name: "青浦区",
        code: "310118",
        resident_weight: 12714,
        enterprise_weight: 70,
    },
    District {
        name: "奉贤区",
        code: "310120",
        resident_weight: 11409,
        enterprise_weight: 90,
    },
    District {
        name: "崇明区",
        code: "310151",
        resident_weight: 6379,
        enterprise_weight: 50,
    },
];

/// The district with this name (`浦东新区`) or division code (`310115`).
pub fn district(name_or_code: &str) -> Option<&'static District> {
    DISTRICTS
        .iter()
        .find(|d| d.name == name_or_code || d.code == name_or_code)
}

/// Central (pre-2000 urban) districts, where more residents hold local hukou.
pub(crate) fn is_central(index: usize) -> bool {
    index <= 6
}

/// Districts with the largest in-migration of non-local residents.
pub(crate) fn is_inflow_suburb(index: usize) -> bool {
    matches!(index, 7 | 8 | 9 | 12 | 13 | 14)
}

pub(crate) fn enterprise_weights() -> [u32; 16] {
    DISTRICTS.map(|d| d.enterprise_weight)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_real_shanghai_divisions() {
        let codes: Vec<&str> = DISTRICTS.iter().map(|d| d.code).collect();
        assert_eq!(
            codes,
            [
                "310101", "310104", "310105", "310106", "310107", "310109", "310110", "310112",
                "310113", "310114", "310115", "310116", "310117", "310118", "310120", "310151"
            ]
        );
        assert_eq!(district("310115").unwrap().name, "浦东新区");
        assert_eq!(district("崇明区").unwrap().code, "310151");
        assert!(district("310100").is_none());
        // Pudong is about 23% of the residents.
        let total: u32 = DISTRICTS.iter().map(|d| d.resident_weight).sum();
        let pudong = district("浦东新区").unwrap().resident_weight;
        assert!((0.22..0.24).contains(&(f64::from(pudong) / f64::from(total))));
    }
}
