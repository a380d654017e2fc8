//! Tags: named rules over subjects' attributes. Time-driven ones (graduation cohorts,
//! durations) are written with concrete years and dates for the given `today`; the
//! periodic sweep re-creates them as time passes.

use super::{graduating_year, latest_graduated_year, HIGHER_EDUCATION};
use crate::{date_string, years_before};
use chrono::NaiveDate;

/// A tag as `PUT /api/v1/tags/{name}` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSpec {
    /// `[a-z_][a-z0-9_]*`.
    pub name: &'static str,
    pub description: String,
    pub rule: String,
}

fn tag(name: &'static str, description: impl Into<String>, rule: impl Into<String>) -> TagSpec {
    TagSpec {
        name,
        description: description.into(),
        rule: rule.into(),
    }
}

/// The demo tags on `today`. Tag rules read attributes only (no other tag), so they can
/// be computed in any order.
pub fn tags(today: NaiveDate) -> Vec<TagSpec> {
    let grad = graduating_year(today);
    let left = latest_graduated_year(today);
    let one_year_ago = date_string(years_before(today, 1));
    let three_years_ago = date_string(years_before(today, 3));
    vec![
        tag(
            "small_micro_enterprise",
            "小型微型企业：按工信部联企业〔2011〕300号划型为小型或微型的企业",
            "kind == 'enterprise' && size_class in ['small', 'micro']",
        ),
        tag(
            "sme_enterprise",
            "中小微企业：按工信部联企业〔2011〕300号划型为中型、小型或微型的企业",
            "kind == 'enterprise' && size_class in ['medium', 'small', 'micro']",
        ),
        tag(
            "insured_enterprise",
            "参保企业：有参保职工且无社会保险费欠费",
            "kind == 'enterprise' && insured_employees > 0 && insurance_arrears == false",
        ),
        tag(
            "startup_enterprise",
            "初创企业：成立未满3年",
            format!("kind == 'enterprise' && established > '{three_years_ago}'"),
        ),
        tag(
            "hiring_enterprise",
            "今年吸纳高校毕业生或失业青年就业的企业",
            "kind == 'enterprise' && new_hires_graduates_this_year + new_hires_unemployed_youth_this_year > 0",
        ),
        tag(
            "graduating_student",
            format!("毕业年度高校毕业生：{grad}届在校专科及以上学生"),
            format!(
                "kind == 'person' && employment_status == 'student' && graduation_year == {grad} && education in {HIGHER_EDUCATION}"
            ),
        ),
        tag(
            "recent_graduate",
            format!("离校2年内高校毕业生：{}届、{left}届专科及以上毕业生", left - 1),
            format!(
                "kind == 'person' && employment_status != 'student' && graduation_year >= {} && graduation_year <= {left} && education in {HIGHER_EDUCATION}",
                left - 1
            ),
        ),
        tag(
            "youth",
            "16–24岁青年",
            "kind == 'person' && age >= 16 && age <= 24",
        ),
        tag(
            "unemployed_youth",
            "16–24岁失业青年（含登记失业）",
            "kind == 'person' && age >= 16 && age <= 24 && employment_status in ['unemployed', 'registered_unemployed']",
        ),
        tag(
            "registered_unemployed",
            "登记失业人员",
            "kind == 'person' && employment_status == 'registered_unemployed'",
        ),
        tag(
            "long_term_unemployed",
            "长期失业人员：连续登记失业满1年",
            format!(
                "kind == 'person' && employment_status == 'registered_unemployed' && registered_unemployed_since <= '{one_year_ago}'"
            ),
        ),
        tag(
            "flexible_worker",
            "灵活就业人员",
            "kind == 'person' && flexible_employment == true",
        ),
        tag(
            "age_4050",
            "“4050”人员：女性40周岁以上、男性50周岁以上，未到退休年龄",
            "kind == 'person' && ((sex == 'female' && age >= 40 && age < 55) || (sex == 'male' && age >= 50 && age < 60))",
        ),
        tag(
            "hardship_family",
            "困难人员：低保等困难家庭成员或残疾人",
            "kind == 'person' && (poverty_household == true || disability == true)",
        ),
        tag(
            "employment_difficulty",
            "就业困难人员：本市户籍、未就业或灵活就业，属“4050”人员、残疾人或低保家庭成员",
            "kind == 'person' && hukou == 'local' && age < 60 \
             && employment_status in ['unemployed', 'registered_unemployed', 'flexible'] \
             && ((sex == 'female' && age >= 40) || (sex == 'male' && age >= 50) || disability == true || poverty_household == true)",
        ),
        tag(
            "key_group",
            "就业重点群体：高校毕业生、失业青年、登记失业人员",
            format!(
                "kind == 'person' && (\
                 (employment_status == 'student' && graduation_year == {grad} && education in {HIGHER_EDUCATION}) \
                 || (employment_status != 'student' && graduation_year >= {} && education in {HIGHER_EDUCATION}) \
                 || employment_status == 'registered_unemployed' \
                 || (age <= 24 && employment_status == 'unemployed'))",
                left - 1
            ),
        ),
        tag(
            "skilled_worker",
            "持有职业资格或职业技能等级证书",
            "kind == 'person' && has(attrs.skills_certificates) && size(skills_certificates) > 0",
        ),
    ]
}
