//! Enterprises: industry and district, age, headcount and revenue from skewed
//! (log-normal) distributions, social insurance and unemployment-insurance contributions,
//! layoffs and hires, and the size class computed by the national classification.

use crate::rng::Draw;
use crate::sme::{sme_size_class, Industry, SizeClass};
use crate::{codes, date_string, districts, names, Generator};
use chrono::{Datelike, Days, NaiveDate};
use domain::ids::{CreditCode, MobileNumber, OpenId};
use domain::{AttrValue, Subject, SubjectId};
use std::collections::BTreeMap;

/// Shanghai's social-insurance contribution base, CNY per month (lower and upper bound;
/// the 2024-07 figures, illustrative for "last year").
pub const CONTRIBUTION_BASE_MIN: f64 = 7460.0;
pub const CONTRIBUTION_BASE_MAX: f64 = 37302.0;
/// Unemployment insurance rate: 0.5% employer + 0.5% employee.
pub const UNEMPLOYMENT_INSURANCE_RATE: f64 = 0.01;

/// How one industry's enterprises are shaped.
struct Shape {
    /// Share of enterprises, per mille.
    weight: u32,
    /// Added to the log of headcount.
    headcount_shift: f64,
    /// Revenue per employee, 10k CNY.
    revenue_per_head: f64,
    /// Total assets / revenue.
    asset_ratio: f64,
    /// Average monthly contribution base, CNY.
    wage_base: f64,
}

fn shape(industry: Industry) -> Shape {
    let s = |weight, headcount_shift, revenue_per_head, asset_ratio, wage_base| Shape {
        weight,
        headcount_shift,
        revenue_per_head,
        asset_ratio,
        wage_base,
    };
    match industry {
        Industry::Agriculture => s(5, 0.2, 25.0, 1.5, 7800.0),
        Industry::Industry => s(100, 0.9, 90.0, 1.0, 10500.0),
        Industry::Construction => s(50, 0.6, 60.0, 1.1, 9500.0),
        Industry::Wholesale => s(220, -0.3, 250.0, 0.6, 10000.0),
        Industry::Retail => s(80, -0.2, 50.0, 0.6, 8200.0),
        Industry::Transport => s(30, 0.4, 45.0, 0.9, 9000.0),
        Industry::Warehousing => s(15, 0.3, 50.0, 1.2, 8800.0),
        Industry::Postal => s(5, 0.6, 25.0, 0.5, 8500.0),
        Industry::Accommodation => s(10, 0.4, 18.0, 2.0, 8000.0),
        Industry::Catering => s(40, 0.2, 15.0, 0.5, 7700.0),
        Industry::InformationTransmission => s(15, 0.3, 90.0, 1.5, 16000.0),
        Industry::SoftwareIt => s(120, 0.3, 45.0, 0.8, 17000.0),
        Industry::RealEstate => s(20, 0.2, 400.0, 4.0, 12000.0),
        Industry::PropertyManagement => s(20, 1.0, 10.0, 0.4, 7900.0),
        Industry::LeasingBusiness => s(180, -0.1, 60.0, 1.5, 11000.0),
        Industry::Other => s(90, 0.0, 30.0, 1.0, 9000.0),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The unified social credit code became the registration number in October 2015.
fn unified_code_era() -> NaiveDate {
    NaiveDate::from_ymd_opt(2015, 10, 1).expect("valid date")
}

pub(crate) fn generate(g: &Generator, index: u64) -> Subject {
    let cfg = g.config();
    let today = cfg.today;
    let mut d = Draw::new(g.enterprise_key, index);

    let district = &crate::DISTRICTS[d.weighted(&districts::enterprise_weights())];
    let industry_weights = Industry::ALL.map(|i| shape(i).weight);
    let industry = Industry::ALL[d.weighted(&industry_weights)];
    let sh = shape(industry);

    // age: median about six years, many young firms, a tail back to the 1980s
    let age_years = d.lognormal(6f64.ln(), 0.9).clamp(0.08, 40.0);
    let established = today - Days::new((age_years * 365.25) as u64);
    let months_old = (age_years * 12.0) as i64;

    // headcount: log-normal, most below 50, a long tail into the thousands
    let young = if age_years < 2.0 { -0.6 } else { 0.0 };
    let employees = d
        .lognormal(1.6 + sh.headcount_shift + young, 1.5)
        .round()
        .clamp(1.0, 60_000.0) as u64;
    // revenue grows with headcount; a firm in its first year books part of a year
    let year_fraction = age_years.min(1.0);
    let revenue_wan = round2(
        (employees as f64 * sh.revenue_per_head * d.lognormal(0.0, 0.8) * year_fraction).max(0.5),
    );
    let total_assets_wan = round2((revenue_wan * sh.asset_ratio * d.lognormal(0.0, 0.6)).max(1.0));
    let size = sme_size_class(industry, employees, revenue_wan, total_assets_wan);

    // many registered firms, most of them tiny, insure nobody
    let p_uninsured = match employees {
        ..=3 => 0.9,
        4..=9 => 0.7,
        10..=29 => 0.35,
        30..=99 => 0.08,
        _ => 0.01,
    };
    let insured_employees = if d.chance(p_uninsured) {
        0
    } else {
        ((employees as f64 * (0.65 + 0.35 * d.unit())).round() as u64).max(1)
    };
    let insured = insured_employees > 0;
    let insured_months = if !insured {
        0
    } else if d.chance(0.85) {
        (months_old - d.range(0, 2)).clamp(1, 600)
    } else {
        1 + d.range(0, months_old.clamp(0, 36))
    };
    let insurance_arrears = insured && d.chance(0.04);

    // unemployment insurance paid last year: headcount then × base × months × 1%
    let months_into_year = i64::from(today.month0());
    let months_last_year = (insured_months - months_into_year).clamp(0, 12);
    let base =
        (sh.wage_base * d.lognormal(0.0, 0.35)).clamp(CONTRIBUTION_BASE_MIN, CONTRIBUTION_BASE_MAX);
    let insured_last_year = (insured_employees as f64 * (0.85 + 0.3 * d.unit()))
        .round()
        .max(1.0);
    let ui_paid = if insured && months_last_year > 0 {
        (insured_last_year * base * months_last_year as f64 * UNEMPLOYMENT_INSURANCE_RATE).round()
            as i64
    } else {
        0
    };

    // layoffs last year: most none; bigger firms more often, at a few percent
    let p_layoff = match size {
        SizeClass::Micro => 0.08,
        SizeClass::Small => 0.20,
        SizeClass::Medium => 0.40,
        SizeClass::Large => 0.55,
    };
    let headcount = if insured {
        insured_employees
    } else {
        employees
    };
    let layoffs = if d.chance(p_layoff) {
        let rate = d.lognormal(0.035f64.ln(), 0.9);
        ((headcount as f64 * rate).round() as u64).clamp(1, (headcount / 2).max(1))
    } else {
        0
    };
    let layoff_rate = round2(100.0 * layoffs as f64 / (headcount + layoffs) as f64);

    // hires this year, which only insured firms can report
    let (p_grad, p_youth) = match size {
        SizeClass::Micro => (0.04, 0.015),
        SizeClass::Small => (0.18, 0.05),
        SizeClass::Medium => (0.45, 0.15),
        SizeClass::Large => (0.80, 0.30),
    };
    let mut grads = 0;
    let mut youth = 0;
    if insured {
        if d.chance(p_grad) {
            grads = match size {
                SizeClass::Micro => 1,
                SizeClass::Small => 1 + d.range(0, 2),
                _ => 1 + (employees as f64 * 0.03 * d.unit()).round() as i64,
            };
        }
        if d.chance(p_youth) {
            youth = 1 + d.range(0, 2);
        }
    }

    let name = names::enterprise_name(&mut d, industry, size == SizeClass::Large);
    let code = codes::credit_code(
        index,
        district.code,
        established >= unified_code_era(),
        cfg.seed,
    );
    let id = CreditCode::parse(code.as_str()).expect("generated credit codes are valid");
    let mobile = d.chance(0.90).then(|| {
        MobileNumber::parse(codes::mobile(index * 2 + 1, cfg.seed).as_str()).expect("valid mobile")
    });
    let wechat_openid = d.chance(0.50).then(|| {
        OpenId::parse(codes::openid(index * 2 + 1, cfg.seed).as_str()).expect("valid openid")
    });

    // pushed in key order, so building the map is a bulk load, not a search per key
    let mut a: Vec<(String, AttrValue)> = Vec::with_capacity(15);
    let mut put = |k: &str, v: AttrValue| a.push((k.to_string(), v));
    put("district", AttrValue::Str(district.name.to_string()));
    put("employees", AttrValue::Int(employees as i64));
    put("established", AttrValue::Str(date_string(established)));
    put("industry", AttrValue::Str(industry.code().to_string()));
    put("insurance_arrears", AttrValue::Bool(insurance_arrears));
    put(
        "insured_employees",
        AttrValue::Int(insured_employees as i64),
    );
    put("insured_months", AttrValue::Int(insured_months));
    put("layoff_rate", AttrValue::Float(layoff_rate));
    put("layoffs_last_year", AttrValue::Int(layoffs as i64));
    put("new_hires_graduates_this_year", AttrValue::Int(grads));
    put(
        "new_hires_unemployed_youth_this_year",
        AttrValue::Int(youth),
    );
    put("revenue_wan", AttrValue::Float(revenue_wan));
    put("size_class", AttrValue::Str(size.as_str().to_string()));
    put("total_assets_wan", AttrValue::Float(total_assets_wan));
    put(
        "unemployment_insurance_paid_last_year",
        AttrValue::Int(ui_paid),
    );

    Subject {
        id: SubjectId::Enterprise(id),
        name,
        mobile,
        wechat_openid,
        attributes: BTreeMap::from_iter(a),
    }
}
