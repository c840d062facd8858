//! The end-to-end quality check: the quantized file against its float source on an evaluation
//! text, through the runtime's evaluator (`photon_runtime::model::eval::compare`, the one
//! `photon-perplexity` uses): PHOTON in HierGen semantics (teacher forcing on the encoder's
//! latents), vanilla as is.
//!
//! The text is tokenized as the validation split was made (`training/prepare.py`): paragraphs
//! (runs of lines separated by blank lines) are encoded one by one with the model's tokenizer
//! (dummy prefix, no BOS) and each is followed by EOS. The stream is scored in consecutive
//! windows of the trained context length (fewer tokens if the text is shorter: the largest whole
//! number of meta-contexts it holds), tokens 1…T−1 of each window.
use crate::{QError, QResult};
use photon_runtime::model::eval::{self, Agreement, Latents};
use photon_runtime::tokenizer::Tokenizer;
use photon_runtime::{Model, ModelKind};

/// Splits text into paragraphs exactly as `training/prepare.py` does: at runs of blank lines
/// (lines empty or only spaces/tabs), leading/trailing newlines stripped, empty ones dropped.
pub fn paragraphs(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.split('\n').collect();
    // Byte offsets of line starts.
    let mut starts = Vec::with_capacity(lines.len());
    let mut off = 0;
    for l in &lines {
        starts.push(off);
        off += l.len() + 1;
    }
    let blank = |l: &str| l.bytes().all(|b| b == b' ' || b == b'\t');
    // The regex `\n(?:[ \t]*\n)+` separates at a newline followed by one or more blank lines
    // each ended by a newline: lines i+1..j blank (j > i+1) with line j existing.
    let mut para_start = 0usize;
    let mut i = 0usize;
    while i < lines.len() {
        let mut j = i + 1;
        while j < lines.len() && blank(lines[j]) && j + 1 < lines.len() {
            j += 1;
        }
        if j > i + 1 {
            let end = starts[i] + lines[i].len();
            out.push(&text[para_start..end]);
            para_start = starts[j];
            i = j;
        } else {
            i += 1;
        }
    }
    out.push(&text[para_start..]);
    out.into_iter()
        .map(|p| p.trim_matches('\n'))
        .filter(|p| !p.trim().is_empty())
        .collect()
}

/// The evaluation token stream of `text` (paragraphs, each followed by EOS).
pub fn tokenize(tok: &Tokenizer, text: &str) -> QResult<Vec<u32>> {
    let eos = tok
        .eos()
        .ok_or_else(|| QError::Input("the model's tokenizer has no EOS token".into()))?;
    let mut out = Vec::new();
    for p in paragraphs(text) {
        tok.encode(p, &mut out)?;
        out.push(eos);
    }
    Ok(out)
}

/// Window length for a stream of `n` tokens: the trained context, or, for a shorter text, the
/// largest whole number of meta-contexts (PHOTON) that fits. Error if not even one.
pub fn window_for(model: &Model, n: usize) -> QResult<usize> {
    let unit = match model.kind() {
        ModelKind::Photon => model.config().meta_tokens(),
        ModelKind::Llama => 1,
    };
    let w = eval::default_window(model, n);
    if w < unit.max(2) {
        return Err(QError::Input(format!(
            "the evaluation text gives {n} tokens, too few for one window"
        )));
    }
    Ok(w)
}

/// Result of the end-to-end check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    pub windows: usize,
    pub window: usize,
    pub agreement: Agreement,
}

impl Quality {
    /// Perplexity increase of the model over the reference, in percent.
    pub fn ppl_increase(&self) -> f64 {
        (self.agreement.ppl_model / self.agreement.ppl_reference - 1.0) * 100.0
    }
}

/// Runs the comparison window by window (`progress` after each) and combines the windows
/// exactly (positions-weighted means, summed log-likelihoods).
pub fn evaluate(
    reference: &Model,
    model: &Model,
    stream: &[u32],
    window: usize,
    max_windows: usize,
    threads: usize,
    progress: &mut dyn FnMut(),
) -> QResult<Quality> {
    let mut n = stream.len() / window;
    if max_windows > 0 {
        n = n.min(max_windows);
    }
    let (mut pos, mut kl, mut klmax, mut top1, mut nll_r, mut nll_m) =
        (0usize, 0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for w in stream.chunks_exact(window).take(n) {
        let a = eval::compare(reference, model, w, window, Latents::Encoder, 1, threads)?;
        let p = a.positions as f64;
        pos += a.positions;
        kl += a.kl_mean * p;
        klmax = klmax.max(a.kl_max);
        top1 += a.top1 * p;
        nll_r += a.ppl_reference.ln() * p;
        nll_m += a.ppl_model.ln() * p;
        progress();
    }
    if pos == 0 {
        return Err(QError::Input("no position to evaluate".into()));
    }
    let p = pos as f64;
    Ok(Quality {
        windows: n,
        window,
        agreement: Agreement {
            positions: pos,
            kl_mean: kl / p,
            kl_max: klmax,
            top1: top1 / p,
            ppl_reference: (nll_r / p).exp(),
            ppl_model: (nll_m / p).exp(),
        },
    })
}

/// Thresholds of the gate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Largest mean KL(float ‖ quantized) in nats; `None` = not checked.
    pub max_kl: Option<f64>,
    /// Largest perplexity increase in percent.
    pub max_ppl_increase: f64,
}

/// `Err(QError::Gate)` naming every threshold exceeded.
pub fn check(q: &Quality, t: &Thresholds) -> QResult<()> {
    let mut fails = Vec::new();
    let inc = q.ppl_increase();
    if inc.is_nan() || inc > t.max_ppl_increase {
        fails.push(format!(
            "perplexity +{inc:.3}% exceeds --max-ppl-increase {}%",
            t.max_ppl_increase
        ));
    }
    if let Some(k) = t.max_kl {
        if q.agreement.kl_mean.is_nan() || q.agreement.kl_mean > k {
            fails.push(format!(
                "mean KL {:.6} exceeds --max-kl {k}",
                q.agreement.kl_mean
            ));
        }
    }
    if fails.is_empty() {
        Ok(())
    } else {
        Err(QError::Gate(fails.join("; ")))
    }
}
