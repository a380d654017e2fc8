//! The B1 rule set: ten realistic eligibility rules over residents (5–21 clauses: tags,
//! enums, numeric ranges, lists, dates, arithmetic), each in our CEL subset and as the
//! equivalent SQL. `bench/openfisca_match.py` holds the same rules as numpy formulas.
//! The evaluation date is fixed ([`TODAY`]) so every engine sees the same ages.

/// `yyyymmdd` of the evaluation date.
pub const TODAY: i32 = 20260101;

/// A person's age in SQL, from the `birth` column (`yyyymmdd`).
const AGE: &str = "((20260101 - birth) / 10000)";

pub struct BenchRule {
    pub id: &'static str,
    pub clauses: u32,
    pub cel: &'static str,
    sql: &'static str,
}

impl BenchRule {
    /// The SQL condition, with `AGE` expanded.
    pub fn sql(&self) -> String {
        self.sql.replace("AGE", AGE)
    }
}

pub const RULES: [BenchRule; 10] = [
    BenchRule {
        id: "r01_graduate_jobseekers",
        clauses: 5,
        cel: "kind == 'person' && 'recent_graduate' in tags \
              && employment_status in ['unemployed', 'registered_unemployed'] && hukou == 'local' && age <= 30",
        sql: "kind = 'person' AND 'recent_graduate' = ANY(tags) \
              AND employment_status IN ('unemployed', 'registered_unemployed') AND hukou = 'local' AND AGE <= 30",
    },
    BenchRule {
        id: "r02_4050_unemployed",
        clauses: 8,
        cel: "kind == 'person' && employment_status == 'registered_unemployed' && hukou == 'local' \
              && ((sex == 'female' && age >= 40) || (sex == 'male' && age >= 50)) && age < 60",
        sql: "kind = 'person' AND employment_status = 'registered_unemployed' AND hukou = 'local' \
              AND ((sex = 'female' AND AGE >= 40) OR (sex = 'male' AND AGE >= 50)) AND AGE < 60",
    },
    BenchRule {
        id: "r03_flexible_insurance",
        clauses: 10,
        cel: "kind == 'person' && hukou == 'local' && flexible_employment == true && insured_months >= 1 \
              && ((sex == 'female' && age >= 40 && age < 55) || (sex == 'male' && age >= 50 && age < 60))",
        sql: "kind = 'person' AND hukou = 'local' AND flexible_employment = true AND insured_months >= 1 \
              AND ((sex = 'female' AND AGE >= 40 AND AGE < 55) OR (sex = 'male' AND AGE >= 50 AND AGE < 60))",
    },
    BenchRule {
        id: "r04_training_subsidy",
        clauses: 6,
        cel: "kind == 'person' && age >= 16 && age <= 60 && employment_status in ['registered_unemployed', 'flexible'] \
              && district in ['浦东新区', '闵行区', '宝山区'] && education in ['junior_high', 'high_school', 'vocational']",
        sql: "kind = 'person' AND AGE >= 16 AND AGE <= 60 AND employment_status IN ('registered_unemployed', 'flexible') \
              AND district IN ('浦东新区', '闵行区', '宝山区') AND education IN ('junior_high', 'high_school', 'vocational')",
    },
    BenchRule {
        id: "r05_graduate_hardship",
        clauses: 5,
        cel: "kind == 'person' && 'graduating_student' in tags \
              && (poverty_household == true || disability == true || student_loan == true)",
        sql: "kind = 'person' AND 'graduating_student' = ANY(tags) \
              AND (poverty_household = true OR disability = true OR student_loan = true)",
    },
    BenchRule {
        id: "r06_youth_not_in_work",
        clauses: 7,
        cel: "age >= 16 && age <= 24 && employment_status != 'employed' && employment_status != 'student' \
              && hukou == 'local' && district in ['浦东新区', '徐汇区', '杨浦区', '闵行区'] && !('recent_graduate' in tags)",
        sql: "AGE >= 16 AND AGE <= 24 AND employment_status <> 'employed' AND employment_status <> 'student' \
              AND hukou = 'local' AND district IN ('浦东新区', '徐汇区', '杨浦区', '闵行区') AND NOT ('recent_graduate' = ANY(tags))",
    },
    BenchRule {
        id: "r07_certified_unemployed",
        clauses: 6,
        cel: "size(skills_certificates) > 0 \
              && ('焊工（四级）' in skills_certificates || '电工（四级）' in skills_certificates) \
              && employment_status in ['unemployed', 'registered_unemployed'] && age < 50",
        sql: "cardinality(skills_certificates) > 0 \
              AND ('焊工（四级）' = ANY(skills_certificates) OR '电工（四级）' = ANY(skills_certificates)) \
              AND employment_status IN ('unemployed', 'registered_unemployed') AND AGE < 50",
    },
    BenchRule {
        id: "r08_long_unemployed_dates",
        clauses: 8,
        cel: "employment_status == 'registered_unemployed' && registered_unemployed_since <= '2025-07-01' \
              && graduation_year <= 2015 && age >= 25 && age <= 55 \
              && education in ['high_school', 'vocational', 'associate'] && hukou == 'local' && !(district in ['崇明区'])",
        sql: "employment_status = 'registered_unemployed' AND registered_unemployed_since <= '2025-07-01' \
              AND graduation_year <= 2015 AND AGE >= 25 AND AGE <= 55 \
              AND education IN ('high_school', 'vocational', 'associate') AND hukou = 'local' AND NOT (district IN ('崇明区'))",
    },
    BenchRule {
        id: "r09_twenty_clauses",
        clauses: 21,
        cel: "kind == 'person' && age >= 18 && age <= 59 && hukou == 'local' \
              && district in ['浦东新区', '徐汇区', '长宁区', '静安区', '普陀区'] \
              && education in ['vocational', 'associate', 'bachelor', 'master'] \
              && graduation_year >= 2000 && graduation_year <= 2024 \
              && employment_status != 'retired' && employment_status != 'student' \
              && insured_months >= 6 && insured_months < 240 \
              && poverty_household == false && disability == false && (sex == 'female' || age < 50) \
              && student_loan == false \
              && ('youth' in tags || 'recent_graduate' in tags || employment_status == 'flexible' || employment_status == 'employed')",
        sql: "kind = 'person' AND AGE >= 18 AND AGE <= 59 AND hukou = 'local' \
              AND district IN ('浦东新区', '徐汇区', '长宁区', '静安区', '普陀区') \
              AND education IN ('vocational', 'associate', 'bachelor', 'master') \
              AND graduation_year >= 2000 AND graduation_year <= 2024 \
              AND employment_status <> 'retired' AND employment_status <> 'student' \
              AND insured_months >= 6 AND insured_months < 240 \
              AND poverty_household = false AND disability = false AND (sex = 'female' OR AGE < 50) \
              AND student_loan = false \
              AND ('youth' = ANY(tags) OR 'recent_graduate' = ANY(tags) OR employment_status = 'flexible' OR employment_status = 'employed')",
    },
    BenchRule {
        id: "r10_arithmetic",
        clauses: 6,
        cel: "kind == 'person' && employment_status == 'employed' && insured_months / 12 >= 5 \
              && age - (2026 - graduation_year) >= 20 && hukou != 'local' && insured_months * 100 / (age * 12) >= 20",
        sql: "kind = 'person' AND employment_status = 'employed' AND insured_months::numeric / 12 >= 5 \
              AND AGE - (2026 - graduation_year) >= 20 AND hukou <> 'local' \
              AND (insured_months * 100)::numeric / (AGE * 12) >= 20",
    },
];
