//! The vocabulary from GGUF metadata: llama.cpp's `tokenizer.ggml.*` keys (docs/format.md).
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Tokenizer, TokenizerVocab};
use crate::gguf::Gguf;
use crate::{err, Error, Result};

/// Adds the key to an error from reading its value.
fn at(key: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| err!(Model, "metadata key '{key}': {e}")
}

/// An optional token id: absent or negative (llama.cpp writes -1 for "none") is `None`.
fn opt_id(g: &Gguf<'_>, key: &str) -> Result<Option<u32>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) if v.as_i64().is_some_and(|x| x < 0) => Ok(None),
        Some(_) => g.u32(key).map(Some),
    }
}

fn opt_bool(g: &Gguf<'_>, key: &str, default: bool) -> Result<bool> {
    match g.get(key) {
        None => Ok(default),
        Some(_) => g.bool(key),
    }
}

impl TokenizerVocab {
    /// Reads a SentencePiece vocabulary (`tokenizer.ggml.model = "llama"`) from GGUF metadata.
    /// `tokens` is required; `scores` default to 0, `token_type` to normal, `add_bos_token` and
    /// `add_space_prefix` to true (llama.cpp's defaults for this model). Missing or mistyped
    /// keys are `Error::Model`, another tokenizer model `Error::Unsupported`.
    pub fn from_gguf(g: &Gguf<'_>) -> Result<TokenizerVocab> {
        const MODEL: &str = "tokenizer.ggml.model";
        const TOKENS: &str = "tokenizer.ggml.tokens";
        const SCORES: &str = "tokenizer.ggml.scores";
        const TYPES: &str = "tokenizer.ggml.token_type";
        let model = g.str(MODEL)?;
        if model != "llama" {
            return Err(err!(
                Unsupported,
                "tokenizer model '{model}': only SentencePiece vocabularies (\"llama\") are supported"
            ));
        }
        let tokens: Vec<String> = g
            .array(TOKENS)?
            .to_str_vec()
            .map_err(at(TOKENS))?
            .into_iter()
            .map(String::from)
            .collect();
        let n = tokens.len();
        let scores = match g.get(SCORES) {
            None => vec![0.0; n],
            Some(_) => g.array(SCORES)?.to_f32_vec().map_err(at(SCORES))?,
        };
        let token_types = match g.get(TYPES) {
            None => vec![1; n],
            Some(_) => g.array(TYPES)?.to_i32_vec().map_err(at(TYPES))?,
        };
        Ok(TokenizerVocab {
            tokens,
            scores,
            token_types,
            bos_id: opt_id(g, "tokenizer.ggml.bos_token_id")?,
            eos_id: opt_id(g, "tokenizer.ggml.eos_token_id")?,
            unk_id: opt_id(g, "tokenizer.ggml.unknown_token_id")?,
            pad_id: opt_id(g, "tokenizer.ggml.padding_token_id")?,
            eot_id: opt_id(g, "tokenizer.ggml.eot_token_id")?,
            add_space_prefix: opt_bool(g, "tokenizer.ggml.add_space_prefix", true)?,
            add_bos: opt_bool(g, "tokenizer.ggml.add_bos_token", true)?,
        })
    }
}

impl Tokenizer {
    /// The tokenizer of a GGUF model: [`TokenizerVocab::from_gguf`] then [`Tokenizer::new`].
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Tokenizer> {
        Tokenizer::new(TokenizerVocab::from_gguf(g)?)
    }
}
