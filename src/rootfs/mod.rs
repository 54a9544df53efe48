//! The rootfs: a manifest made real in the content-addressed store.

pub mod blobs;
pub mod digest;
pub mod hashcache;
pub mod lock;
pub mod materialize;
pub mod record;
pub mod source;
pub mod store;
pub mod verify;

pub use store::{Built, Store};
