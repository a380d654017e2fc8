//! Residents: ID number from the slot space, then name, education path, employment,
//! social insurance and hardship flags drawn from the resident's own stream, each
//! conditioned on what came before (age, sex, hukou, education).

use crate::rng::Draw;
use crate::{codes, date_string, districts, names, Generator};
use chrono::{Datelike, Days, NaiveDate};
use domain::ids::{MobileNumber, OpenId, ResidentId};
use domain::{AttrValue, Subject, SubjectId};
use std::collections::BTreeMap;

/// Education levels, lowest first, with their attribute codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Education {
    JuniorHigh,
    HighSchool,
    Vocational,
    Associate,
    Bachelor,
    Master,
    Doctor,
}

impl Education {
    const ALL: [Education; 7] = [
        Self::JuniorHigh,
        Self::HighSchool,
        Self::Vocational,
        Self::Associate,
        Self::Bachelor,
        Self::Master,
        Self::Doctor,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Self::JuniorHigh => "junior_high",
            Self::HighSchool => "high_school",
            Self::Vocational => "vocational",
            Self::Associate => "associate",
            Self::Bachelor => "bachelor",
            Self::Master => "master",
            Self::Doctor => "doctor",
        }
    }

    pub fn is_higher(self) -> bool {
        self >= Self::Associate
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Employed,
    Unemployed,
    RegisteredUnemployed,
    Flexible,
    Retired,
    Student,
}

impl Status {
    pub fn code(self) -> &'static str {
        match self {
            Self::Employed => "employed",
            Self::Unemployed => "unemployed",
            Self::RegisteredUnemployed => "registered_unemployed",
            Self::Flexible => "flexible",
            Self::Retired => "retired",
            Self::Student => "student",
        }
    }
}

/// The final education of a birth cohort, per mille (Shanghai's residents, migrants
/// included: roughly a third of adults have higher education, over half of the young).
fn final_education_weights(age: u32) -> [u32; 7] {
    match age {
        ..=30 => [80, 120, 120, 200, 350, 110, 20],
        31..=40 => [150, 140, 100, 180, 300, 110, 20],
        41..=50 => [300, 180, 100, 150, 200, 60, 10],
        51..=60 => [450, 220, 80, 100, 120, 25, 5],
        _ => [550, 220, 60, 70, 80, 15, 5],
    }
}

/// The school stages leading to a final level, with the usual age at graduation.
fn stages(final_level: Education, vocational_route: bool) -> &'static [(Education, i32)] {
    use Education::*;
    match final_level {
        JuniorHigh => &[(JuniorHigh, 15)],
        HighSchool => &[(HighSchool, 18)],
        Vocational => &[(Vocational, 18)],
        Associate if vocational_route => &[(Vocational, 18), (Associate, 21)],
        Associate => &[(HighSchool, 18), (Associate, 21)],
        Bachelor => &[(HighSchool, 18), (Bachelor, 22)],
        Master => &[(HighSchool, 18), (Bachelor, 22), (Master, 25)],
        Doctor => &[(HighSchool, 18), (Bachelor, 22), (Master, 25), (Doctor, 29)],
    }
}

/// Everything drawn about one resident besides the identifiers.
pub(crate) struct Profile {
    pub local: bool,
    pub education: Education,
    pub graduation_year: i32,
    pub status: Status,
    pub insured_months: i64,
    pub registered_since: Option<NaiveDate>,
    pub poverty: bool,
    pub disability: bool,
    pub student_loan: bool,
    pub certificates: Vec<String>,
}

impl Profile {
    pub fn draw(
        d: &mut Draw,
        today: NaiveDate,
        age: u32,
        male: bool,
        birth: NaiveDate,
        district: usize,
    ) -> Profile {
        let year = today.year();
        // hukou: the young and the suburbs are more often migrants
        let mut p_local: f64 = match age {
            ..=19 => 0.60,
            20..=29 => 0.42,
            30..=44 => 0.50,
            45..=59 => 0.62,
            _ => 0.85,
        };
        if districts::is_central(district) {
            p_local += 0.10;
        } else if districts::is_inflow_suburb(district) {
            p_local -= 0.08;
        }
        let local = d.chance(p_local);

        // education: a final level, then the stages leading to it
        let final_level = Education::ALL[d.weighted(&final_education_weights(age))];
        let path = stages(final_level, d.chance(0.5));
        // September-December births start school a year later
        let school_year = birth.year() + i32::from(birth.month() >= 9);
        // gap years, repeated years and early finishers, after secondary school
        let delay = [-1, 0, 1, 2][d.weighted(&[10, 75, 12, 3])];
        // July onwards this year's graduates have left school
        let graduated = |gy: i32| gy < year || (gy == year && today.month() >= 7);
        let mut education = final_level;
        let mut graduation_year = 0;
        let mut student = false;
        for &(level, grad_age) in path {
            let gy = school_year + grad_age + if grad_age > 18 { delay } else { 0 };
            education = level;
            graduation_year = gy;
            if !graduated(gy) {
                student = true;
                break;
            }
        }
        let left_school_age = (graduation_year - birth.year()).max(15);

        let status = if student {
            Status::Student
        } else if retired(d, age, male) {
            Status::Retired
        } else {
            let weights: [u32; 4] = match age {
                ..=24 => [70, 8, 14, 8],
                25..=34 => [84, 7, 5, 4],
                35..=49 => [82, 9, 5, 4],
                50..=59 => [70, 14, 7, 9],
                _ => [45, 45, 10, 0],
            };
            match d.weighted(&weights) {
                0 => Status::Employed,
                1 => Status::Flexible,
                2 => Status::Unemployed,
                // migrants register less often (it needs a residence permit)
                _ if !local && d.chance(0.5) => Status::Unemployed,
                _ => Status::RegisteredUnemployed,
            }
        };

        let career_months = (i64::from(age as i32 - left_school_age) * 12 + d.range(0, 11)).max(0);
        let insured_months = match status {
            Status::Employed => {
                let uninsured = if local { 0.03 } else { 0.12 };
                if d.chance(uninsured) {
                    0
                } else {
                    let mean = if local { 130.0 } else { 50.0 };
                    (1 + d.exponential(mean) as i64).min(career_months.max(1))
                }
            }
            Status::Flexible if d.chance(0.6) => 1 + d.range(0, career_months.clamp(0, 120)),
            _ => 0,
        };
        let registered_since = (status == Status::RegisteredUnemployed).then(|| {
            let days = (10.0 + d.exponential(220.0)).min(1000.0) as u64;
            today - Days::new(days)
        });

        let poverty = d.chance(match (status, age) {
            (Status::Student, _) => 0.035,
            (_, 60..) => 0.025,
            _ => 0.02,
        });
        let disability = d.chance(0.012 + 0.0006 * f64::from(age - 16));
        let recent_higher = education.is_higher() && (student || graduation_year >= year - 2);
        let student_loan = recent_higher && d.chance(0.14);

        let mut certificates = Vec::new();
        let working = matches!(
            status,
            Status::Employed | Status::Flexible | Status::Unemployed | Status::RegisteredUnemployed
        );
        if working && age <= 65 {
            let p = match education {
                e if e <= Education::Vocational => 0.25,
                Education::Associate => 0.22,
                _ => 0.08,
            };
            if d.chance(p) {
                let first = d.below(names::CERTIFICATES.len() as u32) as usize;
                certificates.push(names::CERTIFICATES[first].to_string());
                if d.chance(0.3) {
                    let second =
                        (first + 1 + d.below(names::CERTIFICATES.len() as u32 - 1) as usize)
                            % names::CERTIFICATES.len();
                    certificates.push(names::CERTIFICATES[second].to_string());
                }
            }
        }

        Profile {
            local,
            education,
            graduation_year,
            status,
            insured_months,
            registered_since,
            poverty,
            disability,
            student_loan,
            certificates,
        }
    }
}

/// Statutory retirement: men at 60, women workers at 50 and women cadres at 55; a few
/// men retire early.
fn retired(d: &mut Draw, age: u32, male: bool) -> bool {
    let p = match (male, age) {
        (true, 60..) => 0.97,
        (true, 55..=59) => 0.06,
        (false, 55..) => 0.93,
        (false, 50..=54) => 0.5,
        _ => 0.0,
    };
    p > 0.0 && d.chance(p)
}

pub(crate) fn generate(g: &Generator, index: u64) -> Subject {
    let place = g.resident_place(index);
    let district = &crate::DISTRICTS[place.district];
    let male = place.sequence % 2 == 1;

    let mut id = codes::Ascii::<18>::new();
    id.push_str(district.code);
    let b = place.birth;
    id.push_digits(b.year() as u64, 4);
    id.push_digits(u64::from(b.month()), 2);
    id.push_digits(u64::from(b.day()), 2);
    id.push_digits(u64::from(place.sequence), 3);
    id.push_char(domain::ids::resident_id_check_char(id.as_str()).expect("17 digits"));
    let id = ResidentId::parse(id.as_str()).expect("generated resident IDs are valid");

    let mut d = Draw::new(g.resident_key, index);
    let seed = g.config().seed;
    let today = g.config().today;
    let name = names::person_name(&mut d, male, i64::from(place.age));
    let p = Profile::draw(&mut d, today, place.age, male, b, place.district);

    // older people are reached less by WeChat and a little less by mobile
    let (p_mobile, p_wechat) = match place.age {
        ..=59 => (0.90, 0.68),
        60..=69 => (0.78, 0.42),
        _ => (0.55, 0.22),
    };
    let mobile = d.chance(p_mobile).then(|| {
        MobileNumber::parse(codes::mobile(index * 2, seed).as_str()).expect("valid mobile")
    });
    let wechat_openid = d
        .chance(p_wechat)
        .then(|| OpenId::parse(codes::openid(index * 2, seed).as_str()).expect("valid openid"));

    // pushed in key order, so building the map is a bulk load, not a search per key
    let mut a: Vec<(String, AttrValue)> = Vec::with_capacity(12);
    let mut put = |k: &str, v: AttrValue| a.push((k.to_string(), v));
    put("disability", AttrValue::Bool(p.disability));
    put("district", AttrValue::Str(district.name.to_string()));
    put("education", AttrValue::Str(p.education.code().to_string()));
    put(
        "employment_status",
        AttrValue::Str(p.status.code().to_string()),
    );
    put(
        "flexible_employment",
        AttrValue::Bool(p.status == Status::Flexible),
    );
    put(
        "graduation_year",
        AttrValue::Int(i64::from(p.graduation_year)),
    );
    put(
        "hukou",
        AttrValue::Str(if p.local { "local" } else { "non_local" }.to_string()),
    );
    put("insured_months", AttrValue::Int(p.insured_months));
    put("poverty_household", AttrValue::Bool(p.poverty));
    if let Some(since) = p.registered_since {
        put(
            "registered_unemployed_since",
            AttrValue::Str(date_string(since)),
        );
    }
    if !p.certificates.is_empty() {
        put("skills_certificates", AttrValue::List(p.certificates));
    }
    put("student_loan", AttrValue::Bool(p.student_loan));

    Subject {
        id: SubjectId::Person(id),
        name,
        mobile,
        wechat_openid,
        attributes: BTreeMap::from_iter(a),
    }
}
