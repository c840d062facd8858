//! photon-quantize as a library: everything the binary does, testable without a process.
//!
//! - [`export`]: a training export (safetensors + config JSON + SentencePiece `.model`) → the
//!   float GGUF `training/export.py` writes (F16 matrices; F32 norms, biases, `dec2.start`).
//! - [`spm`]: the SentencePiece model protobuf, read by hand (pieces, scores, types, special ids).
//! - [`plan`]: presets, `--tensor-type PATTERN=TYPE` overrides, the type chosen for each tensor.
//! - [`convert`]: requantizing a GGUF into a new one, with per-tensor error statistics.
//! - [`gate`]: the end-to-end quality check against the float model (the runtime's evaluator).
//! - [`output`]: atomic output (temporary file in the output's directory, fsync, rename).
pub mod convert;
pub mod error;
pub mod export;
pub mod gate;
pub mod output;
pub mod plan;
pub mod spm;

pub use error::{QError, QResult};
