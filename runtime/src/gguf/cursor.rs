//! A bounds-checked little-endian reader over a byte slice.
//!
//! Every read names what it was reading, so a truncated file reports e.g.
//! `truncated file: reading tensor count at offset 16 needs 8 bytes, 3 remain`.
//! Nothing here indexes a slice directly: all reads go through [`Cursor::take`].
use crate::{err, Result};

#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// Current offset from the start of the buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the current position.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// The next `n` bytes, borrowed from the buffer.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let left = self.remaining();
        if n > left {
            return Err(err!(
                Format,
                "truncated file: reading {what} at offset {} needs {n} bytes, {left} remain",
                self.pos
            ));
        }
        let end = self.pos + n; // n <= left, so no overflow
        let s = self.buf.get(self.pos..end).ok_or_else(|| {
            err!(
                Format,
                "internal: {what} at offset {} out of range",
                self.pos
            )
        })?;
        self.pos = end;
        Ok(s)
    }

    /// Like [`take`](Self::take) with a `u64` length (which may not fit in `usize`).
    pub(crate) fn take_u64(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        match usize::try_from(n) {
            Ok(n) => self.take(n, what),
            Err(_) => Err(err!(
                Format,
                "truncated file: reading {what} at offset {} needs {n} bytes, {} remain",
                self.pos,
                self.remaining()
            )),
        }
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16> {
        self.array(what).map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32> {
        self.array(what).map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64> {
        self.array(what).map(u64::from_le_bytes)
    }
    pub(crate) fn i8(&mut self, what: &str) -> Result<i8> {
        self.array(what).map(i8::from_le_bytes)
    }
    pub(crate) fn i16(&mut self, what: &str) -> Result<i16> {
        self.array(what).map(i16::from_le_bytes)
    }
    pub(crate) fn i32(&mut self, what: &str) -> Result<i32> {
        self.array(what).map(i32::from_le_bytes)
    }
    pub(crate) fn i64(&mut self, what: &str) -> Result<i64> {
        self.array(what).map(i64::from_le_bytes)
    }
    pub(crate) fn f32(&mut self, what: &str) -> Result<f32> {
        self.array(what).map(f32::from_le_bytes)
    }
    pub(crate) fn f64(&mut self, what: &str) -> Result<f64> {
        self.array(what).map(f64::from_le_bytes)
    }

    /// A GGUF string: u64 byte length, then that many bytes of UTF-8 (no terminator).
    /// The length is checked against the remaining bytes before anything else, so an absurd
    /// length (2^40) is an error, not an allocation.
    pub(crate) fn string(&mut self, what: &str) -> Result<&'a str> {
        let len_at = self.pos;
        let len = self.u64(what)?;
        let left = self.remaining();
        if len > left as u64 {
            return Err(err!(
                Format,
                "truncated file: reading {what} at offset {len_at} needs {len} bytes, {left} remain"
            ));
        }
        let bytes = self.take_u64(len, what)?;
        core::str::from_utf8(bytes).map_err(|e| {
            err!(
                Format,
                "{what} (length {len} at offset {len_at}) is not valid UTF-8: {e}"
            )
        })
    }
}
