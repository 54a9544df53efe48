//! Profiles: TOML files that describe a lab environment.
//!
//! `load` reads one (a ready profile by name, or a file), follows `extends`,
//! checks every value and returns the merged `Profile`; a bad profile gives one
//! `ProfileError` at `file:line:column` with a fix.

mod beneath;
mod diagnose;
mod error;
mod load;
mod merge;
mod raw;
mod ready;
mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use error::ProfileError;
pub use load::load;
pub use ready::{ReadyProfile, ready};
pub use types::*;
