//! `photon`: run PHOTON hierarchical language models on small devices.
//!
//! This facade re-exports [`photon_runtime`], the `no_std` core, with its `std` feature on.
#![forbid(unsafe_code)]
pub use photon_runtime::*;
