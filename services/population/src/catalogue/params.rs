//! The demo's policy parameters: thresholds and rates that policies read by name, each
//! with values by effective date. Document numbers are **illustrative**.

use super::ymd;
use chrono::NaiveDate;
use domain::param::{ParamValue, PolicyParam};
use domain::ParamValues;

fn value(from: NaiveDate, value: f64, legal_ref: &str) -> ParamValue {
    ParamValue {
        effective_from: from,
        value,
        legal_ref: legal_ref.into(),
    }
}

/// The parameters, by name:
/// - `min_insured_months`: months of unemployment insurance an enterprise needs for
///   稳岗返还;
/// - `sme_return_rate`: the share of last year's unemployment-insurance contributions
///   returned to small and medium enterprises (90% in 2022, 60% since 2023);
/// - `contribution_base_min`: the minimum social-insurance contribution base, CNY a month.
pub fn params() -> Vec<PolicyParam> {
    vec![
        PolicyParam {
            name: "contribution_base_min".into(),
            description: "社会保险缴费基数下限".into(),
            unit: "元/月".into(),
            values: vec![
                value(ymd(2023, 7, 1), 7310.0, "沪人社规〔2023〕15号"),
                value(ymd(2024, 7, 1), 7460.0, "沪人社规〔2024〕14号"),
            ],
        },
        PolicyParam {
            name: "min_insured_months".into(),
            description: "稳岗返还：企业连续参加失业保险的最少月数".into(),
            unit: "月".into(),
            values: vec![value(ymd(2023, 1, 1), 12.0, "沪人社规〔2023〕12号")],
        },
        PolicyParam {
            name: "sme_return_rate".into(),
            description: "稳岗返还：中小微企业按上年度实际缴纳失业保险费返还的比例".into(),
            unit: "比例".into(),
            values: vec![
                value(ymd(2022, 1, 1), 0.9, "沪人社规〔2022〕8号"),
                value(ymd(2023, 1, 1), 0.6, "沪人社规〔2023〕12号"),
            ],
        },
    ]
}

/// The values of [`params`] in force on `today`.
pub fn param_values(today: NaiveDate) -> ParamValues {
    ParamValues::on(&params(), today)
}
