//! A process's output as a shared log: whole lines kept in memory for the harness to read
//! (and show when a test fails), and optionally appended to a file that outlives the run
//! (the run directories of `jepsen` and `bench` keep one per server).

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A log shared between the threads that read a process's output and the harness; cloning
/// it shares it.
///
/// Contract: every [`Log::push`] appends one or more whole lines (a missing final newline
/// is added), so lines from stdout, stderr and the harness never interleave within a line;
/// the file, when there is one, receives the same text in the same order. The in-memory
/// text is never truncated (the harnesses' processes run for minutes, not days).
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    text: String,
    file: Option<(PathBuf, File)>,
}

impl Log {
    /// A log kept in memory only.
    pub fn in_memory() -> Log {
        Log::default()
    }

    /// A log kept in memory and appended to `path` (created if missing; what it already
    /// holds, say from an earlier start, stays and is not read back).
    pub fn with_file(path: &Path) -> std::io::Result<Log> {
        let file = File::options().create(true).append(true).open(path)?;
        Ok(Log(Arc::new(Mutex::new(Inner { text: String::new(), file: Some((path.to_path_buf(), file)) }))))
    }

    /// Appends `text`, ending it with a newline if it lacks one. A failed write to the file
    /// is ignored: the in-memory text still has the line, and a harness must not stop
    /// because its log disk is full.
    pub fn push(&self, text: &str) {
        let mut inner = self.lock();
        let start = inner.text.len();
        inner.text.push_str(text);
        if !text.ends_with('\n') {
            inner.text.push('\n');
        }
        let Inner { text, file } = &mut *inner;
        if let Some((_, file)) = file {
            let _ = file.write_all(&text.as_bytes()[start..]);
        }
    }

    /// Everything so far.
    pub fn text(&self) -> String {
        self.lock().text.clone()
    }

    /// Everything from byte `offset` on (an offset earlier taken from [`Log::len`]).
    pub fn since(&self, offset: usize) -> String {
        self.lock().text.get(offset..).unwrap_or_default().to_string()
    }

    /// Bytes so far: the offset where the next line will start.
    pub fn len(&self) -> usize {
        self.lock().text.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the text so far contains `needle`.
    pub fn contains(&self, needle: &str) -> bool {
        self.lock().text.contains(needle)
    }

    /// The file the log is also appended to.
    pub fn file(&self) -> Option<PathBuf> {
        self.lock().file.as_ref().map(|(path, _)| path.clone())
    }

    /// The lock, even after a panic elsewhere while it was held: the text is only ever
    /// appended whole, so it is consistent, and a test that failed must still show it.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Display for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lock().text)
    }
}

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("Log")
            .field("bytes", &inner.text.len())
            .field("file", &inner.file.as_ref().map(|f| &f.0))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_and_the_file_gets_the_same_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        std::fs::write(&path, "from before\n").unwrap();
        let log = Log::with_file(&path).unwrap();
        log.push("one\n");
        let offset = log.len();
        log.push("two");
        assert_eq!(log.text(), "one\ntwo\n");
        assert_eq!(log.since(offset), "two\n");
        assert!(log.contains("two") && !log.contains("from before"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "from before\none\ntwo\n");
        assert_eq!(log.file(), Some(path));
    }
}
