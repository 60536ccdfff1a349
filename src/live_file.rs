//! A configuration file served live: `--web.config.file` and `--web.access-config.file`
//! are read again when they (or a file they name) change, without a restart.
//!
//! The files are looked at at most once a second, when a request or connection asks. A
//! file rewritten in place (truncated, then written) passes through states that load but
//! mean something else, so a change is taken only once the files have stayed unchanged
//! from one look to the next (a second apart). A changed file that no longer loads, or
//! that changes what needs a restart ([`Reloadable::needs_restart`]), is logged and the
//! last good configuration kept.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// A configuration read from a file named by a flag.
pub trait Reloadable: Sized {
    /// The flag naming the file, as log lines spell it (`--web.config.file`).
    const FLAG: &'static str;

    /// Reads and checks the file at `path` (empty: the flag is not set). The error is
    /// the reason the file cannot be served.
    fn load(path: &str) -> Result<Self, String>;

    /// The files it was read from: the file itself and those it names.
    fn files(&self) -> &[PathBuf];

    /// Why `next` may not replace `self` without a restart; `None`: it may.
    fn needs_restart(&self, next: &Self) -> Option<&'static str>;
}

/// How often [`LiveFile`] looks at its files.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// A [`Reloadable`] as served: [`LiveFile::current`] answers the configuration to serve
/// the next request or connection with, read again once its files changed and settled.
pub struct LiveFile<T> {
    path: String,
    live: RwLock<Live<T>>,
}

struct Live<T> {
    config: Arc<T>,
    stamps: Vec<Option<SystemTime>>,
    checked: Instant,
    /// Changed stamps seen at the last look, taken if the next look sees them again.
    settling: Option<Vec<Option<SystemTime>>>,
}

/// Modification times of `config`'s files (`None`: unreadable).
fn stamps<T: Reloadable>(config: &T) -> Vec<Option<SystemTime>> {
    config.files().iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

impl<T: Reloadable> LiveFile<T> {
    /// `config` as loaded from `path` (empty: nothing to watch).
    pub fn new(path: &str, config: T) -> Self {
        let live = Live { stamps: stamps(&config), config: Arc::new(config), checked: Instant::now(), settling: None };
        LiveFile { path: path.to_string(), live: RwLock::new(live) }
    }

    /// The configuration to serve the next request or connection with.
    pub fn current(&self) -> Arc<T> {
        {
            let live = self.live.read().unwrap_or_else(|e| e.into_inner());
            if self.path.is_empty() || live.checked.elapsed() < RECHECK {
                return live.config.clone();
            }
        }
        let mut live = self.live.write().unwrap_or_else(|e| e.into_inner());
        if live.checked.elapsed() < RECHECK {
            return live.config.clone();
        }
        live.checked = Instant::now();
        let stamps_now = stamps(live.config.as_ref());
        if stamps_now == live.stamps {
            live.settling = None;
            return live.config.clone();
        }
        if live.settling.as_ref() != Some(&stamps_now) {
            // Changed since the last look: maybe still being written. Look again later.
            live.settling = Some(stamps_now);
            return live.config.clone();
        }
        // Remembered before loading: a broken file is reported once, not every second.
        live.settling = None;
        live.stamps = stamps_now;
        let flag = T::FLAG;
        match T::load(&self.path) {
            Ok(next) => match live.config.needs_restart(&next) {
                Some(reason) => {
                    tracing::error!(path = %self.path, "{flag} {reason}: keeping the previous configuration")
                }
                None => {
                    tracing::info!(path = %self.path, "{flag} or a file it names changed: reloaded");
                    live.stamps = stamps(&next);
                    live.config = Arc::new(next);
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "{flag} changed and no longer loads: keeping the previous configuration")
            }
        }
        live.config.clone()
    }
}
