//! Atomic output: the file is written to a temporary file in the output's directory
//! (`.NAME.PID.tmp`), fsynced, and renamed over the output only once everything (the quality
//! gate included) succeeded. Dropping an uncommitted [`TempOutput`] removes the temporary file;
//! the Ctrl-C handler removes it through [`remove_pending`].
use crate::{QError, QResult};
use photon_runtime::gguf::GgufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files not yet committed (for the Ctrl-C handler).
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes every temporary file not yet committed (called from the Ctrl-C handler).
pub fn remove_pending() {
    if let Ok(mut p) = PENDING.lock() {
        for f in p.drain(..) {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// A written, not yet committed output file.
pub struct TempOutput {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl TempOutput {
    /// Writes `w` to a temporary file beside `dest` and fsyncs it.
    pub fn write(w: &GgufWriter, dest: &Path) -> QResult<TempOutput> {
        let name = dest
            .file_name()
            .ok_or_else(|| QError::Usage(format!("'{}' is not a file path", dest.display())))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{}.tmp", std::process::id()));
        let tmp = dir_of(dest).join(tmp_name);
        let io = |e: std::io::Error| QError::Io(format!("writing '{}': {e}", dest.display()));
        // Registered before creation, so an interrupt at any point removes it.
        PENDING
            .lock()
            .map_err(|_| QError::Io("lock".into()))?
            .push(tmp.clone());
        let out = TempOutput {
            tmp: tmp.clone(),
            dest: dest.to_path_buf(),
            committed: false,
        };
        let f = std::fs::File::create(&tmp).map_err(io)?;
        let mut bw = std::io::BufWriter::new(f);
        w.write_to(&mut bw).map_err(|e| match e {
            photon_runtime::Error::Io(m) => {
                QError::Io(format!("writing '{}': {m}", dest.display()))
            }
            e => QError::from(e),
        })?;
        let f = bw.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        Ok(out)
    }

    /// The temporary file (to evaluate it before committing).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Renames the temporary file over the destination and fsyncs the directory.
    pub fn commit(mut self) -> QResult<()> {
        std::fs::rename(&self.tmp, &self.dest)
            .map_err(|e| QError::Io(format!("renaming into '{}': {e}", self.dest.display())))?;
        self.committed = true;
        forget(&self.tmp);
        if let Ok(d) = std::fs::File::open(dir_of(&self.dest)) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn forget(p: &Path) {
    if let Ok(mut v) = PENDING.lock() {
        v.retain(|x| x != p);
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
            forget(&self.tmp);
        }
    }
}

/// Whether `a` and `b` name the same file (after following symlinks; hard links too on Unix).
/// A `b` that does not exist is never the same.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (std::fs::metadata(a), std::fs::metadata(b)) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if ma.dev() == mb.dev() && ma.ino() == mb.ino() {
            return true;
        }
    }
    let _ = (ma, mb);
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
