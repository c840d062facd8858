//! The SentencePiece model file (`tokenizer.model`, a `ModelProto` protobuf), read by hand.
//!
//! Only what the GGUF tokenizer metadata needs: `pieces` (field 1: `piece` string 1, `score`
//! float 2, `type` enum 3, default NORMAL), `trainer_spec` (field 2: `unk_id` 40, `bos_id` 41,
//! `eos_id` 42, `pad_id` 43; defaults 0, 1, 2, −1) and `normalizer_spec` (field 3:
//! `add_dummy_prefix` 3, default true). Unknown fields are skipped; truncation, bad wire types
//! and invalid UTF-8 are errors.
use crate::{QError, QResult};

/// SentencePiece piece types (`ModelProto.SentencePiece.Type`).
pub const NORMAL: i32 = 1;
pub const UNKNOWN: i32 = 2;
pub const CONTROL: i32 = 3;
pub const USER_DEFINED: i32 = 4;
pub const UNUSED: i32 = 5;
pub const BYTE: i32 = 6;

/// One vocabulary entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    pub piece: String,
    pub score: f32,
    /// SentencePiece's type (1 normal, 2 unknown, 3 control, 4 user defined, 5 unused, 6 byte).
    pub kind: i32,
}

/// What the GGUF metadata needs from a SentencePiece model.
#[derive(Debug, Clone, PartialEq)]
pub struct SpModel {
    pub pieces: Vec<Piece>,
    pub unk_id: i32,
    pub bos_id: i32,
    pub eos_id: i32,
    pub pad_id: i32,
    pub add_dummy_prefix: bool,
}

impl SpModel {
    /// Id of `piece`, or the unknown id (as `SentencePieceProcessor.piece_to_id`).
    pub fn piece_to_id(&self, piece: &str) -> i32 {
        self.pieces
            .iter()
            .position(|p| p.piece == piece)
            .map(|i| i as i32)
            .unwrap_or(self.unk_id)
    }

    /// llama.cpp's token type of piece `i`, as `training/export.py` computes it: 2 unknown,
    /// 3 control, 6 byte, 1 for everything else.
    pub fn gguf_token_type(&self, i: usize) -> i32 {
        match self.pieces[i].kind {
            UNKNOWN => 2,
            CONTROL => 3,
            BYTE => 6,
            _ => 1,
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

fn bad(m: impl Into<String>) -> QError {
    QError::Input(format!("malformed SentencePiece model: {}", m.into()))
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }
    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }
    fn varint(&mut self) -> QResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .b
                .get(self.pos)
                .ok_or_else(|| bad(format!("truncated varint at offset {}", self.pos)))?;
            self.pos += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(format!("varint too long at offset {}", self.pos)))
    }
    fn take(&mut self, n: usize) -> QResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| {
                bad(format!(
                    "field of {n} bytes at offset {} runs past the end ({} bytes)",
                    self.pos,
                    self.b.len()
                ))
            })?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    /// (field number, wire type)
    fn key(&mut self) -> QResult<(u64, u8)> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }
    fn bytes(&mut self) -> QResult<&'a [u8]> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| bad("length overflows"))?)
    }
    fn fixed32(&mut self) -> QResult<u32> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn skip(&mut self, wire: u8) -> QResult<()> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.take(8).map(|_| ()),
            2 => self.bytes().map(|_| ()),
            5 => self.take(4).map(|_| ()),
            w => Err(bad(format!(
                "unsupported wire type {w} at offset {}",
                self.pos
            ))),
        }
    }
}

fn expect(wire: u8, want: u8, what: &str) -> QResult<()> {
    if wire == want {
        Ok(())
    } else {
        Err(bad(format!("{what} has wire type {wire}, expected {want}")))
    }
}

fn piece(b: &[u8]) -> QResult<Piece> {
    let mut r = Reader::new(b);
    let mut p = Piece {
        piece: String::new(),
        score: 0.0,
        kind: NORMAL,
    };
    while !r.done() {
        let (f, w) = r.key()?;
        match f {
            1 => {
                expect(w, 2, "piece")?;
                p.piece = std::str::from_utf8(r.bytes()?)
                    .map_err(|_| bad("a piece is not UTF-8"))?
                    .to_string();
            }
            2 => {
                expect(w, 5, "score")?;
                p.score = f32::from_bits(r.fixed32()?);
            }
            3 => {
                expect(w, 0, "type")?;
                p.kind = r.varint()? as i32;
            }
            _ => r.skip(w)?,
        }
    }
    Ok(p)
}

/// Parses a SentencePiece `.model` file.
pub fn parse(bytes: &[u8]) -> QResult<SpModel> {
    let mut m = SpModel {
        pieces: Vec::new(),
        unk_id: 0,
        bos_id: 1,
        eos_id: 2,
        pad_id: -1,
        add_dummy_prefix: true,
    };
    let mut r = Reader::new(bytes);
    while !r.done() {
        let (f, w) = r.key()?;
        match f {
            1 => {
                expect(w, 2, "pieces")?;
                m.pieces.push(piece(r.bytes()?)?);
            }
            2 => {
                expect(w, 2, "trainer_spec")?;
                let mut t = Reader::new(r.bytes()?);
                while !t.done() {
                    let (f, w) = t.key()?;
                    match f {
                        40..=43 => {
                            expect(w, 0, "a special token id")?;
                            // int32 fields are sign-extended to 64 bits on the wire.
                            let v = t.varint()? as i64 as i32;
                            match f {
                                40 => m.unk_id = v,
                                41 => m.bos_id = v,
                                42 => m.eos_id = v,
                                _ => m.pad_id = v,
                            }
                        }
                        _ => t.skip(w)?,
                    }
                }
            }
            3 => {
                expect(w, 2, "normalizer_spec")?;
                let mut n = Reader::new(r.bytes()?);
                while !n.done() {
                    let (f, w) = n.key()?;
                    if f == 3 {
                        expect(w, 0, "add_dummy_prefix")?;
                        m.add_dummy_prefix = n.varint()? != 0;
                    } else {
                        n.skip(w)?;
                    }
                }
            }
            _ => r.skip(w)?,
        }
    }
    if m.pieces.is_empty() {
        return Err(bad("no pieces (is this a SentencePiece .model file?)"));
    }
    let n = m.pieces.len() as i32;
    for (name, id) in [("unk", m.unk_id), ("bos", m.bos_id), ("eos", m.eos_id)] {
        if id < 0 || id >= n {
            return Err(bad(format!("{name}_id {id} outside the {n} pieces")));
        }
    }
    if m.pad_id >= n {
        return Err(bad(format!("pad_id {} outside the {n} pieces", m.pad_id)));
    }
    Ok(m)
}
