//! Compiled per-subject predicates, for matching one subject against many rules.
//!
//! A checked tree ([`super::ast::Expr`]) is compiled once into a [`Node`] tree whose
//! identifiers are pre-resolved *slots*: every attribute a rule (or a whole
//! [`RuleSet`]) reads gets a number, and a subject's values are laid out once per
//! evaluation in a slot array on the stack (a merge of the subject's sorted attributes
//! with the sorted slot names), so evaluation does no name look-up and no allocation.
//! `age` (which parses the birth date) is computed once per subject, only when read.
//! The common shapes (`attr op constant`, `attr in [..]`, `'t' in tags`) are single
//! nodes, `&&`/`||` chains are flattened, parameter values are constants.
//!
//! The semantics are the interpreter's ([`super::eval`]) exactly: every node calls the
//! same value operations (`compare`, `arith`, `member`, …), so unknown values spread the
//! same way; `&&`/`||` chains are evaluated with Kleene logic, which is associative, and
//! evaluation has no side effects, so flattening changes nothing but speed. The
//! property tests (`proptests.rs` here and `services/matcher/tests/agreement.rs`) check
//! the compiled path against the interpreter on thousands of random rules and subjects.
//!
//! A [`RuleSet`] adds a **pre-filter**: the necessary conditions of each rule taken from
//! its top-level `&&` chain (a tag it requires, a string equality or string list
//! membership on `kind`, `sex` or an attribute) are looked up once per subject, and a
//! subject evaluates only the rules all of whose such conditions it meets. The set's
//! rules share their top-level clauses: each distinct clause is evaluated at most once
//! per subject, whatever the number of rules that contain it.

use super::ast::{CmpOp, Expr, ListLit, Method, Num, Var};
use super::eval::{self, Val};
use super::Rule;
use crate::subject::{Facts, SubjectId};
use std::collections::HashMap;

/// Slot arrays up to this size live on the stack.
const INLINE_SLOTS: usize = 32;

/// Where a value is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Src {
    Kind,
    Age,
    Sex,
    Tags,
    Slot(u32),
}

/// A constant of a rule.
#[derive(Debug, Clone)]
enum Lit {
    Bool(bool),
    Num(Num),
    Str(Box<str>),
}

impl Lit {
    fn val(&self) -> Val<'_> {
        match self {
            Lit::Bool(b) => Val::Bool(*b),
            Lit::Num(n) => Val::Num(*n),
            Lit::Str(s) => Val::Str(s),
        }
    }

    fn of(e: &Expr) -> Option<Lit> {
        match e {
            Expr::Bool(b) => Some(Lit::Bool(*b)),
            Expr::Num(n) => Some(Lit::Num(*n)),
            Expr::Str(s) => Some(Lit::Str(s.clone())),
            Expr::Param(p) => p.value.map(Lit::Num),
            _ => None,
        }
    }
}

/// A compiled expression.
#[derive(Debug, Clone)]
enum Node {
    Lit(Lit),
    List(ListLit),
    /// An unbound parameter.
    Unknown,
    Read(Src),
    Has(u32),
    /// `read op constant` (or `constant op read` when `lit_left`).
    CmpRead {
        op: CmpOp,
        src: Src,
        lit: Lit,
        lit_left: bool,
    },
    /// `read in [..]`.
    InRead(Src, ListLit),
    /// `'t' in tags` or `tags.contains('t')`.
    TagIn(Box<str>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(super::ast::ArithOp, Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
    Method(Method, Box<Node>, Box<Node>),
    Size(Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
}

/// One subject's values, laid out by slot.
struct Row<'a> {
    kind: &'static str,
    age: Option<i64>,
    sex: Option<&'static str>,
    tags: &'a [String],
    slots: &'a [Option<Val<'a>>],
}

impl<'a> Row<'a> {
    #[inline]
    fn read(&self, src: Src) -> Option<Val<'a>> {
        match src {
            Src::Kind => Some(Val::Str(self.kind)),
            Src::Age => self.age.map(|a| Val::Num(Num::Int(a))),
            Src::Sex => self.sex.map(Val::Str),
            Src::Tags => Some(Val::Strs(self.tags)),
            Src::Slot(i) => self.slots[i as usize],
        }
    }
}

impl Node {
    fn eval<'a>(&'a self, r: &Row<'a>) -> Option<Val<'a>> {
        match self {
            Node::Lit(l) => Some(l.val()),
            Node::List(l) => Some(Val::Lit(l)),
            Node::Unknown => None,
            Node::Read(src) => r.read(*src),
            Node::Has(slot) => Some(Val::Bool(r.slots[*slot as usize].is_some())),
            Node::CmpRead { .. } | Node::InRead(..) | Node::TagIn(_) => {
                self.truth(r).map(Val::Bool)
            }
            Node::Not(x) => x.truth(r).map(|b| Val::Bool(!b)),
            Node::Neg(x) => eval::negate(x.eval(r)?).map(Val::Num),
            Node::And(_) | Node::Or(_) => self.truth(r).map(Val::Bool),
            Node::Cmp(op, a, b) => eval::compare(*op, a.eval(r)?, b.eval(r)?).map(Val::Bool),
            Node::Arith(op, a, b) => eval::arith(*op, a.eval(r)?, b.eval(r)?).map(Val::Num),
            Node::In(a, b) => eval::member(a.eval(r)?, b.eval(r)?).map(Val::Bool),
            Node::Method(m, a, b) => eval::method(*m, a.eval(r)?, b.eval(r)?).map(Val::Bool),
            Node::Size(x) => eval::size(x.eval(r)?).map(Val::Num),
            Node::Cond(c, a, b) => {
                if c.truth(r)? {
                    a.eval(r)
                } else {
                    b.eval(r)
                }
            }
        }
    }

    /// `Some(b)` when the node evaluates to a boolean; unknown otherwise.
    fn truth<'a>(&'a self, r: &Row<'a>) -> Option<bool> {
        match self {
            Node::CmpRead {
                op,
                src,
                lit,
                lit_left,
            } => {
                let v = r.read(*src)?;
                if *lit_left {
                    eval::compare(*op, lit.val(), v)
                } else {
                    eval::compare(*op, v, lit.val())
                }
            }
            Node::InRead(src, list) => eval::member(r.read(*src)?, Val::Lit(list)),
            Node::TagIn(t) => Some(r.tags.iter().any(|x| **x == **t)),
            Node::And(xs) => {
                let mut all = true;
                for x in xs.iter() {
                    match x.truth(r) {
                        Some(false) => return Some(false),
                        Some(true) => {}
                        None => all = false,
                    }
                }
                all.then_some(true)
            }
            Node::Or(xs) => {
                let mut none = true;
                for x in xs.iter() {
                    match x.truth(r) {
                        Some(true) => return Some(true),
                        Some(false) => {}
                        None => none = false,
                    }
                }
                none.then_some(false)
            }
            Node::Not(x) => x.truth(r).map(|b| !b),
            other => match other.eval(r)? {
                Val::Bool(b) => Some(b),
                _ => None,
            },
        }
    }
}

/// Attribute names to slots, built while compiling.
#[derive(Debug, Clone, Default)]
struct Schema {
    slots: HashMap<Box<str>, u32>,
    /// `(name, slot)` sorted by name, for laying out a subject's sorted attributes.
    sorted: Vec<(Box<str>, u32)>,
    reads_age: bool,
}

impl Schema {
    fn slot(&mut self, name: &str) -> u32 {
        if let Some(s) = self.slots.get(name) {
            return *s;
        }
        let s = u32::try_from(self.slots.len()).expect("fewer than 2^32 attributes");
        self.slots.insert(name.into(), s);
        s
    }

    fn finish(&mut self) {
        self.sorted = self.slots.iter().map(|(n, s)| (n.clone(), *s)).collect();
        self.sorted.sort();
    }

    fn src(&mut self, v: &Var) -> Src {
        match v {
            Var::Kind => Src::Kind,
            Var::Age => {
                self.reads_age = true;
                Src::Age
            }
            Var::Sex => Src::Sex,
            Var::Tags => Src::Tags,
            Var::Attr { name, .. } => Src::Slot(self.slot(name)),
        }
    }

    fn compile(&mut self, e: &Expr) -> Node {
        match e {
            Expr::Bool(_) | Expr::Num(_) | Expr::Str(_) => {
                Node::Lit(Lit::of(e).expect("a constant"))
            }
            Expr::Param(p) => match p.value {
                Some(n) => Node::Lit(Lit::Num(n)),
                None => Node::Unknown,
            },
            Expr::List(l) => Node::List(l.clone()),
            Expr::Var(v) => Node::Read(self.src(v)),
            Expr::Has(name) => Node::Has(self.slot(name)),
            Expr::Not(x) => Node::Not(Box::new(self.compile(x))),
            Expr::Neg(x) => Node::Neg(Box::new(self.compile(x))),
            Expr::And(..) => {
                let mut parts = Vec::new();
                flatten(e, true, &mut parts);
                Node::And(parts.into_iter().map(|p| self.compile(p)).collect())
            }
            Expr::Or(..) => {
                let mut parts = Vec::new();
                flatten(e, false, &mut parts);
                Node::Or(parts.into_iter().map(|p| self.compile(p)).collect())
            }
            Expr::Cmp(op, x, y) => match (&**x, &**y, Lit::of(x), Lit::of(y)) {
                (Expr::Var(v), _, _, Some(lit)) => Node::CmpRead {
                    op: *op,
                    src: self.src(v),
                    lit,
                    lit_left: false,
                },
                (_, Expr::Var(v), Some(lit), _) => Node::CmpRead {
                    op: *op,
                    src: self.src(v),
                    lit,
                    lit_left: true,
                },
                _ => Node::Cmp(*op, Box::new(self.compile(x)), Box::new(self.compile(y))),
            },
            Expr::Arith(op, x, y) => {
                Node::Arith(*op, Box::new(self.compile(x)), Box::new(self.compile(y)))
            }
            Expr::In(x, y) => match (&**x, &**y) {
                (Expr::Str(t), Expr::Var(Var::Tags)) => Node::TagIn(t.clone()),
                (Expr::Var(v), Expr::List(l)) => Node::InRead(self.src(v), l.clone()),
                _ => Node::In(Box::new(self.compile(x)), Box::new(self.compile(y))),
            },
            Expr::Method(m, x, y) => match (m, &**x, &**y) {
                (Method::Contains, Expr::Var(Var::Tags), Expr::Str(t)) => Node::TagIn(t.clone()),
                _ => Node::Method(*m, Box::new(self.compile(x)), Box::new(self.compile(y))),
            },
            Expr::Size(x) => Node::Size(Box::new(self.compile(x))),
            Expr::Cond(c, x, y) => Node::Cond(
                Box::new(self.compile(c)),
                Box::new(self.compile(x)),
                Box::new(self.compile(y)),
            ),
        }
    }

    /// Lays out the subject's values and runs `f` over them.
    #[inline]
    fn with_row<R>(&self, facts: &Facts<'_>, f: impl FnOnce(&Row<'_>) -> R) -> R {
        let n = self.slots.len();
        if n <= INLINE_SLOTS {
            let mut buf = [None; INLINE_SLOTS];
            self.fill(facts, &mut buf[..n]);
            f(&self.row(facts, &buf[..n]))
        } else {
            let mut buf = vec![None; n];
            self.fill(facts, &mut buf);
            f(&self.row(facts, &buf))
        }
    }

    fn row<'a>(&self, facts: &Facts<'a>, slots: &'a [Option<Val<'a>>]) -> Row<'a> {
        let (age, sex) = match &facts.subject.id {
            SubjectId::Person(r) => (
                self.reads_age.then(|| r.age_on(facts.today)),
                Some(r.sex().as_str()),
            ),
            SubjectId::Enterprise(_) => (None, None),
        };
        Row {
            kind: facts.subject.kind().as_str(),
            age,
            sex,
            tags: facts.tags,
            slots,
        }
    }

    /// A merge of the subject's attributes (sorted by name) with the sorted slot names.
    fn fill<'a>(&self, facts: &Facts<'a>, slots: &mut [Option<Val<'a>>]) {
        if self.sorted.is_empty() {
            return;
        }
        let attrs = &facts.subject.attributes;
        if self.sorted.len() * 4 < attrs.len() {
            for (name, slot) in &self.sorted {
                slots[*slot as usize] = attrs.get(&**name).map(eval::attr_val);
            }
            return;
        }
        let mut names = self.sorted.iter().peekable();
        for (k, v) in attrs {
            while let Some((name, slot)) = names.peek() {
                match (**name).cmp(k.as_str()) {
                    std::cmp::Ordering::Less => {
                        names.next();
                    }
                    std::cmp::Ordering::Equal => {
                        slots[*slot as usize] = Some(eval::attr_val(v));
                        names.next();
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            if names.peek().is_none() {
                break;
            }
        }
    }
}

/// The operands of a chain of `&&` (`and`) or `||`, left to right.
fn flatten<'e>(e: &'e Expr, and: bool, out: &mut Vec<&'e Expr>) {
    match (e, and) {
        (Expr::And(a, b), true) | (Expr::Or(a, b), false) => {
            flatten(a, and, out);
            flatten(b, and, out);
        }
        _ => out.push(e),
    }
}

/// One rule compiled to a per-subject predicate over its own slots.
#[derive(Debug, Clone)]
pub struct Compiled {
    schema: Schema,
    node: Node,
    number: bool,
}

impl Compiled {
    pub(crate) fn new(expr: &Expr, number: bool) -> Self {
        let mut schema = Schema::default();
        let node = schema.compile(expr);
        schema.finish();
        Compiled {
            schema,
            node,
            number,
        }
    }

    /// Whether the rule holds for the subject (a number rule never holds); the same
    /// answer as the interpreter's.
    pub fn matches(&self, facts: &Facts<'_>) -> bool {
        !self.number && self.schema.with_row(facts, |r| self.node.truth(r)) == Some(true)
    }
}

/// A necessary condition of a rule, used by the pre-filter of a [`RuleSet`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Tag(Box<str>),
    /// The value read from the source is a string among these (sorted).
    Str(Src, Vec<Box<str>>),
}

/// The condition of one top-level clause that must hold for the rule to hold, with a
/// rough cost (lower: expected to select fewer subjects).
fn key_of(e: &Expr, schema: &mut Schema) -> Option<(usize, Key)> {
    let str_src = |v: &Var, schema: &mut Schema| match v {
        Var::Kind => Some((10, Src::Kind)),
        Var::Sex => Some((5, Src::Sex)),
        Var::Attr { name, .. } => Some((2, Src::Slot(schema.slot(name)))),
        Var::Age | Var::Tags => None,
    };
    match e {
        Expr::In(x, y) => match (&**x, &**y) {
            (Expr::Str(t), Expr::Var(Var::Tags)) => Some((1, Key::Tag(t.clone()))),
            (Expr::Var(v), Expr::List(ListLit::Strs { sorted, .. })) => {
                let (cost, src) = str_src(v, schema)?;
                Some((cost + sorted.len(), Key::Str(src, sorted.clone())))
            }
            _ => None,
        },
        Expr::Method(Method::Contains, x, y) => match (&**x, &**y) {
            (Expr::Var(Var::Tags), Expr::Str(t)) => Some((1, Key::Tag(t.clone()))),
            _ => None,
        },
        Expr::Cmp(CmpOp::Eq, x, y) => match (&**x, &**y) {
            (Expr::Var(v), Expr::Str(s)) | (Expr::Str(s), Expr::Var(v)) => {
                let (cost, src) = str_src(v, schema)?;
                Some((cost, Key::Str(src, vec![s.clone()])))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The conditions each string value meets.
type CondsByValue = HashMap<Box<str>, Vec<u32>>;

/// Condition bitsets up to this many words live on the stack.
const INLINE_WORDS: usize = 16;

/// Many rules compiled over shared slots, with a pre-filter, to find every rule one
/// subject matches. [`RuleSet::matching`] gives the same indices as filtering the rules
/// with the interpreter.
///
/// The pre-filter: the top-level clauses of the form `'t' in tags`, `x == 'v'` or
/// `x in ['v', …]` (on `kind`, `sex` or an attribute) are *conditions*, shared between
/// rules. For a subject, the conditions it meets are found with one hash look-up per
/// source value and tag; each rule is filed under its most selective condition, and a
/// rule filed under a met condition is evaluated only when every one of its conditions
/// is met.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    schema: Schema,
    /// Each rule as the ids of its top-level clauses (`None`: a number rule, which
    /// never matches).
    rules: Vec<Option<Box<[u32]>>>,
    /// The distinct top-level clauses of all rules, compiled: a clause shared by many
    /// rules (`kind == 'person'`, a rule's whole base with only a threshold varied) is
    /// evaluated at most once per subject.
    clauses: Vec<Node>,
    /// Clause ids by canonical text (equal text, then equal trees, is the same clause).
    clause_ids: HashMap<String, Vec<(Expr, u32)>>,
    /// Each rule's conditions.
    required: Vec<Box<[u32]>>,
    /// Distinct conditions.
    conds: HashMap<Key, u32>,
    /// For each source read by a condition: the conditions each string value meets.
    by_value: Vec<(Src, CondsByValue)>,
    /// The conditions each tag meets.
    by_tag: HashMap<Box<str>, Vec<u32>>,
    /// Rules with no condition.
    always: Vec<u32>,
    /// The rules filed under each condition.
    filed: Vec<Vec<u32>>,
}

impl RuleSet {
    pub fn new<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Self {
        let mut set = RuleSet::default();
        for (i, rule) in rules.into_iter().enumerate() {
            let i = u32::try_from(i).expect("fewer than 2^32 rules");
            if rule.is_number() {
                set.rules.push(None);
                set.required.push(Box::new([]));
                continue;
            }
            let ids: Vec<u32> = rule
                .expr()
                .conjuncts()
                .into_iter()
                .map(|c| set.clause(c))
                .collect();
            set.rules.push(Some(ids.into_boxed_slice()));
            let mut keys: Vec<(usize, u32)> = Vec::new();
            for clause in rule.expr().conjuncts() {
                if let Some((cost, key)) = key_of(clause, &mut set.schema) {
                    let id = set.cond(key);
                    keys.push((cost, id));
                }
            }
            match keys.iter().min_by_key(|(cost, _)| *cost) {
                None => set.always.push(i),
                Some((_, id)) => set.filed[*id as usize].push(i),
            }
            let mut ids: Vec<u32> = keys.into_iter().map(|(_, id)| id).collect();
            ids.sort_unstable();
            ids.dedup();
            set.required.push(ids.into_boxed_slice());
        }
        set.schema.finish();
        set
    }

    /// The id of a top-level clause, compiling it when new.
    fn clause(&mut self, e: &Expr) -> u32 {
        let text = super::print::to_source(e);
        let same = self.clause_ids.entry(text).or_default();
        if let Some((_, id)) = same.iter().find(|(x, _)| x == e) {
            return *id;
        }
        let id = u32::try_from(self.clauses.len()).expect("fewer than 2^32 clauses");
        same.push((e.clone(), id));
        self.clauses.push(self.schema.compile(e));
        id
    }

    /// The id of a condition, registering it in the look-up tables when new.
    fn cond(&mut self, key: Key) -> u32 {
        if let Some(id) = self.conds.get(&key) {
            return *id;
        }
        let id = u32::try_from(self.conds.len()).expect("fewer than 2^32 conditions");
        match &key {
            Key::Tag(t) => self.by_tag.entry(t.clone()).or_default().push(id),
            Key::Str(src, values) => {
                let at = match self.by_value.iter().position(|(s, _)| s == src) {
                    Some(at) => at,
                    None => {
                        self.by_value.push((*src, HashMap::new()));
                        self.by_value.len() - 1
                    }
                };
                for v in values {
                    self.by_value[at].1.entry(v.clone()).or_default().push(id);
                }
            }
        }
        self.conds.insert(key, id);
        self.filed.push(Vec::new());
        id
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The indices (in the order the rules were given) of the rules the subject matches.
    pub fn matching(&self, facts: &Facts<'_>) -> Vec<usize> {
        let mut out = Vec::new();
        self.matching_into(facts, &mut out);
        out
    }

    /// [`RuleSet::matching`] into a reused buffer (cleared first).
    pub fn matching_into(&self, facts: &Facts<'_>, out: &mut Vec<usize>) {
        out.clear();
        self.schema.with_row(facts, |row| {
            self.with_memo(|memo| {
                self.each_candidate(row, |i| {
                    if self.holds(i, row, memo) {
                        out.push(i as usize);
                    }
                });
            });
        });
        out.sort_unstable();
    }

    /// How many rules the pre-filter leaves for the subject to evaluate.
    pub fn candidates(&self, facts: &Facts<'_>) -> usize {
        self.schema.with_row(facts, |row| {
            let mut n = 0;
            self.each_candidate(row, |_| n += 1);
            n
        })
    }

    /// Runs `f` with a clause memo of this set's size, all "not evaluated yet".
    fn with_memo<R>(&self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        const INLINE: usize = 1024;
        let n = self.clauses.len();
        if n <= INLINE {
            let mut memo = [0u8; INLINE];
            f(&mut memo[..n])
        } else {
            f(&mut vec![0u8; n])
        }
    }

    /// Whether rule `i` holds: the Kleene `&&` of its top-level clauses, each evaluated
    /// once per subject (`memo`: 0 not yet, 1 true, 2 false, 3 unknown).
    fn holds(&self, i: u32, row: &Row<'_>, memo: &mut [u8]) -> bool {
        let Some(ids) = &self.rules[i as usize] else {
            return false;
        };
        let mut all = true;
        for &c in ids.iter() {
            let m = &mut memo[c as usize];
            if *m == 0 {
                *m = match self.clauses[c as usize].truth(row) {
                    Some(true) => 1,
                    Some(false) => 2,
                    None => 3,
                };
            }
            match *m {
                2 => return false,
                3 => all = false,
                _ => {}
            }
        }
        all
    }

    /// Calls `f` once for every rule whose conditions the subject meets.
    fn each_candidate(&self, row: &Row<'_>, mut f: impl FnMut(u32)) {
        for &i in &self.always {
            f(i);
        }
        if self.conds.is_empty() {
            return;
        }
        let words = self.conds.len().div_ceil(64);
        let mut inline = [0u64; INLINE_WORDS];
        let mut heap = Vec::new();
        let met: &mut [u64] = if words <= INLINE_WORDS {
            &mut inline[..words]
        } else {
            heap.resize(words, 0);
            &mut heap
        };
        let mut set = |ids: &[u32]| {
            for &c in ids {
                met[c as usize / 64] |= 1 << (c % 64);
            }
        };
        for (src, values) in &self.by_value {
            if let Some(Val::Str(v)) = row.read(*src) {
                if let Some(ids) = values.get(v) {
                    set(ids);
                }
            }
        }
        if !self.by_tag.is_empty() {
            for t in row.tags {
                if let Some(ids) = self.by_tag.get(t.as_str()) {
                    set(ids);
                }
            }
        }
        let has = |c: u32| met[c as usize / 64] >> (c % 64) & 1 == 1;
        for (w, &word) in met.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let c = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                for &i in &self.filed[c] {
                    if self.required[i as usize].iter().all(|r| has(*r)) {
                        f(i);
                    }
                }
            }
        }
    }

    /// Every rule evaluated, with no pre-filter (for tests of the pre-filter).
    pub fn matching_unfiltered(&self, facts: &Facts<'_>) -> Vec<usize> {
        self.schema.with_row(facts, |row| {
            (0..self.rules.len())
                .filter(|i| {
                    let mut memo = vec![0u8; self.clauses.len()];
                    self.holds(*i as u32, row, &mut memo)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{enterprise, person, today};
    use super::*;

    fn rules(src: &[&str]) -> Vec<Rule> {
        src.iter()
            .map(|s| Rule::parse(s).unwrap_or_else(|_| Rule::parse_number(s).unwrap()))
            .collect()
    }

    #[test]
    fn pre_filter_evaluates_only_rules_whose_condition_the_subject_meets() {
        let rules = rules(&[
            "kind == 'enterprise' && employees < 20",
            "'t1' in tags && age > 18",
            "district in ['浦东新区', '黄浦区'] && kind == 'person'",
            "employees > 1 || district == '浦东新区'",
            "tags.contains('t2') && '静安区' == district",
            "employees * 2",
        ]);
        let set = RuleSet::new(&rules);
        assert_eq!(set.len(), 6);
        let p = person(
            "19900307",
            true,
            serde_json::json!({"district": "静安区", "employees": 3}),
        );
        let no_tags = Facts::new(&p, &[], today());
        // Only the rule with no string or tag condition is evaluated.
        assert_eq!(set.candidates(&no_tags), 1);
        assert_eq!(set.matching(&no_tags), [3]);
        let tags = vec!["t1".to_string(), "t2".to_string(), "t1".to_string()];
        let tagged = Facts::new(&p, &tags, today());
        assert_eq!(set.matching(&tagged), [1, 3, 4]);
        assert_eq!(set.matching_unfiltered(&tagged), [1, 3, 4]);
        let e = enterprise(serde_json::json!({"district": "黄浦区", "employees": 12}));
        let f = Facts::new(&e, &[], today());
        assert_eq!(set.matching(&f), [0, 3]);
        // Rule 2 is filed under its district, which the enterprise has, but it also
        // requires `kind == 'person'`, so it is not evaluated.
        assert_eq!(set.candidates(&f), 2);
    }

    #[test]
    fn compiled_rules_read_slots_like_the_interpreter() {
        let s = person(
            "20000101",
            false,
            serde_json::json!({"a": 1, "b": "x", "c": [ "p", "q" ], "d": 2.5, "z": true}),
        );
        let tags = vec!["t".to_string()];
        let f = Facts::new(&s, &tags, today());
        for (src, want) in [
            ("a == 1 && b == 'x' && 'p' in c && d > 2 && z", true),
            (
                "has(attrs.a) && !has(attrs.y) && sex == 'female' && age == 26",
                true,
            ),
            ("y < 1 || a == 1", true),
            ("y < 1 || a == 2", false),
            ("!(y < 1)", false),
            ("size(c) == 2 && c.contains('q') && b.startsWith('x')", true),
            ("(a > 0 ? d : y) == 2.5 && 't' in tags", true),
            ("params.unset > 1 || true", true),
            ("params.unset > 1 && true", false),
        ] {
            let r = Rule::parse(src).unwrap();
            assert_eq!(r.matches(&f), want, "{src}");
            assert_eq!(r.matches_interpreted(&f), want, "{src}");
        }
    }
}
