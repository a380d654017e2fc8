//! Enterprise size classification of 工信部联企业〔2011〕300号 (2011-06-18): industries
//! and thresholds as in `channels.md` §5.
//!
//! Reading of the rules (the notice's own words, and the same reading as the statistics
//! bureau's 大中小微型企业划分办法): a class's lower bounds must **all** be met (且);
//! an enterprise that misses any bound of a class drops to the next class down
//! ("否则下划一档"); **micro** is whatever misses either bound of small (或). In
//! particular the SME ceiling ("从业人员1000人以下**或**营业收入40000万元以下的为中小微型企业")
//! makes an enterprise **large** only when it reaches both ceiling figures.

use std::fmt;

/// The sectors of the classification, with the codes used for the `industry` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Industry {
    /// 农林牧渔业
    Agriculture,
    /// 工业 (mining, manufacturing, utilities)
    Industry,
    /// 建筑业
    Construction,
    /// 批发业
    Wholesale,
    /// 零售业
    Retail,
    /// 交通运输业 (excluding railways)
    Transport,
    /// 仓储业
    Warehousing,
    /// 邮政业
    Postal,
    /// 住宿业
    Accommodation,
    /// 餐饮业
    Catering,
    /// 信息传输业 (telecoms, internet, broadcasting transmission)
    InformationTransmission,
    /// 软件和信息技术服务业
    SoftwareIt,
    /// 房地产开发经营
    RealEstate,
    /// 物业管理
    PropertyManagement,
    /// 租赁和商务服务业
    LeasingBusiness,
    /// 其他未列明行业
    Other,
}

impl Industry {
    pub const ALL: [Industry; 16] = [
        Self::Agriculture,
        Self::Industry,
        Self::Construction,
        Self::Wholesale,
        Self::Retail,
        Self::Transport,
        Self::Warehousing,
        Self::Postal,
        Self::Accommodation,
        Self::Catering,
        Self::InformationTransmission,
        Self::SoftwareIt,
        Self::RealEstate,
        Self::PropertyManagement,
        Self::LeasingBusiness,
        Self::Other,
    ];

    /// The attribute value, e.g. `software_it`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Agriculture => "agriculture",
            Self::Industry => "industry",
            Self::Construction => "construction",
            Self::Wholesale => "wholesale",
            Self::Retail => "retail",
            Self::Transport => "transport",
            Self::Warehousing => "warehousing",
            Self::Postal => "postal",
            Self::Accommodation => "accommodation",
            Self::Catering => "catering",
            Self::InformationTransmission => "information_transmission",
            Self::SoftwareIt => "software_it",
            Self::RealEstate => "real_estate",
            Self::PropertyManagement => "property_management",
            Self::LeasingBusiness => "leasing_business",
            Self::Other => "other",
        }
    }

    /// The Chinese name of the sector.
    pub fn label(self) -> &'static str {
        match self {
            Self::Agriculture => "农林牧渔业",
            Self::Industry => "工业",
            Self::Construction => "建筑业",
            Self::Wholesale => "批发业",
            Self::Retail => "零售业",
            Self::Transport => "交通运输业",
            Self::Warehousing => "仓储业",
            Self::Postal => "邮政业",
            Self::Accommodation => "住宿业",
            Self::Catering => "餐饮业",
            Self::InformationTransmission => "信息传输业",
            Self::SoftwareIt => "软件和信息技术服务业",
            Self::RealEstate => "房地产开发经营",
            Self::PropertyManagement => "物业管理",
            Self::LeasingBusiness => "租赁和商务服务业",
            Self::Other => "其他未列明行业",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.code() == code)
    }
}

impl fmt::Display for Industry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The size classes, largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SizeClass {
    Large,
    Medium,
    Small,
    Micro,
}

impl SizeClass {
    /// The `size_class` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Large => "large",
            Self::Medium => "medium",
            Self::Small => "small",
            Self::Micro => "micro",
        }
    }

    /// Medium, small and micro (中小微企业).
    pub fn is_sme(self) -> bool {
        self != Self::Large
    }
}

impl fmt::Display for SizeClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a threshold measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// 从业人员 (people).
    Employees,
    /// 营业收入 (10k CNY).
    Revenue,
    /// 资产总额 (10k CNY).
    Assets,
}

/// One row of the classification table: up to two measures and the lower bounds of
/// large (the SME ceiling), medium and small for each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    pub measures: [Option<Measure>; 2],
    /// Lower bounds `[first measure, second measure]` of large, medium and small.
    pub large: [f64; 2],
    pub medium: [f64; 2],
    pub small: [f64; 2],
}

const fn two(
    a: Measure,
    b: Measure,
    large: [f64; 2],
    medium: [f64; 2],
    small: [f64; 2],
) -> Thresholds {
    Thresholds {
        measures: [Some(a), Some(b)],
        large,
        medium,
        small,
    }
}

const fn one(a: Measure, large: f64, medium: f64, small: f64) -> Thresholds {
    Thresholds {
        measures: [Some(a), None],
        large: [large, 0.0],
        medium: [medium, 0.0],
        small: [small, 0.0],
    }
}

/// The thresholds of 工信部联企业〔2011〕300号 for one industry (`channels.md` §5).
pub fn thresholds(industry: Industry) -> Thresholds {
    use Measure::{Assets as A, Employees as E, Revenue as R};
    match industry {
        Industry::Agriculture => one(R, 20000.0, 500.0, 50.0),
        Industry::Industry => two(E, R, [1000.0, 40000.0], [300.0, 2000.0], [20.0, 300.0]),
        Industry::Construction => two(R, A, [80000.0, 80000.0], [6000.0, 5000.0], [300.0, 300.0]),
        Industry::Wholesale => two(E, R, [200.0, 40000.0], [20.0, 5000.0], [5.0, 1000.0]),
        Industry::Retail => two(E, R, [300.0, 20000.0], [50.0, 500.0], [10.0, 100.0]),
        Industry::Transport => two(E, R, [1000.0, 30000.0], [300.0, 3000.0], [20.0, 200.0]),
        Industry::Warehousing => two(E, R, [200.0, 30000.0], [100.0, 1000.0], [20.0, 100.0]),
        Industry::Postal => two(E, R, [1000.0, 30000.0], [300.0, 2000.0], [20.0, 100.0]),
        Industry::Accommodation | Industry::Catering => {
            two(E, R, [300.0, 10000.0], [100.0, 2000.0], [10.0, 100.0])
        }
        Industry::InformationTransmission => {
            two(E, R, [2000.0, 100000.0], [100.0, 1000.0], [10.0, 100.0])
        }
        Industry::SoftwareIt => two(E, R, [300.0, 10000.0], [100.0, 1000.0], [10.0, 50.0]),
        Industry::RealEstate => two(R, A, [200000.0, 10000.0], [1000.0, 5000.0], [100.0, 2000.0]),
        Industry::PropertyManagement => {
            two(E, R, [1000.0, 5000.0], [300.0, 1000.0], [100.0, 500.0])
        }
        Industry::LeasingBusiness => two(E, A, [300.0, 120000.0], [100.0, 8000.0], [10.0, 100.0]),
        Industry::Other => one(E, 300.0, 100.0, 10.0),
    }
}

/// The size class of an enterprise by 工信部联企业〔2011〕300号. Revenue and assets are in
/// 10k CNY (万元). Figures a row does not use are ignored.
pub fn sme_size_class(
    industry: Industry,
    employees: u64,
    revenue_wan: f64,
    assets_wan: f64,
) -> SizeClass {
    let t = thresholds(industry);
    let value = |m: Measure| match m {
        Measure::Employees => employees as f64,
        Measure::Revenue => revenue_wan,
        Measure::Assets => assets_wan,
    };
    let meets = |bounds: [f64; 2]| {
        t.measures
            .iter()
            .zip(bounds)
            .all(|(m, b)| m.is_none_or(|m| value(m) >= b))
    };
    if meets(t.large) {
        SizeClass::Large
    } else if meets(t.medium) {
        SizeClass::Medium
    } else if meets(t.small) {
        SizeClass::Small
    } else {
        SizeClass::Micro
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Industry as I;
    use SizeClass::{Large, Medium, Micro, Small};

    /// Classifies with the two figures of the industry's row placed where the row wants
    /// them (the unused figure is set absurdly high to show it is ignored).
    fn classify(ind: Industry, a: f64, b: f64) -> SizeClass {
        let t = thresholds(ind);
        let (mut e, mut r, mut s) = (1e9, 1e12, 1e12);
        for (m, v) in t.measures.iter().zip([a, b]) {
            match m {
                Some(Measure::Employees) => e = v,
                Some(Measure::Revenue) => r = v,
                Some(Measure::Assets) => s = v,
                None => {}
            }
        }
        sme_size_class(ind, e as u64, r, s)
    }

    /// At each class's bounds, the class; one unit below either bound, a class lower.
    fn check_two_figure_row(ind: Industry, large: [f64; 2], medium: [f64; 2], small: [f64; 2]) {
        assert_eq!(thresholds(ind).large, large, "{ind}");
        for (bounds, class, lower) in [
            (large, Large, Medium),
            (medium, Medium, Small),
            (small, Small, Micro),
        ] {
            assert_eq!(
                classify(ind, bounds[0], bounds[1]),
                class,
                "{ind} at {bounds:?}"
            );
            // with the other figure far above, missing one bound drops the class
            assert_eq!(
                classify(ind, bounds[0] - 1.0, bounds[1].max(large[1])),
                lower,
                "{ind} first figure just below {bounds:?}"
            );
            assert_eq!(
                classify(ind, bounds[0] - 1.0, bounds[1]),
                lower,
                "{ind} below {bounds:?}"
            );
            assert_eq!(
                classify(ind, bounds[0], bounds[1] - 0.01),
                lower,
                "{ind} below {bounds:?}"
            );
        }
        // micro if either figure is under the small bound, however big the other
        assert_eq!(classify(ind, small[0] - 1.0, 1e9), Micro, "{ind}");
        assert_eq!(classify(ind, 1e9, small[1] - 0.01), Micro, "{ind}");
    }

    #[test]
    fn two_figure_rows_at_their_boundaries() {
        check_two_figure_row(
            I::Industry,
            [1000.0, 40000.0],
            [300.0, 2000.0],
            [20.0, 300.0],
        );
        check_two_figure_row(
            I::Construction,
            [80000.0, 80000.0],
            [6000.0, 5000.0],
            [300.0, 300.0],
        );
        check_two_figure_row(
            I::Wholesale,
            [200.0, 40000.0],
            [20.0, 5000.0],
            [5.0, 1000.0],
        );
        check_two_figure_row(I::Retail, [300.0, 20000.0], [50.0, 500.0], [10.0, 100.0]);
        check_two_figure_row(
            I::Transport,
            [1000.0, 30000.0],
            [300.0, 3000.0],
            [20.0, 200.0],
        );
        check_two_figure_row(
            I::Warehousing,
            [200.0, 30000.0],
            [100.0, 1000.0],
            [20.0, 100.0],
        );
        check_two_figure_row(I::Postal, [1000.0, 30000.0], [300.0, 2000.0], [20.0, 100.0]);
        check_two_figure_row(
            I::Accommodation,
            [300.0, 10000.0],
            [100.0, 2000.0],
            [10.0, 100.0],
        );
        check_two_figure_row(
            I::Catering,
            [300.0, 10000.0],
            [100.0, 2000.0],
            [10.0, 100.0],
        );
        check_two_figure_row(
            I::InformationTransmission,
            [2000.0, 100000.0],
            [100.0, 1000.0],
            [10.0, 100.0],
        );
        check_two_figure_row(
            I::SoftwareIt,
            [300.0, 10000.0],
            [100.0, 1000.0],
            [10.0, 50.0],
        );
        check_two_figure_row(
            I::RealEstate,
            [200000.0, 10000.0],
            [1000.0, 5000.0],
            [100.0, 2000.0],
        );
        check_two_figure_row(
            I::PropertyManagement,
            [1000.0, 5000.0],
            [300.0, 1000.0],
            [100.0, 500.0],
        );
        check_two_figure_row(
            I::LeasingBusiness,
            [300.0, 120000.0],
            [100.0, 8000.0],
            [10.0, 100.0],
        );
    }

    #[test]
    fn one_figure_rows_at_their_boundaries() {
        // agriculture: revenue only; employees and assets do not matter
        for (rev, class) in [
            (20000.0, Large),
            (19999.99, Medium),
            (500.0, Medium),
            (499.99, Small),
            (50.0, Small),
            (49.99, Micro),
        ] {
            assert_eq!(sme_size_class(I::Agriculture, 0, rev, 0.0), class, "{rev}");
            assert_eq!(
                sme_size_class(I::Agriculture, 5000, rev, 1e9),
                class,
                "{rev}"
            );
        }
        // other industries: employees only
        for (staff, class) in [
            (300, Large),
            (299, Medium),
            (100, Medium),
            (99, Small),
            (10, Small),
            (9, Micro),
            (0, Micro),
        ] {
            assert_eq!(sme_size_class(I::Other, staff, 0.0, 0.0), class, "{staff}");
            assert_eq!(sme_size_class(I::Other, staff, 1e9, 1e9), class, "{staff}");
        }
    }

    #[test]
    fn worked_examples() {
        // a software firm of 45 people with 800万 revenue: small (medium needs 1000万)
        assert_eq!(sme_size_class(I::SoftwareIt, 45, 800.0, 300.0), Small);
        // a factory of 1500 people with 30000万 revenue is still an SME: medium
        assert_eq!(sme_size_class(I::Industry, 1500, 30000.0, 0.0), Medium);
        // a trading company of 3 people with 50000万 revenue: micro (fewer than 5 people)
        assert_eq!(sme_size_class(I::Wholesale, 3, 50000.0, 0.0), Micro);
        // a restaurant of 12 people with 150万 revenue: small
        assert_eq!(sme_size_class(I::Catering, 12, 150.0, 0.0), Small);
        // leasing & business services use assets, not revenue
        assert_eq!(sme_size_class(I::LeasingBusiness, 50, 1e9, 90.0), Micro);
        assert_eq!(sme_size_class(I::LeasingBusiness, 50, 0.0, 100.0), Small);
        assert!(Small.is_sme() && Medium.is_sme() && !Large.is_sme());
    }

    #[test]
    fn codes_round_trip() {
        for i in Industry::ALL {
            assert_eq!(Industry::parse(i.code()), Some(i));
            domain::subject::check_attribute_name(i.code()).unwrap();
        }
        assert_eq!(Industry::parse("mining"), None);
    }
}
