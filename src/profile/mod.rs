//! Profiles: TOML files that describe a lab environment.

mod types;
pub use types::*;
