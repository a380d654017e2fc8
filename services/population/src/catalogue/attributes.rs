//! The attribute catalogue of the generated population: every attribute the generator
//! writes, with its Chinese label, type, unit and value labels, so that explanations of
//! the demo policies read as sentences (`参保月数 181 个月，不少于 12 个月`).

use crate::sme::Industry;
use domain::attribute::{AttrType, AttributeDef};

fn attr(
    name: &str,
    label: &str,
    ty: AttrType,
    unit: &str,
    values: &[(&str, &str)],
) -> AttributeDef {
    AttributeDef::new(name, label, ty, unit, values)
}

/// `true`/`false` phrased as whole statements.
fn flag(name: &str, label: &str, yes: &str, no: &str) -> AttributeDef {
    attr(
        name,
        label,
        AttrType::Boolean,
        "",
        &[("true", yes), ("false", no)],
    )
}

/// Every attribute residents and enterprises of the generator carry, by name.
pub fn attributes() -> Vec<AttributeDef> {
    use AttrType::*;
    let industries: Vec<(&str, &str)> = Industry::ALL
        .iter()
        .map(|i| (i.code(), i.label()))
        .collect();
    vec![
        // both kinds
        attr("district", "所在区", String, "", &[]),
        attr("insured_months", "参保月数", Integer, "个月", &[]),
        // residents
        flag("disability", "残疾人", "持有残疾人证", "非残疾人"),
        attr(
            "education",
            "学历",
            String,
            "",
            &[
                ("junior_high", "初中"),
                ("high_school", "高中"),
                ("vocational", "中专（职校）"),
                ("associate", "大专"),
                ("bachelor", "本科"),
                ("master", "硕士研究生"),
                ("doctor", "博士研究生"),
            ],
        ),
        attr(
            "employment_status",
            "就业状态",
            String,
            "",
            &[
                ("employed", "在职"),
                ("unemployed", "未就业"),
                ("registered_unemployed", "登记失业"),
                ("flexible", "灵活就业"),
                ("retired", "退休"),
                ("student", "在校学生"),
            ],
        ),
        flag(
            "flexible_employment",
            "灵活就业",
            "以灵活就业方式参保",
            "非灵活就业",
        ),
        attr("graduation_year", "毕业年份", Integer, "年", &[]),
        attr(
            "hukou",
            "户籍",
            String,
            "",
            &[("local", "本市户籍"), ("non_local", "外省市户籍")],
        ),
        flag(
            "poverty_household",
            "城乡低保家庭",
            "属于城乡低保家庭",
            "不属于城乡低保家庭",
        ),
        attr("registered_unemployed_since", "失业登记日期", Date, "", &[]),
        attr("skills_certificates", "职业技能等级证书", List, "", &[]),
        flag(
            "student_loan",
            "国家助学贷款",
            "在校期间获得国家助学贷款",
            "未获得国家助学贷款",
        ),
        // enterprises
        attr("employees", "从业人员", Integer, "人", &[]),
        attr("established", "成立日期", Date, "", &[]),
        attr("industry", "所属行业", String, "", &industries),
        flag(
            "insurance_arrears",
            "社会保险费欠费",
            "有社会保险费欠费",
            "无社会保险费欠费",
        ),
        attr("insured_employees", "参保职工人数", Integer, "人", &[]),
        attr("layoff_rate", "上年度裁员率", Number, "%", &[]),
        attr("layoffs_last_year", "上年度裁员人数", Integer, "人", &[]),
        attr(
            "new_hires_graduates_this_year",
            "今年招用高校毕业生人数",
            Integer,
            "人",
            &[],
        ),
        attr(
            "new_hires_unemployed_youth_this_year",
            "今年招用登记失业青年人数",
            Integer,
            "人",
            &[],
        ),
        attr("revenue_wan", "营业收入", Number, "万元", &[]),
        attr(
            "size_class",
            "企业规模",
            String,
            "",
            &[
                ("large", "大型企业"),
                ("medium", "中型企业"),
                ("small", "小型企业"),
                ("micro", "微型企业"),
            ],
        ),
        attr("total_assets_wan", "资产总额", Number, "万元", &[]),
        attr(
            "unemployment_insurance_paid_last_year",
            "上年度实际缴纳失业保险费",
            Integer,
            "元",
            &[],
        ),
    ]
}
