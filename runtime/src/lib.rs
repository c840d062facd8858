//! photon-runtime: the `no_std` + `alloc` core of photon.
//!
//! Layout (each folder one layer of the architecture):
//! - [`gguf`]: the GGUF v3 container, read zero-copy from a byte slice, and a writer.
//! - [`quant`]: tensor element types and ggml's block formats, with reference quantizers.
//! - [`kernels`]: weight matrix × vectors for every tensor type, scalar reference plus SIMD
//!   versions chosen once at run time.
//! - [`ops`]: the float operations the models need (rmsnorm, RoPE, softmax, SwiGLU, attention).
//! - [`tokenizer`], [`sample`]: SentencePiece BPE and the token sampler.
//! - [`model`], [`cache`]: the PHOTON and LLaMA models and the fixed-size arena of their caches.
#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod error;
pub mod gguf;
pub mod kernels;
pub mod ops;
pub mod quant;

pub mod cache;
pub mod model;
pub mod sample;
pub mod tokenizer;

pub use error::{Error, Result};
pub use model::{EngineOptions, MemoryReport, Mode, Model, ModelKind, Session};
