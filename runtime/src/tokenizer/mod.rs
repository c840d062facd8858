//! SentencePiece BPE tokenizer with byte fallback (llama.cpp's "llama"/SPM vocabulary).
//!
//! Encoding follows `sentencepiece`'s BPE model for identity normalization: spaces become `▁`
//! (U+2581, runs kept), a dummy `▁` is prepended to non-empty text when `add_space_prefix`, the
//! text is split into characters (user-defined pieces are matched whole and never merged), and
//! adjacent symbols are merged greedily, highest score of the merged piece first (ties: leftmost),
//! with a priority queue over a linked list of symbols (O(n log n)). Only normal, user-defined and
//! unused pieces take part (unused ones are split back into the pieces they were merged from, as
//! sentencepiece does); a symbol left outside the vocabulary becomes the byte tokens `<0xNN>` of
//! its UTF-8 bytes (or the unknown token when the vocabulary has no byte tokens). Control tokens
//! (`<s>`, `<|user|>`, ...) are never produced from text; [`Tokenizer::split_special`] finds their
//! names in text for callers (chat templates) that want them.
//!
//! Decoding ([`TokenDecoder`]) is streaming and follows `sentencepiece`'s `Decode`.
//!
//! From GGUF (docs/format.md), [`TokenizerVocab`]'s fields are `tokenizer.ggml.tokens`,
//! `.scores`, `.token_type`, `.bos_token_id`, `.eos_token_id`, `.unknown_token_id`,
//! `.padding_token_id`, `.eot_token_id`, `.add_space_prefix` (sentencepiece's default when
//! absent: true) and `.add_bos_token`, with `tokenizer.ggml.model = "llama"`.
//!
//! Differences from `sentencepiece`, all outside what a trained model contains: a control,
//! unknown or byte piece that is a single character is never produced from text (sentencepiece
//! would emit its id); duplicated piece texts keep the first id (sentencepiece refuses the model);
//! byte fallback is on exactly when the vocabulary has byte pieces (GGUF has no separate flag).
use alloc::collections::{BTreeMap, BinaryHeap};
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use crate::{err, Result};

mod decode;
mod gguf;
mod map;

pub use decode::TokenDecoder;
use map::PieceMap;

/// The whitespace symbol `▁` (U+2581).
pub const SPACE_SYMBOL: &str = "\u{2581}";

/// SentencePiece piece types, numbered as in GGUF's `tokenizer.ggml.token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TokenType {
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

impl TokenType {
    /// The type for a GGUF `token_type` value, `None` when it is not 1..=6.
    pub fn from_i32(v: i32) -> Option<TokenType> {
        Some(match v {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }
}

/// Everything a SentencePiece vocabulary carries (GGUF's `tokenizer.ggml.*` keys).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenizerVocab {
    /// Piece text of each id (with `▁` for spaces; byte tokens spelled `<0xNN>`).
    pub tokens: Vec<String>,
    /// Score of each piece: BPE merges the highest-scoring piece first.
    pub scores: Vec<f32>,
    /// Type of each piece: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    pub token_types: Vec<i32>,
    pub bos_id: Option<u32>,
    pub eos_id: Option<u32>,
    pub unk_id: Option<u32>,
    pub pad_id: Option<u32>,
    /// End of turn (`<|end|>`).
    pub eot_id: Option<u32>,
    /// SentencePiece's dummy prefix: prepend `▁` to non-empty text.
    pub add_space_prefix: bool,
    /// Whether a sequence starts with BOS (the caller adds it; [`Tokenizer::encode`] does not).
    pub add_bos: bool,
}

/// A piece of text split at control-token names, see [`Tokenizer::split_special`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fragment<'a> {
    /// Ordinary text, to encode.
    Text(&'a str),
    /// A control token whose name appeared in the text.
    Token(u32),
}

/// A SentencePiece BPE tokenizer. Immutable after construction; `encode` and decoding take `&self`.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<TokenType>,
    /// Normal, user-defined and unused pieces: the ones BPE may produce.
    pieces: PieceMap,
    /// Every piece (first id of a duplicated text).
    all: PieceMap,
    /// Byte value → id of `<0xNN>`, when the vocabulary has byte tokens.
    byte_ids: Option<[u32; 256]>,
    /// Id → byte value of byte tokens (`u16::MAX` for other tokens).
    byte_of: Vec<u16>,
    /// User-defined pieces, longest first (matched whole before merging).
    user_defined: Vec<u32>,
    /// Control tokens with a non-empty name, longest first.
    controls: Vec<u32>,
    has_unused: bool,
    /// Merges never cross the position before a `▁`: encode word by word.
    split_at_space: bool,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    eot: Option<u32>,
    add_space_prefix: bool,
    add_bos: bool,
}

/// Parses `<0xNN>` (two hex digits, either case).
fn parse_byte_piece(s: &str) -> Option<u8> {
    let hex = s.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

impl Tokenizer {
    /// Builds a tokenizer, validating the vocabulary (`Error::Model` on any inconsistency).
    pub fn new(vocab: TokenizerVocab) -> Result<Tokenizer> {
        let TokenizerVocab {
            tokens,
            scores,
            token_types,
            bos_id,
            eos_id,
            unk_id,
            pad_id,
            eot_id,
            add_space_prefix,
            add_bos,
        } = vocab;
        let n = tokens.len();
        if n == 0 {
            return Err(err!(Model, "tokenizer: empty vocabulary"));
        }
        if n >= u32::MAX as usize {
            return Err(err!(
                Model,
                "tokenizer: vocabulary of {n} tokens is too large"
            ));
        }
        if scores.len() != n {
            return Err(err!(
                Model,
                "tokenizer: {n} tokens but {} scores",
                scores.len()
            ));
        }
        if token_types.len() != n {
            return Err(err!(
                Model,
                "tokenizer: {n} tokens but {} token types",
                token_types.len()
            ));
        }
        if let Some(i) = scores.iter().position(|s| s.is_nan()) {
            return Err(err!(Model, "tokenizer: score of token {i} is NaN"));
        }
        for (name, id) in [
            ("bos", bos_id),
            ("eos", eos_id),
            ("unknown", unk_id),
            ("padding", pad_id),
            ("eot", eot_id),
        ] {
            if let Some(id) = id {
                if id as usize >= n {
                    return Err(err!(
                        Model,
                        "tokenizer: {name} token id {id} out of range (vocabulary of {n})"
                    ));
                }
            }
        }
        let mut types = Vec::with_capacity(n);
        for (i, &t) in token_types.iter().enumerate() {
            let t = TokenType::from_i32(t).ok_or_else(|| {
                err!(
                    Model,
                    "tokenizer: token {i} ({:?}) has unknown type {t}",
                    tokens[i]
                )
            })?;
            types.push(t);
        }

        let mut pieces = PieceMap::with_capacity(n);
        let mut all = PieceMap::with_capacity(n);
        let mut byte_of = alloc::vec![u16::MAX; n];
        let mut byte_ids = [u32::MAX; 256];
        let mut n_byte_tokens = 0usize;
        let mut user_defined = Vec::new();
        let mut controls = Vec::new();
        let mut has_unused = false;
        for id in 0..n as u32 {
            let i = id as usize;
            all.insert(&tokens, id);
            match types[i] {
                TokenType::Normal => pieces.insert(&tokens, id),
                TokenType::UserDefined => {
                    pieces.insert(&tokens, id);
                    if !tokens[i].is_empty() {
                        user_defined.push(id);
                    }
                }
                TokenType::Unused => {
                    pieces.insert(&tokens, id);
                    has_unused = true;
                }
                TokenType::Byte => {
                    let b = parse_byte_piece(&tokens[i]).ok_or_else(|| {
                        err!(
                            Model,
                            "tokenizer: byte token {i} is {:?}, not <0xNN>",
                            tokens[i]
                        )
                    })?;
                    byte_of[i] = u16::from(b);
                    if byte_ids[b as usize] == u32::MAX {
                        byte_ids[b as usize] = id;
                        n_byte_tokens += 1;
                    }
                }
                TokenType::Control => {
                    if !tokens[i].is_empty() {
                        controls.push(id);
                    }
                }
                TokenType::Unknown => {}
            }
        }
        let byte_ids = if n_byte_tokens == 0 {
            if unk_id.is_none() {
                return Err(err!(
                    Model,
                    "tokenizer: no byte tokens <0xNN> and no unknown token: text outside the \
                     vocabulary could not be encoded"
                ));
            }
            None
        } else if n_byte_tokens < 256 {
            let missing = byte_ids.iter().position(|&b| b == u32::MAX).unwrap_or(0);
            return Err(err!(
                Model,
                "tokenizer: byte fallback needs all 256 byte tokens, {n_byte_tokens} present \
                 (<0x{missing:02X}> missing)"
            ));
        } else {
            Some(byte_ids)
        };
        user_defined.sort_by(|&a, &b| tokens[b as usize].len().cmp(&tokens[a as usize].len()));
        controls.sort_by(|&a, &b| tokens[b as usize].len().cmp(&tokens[a as usize].len()));
        let split_at_space = !has_unused
            && (0..n).all(|i| {
                let t = tokens[i].as_str();
                match types[i] {
                    TokenType::Normal | TokenType::UserDefined | TokenType::Unused => t
                        .char_indices()
                        .nth(1)
                        .is_none_or(|(j, _)| !t[j..].contains(SPACE_SYMBOL)),
                    _ => true,
                }
            });
        Ok(Tokenizer {
            split_at_space,
            tokens,
            scores,
            types,
            pieces,
            all,
            byte_ids,
            byte_of,
            user_defined,
            controls,
            has_unused,
            bos: bos_id,
            eos: eos_id,
            unk: unk_id,
            pad: pad_id,
            eot: eot_id,
            add_space_prefix,
            add_bos,
        })
    }

    /// Number of tokens.
    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }
    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    /// End-of-turn token (`<|end|>`).
    pub fn eot(&self) -> Option<u32> {
        self.eot
    }
    /// Unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }
    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }
    /// Whether sequences start with BOS.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }
    /// Whether [`encode`](Self::encode) prepends the dummy-prefix `▁`.
    pub fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }
    /// Whether byte fallback (`<0xNN>` tokens) is available.
    pub fn has_byte_fallback(&self) -> bool {
        self.byte_ids.is_some()
    }
    /// True for EOS and EOT: tokens that end generation.
    pub fn is_end(&self, id: u32) -> bool {
        Some(id) == self.eos || Some(id) == self.eot
    }
    /// Piece text of `id`.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }
    /// Type of `id`.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }
    /// Score of `id`.
    pub fn score(&self, id: u32) -> Option<f32> {
        self.scores.get(id as usize).copied()
    }
    /// The id of the token spelled exactly `piece` (any type; control tokens by name, such as
    /// `<|user|>`).
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.all.get(&self.tokens, piece.as_bytes())
    }

    /// Encodes `text` like `sentencepiece` (`sp.encode(text)`): dummy prefix when
    /// `add_space_prefix` and `text` is non-empty, no BOS/EOS. Appends to `out`.
    pub fn encode(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        self.encode_with_prefix(text, self.add_space_prefix && !text.is_empty(), out)
    }

    /// Encodes `text` without the dummy prefix: for text that continues a sequence.
    pub fn encode_continuation(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        self.encode_with_prefix(text, false, out)
    }

    /// Encodes `text`, prepending `▁` when `space_prefix` (even to empty text).
    pub fn encode_with_prefix(
        &self,
        text: &str,
        space_prefix: bool,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        let mut norm = String::with_capacity(text.len() + text.len() / 2 + 3);
        if space_prefix {
            norm.push_str(SPACE_SYMBOL);
        }
        for (i, part) in text.split(' ').enumerate() {
            if i > 0 {
                norm.push_str(SPACE_SYMBOL);
            }
            norm.push_str(part);
        }
        self.encode_normalized(&norm, out)
    }

    /// Encodes text that may name control tokens (a chat prefix such as `"<|user|>"`): each
    /// control-token name becomes that token, every other stretch of text is encoded on its own
    /// with [`encode`](Self::encode) (dummy prefix included), as the training data and
    /// llama.cpp's special-token parsing do.
    pub fn encode_special(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        for f in self.split_special(text) {
            match f {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(t) => self.encode(t, out)?,
            }
        }
        Ok(())
    }

    /// Splits `text` at the names of control tokens (longest match first), for chat templates.
    pub fn split_special<'a>(&'a self, text: &'a str) -> impl Iterator<Item = Fragment<'a>> + 'a {
        SpecialSplit {
            tok: self,
            rest: text,
            pending: None,
        }
    }

    fn match_control(&self, s: &str) -> Option<u32> {
        self.controls
            .iter()
            .copied()
            .find(|&id| s.starts_with(self.tokens[id as usize].as_str()))
    }

    /// BPE over already-normalized text (spaces already `▁`).
    ///
    /// When no mergeable piece has a `▁` after its first character (and none is unused), no
    /// merge can cross the position before a `▁`, so each `▁`-started word is merged on its own:
    /// the same result, with small cache-resident queues.
    fn encode_normalized(&self, norm: &str, out: &mut Vec<u32>) -> Result<()> {
        if norm.is_empty() {
            return Ok(());
        }
        if norm.len() > i32::MAX as usize {
            return Err(err!(
                Input,
                "text of {} bytes is too long to encode",
                norm.len()
            ));
        }
        let mut scratch = Scratch {
            syms: Vec::new(),
            agenda: BinaryHeap::new(),
        };
        let mut prev_unk = false;
        if self.split_at_space {
            let mut start = 0;
            for (i, _) in norm.match_indices(SPACE_SYMBOL) {
                if i > start {
                    prev_unk = self.bpe(norm, start, i, &mut scratch, prev_unk, out)?;
                    start = i;
                }
            }
            self.bpe(norm, start, norm.len(), &mut scratch, prev_unk, out)?;
        } else {
            self.bpe(norm, 0, norm.len(), &mut scratch, prev_unk, out)?;
        }
        Ok(())
    }

    /// Sentencepiece's BPE over `norm[from..to]`: returns whether the output ends in an
    /// unknown-token run (see [`Self::emit`]).
    fn bpe(
        &self,
        norm: &str,
        from: usize,
        to: usize,
        scratch: &mut Scratch,
        mut prev_unk: bool,
        out: &mut Vec<u32>,
    ) -> Result<bool> {
        let bytes = norm.as_bytes();
        let Scratch { syms, agenda } = scratch;
        syms.clear();
        agenda.clear();
        // Initial symbols: user-defined pieces (frozen) or single characters.
        let mut pos = from;
        while pos < to {
            let rest = &norm[pos..to];
            let mut len = 0usize;
            let mut freeze = false;
            for &id in &self.user_defined {
                let p = self.tokens[id as usize].as_str();
                if rest.starts_with(p) {
                    len = p.len();
                    freeze = true;
                    break;
                }
            }
            if len == 0 {
                len = rest.chars().next().map_or(1, char::len_utf8);
            }
            let idx = syms.len() as i32;
            syms.push(Symbol {
                start: pos as u32,
                len: len as u32,
                prev: idx - 1,
                next: if pos + len < to { idx + 1 } else { -1 },
                freeze,
            });
            pos += len;
        }

        // Resegmentation of merged unused pieces (only when the vocabulary has some).
        let mut rev_merge: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        let mut try_pair = |syms: &[Symbol], agenda: &mut BinaryHeap<Pair>, l: i32, r: i32| {
            if l < 0 || r < 0 {
                return;
            }
            let (a, b) = (&syms[l as usize], &syms[r as usize]);
            if a.freeze || b.freeze {
                return;
            }
            let start = a.start as usize;
            let size = (a.len + b.len) as usize;
            let piece = &bytes[start..start + size];
            if let Some(id) = self.pieces.get(&self.tokens, piece) {
                agenda.push(Pair {
                    score: self.scores[id as usize],
                    left: l,
                    right: r,
                    size: size as u32,
                });
                if self.has_unused && self.types[id as usize] == TokenType::Unused {
                    let mid = start + a.len as usize;
                    rev_merge.insert(
                        &norm[start..start + size],
                        (&norm[start..mid], &norm[mid..start + size]),
                    );
                }
            }
        };
        for i in 1..syms.len() as i32 {
            try_pair(syms, agenda, i - 1, i);
        }
        while let Some(top) = agenda.pop() {
            let (l, r) = (top.left as usize, top.right as usize);
            if syms[l].len == 0 || syms[r].len == 0 || syms[l].len + syms[r].len != top.size {
                continue; // stale
            }
            syms[l].len += syms[r].len;
            let rn = syms[r].next;
            syms[l].next = rn;
            if rn >= 0 {
                syms[rn as usize].prev = top.left;
            }
            syms[r].len = 0;
            let prev = syms[l].prev;
            let next = syms[l].next;
            try_pair(syms, agenda, prev, top.left);
            try_pair(syms, agenda, top.left, next);
        }

        let mut i = if syms.is_empty() { -1 } else { 0i32 };
        while i >= 0 {
            let s = &syms[i as usize];
            let piece = &norm[s.start as usize..(s.start + s.len) as usize];
            prev_unk = self.emit(piece, &rev_merge, prev_unk, out)?;
            i = s.next;
        }
        Ok(prev_unk)
    }

    /// Emits one final symbol: its id, its resegmentation when unused, or its bytes (without
    /// byte fallback: the unknown token, once for a run of unknown symbols, as sentencepiece).
    /// Returns whether it emitted (or extended) an unknown run.
    fn emit(
        &self,
        piece: &str,
        rev_merge: &BTreeMap<&str, (&str, &str)>,
        prev_unk: bool,
        out: &mut Vec<u32>,
    ) -> Result<bool> {
        match self.pieces.get(&self.tokens, piece.as_bytes()) {
            Some(id) => {
                if self.types[id as usize] == TokenType::Unused {
                    if let Some(&(a, b)) = rev_merge.get(piece) {
                        let prev_unk = self.emit(a, rev_merge, prev_unk, out)?;
                        return self.emit(b, rev_merge, prev_unk, out);
                    }
                }
                out.push(id);
                Ok(false)
            }
            None => match &self.byte_ids {
                Some(byte_ids) => {
                    out.extend(piece.bytes().map(|b| byte_ids[b as usize]));
                    Ok(false)
                }
                None => match self.unk {
                    Some(unk) => {
                        if !prev_unk {
                            out.push(unk);
                        }
                        Ok(true)
                    }
                    None => Err(err!(Model, "tokenizer: {piece:?} is not in the vocabulary")),
                },
            },
        }
    }

    /// Whether a decoded id is a byte token, and its byte.
    pub(crate) fn byte_of(&self, id: u32) -> Option<u8> {
        match self.byte_of.get(id as usize) {
            Some(&b) if b <= 0xFF => Some(b as u8),
            _ => None,
        }
    }

    /// Decodes `ids` to text (sentencepiece's `decode`); ids out of range are skipped.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut out = String::new();
        let mut d = TokenDecoder::new();
        for &id in ids {
            let _ = d.push(self, id, &mut out);
        }
        d.finish(&mut out);
        out
    }
}

/// Buffers reused across the words of one `encode` call.
struct Scratch {
    syms: Vec<Symbol>,
    agenda: BinaryHeap<Pair>,
}

/// One symbol of the BPE linked list: a byte range of the normalized text.
#[derive(Clone, Copy, Debug)]
struct Symbol {
    start: u32,
    /// 0 once merged into its left neighbour.
    len: u32,
    prev: i32,
    next: i32,
    /// User-defined piece: never merged.
    freeze: bool,
}

/// A candidate merge of two adjacent symbols.
#[derive(Clone, Copy, Debug)]
struct Pair {
    score: f32,
    left: i32,
    right: i32,
    /// Byte length of the merged piece (detects stale entries).
    size: u32,
}

impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pair {}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pair {
    /// Max-heap order: higher score first, then the leftmost.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.size.cmp(&self.size))
    }
}

struct SpecialSplit<'a> {
    tok: &'a Tokenizer,
    rest: &'a str,
    pending: Option<u32>,
}

impl<'a> Iterator for SpecialSplit<'a> {
    type Item = Fragment<'a>;
    fn next(&mut self) -> Option<Fragment<'a>> {
        if let Some(id) = self.pending.take() {
            return Some(Fragment::Token(id));
        }
        if self.rest.is_empty() {
            return None;
        }
        let rest = self.rest;
        for (i, _) in rest.char_indices() {
            if let Some(id) = self.tok.match_control(&rest[i..]) {
                self.rest = &rest[i + self.tok.tokens[id as usize].len()..];
                if i == 0 {
                    return Some(Fragment::Token(id));
                }
                self.pending = Some(id);
                return Some(Fragment::Text(&rest[..i]));
            }
        }
        self.rest = "";
        Some(Fragment::Text(rest))
    }
}
