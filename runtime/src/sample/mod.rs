//! The token sampler: repetition penalty, greedy, top-k, temperature, top-p, min-p, and a seeded
//! draw, allocation-free after construction and deterministic for a given seed on every target
//! (`libm::expf`, IEEE arithmetic in a fixed order, our own RNG).
use alloc::vec;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::{err, Result};

mod rng;

pub use rng::Rng;

/// Sampling settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 means greedy (argmax, lowest id on ties).
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches `top_p`, in (0, 1];
    /// 1 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one's probability, in [0, 1];
    /// 0 keeps all.
    pub min_p: f32,
    /// llama.cpp's repetition penalty: the logit of each distinct token among the last
    /// `repeat_last_n` is divided by it when positive, multiplied when not. 1 disables it.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the penalty looks at; 0 disables it.
    pub repeat_last_n: usize,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            seed: 0x5EED,
        }
    }
}

impl SamplerConfig {
    /// Greedy decoding without penalty.
    pub fn greedy() -> Self {
        SamplerConfig {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..Self::default()
        }
    }

    /// Plain sampling from the full softmax at temperature 1 (no truncation, no penalty).
    pub fn unrestricted(seed: u64) -> Self {
        SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            repeat_last_n: 0,
            seed,
        }
    }

    /// `Error::Input` for settings out of range.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(err!(
                Input,
                "temperature must be finite and >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(err!(Input, "top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(err!(Input, "min_p must be in [0, 1], got {}", self.min_p));
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return Err(err!(
                Input,
                "repeat_penalty must be finite and > 0, got {}",
                self.repeat_penalty
            ));
        }
        Ok(())
    }
}

/// Picks the next token from logits. All scratch is allocated in [`Sampler::new`];
/// [`Sampler::sample`] allocates nothing.
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplerConfig,
    vocab_size: usize,
    rng: Rng,
    /// Candidate ids.
    idx: Vec<u32>,
    /// Unnormalized probability of each id (valid for candidates only).
    weight: Vec<f32>,
    /// Penalty de-duplication: `stamp[id] == generation` once penalized this call.
    stamp: Vec<u32>,
    generation: u32,
}

/// Higher logit first, then lower id.
fn by_logit_desc(logits: &[f32], a: u32, b: u32) -> Ordering {
    logits[b as usize]
        .total_cmp(&logits[a as usize])
        .then(a.cmp(&b))
}

/// Argmax, lowest id among equal maxima, NaN ignored (0 if all are NaN).
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    let mut best_v = f32::NEG_INFINITY;
    let mut found = false;
    for (i, &v) in logits.iter().enumerate() {
        if !v.is_nan() && (!found || v > best_v) {
            best = i;
            best_v = v;
            found = true;
        }
    }
    best as u32
}

impl Sampler {
    /// A sampler for a vocabulary of `vocab_size` tokens (`Error::Input` for a bad config or an
    /// empty vocabulary).
    pub fn new(config: SamplerConfig, vocab_size: usize) -> Result<Sampler> {
        config.validate()?;
        if vocab_size == 0 || vocab_size > u32::MAX as usize {
            return Err(err!(
                Input,
                "sampler: vocabulary size {vocab_size} out of range"
            ));
        }
        Ok(Sampler {
            config,
            vocab_size,
            rng: Rng::new(config.seed),
            idx: Vec::with_capacity(vocab_size),
            weight: vec![0.0; vocab_size],
            stamp: vec![0; vocab_size],
            generation: 0,
        })
    }

    /// The settings.
    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// Vocabulary size the sampler was built for.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// New settings (validated); the generator restarts from the new seed. Allocates nothing.
    pub fn set_config(&mut self, config: SamplerConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        self.rng = Rng::new(config.seed);
        Ok(())
    }

    /// Restarts the generator from `seed`.
    pub fn reseed(&mut self, seed: u64) {
        self.config.seed = seed;
        self.rng = Rng::new(seed);
    }

    /// Applies the repetition penalty to `logits` in place (each distinct token among the last
    /// `repeat_last_n` of `recent` once; ids out of range are ignored).
    pub fn apply_penalty(&mut self, logits: &mut [f32], recent: &[u32]) {
        let penalty = self.config.repeat_penalty;
        if penalty == 1.0 || self.config.repeat_last_n == 0 || recent.is_empty() {
            return;
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.stamp.fill(0);
            self.generation = 1;
        }
        let start = recent.len().saturating_sub(self.config.repeat_last_n);
        for &t in &recent[start..] {
            let t = t as usize;
            if t < logits.len() && self.stamp[t] != self.generation {
                self.stamp[t] = self.generation;
                let l = &mut logits[t];
                if *l > 0.0 {
                    *l /= penalty;
                } else {
                    *l *= penalty;
                }
            }
        }
    }

    /// Samples a token from `logits` (modified in place by the repetition penalty over `recent`,
    /// the tokens so far, oldest first). Order: penalty, top-k, temperature, softmax, top-p,
    /// min-p, draw. Allocates nothing.
    ///
    /// # Panics
    /// If `logits.len()` is not the vocabulary size given to [`Sampler::new`].
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32]) -> u32 {
        assert_eq!(
            logits.len(),
            self.vocab_size,
            "sampler: logits length != vocabulary size"
        );
        self.apply_penalty(logits, recent);
        let cfg = self.config;
        if cfg.temperature == 0.0 || cfg.top_k == 1 {
            return argmax(logits);
        }

        // Candidates: every id with a number, or the top k in (logit desc, id asc) order.
        let logits: &[f32] = logits;
        self.idx.clear();
        self.idx
            .extend((0..logits.len() as u32).filter(|&i| !logits[i as usize].is_nan()));
        if self.idx.is_empty() {
            return 0;
        }
        let mut sorted = false;
        if cfg.top_k > 0 && cfg.top_k < self.idx.len() {
            self.idx
                .select_nth_unstable_by(cfg.top_k - 1, |&a, &b| by_logit_desc(logits, a, b));
            self.idx.truncate(cfg.top_k);
            self.idx
                .sort_unstable_by(|&a, &b| by_logit_desc(logits, a, b));
            sorted = true;
        }

        // Temperature and softmax (unnormalized: the maximum has weight 1).
        let mut lmax = f32::NEG_INFINITY;
        for &i in &self.idx {
            lmax = lmax.max(logits[i as usize]);
        }
        if lmax.is_infinite() {
            // Degenerate: the (first) maximum.
            let first = self
                .idx
                .iter()
                .copied()
                .min_by(|&a, &b| by_logit_desc(logits, a, b));
            return first.unwrap_or(0);
        }
        let inv_t = 1.0 / cfg.temperature;
        if inv_t.is_infinite() {
            // A subnormal temperature: greedy over the candidates.
            return self
                .idx
                .iter()
                .copied()
                .min_by(|&a, &b| by_logit_desc(logits, a, b))
                .unwrap_or(0);
        }
        let mut total = 0.0f64;
        for &i in &self.idx {
            let w = libm::expf((logits[i as usize] - lmax) * inv_t);
            self.weight[i as usize] = w;
            total += f64::from(w);
        }

        // min-p keeps a prefix of the sorted candidates, as top-p does, and neither changes the
        // other's reference (the maximum, the full softmax sum): filtering min-p first and
        // sorting only the survivors gives the same set as top-p then min-p.
        if cfg.min_p > 0.0 {
            let weight = &self.weight;
            self.idx.retain(|&i| weight[i as usize] >= cfg.min_p);
        }
        if cfg.top_p < 1.0 {
            if !sorted {
                self.idx
                    .sort_unstable_by(|&a, &b| by_logit_desc(logits, a, b));
            }
            let threshold = f64::from(cfg.top_p) * total;
            let mut cum = 0.0f64;
            let mut keep = self.idx.len();
            for (j, &i) in self.idx.iter().enumerate() {
                cum += f64::from(self.weight[i as usize]);
                if cum >= threshold {
                    keep = j + 1;
                    break;
                }
            }
            self.idx.truncate(keep);
        }

        // Draw.
        let mut kept = 0.0f64;
        for &i in &self.idx {
            kept += f64::from(self.weight[i as usize]);
        }
        let r = self.rng.next_f64() * kept;
        let mut acc = 0.0f64;
        for &i in &self.idx {
            acc += f64::from(self.weight[i as usize]);
            if r < acc {
                return i;
            }
        }
        *self.idx.last().unwrap_or(&0)
    }
}
