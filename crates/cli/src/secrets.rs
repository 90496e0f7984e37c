//! Secrets given as files (`--…-file PATH`), so they never appear in `ps`
//! or shell history: the first line, without its line ending.

use std::path::Path;

use anyhow::{bail, Context};
use zeroize::Zeroizing;

/// The secret in `path`: its first line, which must not be empty. Warns
/// when users other than the owner may read the file.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<String>> {
    use std::os::unix::fs::PermissionsExt as _;
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("{what} file {}", path.display()))?,
    );
    let secret = Zeroizing::new(text.lines().next().unwrap_or_default().to_owned());
    if secret.is_empty() {
        bail!("{what} file {}: the first line is empty", path.display());
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "{what} file can be read by other users; chmod 600 it"
            );
        }
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::read_secret_file;

    #[test]
    fn first_line_without_its_ending_and_empty_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\r\nignored\n").unwrap();
        assert_eq!(
            read_secret_file(&path, "secret").unwrap().as_str(),
            "s3cret"
        );
        std::fs::write(&path, "\nsecond").unwrap();
        let error = read_secret_file(&path, "HMAC secret")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("HMAC secret file") && error.contains("empty"),
            "{error}"
        );
        let missing = read_secret_file(&dir.path().join("missing"), "token").unwrap_err();
        assert!(format!("{missing:#}").contains("missing"), "{missing:#}");
    }
}
