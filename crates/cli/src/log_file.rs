//! `--log-file PATH`: log lines appended to a file instead of stderr. The
//! file is created 0600 (access and refusal lines name clients and paths),
//! and reopened on every reload (SIGHUP), so logrotate can move it away and
//! signal the server, which then writes to a new file at PATH.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

/// The process's log file, when --log-file names one.
static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

/// Opens `path` for the log lines of this process.
///
/// # Errors
/// The file cannot be created or opened for appending.
pub(crate) fn open(path: &Path) -> std::io::Result<()> {
    let file = open_append(path)?;
    let _ = LOG_FILE.set(LogFile {
        path: path.to_owned(),
        file: Mutex::new(file),
    });
    Ok(())
}

/// Reopens the log file at its path (after logrotate moved it); nothing
/// without --log-file. On an error the old file stays in use.
///
/// # Errors
/// The file cannot be opened again.
pub(crate) fn reopen() -> std::io::Result<()> {
    if let Some(log) = LOG_FILE.get() {
        let file = open_append(&log.path)?;
        *log.file.lock().unwrap_or_else(PoisonError::into_inner) = file;
    }
    Ok(())
}

/// Reopens the log file on every SIGHUP, in a task of its own (a server
/// calls this before it announces itself); nothing without --log-file.
///
/// # Errors
/// The signal handler cannot be installed.
pub(crate) fn reopen_on_sighup() -> std::io::Result<()> {
    if LOG_FILE.get().is_none() {
        return Ok(());
    }
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            if let Err(error) = reopen() {
                tracing::error!("cannot reopen the log file, still writing the old one: {error}");
            }
        }
    });
    Ok(())
}

/// Writes to the log file (each tracing event is one `write_all`).
pub(crate) struct Writer;

impl Write for Writer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match LOG_FILE.get() {
            Some(log) => log
                .file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write(bytes),
            None => std::io::stderr().write(bytes),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn lines_go_to_a_private_file_that_is_reopened_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.log");
        open(&path).unwrap();
        Writer.write_all(b"first\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // logrotate moves the file, then signals: lines go to a new file.
        std::fs::rename(&path, dir.path().join("tessera.log.1")).unwrap();
        Writer.write_all(b"still the old file\n").unwrap();
        reopen().unwrap();
        Writer.write_all(b"second\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tessera.log.1")).unwrap(),
            "first\nstill the old file\n"
        );
    }
}
