//! Rules compiled into bulk plans.
//!
//! A [`Plan`] mirrors the rule's tree, each node with the cheapest exact strategy:
//! bitmaps for kinds, sexes, tags, presence, booleans and every string predicate (the
//! predicate is tested once per distinct value, and the matching values' bitmaps are
//! unioned, and `size()` against a literal by list length); ranges of integers on
//! bit-sliced columns (the bounds of one column in an `&&` chain merged into one range,
//! `x / 12 >= 5` rewritten as `x >= 60`), or id by id where few ids are left;
//! arithmetic fused into one pass per block of ids (id by id in sparse blocks);
//! `flag == true` read as `flag`; and, for what has no
//! vectorised form, the domain interpreter per subject over the candidates that reach
//! that node. Running a plan splits the ids into shards of 262,144 and runs the tree
//! on each shard in parallel.
//!
//! # Layout
//! - `node`: the plan's node types and their description.
//! - `compile`: a checked rule's tree to plan nodes.
//! - `strings`: string predicates over an attribute's dictionary.
//! - `numeric`: numeric expressions evaluated a chunk at a time.
//! - `run`: running a plan over an index, shard by shard.

mod compile;
mod node;
mod numeric;
mod run;
mod strings;

use crate::index::PopulationIndex;
use chrono::NaiveDate;
use domain::Rule;
use roaring::RoaringBitmap;

pub use node::{BoolNode, NumNode, StrPred, StrSrc};

/// A rule (or a conjunction of rules) compiled for bulk evaluation.
#[derive(Debug, Clone)]
pub struct Plan {
    root: BoolNode,
}

impl Plan {
    /// Compiles a condition. A number rule matches nothing, as in [`Rule::matches`].
    pub fn compile(rule: &Rule) -> Self {
        if rule.is_number() {
            return Self {
                root: BoolNode::Const(Some(false)),
            };
        }
        Self {
            root: compile::bool_node(rule.expr()),
        }
    }

    /// `a && b && …` of several rules (a policy's eligibility and a campaign's filter).
    pub fn all_of<'r>(rules: impl IntoIterator<Item = &'r Rule>) -> Self {
        let mut root: Option<BoolNode> = None;
        for r in rules {
            let next = Self::compile(r).root;
            root = Some(match root {
                None => next,
                Some(prev) => BoolNode::And(Box::new(prev), Box::new(next)),
            });
        }
        Self {
            root: root.unwrap_or(BoolNode::Const(Some(true))),
        }
    }

    /// How each part of the plan is evaluated, e.g.
    /// `and(bitmap kind == 'person', scan(age >= 16))`.
    pub fn description(&self) -> String {
        self.root.describe()
    }

    /// How many parts fall back to per-subject evaluation.
    pub fn fallbacks(&self) -> usize {
        self.root.fallbacks()
    }

    /// The ids for which the plan holds (is true) on `today`.
    pub fn run(&self, index: &PopulationIndex, today: NaiveDate) -> RoaringBitmap {
        run::run(&self.root, index, today, None)
    }

    /// As [`Plan::run`], within `candidates` only.
    pub fn run_within(
        &self,
        index: &PopulationIndex,
        today: NaiveDate,
        candidates: &RoaringBitmap,
    ) -> RoaringBitmap {
        run::run(&self.root, index, today, Some(candidates))
    }
}
