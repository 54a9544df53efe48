//! Resolution: from a profile to the exact list of files the rootfs will hold.

// pub mod build; (enabled once elf/search land)
pub mod dpkg;
// pub mod error;
pub mod locale;
pub mod manifest;
pub mod rules;
pub mod skeleton;

pub use manifest::{Entry, Kind, Manifest, Reason};
