//! From the CEL parser's tree to ours: every construct outside the subset is refused with
//! where and why, identifiers are resolved, and types are checked as far as they are
//! known when the rule is saved (attributes are dynamic: their type is known only per
//! subject).

use super::ast::{ArithOp, CmpOp, Expr, ListLit, Method, Num, Param, Var};
use super::source::Source;
use super::RuleError;
use cel::common::ast::operators as op;
use cel::common::ast::{CallExpr, Expr as CelExpr, IdedExpr, LiteralValue, SelectExpr, SourceInfo};

/// How deep a rule may nest; far beyond any real rule, well within the stack.
const MAX_DEPTH: usize = 64;

/// The functions and methods a rule may call, for error messages.
const ALLOWED_FUNCTIONS: &str = "startsWith, endsWith, contains, size, has";

/// Names that rules cannot read: personal data stays out of targeting.
const PERSONAL: &[&str] = &["id", "name", "mobile", "wechat_openid"];

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    Num,
    Str,
    List(Elem),
    /// An attribute: its type is known only per subject.
    Dyn,
}

/// The element type of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Elem {
    Str,
    Num,
    /// An empty list literal.
    Any,
}

impl Ty {
    /// How the type reads in an error message.
    pub(crate) fn what(self) -> &'static str {
        match self {
            Ty::Bool => "a condition (true/false)",
            Ty::Num => "a number",
            Ty::Str => "a string",
            Ty::List(_) => "a list",
            Ty::Dyn => "an attribute",
        }
    }

    fn is(self, want: Ty) -> bool {
        self == want || self == Ty::Dyn
    }

    fn is_list(self) -> bool {
        matches!(self, Ty::List(_))
    }
}

/// A lowered expression with its type and the byte offset where it starts.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) expr: Expr,
    pub(crate) ty: Ty,
    pub(crate) start: usize,
}

/// Lowers a parsed rule into our tree.
pub(crate) fn lower(
    source: Source<'_>,
    info: &SourceInfo,
    root: &IdedExpr,
) -> Result<Node, RuleError> {
    Lowerer { source, info }.lower(root, 0)
}

struct Lowerer<'a> {
    source: Source<'a>,
    info: &'a SourceInfo,
}

impl Lowerer<'_> {
    /// Byte offset of the token that produced `id`.
    fn offset(&self, id: u64) -> usize {
        self.info
            .offset_for(id)
            .map_or(0, |(start, _)| start as usize)
    }

    fn err(&self, offset: usize, message: impl Into<String>) -> RuleError {
        self.source.error_at(offset, message)
    }

    fn lower(&self, e: &IdedExpr, depth: usize) -> Result<Node, RuleError> {
        if depth > MAX_DEPTH {
            return Err(self.err(
                self.offset(e.id),
                format!("rule is nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        let at = self.offset(e.id);
        match &e.expr {
            CelExpr::Literal(lit) => self.literal(at, lit),
            CelExpr::Ident(name) => self.ident(at, name),
            CelExpr::Select(sel) => self.select(at, sel),
            CelExpr::List(list) => self.list(at, &list.elements, depth),
            CelExpr::Call(call) => self.call(at, call, depth),
            CelExpr::Comprehension(_) => Err(self.macro_refused(at)),
            CelExpr::Map(_) | CelExpr::Struct(_) => Err(self.err(
                at,
                "maps and objects are not supported; use lists such as ['a', 'b']",
            )),
            CelExpr::Unspecified => Err(self.err(at, "incomplete expression")),
        }
    }

    fn macro_refused(&self, paren: usize) -> RuleError {
        let name = self.source.word_before(paren);
        self.err(
            self.source.name_before(paren),
            format!(
                "macro \"{name}\" is not supported (only has() is); to test a list use \
                 'x' in list or size(list)"
            ),
        )
    }

    fn literal(&self, at: usize, lit: &LiteralValue) -> Result<Node, RuleError> {
        let (expr, ty) = match lit {
            LiteralValue::Boolean(b) => (Expr::Bool(**b), Ty::Bool),
            LiteralValue::Int(i) => (Expr::Num(Num::Int(**i)), Ty::Num),
            LiteralValue::UInt(u) => {
                let i = i64::try_from(**u)
                    .map_err(|_| self.err(at, "number is too large for a rule"))?;
                (Expr::Num(Num::Int(i)), Ty::Num)
            }
            LiteralValue::Double(f) if f.is_finite() => (Expr::Num(Num::Float(**f)), Ty::Num),
            LiteralValue::Double(_) => return Err(self.err(at, "number is not finite")),
            LiteralValue::String(s) => (Expr::Str((&**s).into()), Ty::Str),
            LiteralValue::Null => {
                return Err(self.err(
                    at,
                    "null is not supported; to test whether a subject has an attribute, \
                     write has(attrs.<name>)",
                ))
            }
            LiteralValue::Bytes(_) => {
                return Err(self.err(at, "bytes literals are not supported; use 'text'"))
            }
        };
        Ok(Node {
            expr,
            ty,
            start: at,
        })
    }

    fn ident(&self, at: usize, name: &str) -> Result<Node, RuleError> {
        let (var, ty) = match name {
            "kind" => (Var::Kind, Ty::Str),
            "age" => (Var::Age, Ty::Num),
            "sex" => (Var::Sex, Ty::Str),
            "tags" => (Var::Tags, Ty::List(Elem::Str)),
            "attrs" => {
                return Err(self.err(at, "attrs is not a value by itself; write attrs.<name>"))
            }
            "params" => {
                return Err(self.err(at, "params is not a value by itself; write params.<name>"))
            }
            _ => {
                self.check_attribute_name(at, name, false)?;
                (
                    Var::Attr {
                        name: name.into(),
                        via_attrs: false,
                    },
                    Ty::Dyn,
                )
            }
        };
        Ok(Node {
            expr: Expr::Var(var),
            ty,
            start: at,
        })
    }

    /// Refuses names no subject can carry: personal fields, reserved words, and names
    /// outside `[a-z_][a-z0-9_]*`.
    fn check_attribute_name(
        &self,
        at: usize,
        name: &str,
        via_attrs: bool,
    ) -> Result<(), RuleError> {
        if PERSONAL.contains(&name) {
            return Err(self.err(
                at,
                format!(
                    "{name} is personal data and cannot be used in rules (id, name, mobile \
                     and wechat_openid are not available to rules)"
                ),
            ));
        }
        if via_attrs && crate::subject::RESERVED_NAMES.contains(&name) {
            return Err(self.err(
                at,
                format!("{name} is never an attribute; write {name} without attrs."),
            ));
        }
        let valid = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(self.err(
                at,
                format!(
                    "unknown identifier \"{name}\": identifiers are kind, age, sex, tags and \
                     attribute names (lowercase letters, digits and _)"
                ),
            ));
        }
        Ok(())
    }

    fn select(&self, at: usize, sel: &SelectExpr) -> Result<Node, RuleError> {
        let root = match &sel.operand.expr {
            CelExpr::Ident(root) => root.as_str(),
            _ => "",
        };
        let start = self.offset(sel.operand.id);
        match (root, sel.test) {
            ("attrs", true) => {
                self.check_attribute_name(start + "attrs.".len(), &sel.field, true)?;
                Ok(Node {
                    expr: Expr::Has(sel.field.as_str().into()),
                    ty: Ty::Bool,
                    start: self.source.name_before(at),
                })
            }
            ("attrs", false) => {
                self.check_attribute_name(at + 1, &sel.field, true)?;
                Ok(Node {
                    expr: Expr::Var(Var::Attr {
                        name: sel.field.as_str().into(),
                        via_attrs: true,
                    }),
                    ty: Ty::Dyn,
                    start,
                })
            }
            ("params", true) => Err(self.err(
                at,
                "has() tests an attribute: write has(attrs.<name>); a parameter always \
                 exists once defined",
            )),
            ("params", false) => {
                if !crate::subject::is_identifier(&sel.field) {
                    return Err(self.err(
                        at + 1,
                        format!(
                            "unknown parameter \"{}\": parameter names are lowercase letters, \
                             digits and _",
                            sel.field
                        ),
                    ));
                }
                Ok(Node {
                    expr: Expr::Param(Param {
                        name: sel.field.as_str().into(),
                        value: None,
                    }),
                    ty: Ty::Num,
                    start,
                })
            }
            (_, true) => Err(self.err(at, "has() tests an attribute: write has(attrs.<name>)")),
            (_, false) => Err(self.err(
                at,
                format!(
                    "fields can only be read from attrs (attrs.<name>); .{} is not supported",
                    sel.field
                ),
            )),
        }
    }

    fn list(&self, at: usize, elements: &[IdedExpr], depth: usize) -> Result<Node, RuleError> {
        let mut strs = Vec::new();
        let mut nums = Vec::new();
        for element in elements {
            let node = self.lower(element, depth + 1)?;
            match node.expr {
                Expr::Str(s) => strs.push(s),
                Expr::Num(n) => nums.push(n),
                _ => {
                    return Err(self.err(
                        node.start,
                        "list elements must be plain strings or numbers, such as ['a', 'b']",
                    ))
                }
            }
            if !strs.is_empty() && !nums.is_empty() {
                return Err(self.err(node.start, "a list mixes strings and numbers"));
            }
        }
        let (list, elem) = match (strs.is_empty(), nums.is_empty()) {
            (false, _) => (ListLit::strs(strs), Elem::Str),
            (true, false) => (ListLit::Nums(nums), Elem::Num),
            (true, true) => (ListLit::strs(Vec::new()), Elem::Any),
        };
        Ok(Node {
            expr: Expr::List(list),
            ty: Ty::List(elem),
            start: at,
        })
    }

    fn call(&self, at: usize, call: &CallExpr, depth: usize) -> Result<Node, RuleError> {
        let name = call.func_name.as_str();
        let args = &call.args;
        match (name, &call.target, args.len()) {
            (op::LOGICAL_AND | op::LOGICAL_OR, None, 2) => self.logic(at, name, args, depth),
            (op::LOGICAL_NOT, None, 1) => self.not(at, &args[0], depth),
            (op::NEGATE, None, 1) => self.negate(at, &args[0], depth),
            (op::CONDITIONAL, None, 3) => self.conditional(at, args, depth),
            (op::IN, None, 2) => self.in_list(at, &args[0], &args[1], depth),
            (op::INDEX | op::OPT_INDEX, _, _) => {
                Err(self.err(at, "indexing (x[i]) is not supported"))
            }
            (
                op::EQUALS
                | op::NOT_EQUALS
                | op::LESS
                | op::LESS_EQUALS
                | op::GREATER
                | op::GREATER_EQUALS,
                None,
                2,
            ) => self.compare(at, name, &args[0], &args[1], depth),
            (op::ADD | op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO, None, 2) => {
                self.arith(at, name, &args[0], &args[1], depth)
            }
            ("size", None, 1) => self.size(self.source.name_before(at), &args[0], depth),
            ("size", Some(target), 0) => self.size(self.offset(target.id), target, depth),
            ("startsWith" | "endsWith" | "contains", Some(target), 1) => {
                self.method(at, name, target, &args[0], depth)
            }
            (op::ALL | op::EXISTS | op::EXISTS_ONE | "existsOne" | op::MAP | op::FILTER, _, _) => {
                Err(self.macro_refused(at))
            }
            ("has", None, _) => Err(self.err(
                self.source.name_before(at),
                "has() takes one attribute: has(attrs.<name>)",
            )),
            ("size", _, _) => Err(self.err(
                self.source.name_before(at),
                "size measures one string or list: size(x) or x.size()",
            )),
            ("startsWith" | "endsWith" | "contains", _, _) => Err(self.err(
                self.source.name_before(at),
                format!("{name} is a method with one argument: x.{name}('…')"),
            )),
            _ => Err(self.err(
                self.source.name_before(at),
                format!("unknown function \"{name}\"; allowed: {ALLOWED_FUNCTIONS}"),
            )),
        }
    }

    fn logic(
        &self,
        at: usize,
        name: &str,
        args: &[IdedExpr],
        depth: usize,
    ) -> Result<Node, RuleError> {
        let symbol = if name == op::LOGICAL_AND { "&&" } else { "||" };
        let l = self.lower(&args[0], depth + 1)?;
        let r = self.lower(&args[1], depth + 1)?;
        for (side, node) in [("left", &l), ("right", &r)] {
            if !node.ty.is(Ty::Bool) {
                return Err(self.err(
                    at,
                    format!(
                        "{symbol} joins conditions; its {side} side is {}",
                        node.ty.what()
                    ),
                ));
            }
        }
        let start = l.start.min(r.start);
        let (a, b) = (Box::new(l.expr), Box::new(r.expr));
        let expr = if symbol == "&&" {
            Expr::And(a, b)
        } else {
            Expr::Or(a, b)
        };
        Ok(Node {
            expr,
            ty: Ty::Bool,
            start,
        })
    }

    fn not(&self, at: usize, arg: &IdedExpr, depth: usize) -> Result<Node, RuleError> {
        let inner = self.lower(arg, depth + 1)?;
        if !inner.ty.is(Ty::Bool) {
            return Err(self.err(
                at,
                format!("! negates a condition; this is {}", inner.ty.what()),
            ));
        }
        Ok(Node {
            expr: Expr::Not(Box::new(inner.expr)),
            ty: Ty::Bool,
            start: at,
        })
    }

    fn negate(&self, at: usize, arg: &IdedExpr, depth: usize) -> Result<Node, RuleError> {
        let inner = self.lower(arg, depth + 1)?;
        if !inner.ty.is(Ty::Num) {
            return Err(self.err(
                at,
                format!("- negates a number; this is {}", inner.ty.what()),
            ));
        }
        let expr = match inner.expr {
            Expr::Num(Num::Int(i)) => match i.checked_neg() {
                Some(n) => Expr::Num(Num::Int(n)),
                None => Expr::Num(Num::Float(-(i as f64))),
            },
            Expr::Num(Num::Float(f)) => Expr::Num(Num::Float(-f)),
            other => Expr::Neg(Box::new(other)),
        };
        Ok(Node {
            expr,
            ty: Ty::Num,
            start: at,
        })
    }

    fn conditional(&self, at: usize, args: &[IdedExpr], depth: usize) -> Result<Node, RuleError> {
        let c = self.lower(&args[0], depth + 1)?;
        let a = self.lower(&args[1], depth + 1)?;
        let b = self.lower(&args[2], depth + 1)?;
        if !c.ty.is(Ty::Bool) {
            return Err(self.err(
                at,
                format!(
                    "the part before ? must be a condition; this is {}",
                    c.ty.what()
                ),
            ));
        }
        let ty = match (a.ty, b.ty) {
            (x, y) if x == y => x,
            (Ty::Dyn, _) | (_, Ty::Dyn) => Ty::Dyn,
            (Ty::List(_), Ty::List(_)) => Ty::List(Elem::Any),
            (x, y) => {
                return Err(self.err(
                    at,
                    format!(
                        "the two branches of ?: differ: {} and {}",
                        x.what(),
                        y.what()
                    ),
                ))
            }
        };
        Ok(Node {
            start: c.start,
            expr: Expr::Cond(Box::new(c.expr), Box::new(a.expr), Box::new(b.expr)),
            ty,
        })
    }

    fn compare(
        &self,
        at: usize,
        name: &str,
        l: &IdedExpr,
        r: &IdedExpr,
        depth: usize,
    ) -> Result<Node, RuleError> {
        let cmp = match name {
            op::EQUALS => CmpOp::Eq,
            op::NOT_EQUALS => CmpOp::Ne,
            op::LESS => CmpOp::Lt,
            op::LESS_EQUALS => CmpOp::Le,
            op::GREATER => CmpOp::Gt,
            _ => CmpOp::Ge,
        };
        let l = self.lower(l, depth + 1)?;
        let r = self.lower(r, depth + 1)?;
        self.check_comparison(at, cmp, &l, &r)?;
        self.check_known_values(&l, &r)?;
        self.check_known_values(&r, &l)?;
        Ok(Node {
            start: l.start.min(r.start),
            expr: Expr::Cmp(cmp, Box::new(l.expr), Box::new(r.expr)),
            ty: Ty::Bool,
        })
    }

    fn check_comparison(&self, at: usize, cmp: CmpOp, l: &Node, r: &Node) -> Result<(), RuleError> {
        let symbol = cmp.symbol();
        if l.ty.is_list() || r.ty.is_list() {
            return Err(self.err(
                at,
                format!("{symbol} does not compare lists; use in, contains or size()"),
            ));
        }
        if !cmp.is_equality() {
            for (side, node) in [("left", l), ("right", r)] {
                if node.ty == Ty::Bool {
                    return Err(self.err(
                        at,
                        format!(
                            "{symbol} compares numbers or strings (dates are 'YYYY-MM-DD' \
                             strings); its {side} side is {}",
                            node.ty.what()
                        ),
                    ));
                }
            }
        }
        if l.ty != r.ty && l.ty != Ty::Dyn && r.ty != Ty::Dyn {
            return Err(self.err(
                at,
                format!("cannot compare {} with {}", l.ty.what(), r.ty.what()),
            ));
        }
        Ok(())
    }

    /// `kind` and `sex` have a fixed set of values: comparing them with any other
    /// string literal is a mistake.
    fn check_known_values(&self, var: &Node, other: &Node) -> Result<(), RuleError> {
        match (&var.expr, &other.expr) {
            (Expr::Var(v), Expr::Str(s)) => self.check_value(v, s, other.start),
            (Expr::Var(v), Expr::List(ListLit::Strs { items, .. })) => {
                for s in items {
                    self.check_value(v, s, other.start)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn check_value(&self, var: &Var, value: &str, at: usize) -> Result<(), RuleError> {
        let (name, allowed): (&str, &[&str]) = match var {
            Var::Kind => ("kind", &["person", "enterprise"]),
            Var::Sex => ("sex", &["male", "female"]),
            _ => return Ok(()),
        };
        if allowed.contains(&value) {
            return Ok(());
        }
        Err(self.err(
            at,
            format!(
                "{name} is '{}' or '{}'; '{value}' is never a {name}",
                allowed[0], allowed[1]
            ),
        ))
    }

    fn arith(
        &self,
        at: usize,
        name: &str,
        l: &IdedExpr,
        r: &IdedExpr,
        depth: usize,
    ) -> Result<Node, RuleError> {
        let aop = match name {
            op::ADD => ArithOp::Add,
            op::SUBSTRACT => ArithOp::Sub,
            op::MULTIPLY => ArithOp::Mul,
            op::DIVIDE => ArithOp::Div,
            _ => ArithOp::Rem,
        };
        let l = self.lower(l, depth + 1)?;
        let r = self.lower(r, depth + 1)?;
        for (side, node) in [("left", &l), ("right", &r)] {
            if !node.ty.is(Ty::Num) {
                return Err(self.err(
                    at,
                    format!(
                        "{} works on numbers; its {side} side is {}",
                        aop.symbol(),
                        node.ty.what()
                    ),
                ));
            }
        }
        if matches!(aop, ArithOp::Div | ArithOp::Rem)
            && matches!(r.expr, Expr::Num(n) if n.as_f64() == 0.0)
        {
            return Err(self.err(at, "division by zero"));
        }
        Ok(Node {
            start: l.start.min(r.start),
            expr: Expr::Arith(aop, Box::new(l.expr), Box::new(r.expr)),
            ty: Ty::Num,
        })
    }

    fn in_list(
        &self,
        at: usize,
        l: &IdedExpr,
        r: &IdedExpr,
        depth: usize,
    ) -> Result<Node, RuleError> {
        let l = self.lower(l, depth + 1)?;
        let r = self.lower(r, depth + 1)?;
        self.check_membership(at, "in", &l, &r)?;
        self.check_known_values(&l, &r)?;
        Ok(Node {
            start: l.start.min(r.start),
            expr: Expr::In(Box::new(l.expr), Box::new(r.expr)),
            ty: Ty::Bool,
        })
    }

    /// `element in list` / `list.contains(element)`.
    fn check_membership(
        &self,
        at: usize,
        what: &str,
        element: &Node,
        list: &Node,
    ) -> Result<(), RuleError> {
        let elem = match list.ty {
            Ty::List(e) => e,
            Ty::Dyn => Elem::Any,
            other => {
                return Err(self.err(
                    at,
                    format!(
                        "{what} needs a list (tags, a list attribute or ['a', 'b']); this is {}",
                        other.what()
                    ),
                ))
            }
        };
        let fits = match (element.ty, elem) {
            (Ty::Dyn, _) => true,
            (Ty::Str, Elem::Str | Elem::Any) | (Ty::Num, Elem::Num | Elem::Any) => true,
            (Ty::Str | Ty::Num, _) => false,
            (Ty::Bool | Ty::List(_), _) => {
                return Err(self.err(
                    at,
                    format!(
                        "{what} looks for a string or a number; this is {}",
                        element.ty.what()
                    ),
                ))
            }
        };
        if !fits {
            return Err(self.err(
                at,
                format!(
                    "{} is never in a list of {}",
                    element.ty.what(),
                    if elem == Elem::Str {
                        "strings"
                    } else {
                        "numbers"
                    }
                ),
            ));
        }
        Ok(())
    }

    fn size(&self, start: usize, arg: &IdedExpr, depth: usize) -> Result<Node, RuleError> {
        let inner = self.lower(arg, depth + 1)?;
        if !(inner.ty.is(Ty::Str) || inner.ty.is_list()) {
            return Err(self.err(
                start,
                format!(
                    "size() measures a string or a list; this is {}",
                    inner.ty.what()
                ),
            ));
        }
        Ok(Node {
            expr: Expr::Size(Box::new(inner.expr)),
            ty: Ty::Num,
            start,
        })
    }

    fn method(
        &self,
        at: usize,
        name: &str,
        target: &IdedExpr,
        arg: &IdedExpr,
        depth: usize,
    ) -> Result<Node, RuleError> {
        let method = match name {
            "startsWith" => Method::StartsWith,
            "endsWith" => Method::EndsWith,
            _ => Method::Contains,
        };
        let recv = self.lower(target, depth + 1)?;
        let arg = self.lower(arg, depth + 1)?;
        let name_at = self.source.name_before(at);
        if method == Method::Contains && recv.ty.is_list() {
            self.check_membership(name_at, "contains", &arg, &recv)?;
            self.check_known_values(&recv, &arg)?;
        } else {
            self.check_string_method(name_at, method, &recv, &arg)?;
        }
        Ok(Node {
            start: recv.start,
            expr: Expr::Method(method, Box::new(recv.expr), Box::new(arg.expr)),
            ty: Ty::Bool,
        })
    }
}

impl Lowerer<'_> {
    /// `s.startsWith(t)`, `s.endsWith(t)`, `s.contains(t)` on a string (or an attribute
    /// that may hold a list, for `contains`).
    fn check_string_method(
        &self,
        at: usize,
        method: Method,
        recv: &Node,
        arg: &Node,
    ) -> Result<(), RuleError> {
        let name = method.name();
        if !recv.ty.is(Ty::Str) {
            let on = if method == Method::Contains {
                "strings and lists"
            } else {
                "strings"
            };
            return Err(self.err(
                at,
                format!("{name} works on {on}; this is {}", recv.ty.what()),
            ));
        }
        let arg_ok = match (method, recv.ty) {
            (Method::Contains, Ty::Dyn) => matches!(arg.ty, Ty::Str | Ty::Num | Ty::Dyn),
            _ => arg.ty.is(Ty::Str),
        };
        if !arg_ok {
            return Err(self.err(
                at,
                format!("{name} takes a string; this is {}", arg.ty.what()),
            ));
        }
        Ok(())
    }
}
