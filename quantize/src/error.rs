//! The quantizer's error type: one readable line each, and the process exit code it maps to.
use std::fmt;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: bad or unreadable input files, I/O errors, anything that failed while running.
pub const EXIT_ERROR: i32 = 1;
/// Exit code: invalid command line (unknown option or type, invalid pattern, refused paths).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the quality gate failed (`--max-kl`, `--max-ppl-increase`).
pub const EXIT_GATE: i32 = 3;
/// Exit code: interrupted by Ctrl-C / SIGINT (128 + 2, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Everything that can stop the quantizer.
#[derive(Debug, Clone, PartialEq)]
pub enum QError {
    /// The command line asks for something invalid (exit 2).
    Usage(String),
    /// An input file is missing, corrupt or disagrees with its config (exit 1).
    Input(String),
    /// Reading or writing failed (exit 1).
    Io(String),
    /// The quality gate failed (exit 3).
    Gate(String),
}

/// Result with [`QError`].
pub type QResult<T> = Result<T, QError>;

impl QError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            QError::Usage(_) => EXIT_USAGE,
            QError::Input(_) | QError::Io(_) => EXIT_ERROR,
            QError::Gate(_) => EXIT_GATE,
        }
    }
}

impl fmt::Display for QError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QError::Usage(m) => write!(f, "usage error: {m}"),
            QError::Input(m) => write!(f, "{m}"),
            QError::Io(m) => write!(f, "i/o error: {m}"),
            QError::Gate(m) => write!(f, "quality gate failed: {m}"),
        }
    }
}

impl std::error::Error for QError {}

impl From<photon_runtime::Error> for QError {
    fn from(e: photon_runtime::Error) -> Self {
        match e {
            photon_runtime::Error::Io(m) => QError::Io(m),
            e => QError::Input(e.to_string()),
        }
    }
}
