//! The reference's log files (`../shared/spec/tlslp.md` §8): one
//! `<timestamp> <LEVEL> <logger>: <message>` line per record in
//! `$XDG_STATE_HOME/tlslp/logs/{server,client}.log`, WARNING and above also on
//! stderr. Tutorial mode truncates the file and writes the fixed timestamp
//! `2000-01-01T00:00:00+0100`; normal mode appends and rotates at 50 MiB
//! keeping two old files.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::event::{Event, Level};

/// The timestamp every tutorial-mode line carries.
pub const TUTORIAL_TIMESTAMP: &str = "2000-01-01T00:00:00+0100";
/// Size at which a normal-mode log rotates.
pub const ROTATE_BYTES: u64 = 50 * 1024 * 1024;
/// Old files kept (`.1`, `.2`).
const KEEP: usize = 2;

const FORMAT: &[FormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
);

/// Where records go.
pub trait EventSink: Send + Sync {
    /// Writes one record (the sink filters by level).
    fn record(&self, level: Level, message: &str);
}

/// Collects records in memory (tests, the demo).
#[derive(Debug, Default)]
pub struct MemoryLog(Mutex<Vec<Event>>);

impl MemoryLog {
    /// The records so far.
    pub fn events(&self) -> Vec<Event> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl EventSink for MemoryLog {
    fn record(&self, level: Level, message: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Event::new(level, message));
    }
}

/// Discards everything (library use, tests, benchmarks).
#[derive(Debug, Default)]
pub struct NoLog;

impl EventSink for NoLog {
    fn record(&self, _: Level, _: &str) {}
}

/// A reference-format log file.
#[derive(Debug)]
pub struct LogFile {
    logger: &'static str,
    level: Level,
    tutorial: bool,
    stderr: bool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    path: PathBuf,
    file: File,
    written: u64,
}

impl LogFile {
    /// Opens `dir/name` for `logger` (`tlslp.server` / `tlslp.client`),
    /// truncating in tutorial mode and appending otherwise.
    ///
    /// # Errors
    /// The directory or file cannot be created.
    pub fn open(
        dir: &Path,
        name: &str,
        logger: &'static str,
        level: Level,
        tutorial: bool,
    ) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let file = open_private(&path, tutorial)?;
        let written = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            logger,
            level,
            tutorial,
            stderr: true,
            state: Mutex::new(State {
                path,
                file,
                written,
            }),
        })
    }

    /// Stops copying WARNING and above to stderr (tests).
    pub fn quiet(mut self) -> Self {
        self.stderr = false;
        self
    }

    /// `$XDG_STATE_HOME/tlslp/logs`, falling back to `~/.local/state/tlslp/logs`.
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        base.join("tlslp").join("logs")
    }

    /// The file being written.
    pub fn path(&self) -> PathBuf {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .path
            .clone()
    }

    fn timestamp(&self) -> String {
        if self.tutorial {
            return TUTORIAL_TIMESTAMP.to_owned();
        }
        let now = OffsetDateTime::now_local().unwrap_or_else(|_| OffsetDateTime::now_utc());
        now.format(FORMAT)
            .unwrap_or_else(|_| TUTORIAL_TIMESTAMP.to_owned())
    }
}

impl EventSink for LogFile {
    fn record(&self, level: Level, message: &str) {
        if level < self.level {
            return;
        }
        let line = format!(
            "{} {} {}: {message}\n",
            self.timestamp(),
            level.name(),
            self.logger
        );
        if self.stderr && level >= Level::Warning {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.tutorial && state.written + line.len() as u64 > ROTATE_BYTES {
            rotate(&mut state);
        }
        if state.file.write_all(line.as_bytes()).is_ok() {
            state.written += line.len() as u64;
        }
    }
}

fn rotate(state: &mut State) {
    for index in (1..KEEP).rev() {
        let _ = fs::rename(
            numbered(&state.path, index),
            numbered(&state.path, index + 1),
        );
    }
    let _ = fs::rename(&state.path, numbered(&state.path, 1));
    if let Ok(file) = open_private(&state.path, false) {
        state.file = file;
        state.written = 0;
    }
}

/// Opens a log for appending (or truncated), readable by its owner only:
/// the log holds what clients answered (names, e-mail addresses). A file an
/// earlier release left readable by others is tightened.
fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut options = OpenOptions::new();
    options.create(true).mode(0o600);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    let file = options.open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

fn numbered(path: &Path, index: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| {
            fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        LogFile::open(dir.path(), "server.log", "tlslp.server", Level::Info, false).unwrap();
        assert_eq!(mode("server.log"), 0o600);
        fs::write(dir.path().join("old.log"), "from an earlier release\n").unwrap();
        fs::set_permissions(
            dir.path().join("old.log"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        LogFile::open(dir.path(), "old.log", "tlslp.server", Level::Info, false).unwrap();
        assert_eq!(mode("old.log"), 0o600);
        assert_eq!(
            fs::read_to_string(dir.path().join("old.log")).unwrap(),
            "from an earlier release\n"
        );
        LogFile::open(dir.path(), "old.log", "tlslp.server", Level::Info, true).unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("old.log")).unwrap(), "");
    }

    #[test]
    fn tutorial_lines_have_the_fixed_timestamp_and_level_filter() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(dir.path(), "server.log", "tlslp.server", Level::Info, true)
            .unwrap()
            .quiet();
        log.record(Level::Debug, "hidden");
        log.record(Level::Info, "Server starting");
        let text = fs::read_to_string(dir.path().join("server.log")).unwrap();
        assert_eq!(
            text,
            "2000-01-01T00:00:00+0100 INFO tlslp.server: Server starting\n"
        );
        // Tutorial mode truncates.
        let log = LogFile::open(dir.path(), "server.log", "tlslp.server", Level::Info, true)
            .unwrap()
            .quiet();
        log.record(Level::Info, "again");
        assert_eq!(
            fs::read_to_string(dir.path().join("server.log"))
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn normal_lines_carry_a_real_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::open(
            dir.path(),
            "client.log",
            "tlslp.client",
            Level::Debug,
            false,
        )
        .unwrap()
        .quiet();
        log.record(Level::Debug, "x");
        let text = fs::read_to_string(dir.path().join("client.log")).unwrap();
        let (timestamp, rest) = text.split_once(' ').unwrap();
        assert_eq!(timestamp.len(), 24, "{timestamp}");
        assert!(timestamp.starts_with("20") && timestamp.contains('T'));
        assert_eq!(rest, "DEBUG tlslp.client: x\n");
    }
}
