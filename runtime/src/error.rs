//! The one error type of the runtime. Library code returns these; binaries print them in one line.
use alloc::string::String;
use core::fmt;

/// Everything that can go wrong in the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The model file is malformed (bad magic, truncation, inconsistent sizes...).
    Format(String),
    /// The file is well formed but uses something this runtime does not support.
    Unsupported(String),
    /// A tensor or metadata key the model needs is missing or has the wrong shape or type.
    Model(String),
    /// Caller-supplied input is invalid (arguments, token ids, text...).
    Input(String),
    /// The memory budget cannot hold what is asked.
    Memory(String),
    /// An operating-system I/O error (std only), as text so the type stays `no_std`.
    Io(String),
}

/// Result with the runtime's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Format(m) => write!(f, "malformed model file: {m}"),
            Error::Unsupported(m) => write!(f, "unsupported: {m}"),
            Error::Model(m) => write!(f, "model error: {m}"),
            Error::Input(m) => write!(f, "invalid input: {m}"),
            Error::Memory(m) => write!(f, "memory budget: {m}"),
            Error::Io(m) => write!(f, "i/o error: {m}"),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(alloc::format!("{e}"))
    }
}

/// `format!` into an [`Error`] variant: `err!(Format, "bad magic {x:#x}")`.
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)*) => {
        $crate::error::Error::$kind(alloc::format!($($arg)*))
    };
}
