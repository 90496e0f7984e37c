//! Writing files with the right permissions: secrets 0600 in 0700 directories,
//! written whole (temporary file + rename) so a crash never leaves half a key.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::Error;

/// Who may read a file we write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileMode {
    /// Owner only (0600): private keys, databases.
    Secret,
    /// World-readable (0644): certificates.
    Public,
}

impl FileMode {
    fn bits(self) -> u32 {
        match self {
            Self::Secret => 0o600,
            Self::Public => 0o644,
        }
    }
}

/// Writes `contents` to `path` with `mode`, replacing it only when `overwrite`.
///
/// # Errors
/// [`Error::WouldOverwrite`] when the file exists and `overwrite` is false;
/// [`Error::Io`] naming the file otherwise.
pub fn write_file(
    path: &Path,
    contents: &[u8],
    mode: FileMode,
    overwrite: bool,
) -> Result<(), Error> {
    if !overwrite && path.exists() {
        return Err(Error::WouldOverwrite {
            path: path.to_owned(),
        });
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.bits())
            .open(&temp)?;
        // The umask may have narrowed the mode; never widened, but make it exact.
        file.set_permissions(fs::Permissions::from_mode(mode.bits()))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(Error::io(path))
}

/// Creates `dir` and its parents; a directory we create for secrets is 0700.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_0600_and_not_overwritten_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_file(&path, b"secret", FileMode::Secret, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(matches!(
            write_file(&path, b"other", FileMode::Secret, false),
            Err(Error::WouldOverwrite { .. })
        ));
        write_file(&path, b"other", FileMode::Public, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"other");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
}
