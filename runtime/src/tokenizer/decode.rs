//! Streaming detokenization, following `sentencepiece`'s `Decode`.
use alloc::string::String;

use super::{TokenType, Tokenizer, SPACE_SYMBOL};
use crate::{err, Result};

/// What sentencepiece prints for the unknown token.
const UNK_SURFACE: &str = " \u{2047} ";
const REPLACEMENT: char = '\u{FFFD}';

/// Turns token ids into UTF-8 text one id at a time, never emitting half a character.
///
/// - Byte tokens (`<0xNN>`) are buffered until they form a whole character; a byte that cannot
///   start or continue a valid UTF-8 sequence becomes U+FFFD (one per byte, as sentencepiece).
/// - `▁` becomes a space; the leading `▁` of the first piece (at the very start or after control
///   tokens, when the tokenizer adds a dummy prefix) is dropped, as sentencepiece does.
/// - Control tokens produce nothing; the unknown token produces `" ⁇ "`.
///
/// For a chat, decode each reply with a fresh (or [`reset`](Self::reset)) decoder so that the
/// reply's leading dummy-prefix space is dropped; one decoder over the whole conversation keeps
/// the spaces between turns, as `sentencepiece` does over the whole id sequence.
///
/// The decoder holds no reference to the tokenizer and allocates nothing itself: text is
/// appended to the caller's `String`.
#[derive(Clone, Debug)]
pub struct TokenDecoder {
    pending: [u8; 4],
    n_pending: u8,
    /// Still expecting the dummy-prefix `▁` to drop.
    is_bos_ws: bool,
    /// The previous non-byte piece had its `▁` dropped.
    bos_ws_seen: bool,
    /// Some text has been emitted.
    emitted: bool,
}

impl Default for TokenDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenDecoder {
    /// A decoder at the start of a sequence.
    pub fn new() -> Self {
        TokenDecoder {
            pending: [0; 4],
            n_pending: 0,
            is_bos_ws: true,
            bos_ws_seen: false,
            emitted: false,
        }
    }

    /// Back to the start of a sequence (pending bytes are dropped).
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// Bytes of an incomplete character waiting for their continuation.
    pub fn pending_bytes(&self) -> &[u8] {
        &self.pending[..self.n_pending as usize]
    }

    /// Appends the text of token `id` (possibly nothing yet) to `out`.
    pub fn push(&mut self, tok: &Tokenizer, id: u32, out: &mut String) -> Result<()> {
        let Some(ty) = tok.token_type(id) else {
            return Err(err!(
                Input,
                "token id {id} out of range (vocabulary of {})",
                tok.vocab_size()
            ));
        };
        if ty == TokenType::Byte {
            if let Some(b) = tok.byte_of(id) {
                self.pending[self.n_pending as usize] = b;
                self.n_pending += 1;
                self.drain(out, false);
            }
            return Ok(());
        }
        self.drain(out, true);
        if self.bos_ws_seen || self.emitted {
            self.is_bos_ws = false;
        }
        match ty {
            TokenType::Control => self.bos_ws_seen = false,
            TokenType::Unknown => {
                out.push_str(UNK_SURFACE);
                self.emitted = true;
                self.bos_ws_seen = false;
            }
            _ => {
                let mut piece = tok.token(id).unwrap_or("");
                self.bos_ws_seen = false;
                if self.is_bos_ws && tok.add_space_prefix() {
                    if let Some(p) = piece.strip_prefix(SPACE_SYMBOL) {
                        piece = p;
                        self.bos_ws_seen = true;
                    }
                }
                for (i, part) in piece.split(SPACE_SYMBOL).enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(part);
                }
                self.emitted |= !piece.is_empty();
            }
        }
        Ok(())
    }

    /// Ends the sequence: pending bytes of an incomplete character become U+FFFD each.
    pub fn finish(&mut self, out: &mut String) {
        self.drain(out, true);
    }

    /// Emits every complete character of the pending bytes; with `flush`, incomplete ones too
    /// (as U+FFFD per byte).
    fn drain(&mut self, out: &mut String, flush: bool) {
        while self.n_pending > 0 {
            let n = self.n_pending as usize;
            let consumed = match core::str::from_utf8(&self.pending[..n]) {
                Ok(s) => {
                    out.push_str(s);
                    n
                }
                Err(e) if e.valid_up_to() > 0 => {
                    let v = e.valid_up_to();
                    // The prefix is valid UTF-8 by the error's contract.
                    out.push_str(core::str::from_utf8(&self.pending[..v]).unwrap_or(""));
                    v
                }
                Err(e) => {
                    if e.error_len().is_none() && !flush {
                        return; // incomplete: wait for more bytes
                    }
                    out.push(REPLACEMENT);
                    1
                }
            };
            self.emitted = true;
            self.pending.copy_within(consumed..n, 0);
            self.n_pending -= consumed as u8;
        }
    }
}
