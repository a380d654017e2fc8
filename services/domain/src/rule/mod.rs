//! The rule language: a CEL subset (see `docs/rules.md`) used for tag rules, eligibility,
//! audience filters and benefit formulas. Parsed with the `cel` crate, checked and lowered
//! into our own tree, then evaluated per subject with "missing attribute ⇒ false".
//!
//! # Layout
//! - [`mod@self`]: the public API: [`Rule`], [`RuleError`], [`Explanation`].
//! - `source`: byte offsets to line and column.
//! - `lower`: the CEL parser's tree to ours, refusing what is outside the subset and
//!   checking types that are known when the rule is saved.
//! - [`ast`]: our tree, with identifiers resolved and list literals ready for lookups.
//!   Public (read-only, through [`Rule::expr`]) so that other engines, such as the bulk
//!   matcher, can compile the same checked tree; [`truth`] is the reference semantics.
//! - `eval`: evaluation over [`Facts`], allocation-free, with "unknown" for missing
//!   values (SQL-NULL-like three-valued logic): the reference semantics.
//! - [`compiled`]: the same semantics compiled to a predicate over pre-resolved slots
//!   ([`Rule::matches`] runs it), and [`compiled::RuleSet`], many rules with a
//!   pre-filter, for matching one subject against every active policy.
//! - `explain`, `print`: clause-by-clause explanations and canonical rule text.
//! - `plain`: each clause as a Chinese sentence ([`Rule::explain_in_words`]), worded
//!   with a [`Glossary`] (attribute catalogue, tag names, parameters).

pub mod ast;
pub mod compiled;
mod eval;
mod explain;
mod lower;
mod plain;
mod print;
#[cfg(test)]
mod proptests;
mod source;

use crate::subject::Facts;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use lower::Ty;
pub use plain::Glossary;
use source::Source;

/// The longest rule accepted, in characters.
pub const MAX_RULE_CHARS: usize = 4000;

/// How deeply brackets may nest in a rule.
const MAX_NESTING: usize = 32;

/// Where and why a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleError {
    /// 1-based line and column of the offending part.
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for RuleError {}

/// One top-level clause of a rule (a conjunct of the outermost `&&` chain) and whether it
/// held for a subject, with the subject's values of the identifiers it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClauseOutcome {
    pub clause: String,
    pub held: bool,
    pub values: BTreeMap<String, String>,
    /// The clause as a Chinese sentence for residents ([`Rule::explain_in_words`]);
    /// absent in explanations made without a [`Glossary`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentence: Option<String>,
}

/// Why a rule held (or did not) for one subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Explanation {
    pub clauses: Vec<ClauseOutcome>,
}

impl Explanation {
    /// Whether every clause held (for a condition: whether the rule matched).
    pub fn held(&self) -> bool {
        self.clauses.iter().all(|c| c.held)
    }

    /// The sentences of the clauses that held, in order (clauses without one are left
    /// out): what a resident reads.
    pub fn sentences(&self) -> Vec<&str> {
        self.clauses
            .iter()
            .filter(|c| c.held)
            .filter_map(|c| c.sentence.as_deref())
            .collect()
    }

    /// [`Explanation::sentences`] as one text, joined by `；` (templates' `{{ why }}`).
    pub fn why(&self) -> String {
        self.sentences().join("；")
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.clauses.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", if c.held { "✓" } else { "✗" }, c.clause)?;
            if !c.values.is_empty() {
                let vals: Vec<String> =
                    c.values.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                write!(f, " ({})", vals.join(", "))?;
            }
        }
        Ok(())
    }
}

/// A checked rule, ready to evaluate. Cheap to clone (the tree is shared).
#[derive(Debug, Clone)]
pub struct Rule {
    source: String,
    expr: Arc<ast::Expr>,
    number: bool,
    compiled: Arc<compiled::Compiled>,
}

impl Rule {
    /// Parses and checks a boolean rule.
    pub fn parse(source: &str) -> Result<Rule, RuleError> {
        compile(source, false)
    }

    /// Parses and checks a number expression (a benefit formula).
    pub fn parse_number(source: &str) -> Result<Rule, RuleError> {
        compile(source, true)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is a number expression (from [`Rule::parse_number`]).
    pub fn is_number(&self) -> bool {
        self.number
    }

    /// The checked expression tree, for engines that compile rules themselves.
    pub fn expr(&self) -> &ast::Expr {
        &self.expr
    }

    /// The rule in canonical spelling (spacing, quotes and parentheses normalised).
    pub fn canonical(&self) -> String {
        print::to_source(&self.expr)
    }

    /// The identifiers the rule reads, each once, in reading order: `kind`, `age`,
    /// `sex`, `tags` and attribute names (`attrs.x` and `has(attrs.x)` read `x`).
    /// A rule that reads `tags` depends on other tags.
    pub fn reads(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        self.expr.visit_vars(&mut |r| {
            if !names.iter().any(|n| n == r.name()) {
                names.push(r.name().to_string());
            }
        });
        names
    }

    /// The parameters the rule reads (`params.<name>`), each once, in reading order.
    pub fn params(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        self.expr.visit_params(&mut |p| {
            if !names.iter().any(|n| **n == *p.name) {
                names.push(p.name.to_string());
            }
        });
        names
    }

    /// Refuses a rule that reads a parameter `known` does not know, naming it and
    /// where it is first read.
    pub fn check_params(&self, known: &dyn Fn(&str) -> bool) -> Result<(), RuleError> {
        let Some(name) = self.params().into_iter().find(|n| !known(n)) else {
            return Ok(());
        };
        let source = Source::new(&self.source);
        let at = find_param(&self.source, &name).unwrap_or(0);
        Err(source.error_at(
            at,
            format!(
                "unknown parameter \"params.{name}\"; define it first \
                 (PUT /api/v1/params/{name})"
            ),
        ))
    }

    /// This rule with its parameters' values on one date (see [`crate::param`]); a
    /// parameter `values` lacks is unknown. Both the bulk plan and [`Rule::matches`]
    /// read the bound values.
    pub fn bind(&self, values: &crate::param::ParamValues) -> Rule {
        let mut any = false;
        self.expr.visit_params(&mut |_| any = true);
        if !any {
            return self.clone();
        }
        let expr = self.expr.with_params(&|name| values.get(name));
        Rule {
            source: self.source.clone(),
            compiled: Arc::new(compiled::Compiled::new(&expr, self.number)),
            expr: Arc::new(expr),
            number: self.number,
        }
    }

    /// Whether the rule's outcome can change with the date alone, with no change to the
    /// subject: it reads `age` (from the birth date) or a parameter (whose value in force
    /// changes on its effective dates). A rule reading `tags` depends on the date when a
    /// tag rule does.
    pub fn depends_on_date(&self) -> bool {
        let mut dated = false;
        self.expr.visit_vars(&mut |r| {
            if matches!(r, ast::VarRef::Var(ast::Var::Age)) {
                dated = true;
            }
        });
        dated || !self.params().is_empty()
    }

    /// Whether the rule may read tag `name`: it tests that tag by name, or reads `tags`
    /// in a way that does not name the tag (then any tag may change its outcome).
    pub fn may_read_tag(&self, name: &str) -> bool {
        self.expr.may_read_tag(name)
    }

    /// Whether the rule reads `tags`.
    pub fn reads_tags(&self) -> bool {
        let mut tags = false;
        self.expr.visit_vars(&mut |r| {
            if matches!(r, ast::VarRef::Var(ast::Var::Tags)) {
                tags = true;
            }
        });
        tags
    }

    /// Whether the rule holds for the subject. Missing attributes make their comparison
    /// false (outside `has()`); see `docs/rules.md` for the exact three-valued logic.
    /// A number rule never matches.
    /// Runs the compiled predicate; [`Rule::matches_interpreted`] gives the same answer.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        self.compiled.matches(facts)
    }

    /// [`Rule::matches`] by the tree-walking interpreter, the reference semantics (for
    /// tests and benchmarks).
    pub fn matches_interpreted(&self, facts: &Facts<'_>) -> bool {
        !self.number && eval::truth(&self.expr, facts) == Some(true)
    }

    /// The clause-by-clause account of [`Rule::matches`], with personal values masked.
    pub fn explain(&self, facts: &Facts<'_>) -> Explanation {
        explain::explain(&self.expr, self.number, facts)
    }

    /// [`Rule::explain`] with each clause also as a Chinese sentence (`sentence`),
    /// worded with the glossary: attribute labels and value labels, tags by their
    /// Chinese names, parameters with their legal references. A number rule's clause
    /// gets no sentence.
    pub fn explain_in_words(&self, facts: &Facts<'_>, glossary: &Glossary) -> Explanation {
        let mut e = self.explain(facts);
        if !self.number {
            for (c, expr) in e.clauses.iter_mut().zip(self.expr.conjuncts()) {
                c.sentence = Some(plain::sentence(expr, facts, glossary));
            }
        }
        e
    }

    /// The value of a number expression for the subject; `None` when it reads a missing
    /// attribute or is not finite. A condition has no number value.
    pub fn eval_number(&self, facts: &Facts<'_>) -> Option<f64> {
        if !self.number {
            return None;
        }
        match eval::eval(&self.expr, facts)? {
            eval::Val::Num(n) => Some(n.as_f64()).filter(|x| x.is_finite()),
            _ => None,
        }
    }
}

/// The three-valued truth of any checked (sub)expression for one subject: `Some(b)`
/// when it evaluates to a boolean, `None` for unknown. This is the reference semantics
/// that [`Rule::matches`] applies at the top and other engines must reproduce.
pub fn truth<'a>(expr: &'a ast::Expr, facts: &Facts<'a>) -> Option<bool> {
    eval::truth(expr, facts)
}

/// The byte offset of the first `params.<name>` (with any spacing around the dot)
/// outside string literals.
fn find_param(text: &str, name: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {
                let rest = &text[i..];
                let Some(after) = rest.strip_prefix("params") else {
                    continue;
                };
                let boundary = text[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|p| !(p.is_ascii_alphanumeric() || p == '_'));
                let after = after.trim_start();
                let Some(after) = after.strip_prefix('.') else {
                    continue;
                };
                let after = after.trim_start();
                if !(boundary && after.starts_with(name)) {
                    continue;
                }
                let ends = after[name.len()..]
                    .chars()
                    .next()
                    .is_none_or(|n| !(n.is_ascii_alphanumeric() || n == '_'));
                if ends {
                    return Some(i);
                }
            }
        }
    }
    None
}

/// Parses, lowers and checks the type at the top.
fn compile(text: &str, number: bool) -> Result<Rule, RuleError> {
    let source = Source::new(text);
    precheck(source)?;
    let (root, info) = parse_cel(text)?;
    let node = lower::lower(source, &info, &root)?;
    check_top(source, &node, number)?;
    Ok(Rule {
        source: text.to_string(),
        compiled: Arc::new(compiled::Compiled::new(&node.expr, number)),
        expr: Arc::new(node.expr),
        number,
    })
}

/// Refuses empty, overlong and too deeply bracketed rules before parsing.
fn precheck(source: Source<'_>) -> Result<(), RuleError> {
    let text = source.text;
    if text.trim().is_empty() {
        return Err(source.error_at(0, "rule is empty"));
    }
    if text.chars().count() > MAX_RULE_CHARS {
        return Err(source.error_at(
            0,
            format!("rule is longer than {MAX_RULE_CHARS} characters"),
        ));
    }
    match deepest_bracket(text) {
        Some(at) => Err(source.error_at(
            at,
            format!("brackets nest more than {MAX_NESTING} levels deep"),
        )),
        None => Ok(()),
    }
}

/// The byte offset of the first bracket nested deeper than [`MAX_NESTING`], outside
/// string literals.
fn deepest_bracket(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' | '[' | '{' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i);
                    }
                }
                ')' | ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    None
}

/// Runs the CEL parser; its first error becomes ours, in plainer words.
fn parse_cel(
    text: &str,
) -> Result<(cel::common::ast::IdedExpr, cel::common::ast::SourceInfo), RuleError> {
    let parsed =
        std::panic::catch_unwind(|| cel::parser::Parser::new().parse_with_source_info(text));
    let errors = match parsed {
        Ok(Ok(ok)) => return Ok(ok),
        Ok(Err(errors)) => errors.errors,
        Err(_) => Vec::new(),
    };
    let Some(first) = errors.into_iter().next() else {
        return Err(Source::new(text).error_at(0, "syntax error: the rule cannot be read"));
    };
    let (line, column) = first.pos;
    Err(RuleError {
        line: u32::try_from(line).ok().filter(|l| *l > 0).unwrap_or(1),
        column: u32::try_from(column).ok().filter(|c| *c > 0).unwrap_or(1),
        message: syntax_message(&first.msg),
    })
}

/// ANTLR's messages, said plainly.
fn syntax_message(msg: &str) -> String {
    let msg = msg.strip_prefix("Syntax error: ").unwrap_or(msg);
    let quoted = |prefix: &str| -> Option<String> {
        let rest = msg.strip_prefix(prefix)?;
        let end = rest.rfind("' expecting").or_else(|| rest.rfind('\''))?;
        Some(rest[..end].to_string())
    };
    if msg.contains("'<EOF>'") {
        return "syntax error: the rule ends too early; something is missing here".into();
    }
    if let Some(tok) = quoted("token recognition error at: '") {
        let tok = tok.trim();
        if tok.starts_with(['\'', '"']) {
            return "syntax error: this string is not closed".into();
        }
        return format!("syntax error: unexpected character {tok}{}", hint(tok));
    }
    for prefix in [
        "extraneous input '",
        "mismatched input '",
        "no viable alternative at input '",
    ] {
        if let Some(tok) = quoted(prefix) {
            return format!("syntax error: unexpected \"{tok}\"{}", hint(&tok));
        }
    }
    if msg == "invalid argument to has() macro" {
        return "has() tests an attribute: write has(attrs.<name>)".into();
    }
    if let Some(word) = msg.strip_prefix("reserved identifier: ") {
        return format!("{word} is a reserved word and cannot be used as an identifier");
    }
    format!("syntax error: {msg}")
}

/// A hint for the mistakes people make coming from SQL or spreadsheets.
fn hint(token: &str) -> &'static str {
    match token.trim() {
        "=" => "; compare with ==",
        "and" | "AND" => "; join conditions with &&",
        "or" | "OR" => "; join alternatives with ||",
        "not" | "NOT" => "; negate with !",
        _ => "",
    }
}

/// A condition must be true/false at the top, a formula a number; attributes (whose
/// type is known only per subject) are accepted for either.
fn check_top(source: Source<'_>, node: &lower::Node, number: bool) -> Result<(), RuleError> {
    let ok = match (number, node.ty) {
        (_, Ty::Dyn) => true,
        (false, ty) => ty == Ty::Bool,
        (true, ty) => ty == Ty::Num,
    };
    if ok {
        return Ok(());
    }
    let message = if number {
        format!(
            "a benefit formula must be a number (such as insured_employees * 1500 * 0.6); \
             this is {}",
            node.ty.what()
        )
    } else {
        format!(
            "rule must be a condition (true/false), this is {}",
            node.ty.what()
        )
    };
    Err(source.error_at(node.start, message))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::{credit_code_check_char, resident_id_check_char};
    use crate::subject::{Subject, SubjectDoc};
    use chrono::NaiveDate;

    pub(crate) fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 7).unwrap()
    }

    /// A valid resident ID for a birth date (`YYYYMMDD`) and sex.
    pub(crate) fn resident_id(birth: &str, male: bool) -> String {
        let first17 = format!("310101{birth}12{}", if male { 3 } else { 4 });
        format!("{first17}{}", resident_id_check_char(&first17).unwrap())
    }

    pub(crate) fn person(birth: &str, male: bool, attrs: serde_json::Value) -> Subject {
        subject("person", &resident_id(birth, male), attrs)
    }

    pub(crate) fn enterprise(attrs: serde_json::Value) -> Subject {
        let first17 = "91440300715267261";
        let id = format!("{first17}{}", credit_code_check_char(first17).unwrap());
        subject("enterprise", &id, attrs)
    }

    fn subject(kind: &str, id: &str, attrs: serde_json::Value) -> Subject {
        let doc = SubjectDoc {
            id: id.to_string(),
            kind: kind.to_string(),
            name: "张伟".into(),
            mobile: Some("13812345678".into()),
            wechat_openid: None,
            attributes: attrs.as_object().cloned().unwrap_or_default(),
        };
        Subject::from_doc(doc).unwrap()
    }

    fn holds(rule: &str, s: &Subject, tags: &[&str]) -> bool {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let r = Rule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
        let m = r.matches(&Facts::new(s, &tags, today()));
        assert_eq!(
            m,
            r.explain(&Facts::new(s, &tags, today())).held(),
            "{rule}"
        );
        m
    }

    fn refused(rule: &str) -> String {
        match Rule::parse(rule) {
            Ok(_) => panic!("{rule} was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn sme() -> Subject {
        enterprise(serde_json::json!({
            "employees": 12, "district": "浦东新区", "insured_employees": 10,
            "revenue": 3500000.5, "industry_codes": ["C13", "C14"],
            "founded": "2019-05-20", "is_hightech": true,
        }))
    }

    #[test]
    fn syntax_errors_say_where() {
        assert_eq!(
            refused("age > 1 &&"),
            "line 1, column 11: syntax error: the rule ends too early; something is missing here"
        );
        assert_eq!(
            refused("'浦东' == x && y ==== 2"),
            "line 1, column 18: syntax error: unexpected \"==\""
        );
        assert_eq!(
            refused("kind == 'person'\n  && age >> 3"),
            "line 2, column 11: syntax error: unexpected \">\""
        );
        assert!(
            refused("x # 1").starts_with("line 1, column 3: syntax error: unexpected character #")
        );
        assert!(
            refused("age = 3").contains("compare with =="),
            "{}",
            refused("age = 3")
        );
        assert!(refused("a and b").contains("&&"), "{}", refused("a and b"));
        assert_eq!(refused("   "), "line 1, column 1: rule is empty");
        assert!(refused(&"x".repeat(MAX_RULE_CHARS + 1)).contains("longer than"));
        let deep = format!("{}true{}", "(".repeat(40), ")".repeat(40));
        assert_eq!(
            refused(&deep),
            "line 1, column 33: brackets nest more than 32 levels deep"
        );
    }

    #[test]
    fn outside_the_subset_is_refused_with_reason() {
        let cases = [
            (
                "district.matches('^浦')",
                "line 1, column 10: unknown function \"matches\"; allowed: startsWith, endsWith, contains, size, has",
            ),
            ("timestamp(x) > 1", "line 1, column 1: unknown function \"timestamp\""),
            ("tags.exists(t, t == 'a')", "line 1, column 6: macro \"exists\" is not supported"),
            ("tags.all(t, t == 'a')", "line 1, column 6: macro \"all\""),
            ("size(tags.filter(t, t == 'a')) > 1", "macro \"filter\""),
            ("size(tags.map(t, t)) > 1", "macro \"map\""),
            ("has(district)", "line 1, column 5: has() tests an attribute: write has(attrs.<name>)"),
            ("has(x.y)", "has() tests an attribute"),
            ("params > 1", "line 1, column 1: params is not a value by itself"),
            ("params.limit > 'a'", "cannot compare a number with a string"),
            ("has(params.limit)", "a parameter always exists"),
            ("x == null", "line 1, column 6: null is not supported"),
            ("{'a': 1} == x", "maps and objects are not supported"),
            ("tags[0] == 'a'", "line 1, column 5: indexing"),
            ("a.b == 1", "line 1, column 2: fields can only be read from attrs"),
            ("Employees < 20", "line 1, column 1: unknown identifier \"Employees\""),
            ("name == '张三'", "name is personal data"),
            ("attrs.mobile == '1'", "mobile is personal data"),
            ("attrs.age > 1", "age is never an attribute"),
            ("attrs == 1", "attrs is not a value by itself"),
            ("x in [1, 'a']", "line 1, column 10: a list mixes strings and numbers"),
            ("x in [y]", "list elements must be plain"),
            ("size(tags, 1) > 0", "size measures one string or list"),
            ("startsWith(x, 'a')", "startsWith is a method with one argument"),
            ("x == 'abc", "line 1, column 6: syntax error: this string is not closed"),
        ];
        for (rule, want) in cases {
            let got = refused(rule);
            assert!(got.starts_with(want) || got.contains(want), "{rule}: {got}");
        }
    }

    #[test]
    fn type_mistakes_are_refused() {
        let cases = [
            (
                "age > 'x'",
                "line 1, column 5: cannot compare a number with a string",
            ),
            (
                "kind == 3",
                "line 1, column 6: cannot compare a string with a number",
            ),
            (
                "'a' + 1 > 0",
                "line 1, column 5: + works on numbers; its left side is a string",
            ),
            (
                "age + 1",
                "line 1, column 1: rule must be a condition (true/false), this is a number",
            ),
            ("'x'", "this is a string"),
            (
                "kind == 'company'",
                "line 1, column 9: kind is 'person' or 'enterprise'; 'company' is never a kind",
            ),
            ("'company' != kind", "'company' is never a kind"),
            ("kind in ['person', 'firm']", "'firm' is never a kind"),
            (
                "sex == 'M'",
                "sex is 'male' or 'female'; 'M' is never a sex",
            ),
            (
                "age && true",
                "&& joins conditions; its left side is a number",
            ),
            ("x || 'a'", "its right side is a string"),
            ("!age", "! negates a condition; this is a number"),
            ("-kind == 1", "- negates a number"),
            ("true < false", "< compares numbers or strings"),
            ("tags == ['a']", "== does not compare lists"),
            ("'a' in 'abc'", "in needs a list"),
            ("1 in tags", "a number is never in a list of strings"),
            ("'a' in [1, 2]", "a string is never in a list of numbers"),
            ("true in x", "in looks for a string or a number"),
            (
                "age.startsWith('1')",
                "startsWith works on strings; this is a number",
            ),
            (
                "tags.startsWith('1')",
                "startsWith works on strings; this is a list",
            ),
            (
                "district.startsWith(1)",
                "startsWith takes a string; this is a number",
            ),
            ("'abc'.contains(1)", "contains takes a string"),
            ("tags.contains(1)", "a number is never in a list of strings"),
            ("size(age) > 1", "size() measures a string or a list"),
            ("x / 0 > 1", "division by zero"),
            ("(x ? 1 : 'a') == 1", "the two branches of ?: differ"),
            (
                "(age ? true : false)",
                "the part before ? must be a condition",
            ),
        ];
        for (rule, want) in cases {
            let got = refused(rule);
            assert!(got.starts_with(want) || got.contains(want), "{rule}: {got}");
        }
    }

    #[test]
    fn number_formulas() {
        let r = Rule::parse_number("insured_employees * 1500 * 0.6").unwrap();
        assert!(r.is_number());
        let s = sme();
        let f = Facts::new(&s, &[], today());
        assert_eq!(r.eval_number(&f), Some(9000.0));
        assert!(!r.matches(&f));
        let p = person("19900307", true, serde_json::json!({}));
        assert_eq!(r.eval_number(&Facts::new(&p, &[], today())), None);
        assert_eq!(
            Rule::parse_number("7 / 2").unwrap().eval_number(&f),
            Some(3.5)
        );
        assert_eq!(
            Rule::parse_number("employees % 5 - -1")
                .unwrap()
                .eval_number(&f),
            Some(3.0)
        );
        assert_eq!(
            Rule::parse_number("employees / (employees - 12)")
                .unwrap()
                .eval_number(&f),
            None
        );
        assert_eq!(
            Rule::parse_number("district").unwrap().eval_number(&f),
            None
        );
        assert_eq!(
            Rule::parse_number("employees > 10 ? 3000 : 1000")
                .unwrap()
                .eval_number(&f),
            Some(3000.0)
        );
        let e = Rule::parse_number("employees > 1").unwrap_err().to_string();
        assert!(
            e.contains("a benefit formula must be a number") && e.contains("condition"),
            "{e}"
        );
        assert!(Rule::parse_number("'a'").is_err());
        assert_eq!(Rule::parse("employees > 1").unwrap().eval_number(&f), None);
    }

    #[test]
    fn every_operator() {
        let s = sme();
        let yes = [
            "employees == 12",
            "employees != 13",
            "employees < 13 && employees <= 12 && employees > 11 && employees >= 12",
            "employees < 20 || false",
            "!(employees > 20)",
            "employees + 1 == 13 && employees - 2 == 10 && employees * 2 == 24",
            "employees / 4 == 3 && employees / 5 == 2.4 && employees % 5 == 2",
            "-employees == -12 && -(employees - 20) == 8",
            "district in ['浦东新区', '黄浦区']",
            "district.startsWith('浦东') && district.endsWith('新区') && district.contains('东新')",
            "size(district) == 4 && district.size() == 4",
            "'C13' in industry_codes && industry_codes.contains('C14')",
            "size(industry_codes) == 2",
            "employees in [10, 11, 12]",
            "employees > 10 ? district == '浦东新区' : false",
            "is_hightech && is_hightech == true",
            "founded >= '2019-01-01' && founded < '2020-01-01'",
            "revenue > 3500000 && revenue < 3500001",
            "has(attrs.employees) && attrs.employees == 12",
            "kind == 'enterprise' && kind in ['enterprise']",
            "!('x' in [])",
        ];
        for rule in yes {
            assert!(holds(rule, &s, &[]), "{rule}");
        }
        let no = [
            "employees == 13",
            "district in ['黄浦区']",
            "'C99' in industry_codes",
            "employees > 20 ? true : false",
            "!is_hightech",
            "district.startsWith('新区')",
        ];
        for rule in no {
            assert!(!holds(rule, &s, &[]), "{rule}");
        }
    }

    #[test]
    fn missing_attributes_are_unknown_like_sql_null() {
        let s = enterprise(serde_json::json!({"district": "浦东新区"}));
        let cases = [
            ("employees < 20", false),
            ("!(employees < 20)", false),
            ("employees >= 20", false),
            ("employees < 20 || kind == 'enterprise'", true),
            ("employees < 20 && kind == 'enterprise'", false),
            ("employees < 20 && false", false),
            ("!(employees < 20 && false)", true),
            ("!(employees < 20 || false)", false),
            ("has(attrs.employees)", false),
            ("!has(attrs.employees)", true),
            ("!has(attrs.employees) || employees < 20", true),
            ("has(attrs.employees) && employees < 20", false),
            ("'x' in skills", false),
            ("!('x' in skills)", false),
            ("size(skills) == 0", false),
            ("is_veteran", false),
            ("!is_veteran", false),
            ("age > 18", false),
            ("!(age > 18)", false),
            ("sex == 'male' || sex == 'female'", false),
            ("(employees > 1 ? true : true)", false),
        ];
        for (rule, want) in cases {
            assert_eq!(holds(rule, &s, &[]), want, "{rule}");
        }
    }

    #[test]
    fn wrong_types_at_run_time_are_unknown_never_a_panic() {
        let s = enterprise(
            serde_json::json!({"district": "浦东新区", "employees": "twelve", "flag": 1}),
        );
        for rule in [
            "district > 5",
            "!(district > 5)",
            "district == 5",
            "employees + 1 > 0",
            "employees in [1, 2]",
            "1 in district",
            "district.contains(1)",
            "flag",
            "!flag",
            "flag.startsWith('1')",
            "size(flag) > 0",
        ] {
            assert!(!holds(rule, &s, &[]), "{rule}");
        }
    }

    #[test]
    fn ints_and_decimals_mix() {
        let s = person(
            "20020615",
            false,
            serde_json::json!({"score": 1.5, "years": 2, "rate": 2.0}),
        );
        for rule in [
            "score > 1",
            "score < 2",
            "years == 2.0",
            "rate == years",
            "score * 2 == 3",
            "years / 4 == 0.5",
            "score + years == 3.5",
            "rate in [1, 2, 3]",
            "years in [2.0]",
            "7 / 2 == 3.5",
        ] {
            assert!(holds(rule, &s, &[]), "{rule}");
        }
    }

    #[test]
    fn tags_kind_age_and_sex() {
        let p = person("19900307", true, serde_json::json!({}));
        let tags = ["高校毕业生", "登记失业"];
        assert!(holds("'登记失业' in tags && size(tags) == 2", &p, &tags));
        assert!(holds("tags.contains('高校毕业生')", &p, &tags));
        assert!(!holds("'小微企业' in tags", &p, &tags));
        assert!(holds("size(tags) == 0", &p, &[]));
        assert!(holds(
            "kind == 'person' && sex == 'male' && age == 36",
            &p,
            &[]
        ));
        let day_before = NaiveDate::from_ymd_opt(2026, 3, 6).unwrap();
        let r = Rule::parse("age == 35").unwrap();
        assert!(r.matches(&Facts::new(&p, &[], day_before)));
        let w = person("20040101", false, serde_json::json!({}));
        assert!(holds("sex == 'female' && age >= 16 && age <= 24", &w, &[]));
        let e = sme();
        assert!(holds("kind == 'enterprise'", &e, &[]));
        assert!(!holds("kind != 'enterprise'", &e, &[]));
        assert!(!holds("sex != 'male'", &e, &[]));
    }

    #[test]
    fn bureau_rules() {
        let graduate = person(
            "20030910",
            false,
            serde_json::json!({"education": "bachelor", "graduation_year": 2025,
                               "employment_status": "registered_unemployed", "hukou": "local"}),
        );
        let rule = "kind == 'person' && graduation_year >= 2024 && \
                    education in ['bachelor', 'master', 'doctor'] && \
                    employment_status == 'registered_unemployed'";
        assert!(holds(rule, &graduate, &[]));
        assert!(!holds(rule, &sme(), &[]));
        let older = "kind == 'person' && employment_status == 'registered_unemployed' && \
                     ((sex == 'female' && age >= 40) || (sex == 'male' && age >= 50))";
        let woman_45 = person(
            "19810101",
            false,
            serde_json::json!({"employment_status": "registered_unemployed"}),
        );
        let man_45 = person(
            "19810101",
            true,
            serde_json::json!({"employment_status": "registered_unemployed"}),
        );
        assert!(holds(older, &woman_45, &[]));
        assert!(!holds(older, &man_45, &[]));
        assert!(holds(
            "kind == 'enterprise' && employees < 20 && district == '浦东新区'",
            &sme(),
            &[]
        ));
    }

    #[test]
    fn explains_clause_by_clause() {
        let s = sme();
        let tags = vec!["小微企业".to_string()];
        let f = Facts::new(&s, &tags, today());
        let r = Rule::parse(
            "kind=='enterprise' && (employees<10 || district=='浦东新区') && '小微企业' in tags && hukou == 'local'",
        )
        .unwrap();
        let e = r.explain(&f);
        assert!(!r.matches(&f));
        let got: Vec<(&str, bool)> = e
            .clauses
            .iter()
            .map(|c| (c.clause.as_str(), c.held))
            .collect();
        assert_eq!(
            got,
            [
                ("kind == 'enterprise'", true),
                ("employees < 10 || district == '浦东新区'", true),
                ("'小微企业' in tags", true),
                ("hukou == 'local'", false),
            ]
        );
        assert_eq!(e.clauses[0].values["kind"], "enterprise");
        assert_eq!(e.clauses[1].values["employees"], "12");
        assert_eq!(e.clauses[1].values["district"], "浦东新区");
        assert_eq!(e.clauses[2].values["tags"], "[小微企业]");
        assert_eq!(e.clauses[3].values["hukou"], "(none)");
        assert_eq!(
            e.to_string(),
            "✓ kind == 'enterprise' (kind = enterprise); \
             ✓ employees < 10 || district == '浦东新区' (district = 浦东新区, employees = 12); \
             ✓ '小微企业' in tags (tags = [小微企业]); ✗ hukou == 'local' (hukou = (none))"
        );
        let one = Rule::parse("employees > 1 || has(attrs.revenue)")
            .unwrap()
            .explain(&f);
        assert_eq!(one.clauses.len(), 1);
        assert_eq!(one.clauses[0].values["revenue"], "3500000.5");
        let n = Rule::parse_number("insured_employees * 1500")
            .unwrap()
            .explain(&f);
        assert!(n.held() && n.clauses[0].values["insured_employees"] == "10");
    }

    #[test]
    fn examples_in_the_reference_parse() {
        let doc = include_str!("../../../../docs/rules.md");
        let section = doc
            .split("## 3.")
            .nth(1)
            .and_then(|s| s.split("## 4.").next())
            .unwrap();
        let blocks: Vec<&str> = section.split("```").skip(1).step_by(2).collect();
        assert!(blocks.len() >= 6);
        let parses = |src: &str| Rule::parse(src).is_ok() || Rule::parse_number(src).is_ok();
        for block in blocks {
            let ok = parses(block) || block.lines().filter(|l| !l.trim().is_empty()).all(parses);
            assert!(ok, "{block}");
        }
    }

    #[test]
    fn reads_and_canonical() {
        let r = Rule::parse(
            "kind=='enterprise'&&employees<20&&has(attrs.x)&&'a' in tags&&attrs.employees>1",
        )
        .unwrap();
        assert_eq!(r.reads(), ["kind", "employees", "x", "tags"]);
        assert_eq!(
            r.canonical(),
            "kind == 'enterprise' && employees < 20 && has(attrs.x) && 'a' in tags && attrs.employees > 1"
        );
        assert_eq!(
            r.source(),
            "kind=='enterprise'&&employees<20&&has(attrs.x)&&'a' in tags&&attrs.employees>1"
        );
    }

    #[test]
    fn tags_read_by_name_or_any() {
        let r = Rule::parse("'a' in tags && (tags.contains('b') || age > 30)").unwrap();
        assert!(r.may_read_tag("a") && r.may_read_tag("b"));
        assert!(!r.may_read_tag("c"));
        assert!(!Rule::parse("age > 30").unwrap().may_read_tag("a"));
        // Not by name: any tag may matter.
        assert!(Rule::parse("size(tags) > 2").unwrap().may_read_tag("c"));
    }

    #[test]
    fn long_flat_rules_do_not_overflow() {
        let sum = format!("{} > 0", vec!["x"; 900].join(" + "));
        assert!(Rule::parse(&sum)
            .unwrap_err()
            .message
            .contains("nested more than"));
        let chain = format!("attrs{} == 1", ".b".repeat(1900));
        assert!(Rule::parse(&chain).is_err());
        let calls = format!("x{} > 1", ".size()".repeat(500));
        assert!(Rule::parse(&calls).is_err());
        let ors = vec!["x == 1"; 400].join(" || ");
        let r = Rule::parse(&ors).unwrap();
        let s = enterprise(serde_json::json!({"x": 1}));
        assert!(r.matches(&Facts::new(&s, &[], today())));
    }
    #[test]
    fn parameters_are_read_at_their_bound_value() {
        use crate::param::{ParamValue, ParamValues, PolicyParam};
        let s = enterprise(serde_json::json!({"insured_months": 14, "insured_employees": 10}));
        let r = Rule::parse("kind == 'enterprise' && insured_months >= params.min_insured_months")
            .unwrap();
        assert_eq!(r.params(), ["min_insured_months"]);
        assert!(r.depends_on_date());
        assert!(!Rule::parse("employees > 1").unwrap().depends_on_date());
        assert!(Rule::parse("age > 1").unwrap().depends_on_date());
        let f = Facts::new(&s, &[], today());
        // unbound, or no value in force on the date: unknown, so the clause fails
        assert!(!r.matches(&f));
        assert!(!r.bind(&ParamValues::empty()).matches(&f));
        let param = PolicyParam {
            name: "min_insured_months".into(),
            description: "连续参保月数下限".into(),
            unit: "月".into(),
            values: vec![
                ParamValue {
                    effective_from: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
                    value: 12.0,
                    legal_ref: "沪人社规〔2023〕12号".into(),
                },
                ParamValue {
                    effective_from: NaiveDate::from_ymd_opt(2026, 3, 8).unwrap(),
                    value: 18.0,
                    legal_ref: "沪人社规〔2026〕3号".into(),
                },
            ],
        }
        .check()
        .unwrap();
        let on = |d: NaiveDate| r.bind(&ParamValues::on(std::slice::from_ref(&param), d));
        let bound = on(today());
        assert!(bound.matches(&f));
        let tomorrow = today().succ_opt().unwrap();
        assert!(!on(tomorrow).matches(&Facts::new(&s, &[], tomorrow)));
        assert!(!on(NaiveDate::from_ymd_opt(2024, 12, 31).unwrap()).matches(&f));
        let e = bound.explain(&f);
        assert_eq!(
            e.clauses[1].clause,
            "insured_months >= params.min_insured_months"
        );
        assert_eq!(e.clauses[1].values["params.min_insured_months"], "12");
        assert_eq!(e.clauses[1].values["insured_months"], "14");
        assert!(e.to_string().contains(
            "✓ insured_months >= params.min_insured_months \
             (insured_months = 14, params.min_insured_months = 12)"
        ));
        assert_eq!(
            r.explain(&f).clauses[1].values["params.min_insured_months"],
            "(none)"
        );
        let benefit = Rule::parse_number("insured_employees * params.subsidy * params.rate")
            .unwrap()
            .bind(
                &ParamValues::empty()
                    .with("subsidy", 1500.0)
                    .with("rate", 0.6),
            );
        assert_eq!(benefit.eval_number(&f), Some(9000.0));
        assert_eq!(bound.canonical(), r.canonical());
    }

    #[test]
    fn unknown_parameters_are_named_where_they_are_read() {
        let r = Rule::parse("kind == 'person' &&\n  age >= params . min_age && x < params.max_x")
            .unwrap();
        assert_eq!(r.params(), ["min_age", "max_x"]);
        assert!(r.check_params(&|_| true).is_ok());
        let e = r.check_params(&|n| n == "min_age").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2, column 34: unknown parameter \"params.max_x\"; define it first \
             (PUT /api/v1/params/max_x)"
        );
        let e = r.check_params(&|_| false).unwrap_err();
        assert_eq!((e.line, e.column), (2, 10));
        let quoted = Rule::parse("x == 'params.a' || y > params.a").unwrap();
        assert_eq!(quoted.check_params(&|_| false).unwrap_err().column, 24);
        assert!(Rule::parse("y > params.A").is_err());
    }
}
