//! The narrator of `sandbox explain`: texts per language, rendering of steps
//! and observations, the build's story, and the equivalent commands.

pub mod catalog;
pub mod equivalents;
pub mod render;
pub mod story;

pub use catalog::{Catalog, Lang};
pub use render::Narrator;
