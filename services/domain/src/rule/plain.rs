//! Explanations in plain words: each clause of a rule as a Chinese sentence a resident or
//! a small-business owner can read, never rule syntax:
//!
//! - `insured_months >= params.min_insured_months` →
//!   `参保月数 181 个月，不少于 12 个月（沪人社规〔2023〕12号）`;
//! - `'sme_enterprise' in tags` → `属于“中小微企业”`;
//! - `employment_status in ['registered_unemployed', 'flexible']` → `就业状态为登记失业`.
//!
//! Attributes are named by their labels in the [`Catalogue`], values by their value
//! labels, tags by their Chinese names and parameters by their value in force with its
//! legal reference. A clause that did not hold says what was required (`…，要求不少于
//! 12 个月`); a missing attribute reads `…未登记`. Of an `||` that held, the first
//! alternative that held is the reason given. Personal attributes show no value.
//!
//! Pure: everything it reads comes in the [`Glossary`] and the [`Facts`].

use super::ast::{ArithOp, CmpOp, Expr, ListLit, Method, Num, Var};
use super::eval::{self, Val};
use crate::attribute::{AttrType, AttributeDef, Catalogue};
use crate::param::PolicyParam;
use crate::subject::Facts;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What plain explanations are worded with: the attribute catalogue, the Chinese names
/// of tags and the policy parameters (with their legal references).
#[derive(Debug, Clone, Default)]
pub struct Glossary {
    pub attributes: Catalogue,
    /// Tag name → Chinese name.
    pub tags: BTreeMap<String, String>,
    pub params: Vec<PolicyParam>,
}

impl Glossary {
    /// A glossary of the catalogue, the tags (`(name, description)`: a tag's Chinese name
    /// is its description up to the first colon, see [`Glossary::tag_label`]) and the
    /// parameters.
    pub fn new(
        attributes: Catalogue,
        tags: impl IntoIterator<Item = (String, String)>,
        params: Vec<PolicyParam>,
    ) -> Self {
        let tags = tags
            .into_iter()
            .filter_map(|(name, description)| Some((name, Self::tag_label(&description)?)))
            .collect();
        Self {
            attributes,
            tags,
            params,
        }
    }

    /// A tag's Chinese name from its description: the text before the first `：` (or
    /// `:`), else the whole description; `None` when it is empty.
    /// `小型微型企业：按工信部联企业〔2011〕300号划型…` → `小型微型企业`.
    pub fn tag_label(description: &str) -> Option<String> {
        let head = description
            .split(['：', ':'])
            .next()
            .unwrap_or_default()
            .trim();
        (!head.is_empty()).then(|| head.to_string())
    }

    fn tag<'a>(&'a self, name: &'a str) -> &'a str {
        self.tags.get(name).map_or(name, String::as_str)
    }
}

/// The sentence for one clause of a checked condition, for the subject.
pub(crate) fn sentence(clause: &Expr, facts: &Facts<'_>, glossary: &Glossary) -> String {
    Words {
        f: *facts,
        g: glossary,
    }
    .cond(clause)
}

struct Words<'f, 'g> {
    f: Facts<'f>,
    g: &'g Glossary,
}

/// The built-in names a rule reads besides attributes.
fn builtin(name: &str) -> Option<AttributeDef> {
    let (label, ty, unit, values): (&str, AttrType, &str, &[(&str, &str)]) = match name {
        "kind" => (
            "主体类型",
            AttrType::String,
            "",
            &[("person", "个人"), ("enterprise", "企业")],
        ),
        "age" => ("年龄", AttrType::Integer, "岁", &[]),
        "sex" => (
            "性别",
            AttrType::String,
            "",
            &[("male", "男"), ("female", "女")],
        ),
        _ => return None,
    };
    Some(AttributeDef::new(name, label, ty, unit, values))
}

fn reads_subject(e: &Expr) -> bool {
    let mut any = false;
    e.visit_vars(&mut |_| any = true);
    any
}

/// A number as people write it: whole numbers without decimals, at most four decimals.
fn number(n: Num) -> String {
    match n {
        Num::Int(i) => i.to_string(),
        Num::Float(x) if x.fract() == 0.0 && x.abs() < 1e15 => (x as i64).to_string(),
        Num::Float(x) => {
            let s = format!("{x:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
    }
}

fn with_unit(n: &str, unit: &str) -> String {
    if unit.is_empty() {
        n.to_string()
    } else if unit.starts_with(['%', '‰']) {
        format!("{n}{unit}")
    } else {
        format!("{n} {unit}")
    }
}

fn number_word(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "等于",
        CmpOp::Ne => "不等于",
        CmpOp::Lt => "低于",
        CmpOp::Le => "不超过",
        CmpOp::Gt => "超过",
        CmpOp::Ge => "不少于",
    }
}

fn date_word(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "为",
        CmpOp::Ne => "不是",
        CmpOp::Lt => "早于",
        CmpOp::Le => "不晚于",
        CmpOp::Gt => "晚于",
        CmpOp::Ge => "不早于",
    }
}

impl Words<'_, '_> {
    fn truth(&self, e: &Expr) -> Option<bool> {
        let f = self.f;
        eval::truth(e, &f)
    }

    /// The definition of what `e` reads when it is one name (an attribute or a built-in).
    fn def(&self, e: &Expr) -> Option<Cow<'_, AttributeDef>> {
        let name = match e {
            Expr::Var(v) => v.name(),
            Expr::Has(n) => n,
            _ => return None,
        };
        if let Some(d) = self.g.attributes.get(name) {
            return Some(Cow::Borrowed(d));
        }
        Some(Cow::Owned(builtin(name).unwrap_or_else(|| {
            let mut d = AttributeDef::new(name, name, AttrType::String, "", &[]);
            d.personal = Facts::is_personal(name);
            d
        })))
    }

    fn param(&self, name: &str) -> Option<&PolicyParam> {
        self.g.params.iter().find(|p| p.name == name)
    }

    /// What an expression is called: an attribute's label, a sum of labels, a number.
    fn noun(&self, e: &Expr) -> String {
        match e {
            Expr::Var(_) | Expr::Has(_) => self.def(e).map(|d| d.label.clone()).unwrap_or_default(),
            Expr::Num(n) => number(*n),
            Expr::Str(s) => format!("“{s}”"),
            Expr::Bool(b) => if *b { "是" } else { "否" }.to_string(),
            Expr::Param(p) => match self.param(&p.name) {
                Some(d) if !d.description.is_empty() => d.description.clone(),
                _ => "规定标准".to_string(),
            },
            Expr::Arith(op, a, b) => {
                let (a, b) = (self.noun(a), self.noun(b));
                match op {
                    ArithOp::Add => format!("{a}与{b}之和"),
                    ArithOp::Sub => format!("{a}减去{b}"),
                    ArithOp::Mul => format!("{a}乘以{b}"),
                    ArithOp::Div => format!("{a}除以{b}"),
                    ArithOp::Rem => format!("{a}除以{b}的余数"),
                }
            }
            Expr::Size(x) => format!("{}的数量", self.noun(x)),
            Expr::Neg(x) => format!("负的{}", self.noun(x)),
            _ => "计算值".to_string(),
        }
    }

    /// The unit of a number expression: its attribute's (the first one a sum reads).
    fn unit(&self, e: &Expr) -> String {
        match e {
            Expr::Var(_) => self.def(e).map(|d| d.unit.clone()).unwrap_or_default(),
            Expr::Param(p) => self
                .param(&p.name)
                .map(|d| d.unit.clone())
                .unwrap_or_default(),
            Expr::Arith(ArithOp::Add | ArithOp::Sub, a, b) => {
                let u = self.unit(a);
                if u.is_empty() {
                    self.unit(b)
                } else {
                    u
                }
            }
            Expr::Arith(ArithOp::Mul | ArithOp::Div, a, b) => match (&**a, &**b) {
                (x, Expr::Num(_)) | (Expr::Num(_), x) => self.unit(x),
                _ => String::new(),
            },
            Expr::Neg(x) => self.unit(x),
            _ => String::new(),
        }
    }

    /// A text value by its label (for the attribute `e` reads).
    fn label_of(&self, e: &Expr, raw: &str) -> String {
        match self.def(e) {
            Some(d) => d.value_label(raw).to_string(),
            None => raw.to_string(),
        }
    }

    fn personal(&self, e: &Expr) -> bool {
        let mut personal = false;
        e.visit_vars(&mut |r| {
            personal |= Facts::is_personal(r.name())
                || self.g.attributes.get(r.name()).is_some_and(|d| d.personal);
        });
        personal
    }

    /// The subject's value of `e`, stated: `参保月数 181 个月`, `就业状态为登记失业`,
    /// `参保月数未登记`.
    fn fact(&self, e: &Expr) -> String {
        let noun = self.noun(e);
        let f = self.f;
        let Some(value) = eval::eval(e, &f) else {
            return format!("{noun}未登记");
        };
        if self.personal(e) {
            return format!("{noun}已登记");
        }
        match value {
            Val::Num(n) => format!("{noun} {}", with_unit(&number(n), &self.unit(e))),
            Val::Str(s) => format!("{noun}为{}", self.label_of(e, s)),
            Val::Bool(b) => self.boolean_phrase(e, b),
            Val::Strs(items) => {
                let shown: Vec<String> = items.iter().map(|i| self.label_of(e, i)).collect();
                format!("{noun}为{}", shown.join("、"))
            }
            Val::Lit(_) => noun,
        }
    }

    /// `无社会保险费欠费` (the value label of `false`) or `{label}：否`.
    fn boolean_phrase(&self, e: &Expr, b: bool) -> String {
        let key = if b { "true" } else { "false" };
        match self.def(e) {
            Some(d) => match d.values.get(key) {
                Some(l) => l.clone(),
                None => format!("{}：{}", d.label, if b { "是" } else { "否" }),
            },
            None => format!("{}：{}", self.noun(e), if b { "是" } else { "否" }),
        }
    }

    /// The other side of a comparison, as a requirement's threshold: `12 个月（沪人社规
    /// 〔2023〕12号）`.
    fn threshold(&self, e: &Expr, unit: &str) -> String {
        match e {
            Expr::Num(n) => with_unit(&number(*n), unit),
            Expr::Param(p) => {
                let def = self.param(&p.name);
                let Some(value) = p.value else {
                    return format!("{}（尚无有效规定）", self.noun(e));
                };
                let unit = match (unit, def) {
                    ("", Some(d)) => d.unit.as_str(),
                    _ => unit,
                };
                let legal = def
                    .and_then(|d| d.value_on(self.f.today))
                    .map(|v| v.legal_ref.as_str())
                    .filter(|r| !r.is_empty());
                let shown = with_unit(&number(value), unit);
                match legal {
                    Some(r) => format!("{shown}（{r}）"),
                    None => shown,
                }
            }
            other => {
                let f = self.f;
                match eval::eval(other, &f) {
                    Some(Val::Num(n)) if !reads_subject(other) => with_unit(&number(n), unit),
                    _ if matches!(other, Expr::Var(_)) || reads_subject(other) => self.fact(other),
                    _ => self.noun(other),
                }
            }
        }
    }

    /// A condition as a sentence.
    fn cond(&self, e: &Expr) -> String {
        let held = self.truth(e);
        match e {
            Expr::Bool(true) => "无附加条件".to_string(),
            Expr::Bool(false) => "不适用".to_string(),
            Expr::And(..) => {
                let parts: Vec<String> = e.conjuncts().into_iter().map(|c| self.cond(c)).collect();
                parts.join("，并且")
            }
            Expr::Or(..) => {
                let alternatives = disjuncts(e);
                if let Some(first) = alternatives.iter().find(|d| self.truth(d) == Some(true)) {
                    return self.cond(first);
                }
                let parts: Vec<String> = alternatives.iter().map(|d| self.cond(d)).collect();
                parts.join("；或者")
            }
            Expr::Not(x) => self.negation(x, held),
            Expr::Cmp(op, a, b) => self.comparison(*op, a, b, held),
            Expr::In(x, coll) => self.membership(x, coll, held, false),
            Expr::Method(Method::Contains, list, item)
                if !matches!(self.value(list), Some(Val::Str(_))) =>
            {
                self.contains(list, item, held)
            }
            Expr::Method(m, recv, arg) => self.text_test(*m, recv, arg, held),
            Expr::Has(_) => {
                let label = self.noun(e);
                if held == Some(true) {
                    format!("已登记{label}")
                } else {
                    format!("未登记{label}")
                }
            }
            Expr::Var(_) => self.boolean(e, true, held),
            Expr::Cond(c, a, b) => match self.truth(c) {
                Some(true) => self.cond(a),
                Some(false) => self.cond(b),
                None => self.cond(c),
            },
            _ => "符合条件".to_string(),
        }
    }

    fn value<'e>(&self, e: &'e Expr) -> Option<Val<'e>>
    where
        Self: 'e,
    {
        let f: Facts<'_> = self.f;
        eval::eval(e, &f)
    }

    fn boolean(&self, e: &Expr, want: bool, held: Option<bool>) -> String {
        if held == Some(true) {
            return self.boolean_phrase(e, want);
        }
        let actual = match self.value(e) {
            Some(Val::Bool(b)) => self.boolean_phrase(e, b),
            _ => format!("{}未登记", self.noun(e)),
        };
        format!("{actual}，要求{}", self.boolean_phrase(e, want))
    }

    fn comparison(&self, op: CmpOp, a: &Expr, b: &Expr, held: Option<bool>) -> String {
        let (subject, op, other) = if reads_subject(a) || !reads_subject(b) {
            (a, op, b)
        } else {
            (b, op.flipped(), a)
        };
        if let Expr::Bool(want) = other {
            if op.is_equality() {
                return self.boolean(subject, *want == (op == CmpOp::Eq), held);
            }
        }
        let fact = self.fact(subject);
        let text =
            matches!(other, Expr::Str(_)) || matches!(self.value(subject), Some(Val::Str(_)));
        let requirement = match (other, text) {
            (Expr::Str(s), true) if op.is_equality() => {
                format!("{}{}", date_word(op), self.label_of(subject, s))
            }
            (Expr::Str(s), true) => format!("{}{s}", date_word(op)),
            (_, true) => format!("{}{}", date_word(op), self.threshold(other, "")),
            (_, false) => {
                let t = self.threshold(other, &self.unit(subject));
                let gap = if t.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    " "
                } else {
                    ""
                };
                format!("{}{gap}{t}", number_word(op))
            }
        };
        match held {
            Some(true) if text && op == CmpOp::Eq => fact,
            Some(true) => format!("{fact}，{requirement}"),
            _ => format!("{fact}，要求{requirement}"),
        }
    }

    /// `x in [...]`, `'t' in tags`, `'焊工' in skills`; `negated` for `!(…)`.
    fn membership(&self, x: &Expr, coll: &Expr, held: Option<bool>, negated: bool) -> String {
        match (x, coll) {
            (Expr::Str(t), Expr::Var(Var::Tags)) => {
                let name = self.g.tag(t);
                let is_in = (held == Some(true)) != negated;
                match (is_in, held == Some(true)) {
                    (true, true) => format!("属于“{name}”"),
                    (false, true) => format!("不属于“{name}”"),
                    (true, false) => format!("属于“{name}”，要求不属于"),
                    (false, false) => format!("不属于“{name}”，要求属于"),
                }
            }
            (x, Expr::List(lit)) if reads_subject(x) => {
                let options = self.options(x, lit);
                let fact = self.fact(x);
                match (held == Some(true), negated) {
                    (true, false) => fact,
                    (true, true) => format!("{fact}，不是{options}"),
                    (false, false) => format!("{fact}，要求为{options}"),
                    (false, true) => format!("{fact}，要求不是{options}"),
                }
            }
            (item, list) if negated => {
                let positive = self.contains(list, item, held.map(|h| !h));
                if held == Some(true) {
                    positive
                } else {
                    format!("{positive}，要求不包含")
                }
            }
            (item, list) => self.contains(list, item, held),
        }
    }

    /// The items of a list literal by their labels: `登记失业或灵活就业`.
    fn options(&self, x: &Expr, lit: &ListLit) -> String {
        let shown: Vec<String> = match lit {
            ListLit::Strs { items, .. } => items.iter().map(|i| self.label_of(x, i)).collect(),
            ListLit::Nums(items) => items
                .iter()
                .map(|n| with_unit(&number(*n), &self.unit(x)))
                .collect(),
        };
        shown.join("或")
    }

    /// A list attribute holds an item: `职业资格证书包含焊工`.
    fn contains(&self, list: &Expr, item: &Expr, held: Option<bool>) -> String {
        let noun = self.noun(list);
        let item = match item {
            Expr::Str(s) => self.label_of(list, s),
            other => self.noun(other),
        };
        match held {
            Some(true) => format!("{noun}包含{item}"),
            Some(false) => format!("{noun}不包含{item}"),
            None => format!("{noun}未登记，要求包含{item}"),
        }
    }

    fn text_test(&self, m: Method, recv: &Expr, arg: &Expr, held: Option<bool>) -> String {
        let arg = match arg {
            Expr::Str(s) => format!("“{s}”"),
            other => self.noun(other),
        };
        let requirement = match m {
            Method::StartsWith => format!("以{arg}开头"),
            Method::EndsWith => format!("以{arg}结尾"),
            Method::Contains => format!("包含{arg}"),
        };
        let fact = self.fact(recv);
        if held == Some(true) {
            format!("{fact}，{requirement}")
        } else {
            format!("{fact}，要求{requirement}")
        }
    }

    fn negation(&self, x: &Expr, held: Option<bool>) -> String {
        match x {
            Expr::Not(y) => self.cond(y),
            Expr::And(a, b) => self.cond(&Expr::Or(
                Box::new(Expr::Not(a.clone())),
                Box::new(Expr::Not(b.clone())),
            )),
            Expr::Or(a, b) => self.cond(&Expr::And(
                Box::new(Expr::Not(a.clone())),
                Box::new(Expr::Not(b.clone())),
            )),
            Expr::Cmp(op, a, b) => self.comparison(op.negated(), a, b, held),
            Expr::In(item, coll) => self.membership(item, coll, held, true),
            Expr::Has(_) => {
                let label = self.noun(x);
                if held == Some(true) {
                    format!("未登记{label}")
                } else {
                    format!("已登记{label}，要求未登记")
                }
            }
            Expr::Var(_) => self.boolean(x, false, held),
            other => format!("并非：{}", self.cond(other)),
        }
    }
}

/// The alternatives of an `||` chain, left to right.
fn disjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Or(a, b) => {
            let mut out = disjuncts(a);
            out.extend(disjuncts(b));
            out
        }
        other => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{enterprise, person, today};
    use super::*;
    use crate::param::{ParamValue, ParamValues};
    use crate::subject::Subject;
    use crate::Rule;

    use AttributeDef as A;
    fn def(name: &str, label: &str, ty: AttrType, unit: &str, values: &[(&str, &str)]) -> A {
        A::new(name, label, ty, unit, values)
    }

    fn glossary() -> Glossary {
        let mut secret = def("home_address", "家庭住址", AttrType::String, "", &[]);
        secret.personal = true;
        let attributes = Catalogue::new([
            def("insured_months", "参保月数", AttrType::Integer, "个月", &[]),
            def("layoff_rate", "裁员率", AttrType::Number, "%", &[]),
            def(
                "insured_employees",
                "参保职工人数",
                AttrType::Integer,
                "人",
                &[],
            ),
            def(
                "employment_status",
                "就业状态",
                AttrType::String,
                "",
                &[
                    ("registered_unemployed", "登记失业"),
                    ("flexible", "灵活就业"),
                    ("employed", "在职"),
                ],
            ),
            def(
                "insurance_arrears",
                "社会保险费欠费",
                AttrType::Boolean,
                "",
                &[("false", "无社会保险费欠费"), ("true", "有社会保险费欠费")],
            ),
            def("disability", "残疾人", AttrType::Boolean, "", &[]),
            def(
                "skills_certificates",
                "职业资格证书",
                AttrType::List,
                "",
                &[("welder", "焊工")],
            ),
            def("established", "成立日期", AttrType::Date, "", &[]),
            secret,
        ]);
        let params = vec![PolicyParam {
            name: "min_insured_months".into(),
            description: "企业连续参加失业保险的最少月数".into(),
            unit: "月".into(),
            values: vec![ParamValue {
                effective_from: chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
                value: 12.0,
                legal_ref: "沪人社规〔2023〕12号".into(),
            }],
        }];
        Glossary::new(
            attributes,
            [(
                "sme_enterprise".to_string(),
                "中小微企业：按工信部联企业〔2011〕300号划型".to_string(),
            )],
            params,
        )
    }

    /// The sentences of every clause of `rule` for the subject, with whether each held.
    fn words(rule: &str, s: &Subject, tags: &[&str]) -> Vec<(bool, String)> {
        let g = glossary();
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let values = ParamValues::on(&g.params, today());
        let r = Rule::parse(rule).unwrap().bind(&values);
        r.explain_in_words(&Facts::new(s, &tags, today()), &g)
            .clauses
            .into_iter()
            .map(|c| (c.held, c.sentence.unwrap()))
            .collect()
    }

    fn one(rule: &str, s: &Subject, tags: &[&str]) -> String {
        let w = words(rule, s, tags);
        assert_eq!(w.len(), 1, "{rule}: {w:?}");
        w[0].1.clone()
    }

    #[test]
    fn comparisons_state_the_value_and_the_threshold() {
        let e = enterprise(
            serde_json::json!({"insured_months": 181, "layoff_rate": 3.2,
            "established": "2024-03-01"}),
        );
        assert_eq!(
            one("layoff_rate <= 5.5", &e, &[]),
            "裁员率 3.2%，不超过 5.5%"
        );
        assert_eq!(
            one("insured_months > 12", &e, &[]),
            "参保月数 181 个月，超过 12 个月"
        );
        assert_eq!(
            one("12 < insured_months", &e, &[]),
            "参保月数 181 个月，超过 12 个月",
            "sides swapped"
        );
        assert_eq!(one("layoff_rate < 2", &e, &[]), "裁员率 3.2%，要求低于 2%");
        assert_eq!(
            one("established >= '2023-01-01'", &e, &[]),
            "成立日期为2024-03-01，不早于2023-01-01"
        );
        assert_eq!(one("kind == 'enterprise'", &e, &[]), "主体类型为企业");
        let p = person(
            "19800101",
            false,
            serde_json::json!({"employment_status": "employed"}),
        );
        assert_eq!(one("age >= 40", &p, &[]), "年龄 46 岁，不少于 40 岁");
        assert_eq!(one("sex == 'female'", &p, &[]), "性别为女");
        assert_eq!(
            one("employment_status != 'registered_unemployed'", &p, &[]),
            "就业状态为在职，不是登记失业"
        );
        assert_eq!(
            one("employment_status == 'registered_unemployed'", &p, &[]),
            "就业状态为在职，要求为登记失业"
        );
    }

    #[test]
    fn booleans_read_as_their_value_labels() {
        let e = enterprise(serde_json::json!({"insurance_arrears": false, "disability": true}));
        assert_eq!(
            one("insurance_arrears == false", &e, &[]),
            "无社会保险费欠费"
        );
        assert_eq!(one("!insurance_arrears", &e, &[]), "无社会保险费欠费");
        assert_eq!(
            one("insurance_arrears == true", &e, &[]),
            "无社会保险费欠费，要求有社会保险费欠费"
        );
        assert_eq!(one("disability", &e, &[]), "残疾人：是");
    }

    #[test]
    fn membership_in_lists_and_not_in_lists() {
        let p = person(
            "19900101",
            true,
            serde_json::json!({"employment_status": "flexible",
            "skills_certificates": ["welder"]}),
        );
        let rule = "employment_status in ['registered_unemployed', 'flexible']";
        assert_eq!(one(rule, &p, &[]), "就业状态为灵活就业");
        assert_eq!(
            one(
                "employment_status in ['registered_unemployed', 'employed']",
                &p,
                &[]
            ),
            "就业状态为灵活就业，要求为登记失业或在职"
        );
        assert_eq!(
            one(
                "!(employment_status in ['registered_unemployed', 'employed'])",
                &p,
                &[]
            ),
            "就业状态为灵活就业，不是登记失业或在职"
        );
        assert_eq!(
            one("'welder' in skills_certificates", &p, &[]),
            "职业资格证书包含焊工"
        );
        assert_eq!(
            one("skills_certificates.contains('electrician')", &p, &[]),
            "职业资格证书不包含electrician"
        );
    }

    #[test]
    fn tags_by_their_chinese_names() {
        let e = enterprise(serde_json::json!({}));
        assert_eq!(
            one("'sme_enterprise' in tags", &e, &["sme_enterprise"]),
            "属于“中小微企业”"
        );
        assert_eq!(
            one("!('sme_enterprise' in tags)", &e, &[]),
            "不属于“中小微企业”"
        );
        assert_eq!(
            one("'sme_enterprise' in tags", &e, &[]),
            "不属于“中小微企业”，要求属于"
        );
        assert_eq!(
            Glossary::tag_label("16–24岁青年").as_deref(),
            Some("16–24岁青年")
        );
        assert_eq!(Glossary::tag_label(" "), None);
    }

    #[test]
    fn and_or_not_give_the_reasons_that_held() {
        let e = enterprise(serde_json::json!({"layoff_rate": 12.5, "insured_employees": 25}));
        let rule = "(layoff_rate <= 5.5 || (insured_employees <= 30 && layoff_rate <= 20.0))";
        assert_eq!(
            one(rule, &e, &[]),
            "参保职工人数 25 人，不超过 30 人，并且裁员率 12.5%，不超过 20%"
        );
        let rule = "!(layoff_rate > 20 || insured_employees > 30)";
        assert_eq!(
            one(rule, &e, &[]),
            "裁员率 12.5%，不超过 20%，并且参保职工人数 25 人，不超过 30 人"
        );
        let big = enterprise(serde_json::json!({"layoff_rate": 12.5, "insured_employees": 50}));
        assert_eq!(
            one("layoff_rate <= 5.5 || insured_employees <= 30", &big, &[]),
            "裁员率 12.5%，要求不超过 5.5%；或者参保职工人数 50 人，要求不超过 30 人"
        );
        let w = words("kind == 'enterprise' && layoff_rate <= 20", &e, &[]);
        assert_eq!(
            w,
            [
                (true, "主体类型为企业".to_string()),
                (true, "裁员率 12.5%，不超过 20%".to_string())
            ]
        );
    }

    #[test]
    fn missing_attributes_read_as_not_registered() {
        let e = enterprise(serde_json::json!({}));
        assert_eq!(
            one("insured_months >= 12", &e, &[]),
            "参保月数未登记，要求不少于 12 个月"
        );
        assert_eq!(one("!has(attrs.layoff_rate)", &e, &[]), "未登记裁员率");
        assert_eq!(one("has(attrs.layoff_rate)", &e, &[]), "未登记裁员率");
        assert_eq!(
            one("!has(attrs.layoff_rate) || layoff_rate < 1", &e, &[]),
            "未登记裁员率"
        );
        assert_eq!(one("age >= 18", &e, &[]), "年龄未登记，要求不少于 18 岁");
        let p = person(
            "19900101",
            true,
            serde_json::json!({"home_address": "某路1号"}),
        );
        assert_eq!(
            one("home_address == 'x'", &p, &[]),
            "家庭住址已登记，要求为x"
        );
        assert_eq!(
            one("unknown_thing > 1", &p, &[]),
            "unknown_thing未登记，要求超过 1"
        );
    }

    #[test]
    fn parameters_with_their_legal_reference() {
        let e = enterprise(
            serde_json::json!({"insured_months": 181, "insured_employees": 3,
            "new_hires": 2}),
        );
        assert_eq!(
            one("insured_months >= params.min_insured_months", &e, &[]),
            "参保月数 181 个月，不少于 12 个月（沪人社规〔2023〕12号）"
        );
        assert_eq!(
            one("params.min_insured_months <= insured_months", &e, &[]),
            "参保月数 181 个月，不少于 12 个月（沪人社规〔2023〕12号）"
        );
        assert_eq!(
            one("insured_employees + new_hires >= 1", &e, &[]),
            "参保职工人数与new_hires之和 5 人，不少于 1 人"
        );
        // unbound: no value in force
        let g = glossary();
        let r = Rule::parse("insured_months >= params.min_insured_months").unwrap();
        let w = r.explain_in_words(&Facts::new(&e, &[], today()), &g);
        assert_eq!(
            w.clauses[0].sentence.as_deref(),
            Some("参保月数 181 个月，要求不少于企业连续参加失业保险的最少月数（尚无有效规定）")
        );
        assert_eq!(w.why(), "", "a clause that did not hold is not a reason");
    }
}
