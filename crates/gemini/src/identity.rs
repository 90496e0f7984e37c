//! Server certificates: given as files, or self-signed on first run and kept
//! (`<cert dir>/<host>.crt` and `.key`, the key 0600) so clients that pinned
//! the certificate on first use keep trusting the capsule after a restart.

use std::path::{Path, PathBuf};

use tessera_tls::{self_signed, Identity, KeyType, Usage};

use crate::Error;

/// Validity of a generated certificate. Gemini clients pin certificates, so a
/// long life spares users needless TOFU warnings.
pub const GENERATED_DAYS: u32 = 3650;

/// The certificate and key files for `host` in `cert_dir`.
pub fn generated_paths(cert_dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let stem = host.replace([':', '/'], "_");
    (
        cert_dir.join(format!("{stem}.crt")),
        cert_dir.join(format!("{stem}.key")),
    )
}

/// Loads `host`'s identity from `cert_dir`, generating and writing a
/// self-signed one first if there is none.
///
/// # Errors
/// A file that cannot be read, written or parsed (named in the error).
pub fn load_or_generate(cert_dir: &Path, host: &str) -> Result<Identity, Error> {
    let (cert, key) = generated_paths(cert_dir, host);
    if !cert.exists() && !key.exists() {
        tessera_tls::create_private_dir(cert_dir)?;
        let issued = self_signed(host, &[], Usage::Server, KeyType::default(), GENERATED_DAYS)?;
        issued.write(&cert, &key, false)?;
        tracing::info!(
            host,
            cert = %cert.display(),
            fingerprint = %tessera_tls::Fingerprint::of_der(issued.der()),
            "generated a self-signed certificate"
        );
    }
    Ok(Identity::load(&cert, &key)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path(), "example.org").unwrap();
        let again = load_or_generate(dir.path(), "example.org").unwrap();
        assert_eq!(first.leaf(), again.leaf());
        let other = load_or_generate(dir.path(), "other.example").unwrap();
        assert_ne!(first.leaf(), other.leaf());
    }
}
