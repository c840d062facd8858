//! The PHOTON and vanilla LLaMA models: loading ([`Model`]) and running ([`Session`]).
//!
//! - [`config`]: hyper-parameters from GGUF metadata, validated.
//! - `weights`: every tensor checked (presence, shape, type); matrices stay in the file's bytes.
//! - `stack`: the one LLaMA stack both models use, several rows per weight pass.
//! - `photon`, `llama`: the two models' state machines on top of it.
//! - [`session`]: the arena-backed per-sequence state and the public decode API.
//! - [`eval`]: teacher-forced evaluation (perplexity, KL, top-1 agreement).
pub mod config;
pub mod eval;
mod llama;
mod photon;
pub mod session;
mod source;
mod stack;
#[doc(hidden)]
pub mod testing;
mod weights;

pub use config::{Config, ModelKind};
pub use session::{EngineOptions, MemoryReport, Mode, Session, SharedPrefix};

pub use crate::cache::CacheType;
use crate::gguf::Gguf;
use crate::Result;
use alloc::vec::Vec;
use weights::Weights;

/// The best kernels for this CPU on `threads` threads (the one place sessions and the evaluator
/// get their kernels).
pub(crate) fn kernels(threads: usize) -> crate::kernels::Kernels {
    use crate::kernels::{Isa, Kernels};
    Kernels::with_isa(Isa::best())
        .unwrap_or_else(Kernels::scalar)
        .with_threads(threads.max(1))
}

enum Owner {
    #[cfg(feature = "std")]
    Mapped(crate::gguf::MappedFile),
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Owner {
    fn bytes(&self) -> &[u8] {
        match self {
            #[cfg(feature = "std")]
            Owner::Mapped(m) => m.bytes(),
            Owner::Static(b) => b,
            Owner::Owned(b) => b,
        }
    }
}

/// A loaded model: the file's bytes (memory-mapped, static or owned), its configuration and
/// weight table. Matrices are read in place, never copied.
pub struct Model {
    owner: Owner,
    cfg: Config,
    pub(crate) w: Weights,
    weight_bytes: usize,
    pub(crate) inv_freq: Vec<f32>,
}

impl core::fmt::Debug for Model {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Model")
            .field("cfg", &self.cfg)
            .field("weight_bytes", &self.weight_bytes)
            .finish()
    }
}

impl Model {
    /// Memory-maps a GGUF file (zero copy).
    #[cfg(feature = "std")]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Model> {
        Model::load(Owner::Mapped(crate::gguf::MappedFile::open(path)?))
    }

    /// A model embedded in the program (bare metal).
    pub fn from_static(bytes: &'static [u8]) -> Result<Model> {
        Model::load(Owner::Static(bytes))
    }

    /// A model held in an owned buffer (tests, in-memory conversions).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Model> {
        Model::load(Owner::Owned(bytes))
    }

    fn load(owner: Owner) -> Result<Model> {
        let bytes = owner.bytes();
        let g = Gguf::parse(bytes)?;
        let cfg = Config::from_source(&g)?;
        let (w, weight_bytes) = weights::load(&cfg, &g, bytes)?;
        let inv_freq = stack::inv_freq(cfg.rope_base, cfg.head_dim);
        Ok(Model {
            owner,
            cfg,
            w,
            weight_bytes,
            inv_freq,
        })
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.owner.bytes()
    }

    pub fn kind(&self) -> ModelKind {
        self.cfg.kind
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn vocab_size(&self) -> usize {
        self.cfg.vocab
    }

    /// Bytes of tensor data the model reads (mapped, not copied).
    pub fn weight_bytes(&self) -> usize {
        self.weight_bytes
    }

    /// The file's metadata (tokenizer, chat strings...).
    pub fn gguf(&self) -> Gguf<'_> {
        Gguf::parse(self.bytes()).expect("the file parsed when the model was loaded")
    }

    /// Smallest arena budget (bytes) a [`Session`] runs with.
    pub fn min_memory(&self) -> usize {
        self.min_memory_with(CacheType::F32)
    }

    /// [`Model::min_memory`] for caches of element type `cache`.
    pub fn min_memory_with(&self, cache: CacheType) -> usize {
        session::Plan::with_prefix(self, 0, 0, cache).min_bytes
    }

    /// Arena bytes beyond which a session gains nothing (the coarse cache spans the trained
    /// context).
    pub fn max_useful_memory(&self) -> usize {
        self.max_useful_memory_with(CacheType::F32)
    }

    /// [`Model::max_useful_memory`] for caches of element type `cache`.
    pub fn max_useful_memory_with(&self, cache: CacheType) -> usize {
        // The layout's estimate of its fixed part is conservative: leave room for it.
        let p = session::Plan::with_prefix(self, usize::MAX / 2, 0, cache);
        p.arena_bytes + 2 * p.per_pos_bytes + (16 << 10)
    }

    /// Smallest arena budget whose coarse cache (F2; vanilla: the KV cache) holds `positions`
    /// positions per layer (clamped to the trained range).
    pub fn budget_for_coarse(&self, positions: usize) -> usize {
        self.budget_for_coarse_with(positions, CacheType::F32)
    }

    /// [`Model::budget_for_coarse`] for caches of element type `cache`.
    pub fn budget_for_coarse_with(&self, positions: usize, cache: CacheType) -> usize {
        let plan = |b: usize| session::Plan::with_prefix(self, b, 0, cache);
        let (mut lo, mut hi) = (
            self.min_memory_with(cache),
            self.max_useful_memory_with(cache)
                .max(self.min_memory_with(cache)),
        );
        if plan(lo).coarse_cap() >= positions {
            return lo;
        }
        while lo + 64 < hi {
            let mid = lo + (hi - lo) / 2;
            if plan(mid).coarse_cap() >= positions {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }

    /// Trained sequence length T in tokens.
    pub fn trained_context(&self) -> usize {
        self.cfg.context
    }
}
