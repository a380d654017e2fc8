//! The demo policies. Titles stay within 20 characters so they fit a WeChat `thing`
//! field. Document numbers follow the real format (沪人社规〔年〕号 for normative
//! documents, 沪人社就〔年〕号 for employment notices) but are **illustrative**, as are
//! the 一网通办 item links.

use super::{graduating_year, ymd};
use chrono::{Datelike, NaiveDate};
use domain::policy::PolicyDraft;

const ISSUER_HRSS: &str = "上海市人力资源和社会保障局";
const ISSUER_HRSS_FINANCE: &str = "上海市人力资源和社会保障局、上海市财政局";

/// Shanghai's minimum social-insurance contribution base, CNY per month (from July 2024;
/// illustrative for the current year).
pub const CONTRIBUTION_BASE_MIN: i64 = 7460;

fn apply_url(item: &str) -> String {
    format!("https://zwdt.sh.gov.cn/govPortals/bsfw/item/{item}")
}

/// The demo policies on `today`, in this order:
/// 0. 失业保险稳岗返还（中小微企业） — enterprises;
/// 1. 一次性吸纳就业补贴 — enterprises;
/// 2. 高校毕业生求职创业补贴 — graduating students from hardship families;
/// 3. 职业技能培训补贴 — registered unemployed and flexible workers aged 16–60;
/// 4. 就业困难人员灵活就业社会保险费补贴 — local "4050" flexible workers;
/// 5. 青年就业见习计划 — unemployed youth and unemployed recent graduates.
pub fn policies(today: NaiveDate) -> Vec<PolicyDraft> {
    let y = today.year();
    let grad = graduating_year(today);
    vec![
        PolicyDraft {
            title: "失业保险稳岗返还（中小微企业）".into(),
            doc_number: format!("沪人社规〔{y}〕6号"),
            issuer: ISSUER_HRSS_FINANCE.into(),
            category: "稳岗就业·企业补贴".into(),
            effective_from: Some(ymd(y, 1, 1)),
            effective_to: Some(ymd(y, 12, 31)),
            summary: "参加失业保险满12个月且无欠费、上年度未裁员或裁员率不高于5.5%（参保职工30人及以下的企业不高于20%）的中小微企业，\
                      按企业及其职工上年度实际缴纳失业保险费的60%返还，大型企业按30%返还，免申即享。"
                .into(),
            interpretation: "问：哪些企业可以享受？\n\
                答：在本市依法参加失业保险、足额缴费满12个月且无欠费的企业，上年度未裁员或裁员率不高于全国城镇调查失业率控制目标（5.5%）；参保职工30人及以下的企业，裁员率不高于20%。\n\
                问：能返还多少？\n\
                答：中小微企业按企业及其职工上年度实际缴纳失业保险费的60%返还，大型企业按30%返还。企业规模按工信部联企业〔2011〕300号划型。\n\
                问：需要提出申请吗？\n\
                答：实行“免申即享”，经大数据比对符合条件的，资金直接拨付至企业对公账户；无对公账户的，可通过“一网通办”补充账户信息。\n\
                问：返还资金可以用来做什么？\n\
                答：用于职工生活补助、缴纳社会保险费、转岗培训、技能提升培训等稳定就业岗位的支出。"
                .into(),
            faq: Vec::new(),
            apply_url: apply_url("310000RSJ-WGFH-0001"),
            eligibility: "kind == 'enterprise' && 'sme_enterprise' in tags \
                          && insured_months >= params.min_insured_months \
                          && insurance_arrears == false && unemployment_insurance_paid_last_year > 0 \
                          && (layoff_rate <= 5.5 || (insured_employees <= 30 && layoff_rate <= 20.0))"
                .into(),
            benefit: Some("unemployment_insurance_paid_last_year * params.sme_return_rate".into()),
        },
        PolicyDraft {
            title: "一次性吸纳就业补贴".into(),
            doc_number: format!("沪人社就〔{y}〕15号"),
            issuer: ISSUER_HRSS_FINANCE.into(),
            category: "稳岗就业·企业补贴".into(),
            effective_from: Some(ymd(y, 1, 1)),
            effective_to: Some(ymd(y, 12, 31)),
            summary: "企业招用毕业年度或离校2年内未就业高校毕业生、登记失业的16–24岁青年，签订1年以上劳动合同并为其足额缴纳社会保险费3个月以上的，\
                      按每人1500元给予一次性吸纳就业补贴。"
                .into(),
            interpretation: "问：招用哪些人员可以申领？\n\
                答：毕业年度或离校2年内未就业的高校毕业生，以及在本市登记失业的16–24岁青年。\n\
                问：有什么条件？\n\
                答：企业与其签订1年以上劳动合同，并为其足额缴纳社会保险费满3个月，且企业无社会保险费欠费。\n\
                问：补贴标准是多少？\n\
                答：按实际招用人数，每人1500元，同一人员只能享受一次。\n\
                问：怎么申领？\n\
                答：通过“一网通办”企业专属网页在线提交申请，审核通过后拨付至企业对公账户。"
                .into(),
            faq: Vec::new(),
            apply_url: apply_url("310000RSJ-XNJY-0002"),
            eligibility: "kind == 'enterprise' && insured_employees > 0 && insurance_arrears == false \
                          && new_hires_graduates_this_year + new_hires_unemployed_youth_this_year >= 1"
                .into(),
            benefit: Some(
                "(new_hires_graduates_this_year + new_hires_unemployed_youth_this_year) * 1500".into(),
            ),
        },
        PolicyDraft {
            title: "高校毕业生求职创业补贴".into(),
            doc_number: format!("沪人社就〔{}〕9号", grad - 1),
            issuer: ISSUER_HRSS_FINANCE.into(),
            category: "高校毕业生就业".into(),
            effective_from: Some(ymd(grad - 1, 9, 1)),
            effective_to: Some(ymd(grad, 8, 31)),
            summary: format!(
                "{grad}届毕业生中，低保家庭、残疾、获得国家助学贷款等困难高校毕业生，有就业创业意愿并积极求职创业的，\
                 可申领一次性求职创业补贴3000元。"
            ),
            interpretation: format!(
                "问：谁可以申请？\n\
                 答：本市高校{grad}届专科及以上毕业生，属于城乡低保家庭、残疾人，或在校期间获得国家助学贷款的。\n\
                 问：补贴多少钱？\n\
                 答：每人一次性3000元，在毕业年度内申领。\n\
                 问：怎么申请？\n\
                 答：通过“一网通办”或所在学校提交申请，学校审核公示后报人社部门，补贴直接发放至本人社会保障卡银行账户。\n\
                 问：需要提供哪些材料？\n\
                 答：困难身份由系统比对核验，一般无需提交纸质证明；国家助学贷款信息由学校核实。"
            ),
            faq: Vec::new(),
            apply_url: apply_url("310000RSJ-QZCY-0003"),
            eligibility: "kind == 'person' && 'graduating_student' in tags \
                          && (poverty_household == true || disability == true || student_loan == true)"
                .into(),
            benefit: Some("3000".into()),
        },
        PolicyDraft {
            title: "职业技能培训补贴".into(),
            doc_number: format!("沪人社规〔{}〕21号", y - 1),
            issuer: ISSUER_HRSS_FINANCE.into(),
            category: "职业技能提升".into(),
            effective_from: Some(ymd(y - 1, 7, 1)),
            effective_to: Some(ymd(y + 1, 6, 30)),
            summary: "本市登记失业人员、灵活就业人员等参加补贴性职业技能培训，取得职业技能等级证书或专项职业能力证书的，\
                      按培训项目补贴标准的80%至100%给予培训费补贴。"
                .into(),
            interpretation: "问：哪些人可以参加补贴培训？\n\
                答：16至60周岁、在本市登记失业或灵活就业的人员，可参加目录内的补贴性职业技能培训项目。\n\
                问：补贴怎么计算？\n\
                答：培训合格并取得证书的，按项目补贴标准的80%给予补贴；登记失业人员、就业困难人员按100%补贴。\n\
                问：在哪里报名？\n\
                答：在“一网通办”或“随申办”查询培训机构和课程，选择项目后在线报名，培训费由机构先行垫付。\n\
                问：已经有证书还能再培训吗？\n\
                答：可以参加更高等级或其他工种的培训，同一等级同一工种只能享受一次补贴。"
                .into(),
            faq: Vec::new(),
            apply_url: apply_url("310000RSJ-JNPX-0004"),
            eligibility: "kind == 'person' && age >= 16 && age <= 60 \
                          && employment_status in ['registered_unemployed', 'flexible']"
                .into(),
            benefit: None,
        },
        PolicyDraft {
            title: "就业困难人员灵活就业社会保险费补贴".into(),
            doc_number: format!("沪人社规〔{}〕4号", y - 1),
            issuer: ISSUER_HRSS_FINANCE.into(),
            category: "就业援助".into(),
            effective_from: Some(ymd(y - 1, 1, 1)),
            effective_to: Some(ymd(y + 3, 12, 31)),
            summary: format!(
                "本市户籍就业困难人员（女性40周岁以上、男性50周岁以上）以灵活就业方式按规定缴纳社会保险费的，\
                 按缴费基数下限（{CONTRIBUTION_BASE_MIN}元/月）计算的养老、医疗保险费的三分之二给予补贴。"
            ),
            interpretation: format!(
                "问：谁可以申请？\n\
                 答：本市户籍、女性40周岁以上（未满55周岁）、男性50周岁以上（未满60周岁）的就业困难人员，以灵活就业方式按月缴纳社会保险费的。\n\
                 问：补贴标准是多少？\n\
                 答：按本市缴费基数下限{CONTRIBUTION_BASE_MIN}元/月计算的养老保险（24%）和医疗保险（11.5%）费用的三分之二，按月补贴，一年约两万元。\n\
                 问：能补多久？\n\
                 答：一般不超过3年；距法定退休年龄不足5年的，可延长至退休。\n\
                 问：怎么办理？\n\
                 答：通过“一网通办”或到街道（乡镇）社区事务受理服务中心申请，审核后按月拨付至本人社会保障卡银行账户。"
            ),
            faq: Vec::new(),
            apply_url: apply_url("310000RSJ-LHSB-0005"),
            eligibility: "kind == 'person' && hukou == 'local' && flexible_employment == true && insured_months >= 1 \
                          && ((sex == 'female' && age >= 40 && age < 55) || (sex == 'male' && age >= 50 && age < 60))"
                .into(),
            benefit: Some("params.contribution_base_min * 0.355 * 12 * 2.0 / 3.0".into()),
        },
        PolicyDraft {
            title: "青年就业见习计划".into(),
            doc_number: format!("沪人社就〔{y}〕18号"),
            issuer: ISSUER_HRSS.into(),
            category: "青年就业".into(),
            effective_from: Some(ymd(y, 1, 1)),
            effective_to: Some(ymd(y + 1, 12, 31)),
            summary: "16–24岁失业青年和离校2年内未就业高校毕业生，可参加3至12个月的就业见习，见习期间由见习单位发放见习生活补贴、\
                      办理人身意外伤害保险；见习期满留用的，单位可享受见习留用补贴。"
                .into(),
            interpretation: "问：谁可以参加见习？\n\
                答：16–24岁失业青年，以及离校2年内未就业的高校毕业生。\n\
                问：见习多长时间？有收入吗？\n\
                答：见习期一般3至12个月，期间由见习单位按不低于本市最低工资标准的80%发放见习生活补贴，并办理人身意外伤害保险。\n\
                问：怎么找见习岗位？\n\
                答：在“一网通办”就业见习专栏或各区就业促进中心查询见习基地和岗位，在线报名。\n\
                问：见习结束后能留下工作吗？\n\
                答：见习单位可与见习人员签订劳动合同，留用的单位还可按规定申领补贴。"
                .into(),
            faq: Vec::new(),
            apply_url: apply_url("310000RSJ-JYJX-0006"),
            eligibility: "kind == 'person' && employment_status in ['unemployed', 'registered_unemployed'] \
                          && (age <= 24 || 'recent_graduate' in tags)"
                .into(),
            benefit: None,
        },
    ]
}
