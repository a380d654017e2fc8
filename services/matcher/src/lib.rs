//! The matching engine: who a rule selects over the whole population, in milliseconds.
//!
//! Subjects get dense `u32` ids in a [`PopulationIndex`]: tags, kinds, sexes and every
//! string value of an attribute are roaring bitmaps; numbers are chunked `f64` columns
//! with presence bitmaps, their integers also bit-sliced; birth dates (for `age`) a
//! chunked `yyyymmdd` column and bit-sliced; list attributes a bitmap per element and
//! one per length. A [`Plan`] is compiled once from a checked
//! [`domain::Rule`] and run over the index as bitmap algebra plus branch-free column
//! scans, 65,536 ids at a time, on every core (rayon, one task per id-range shard).
//!
//! Three-valued logic is kept exactly: each node yields the subjects for which it is
//! *true* and those for which it is *unknown* (false is the rest of its scope), and the
//! right side of `&&`/`||` is only evaluated where the left side leaves the answer open.
//! What the planner cannot vectorise (comparing two attributes with each other, say) is
//! evaluated per subject with the domain's own interpreter over the rows of the
//! candidate set; [`Plan::description`] says where. `tests/agreement.rs` checks, over
//! thousands of random rules and subjects, that a plan and [`domain::Rule::matches`]
//! always agree.
//!
//! # Layout
//! - [`chunk`]: chunk geometry, chunked columns, dense words ↔ roaring.
//! - [`attr`]: one attribute's facets (number, string, boolean, list) over all ids.
//! - [`index`]: [`PopulationIndex`]: building, upserts, tags, reading one row back.
//! - [`keys`]: ids ↔ keys (resident IDs packed into a `u64`, a table of ids back).
//! - [`slices`]: bit-sliced integer columns (numbers and birth dates).
//! - [`tri`]: three-valued sets (true / unknown within a scope).
//! - [`plan`]: compiling a rule into a [`Plan`] and running it.
//! - [`audience`]: an audience bitmap with its count, breakdowns and a sample.

pub mod attr;
pub mod audience;
pub mod chunk;
pub mod index;
pub mod keys;
pub mod plan;
pub mod slices;
pub mod tri;

pub use audience::Audience;
pub use index::PopulationIndex;
pub use plan::Plan;
pub use roaring::RoaringBitmap;
