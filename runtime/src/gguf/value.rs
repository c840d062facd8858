//! Metadata values: the borrowed [`Value`] / [`Array`] the reader returns and the
//! [`OwnedValue`] the writer takes.
use super::cursor::Cursor;
use crate::{err, Error, Result};
use alloc::string::String;
use alloc::vec::Vec;

/// Arrays may contain arrays; deeper nesting than this is rejected (it would only serve to
/// exhaust the stack of a recursive reader).
pub const MAX_ARRAY_DEPTH: usize = 8;

/// GGUF metadata value type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// From the numeric id stored in the file.
    pub fn from_id(id: u32) -> Option<Self> {
        use ValueType::*;
        Some(match id {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => String,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    /// The numeric id stored in the file.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// Lower-case name (`u32`, `string`, `array`, ...).
    pub fn name(self) -> &'static str {
        use ValueType::*;
        match self {
            U8 => "u8",
            I8 => "i8",
            U16 => "u16",
            I16 => "i16",
            U32 => "u32",
            I32 => "i32",
            F32 => "f32",
            Bool => "bool",
            String => "string",
            Array => "array",
            U64 => "u64",
            I64 => "i64",
            F64 => "f64",
        }
    }

    /// Encoded size of one value, or `None` for strings and arrays (variable size).
    pub fn fixed_size(self) -> Option<usize> {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }

    /// The smallest encoding of one value (8 for a string's length, 12 for an array's header).
    pub(crate) fn min_size(self) -> usize {
        match self {
            ValueType::String => 8,
            ValueType::Array => 12,
            t => t.fixed_size().unwrap_or(1),
        }
    }
}

/// A metadata value, borrowed from the file (strings and arrays are not copied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(&'a str),
    Array(Array<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::Str(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any non-negative integer value (of any integer type) as `u64`; `None` for negative
    /// integers, floats, bools, strings and arrays.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Any integer value (of any integer type) as `i64`; `None` for a `u64` above `i64::MAX`
    /// and for non-integers.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    /// An owned copy (e.g. to copy metadata from one file into a [`GgufWriter`](super::GgufWriter)).
    pub fn to_owned_value(&self) -> OwnedValue {
        match *self {
            Value::U8(v) => OwnedValue::U8(v),
            Value::I8(v) => OwnedValue::I8(v),
            Value::U16(v) => OwnedValue::U16(v),
            Value::I16(v) => OwnedValue::I16(v),
            Value::U32(v) => OwnedValue::U32(v),
            Value::I32(v) => OwnedValue::I32(v),
            Value::F32(v) => OwnedValue::F32(v),
            Value::Bool(v) => OwnedValue::Bool(v),
            Value::Str(s) => OwnedValue::str(s),
            Value::Array(a) => OwnedValue::Array(
                a.elem_type(),
                a.iter().map(|v| v.to_owned_value()).collect(),
            ),
            Value::U64(v) => OwnedValue::U64(v),
            Value::I64(v) => OwnedValue::I64(v),
            Value::F64(v) => OwnedValue::F64(v),
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The array, if this is an array.
    pub fn as_array(&self) -> Option<&Array<'a>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A homogeneous array, borrowed from the file. Its bytes were fully validated when the file
/// was parsed (UTF-8 of strings, nested arrays), so reading elements cannot fail.
///
/// [`get`](Self::get) is O(1) for fixed-size elements and O(i) for strings and nested arrays:
/// walk those with [`iter`](Self::iter) or [`to_str_vec`](Self::to_str_vec).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Array<'a> {
    elem: ValueType,
    len: usize,
    /// Exactly the encoded elements (no header).
    raw: &'a [u8],
}

impl<'a> Array<'a> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn elem_type(&self) -> ValueType {
        self.elem
    }
    /// The encoded elements (little-endian), e.g. to reinterpret an `f32` array in place.
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// Element `i`, or `None` when out of range.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        if i >= self.len {
            return None;
        }
        match self.elem.fixed_size() {
            Some(sz) => {
                let start = i.checked_mul(sz)?;
                let bytes = self.raw.get(start..start.checked_add(sz)?)?;
                read_value(&mut Cursor::new(bytes), self.elem, 0).ok()
            }
            None => self.iter().nth(i),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Value<'a>> + '_ {
        ArrayIter {
            cur: Cursor::new(self.raw),
            elem: self.elem,
            left: self.len,
        }
    }

    fn type_error(&self, want: &str) -> Error {
        err!(
            Model,
            "expected an array of {want}, found an array of {} ({} elements)",
            self.elem.name(),
            self.len
        )
    }

    /// Integer elements (any integer type) whose values all fit in `u32`.
    pub fn to_u32_vec(&self) -> Result<Vec<u32>> {
        self.collect_ints("u32", |v| v.as_u64().and_then(|x| u32::try_from(x).ok()))
    }

    /// Integer elements (any integer type) whose values all fit in `i32`.
    pub fn to_i32_vec(&self) -> Result<Vec<i32>> {
        self.collect_ints("i32", |v| v.as_i64().and_then(|x| i32::try_from(x).ok()))
    }

    fn collect_ints<T>(&self, want: &str, f: impl Fn(&Value<'a>) -> Option<T>) -> Result<Vec<T>> {
        if !is_integer(self.elem) {
            return Err(self.type_error(want));
        }
        let mut out = Vec::with_capacity(self.len);
        for (i, v) in self.iter().enumerate() {
            out.push(
                f(&v).ok_or_else(|| {
                    err!(Model, "array element {i} = {v:?} does not fit in {want}")
                })?,
            );
        }
        Ok(out)
    }

    /// `f32` elements.
    pub fn to_f32_vec(&self) -> Result<Vec<f32>> {
        if self.elem != ValueType::F32 {
            return Err(self.type_error("f32"));
        }
        Ok(self
            .raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// String elements, borrowed from the file.
    pub fn to_str_vec(&self) -> Result<Vec<&'a str>> {
        if self.elem != ValueType::String {
            return Err(self.type_error("string"));
        }
        Ok(self.iter().filter_map(|v| v.as_str()).collect())
    }
}

fn is_integer(t: ValueType) -> bool {
    use ValueType::*;
    matches!(t, U8 | I8 | U16 | I16 | U32 | I32 | U64 | I64)
}

struct ArrayIter<'a> {
    cur: Cursor<'a>,
    elem: ValueType,
    left: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        match read_value(&mut self.cur, self.elem, 0) {
            Ok(v) => Some(v),
            Err(_) => {
                // Unreachable for a validated array; stop rather than panic.
                self.left = 0;
                None
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Reads one value of type `ty` (the type id has already been read). Arrays are validated
/// element by element; `depth` counts enclosing arrays.
pub(crate) fn read_value<'a>(
    cur: &mut Cursor<'a>,
    ty: ValueType,
    depth: usize,
) -> Result<Value<'a>> {
    Ok(match ty {
        ValueType::U8 => Value::U8(cur.u8("u8 value")?),
        ValueType::I8 => Value::I8(cur.i8("i8 value")?),
        ValueType::U16 => Value::U16(cur.u16("u16 value")?),
        ValueType::I16 => Value::I16(cur.i16("i16 value")?),
        ValueType::U32 => Value::U32(cur.u32("u32 value")?),
        ValueType::I32 => Value::I32(cur.i32("i32 value")?),
        ValueType::F32 => Value::F32(cur.f32("f32 value")?),
        ValueType::U64 => Value::U64(cur.u64("u64 value")?),
        ValueType::I64 => Value::I64(cur.i64("i64 value")?),
        ValueType::F64 => Value::F64(cur.f64("f64 value")?),
        ValueType::Bool => {
            let at = cur.pos();
            match cur.u8("bool value")? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(err!(
                        Format,
                        "bool value {b} at offset {at} is neither 0 nor 1"
                    ))
                }
            }
        }
        ValueType::String => Value::Str(cur.string("string value")?),
        ValueType::Array => Value::Array(read_array(cur, depth)?),
    })
}

fn read_array<'a>(cur: &mut Cursor<'a>, depth: usize) -> Result<Array<'a>> {
    let at = cur.pos();
    if depth >= MAX_ARRAY_DEPTH {
        return Err(err!(
            Unsupported,
            "array at offset {at} is nested more than {MAX_ARRAY_DEPTH} deep"
        ));
    }
    let id = cur.u32("array element type")?;
    let elem = ValueType::from_id(id).ok_or_else(|| {
        err!(
            Format,
            "array at offset {at} has unknown element type id {id}"
        )
    })?;
    let len = cur.u64("array length")?;
    // Reject impossible lengths before touching any element: every element takes at least
    // `min_size` bytes.
    let max = (cur.remaining() / elem.min_size()) as u64;
    if len > max {
        return Err(err!(
            Format,
            "array at offset {at} claims {len} elements of {} ({}+ bytes each) but only {} bytes remain",
            elem.name(),
            elem.min_size(),
            cur.remaining()
        ));
    }
    let len = len as usize; // len <= remaining bytes, so it fits
    let start = cur.clone();
    match elem.fixed_size() {
        Some(sz) => {
            // len * sz <= remaining: no overflow.
            cur.take(len * sz, "array elements")?;
            if elem == ValueType::Bool {
                let mut c = start.clone();
                for _ in 0..len {
                    read_value(&mut c, elem, depth + 1)?;
                }
            }
        }
        None => {
            for _ in 0..len {
                read_value(cur, elem, depth + 1)?;
            }
        }
    }
    let raw_len = cur.pos() - start.pos();
    let raw = start.clone().take(raw_len, "array elements")?;
    Ok(Array { elem, len, raw })
}

/// An owned metadata value, for the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    /// Element type and elements; every element must be of the element type.
    Array(ValueType, Vec<OwnedValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl OwnedValue {
    pub fn value_type(&self) -> ValueType {
        match self {
            OwnedValue::U8(_) => ValueType::U8,
            OwnedValue::I8(_) => ValueType::I8,
            OwnedValue::U16(_) => ValueType::U16,
            OwnedValue::I16(_) => ValueType::I16,
            OwnedValue::U32(_) => ValueType::U32,
            OwnedValue::I32(_) => ValueType::I32,
            OwnedValue::F32(_) => ValueType::F32,
            OwnedValue::Bool(_) => ValueType::Bool,
            OwnedValue::Str(_) => ValueType::String,
            OwnedValue::Array(..) => ValueType::Array,
            OwnedValue::U64(_) => ValueType::U64,
            OwnedValue::I64(_) => ValueType::I64,
            OwnedValue::F64(_) => ValueType::F64,
        }
    }

    /// A string value.
    pub fn str(s: &str) -> Self {
        OwnedValue::Str(String::from(s))
    }

    /// An array of u32.
    pub fn u32_array(v: &[u32]) -> Self {
        OwnedValue::Array(
            ValueType::U32,
            v.iter().map(|&x| OwnedValue::U32(x)).collect(),
        )
    }

    /// An array of i32.
    pub fn i32_array(v: &[i32]) -> Self {
        OwnedValue::Array(
            ValueType::I32,
            v.iter().map(|&x| OwnedValue::I32(x)).collect(),
        )
    }

    /// An array of f32.
    pub fn f32_array(v: &[f32]) -> Self {
        OwnedValue::Array(
            ValueType::F32,
            v.iter().map(|&x| OwnedValue::F32(x)).collect(),
        )
    }

    /// An array of strings.
    pub fn str_array<S: AsRef<str>>(v: &[S]) -> Self {
        OwnedValue::Array(
            ValueType::String,
            v.iter().map(|s| OwnedValue::str(s.as_ref())).collect(),
        )
    }

    /// Checks that arrays are homogeneous and not nested deeper than the reader accepts.
    pub(crate) fn validate(&self, depth: usize) -> Result<()> {
        if let OwnedValue::Array(elem, items) = self {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(err!(Input, "array nested more than {MAX_ARRAY_DEPTH} deep"));
            }
            for (i, it) in items.iter().enumerate() {
                if it.value_type() != *elem {
                    return Err(err!(
                        Input,
                        "array of {} has element {i} of type {}",
                        elem.name(),
                        it.value_type().name()
                    ));
                }
                it.validate(depth + 1)?;
            }
        }
        Ok(())
    }

    /// Appends the encoding of the value (without its type id) to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::U8(v) => out.push(*v),
            OwnedValue::I8(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::Bool(v) => out.push(u8::from(*v)),
            OwnedValue::Str(s) => encode_str(s, out),
            OwnedValue::Array(elem, items) => {
                out.extend_from_slice(&elem.id().to_le_bytes());
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for it in items {
                    it.encode(out);
                }
            }
            OwnedValue::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
            OwnedValue::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
        }
    }
}

pub(crate) fn encode_str(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}
