//! Titan uploads on the Gemini port: `titan://host/path;size=N;mime=T;token=X`
//! followed by N bytes. An upload is accepted under a configured prefix
//! only, authorised by a token or by the certificate rules covering its
//! path, its size checked before a byte of it is read, and written
//! atomically (a temporary file renamed into place) below the route's
//! directory, never outside it. The reply redirects to the `gemini://` URL
//! of the result, as Titan clients expect.
//!
//! With [`TitanSettings::to_handlers`], an upload under a CGI or SCGI prefix
//! is received whole into an unnamed temporary file first (so a slow client
//! never holds a script's slot or time), then handed to the handler, whose
//! answer is the reply.

use std::path::{Path, PathBuf};

use tessera_guard::CanonicalPath;

use crate::request::{parse_request, Request};
use crate::Error;

/// Uploads under `prefix` are written below `dir`.
#[derive(Clone, Debug)]
pub struct TitanRoute {
    /// Canonical, ending in `/`.
    prefix: String,
    dir: PathBuf,
}

impl TitanRoute {
    /// A route from `prefix` to the existing directory `dir`.
    ///
    /// # Errors
    /// [`Error::Config`] for a prefix that is not a canonical path or a
    /// directory that cannot be read.
    pub fn new(prefix: &str, dir: &Path) -> Result<Self, Error> {
        let prefix = crate::cgi::canonical_prefix(prefix)?;
        let dir = dir
            .canonicalize()
            .ok()
            .filter(|dir| dir.is_dir())
            .ok_or_else(|| {
                Error::Config(format!(
                    "Titan directory {}: not a directory",
                    dir.display()
                ))
            })?;
        Ok(Self { prefix, dir })
    }

    /// `PREFIX=DIR`, as `--titan` takes it.
    ///
    /// # Errors
    /// As [`TitanRoute::new`], or no `=`.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let (prefix, dir) = spec
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--titan {spec:?}: expected PREFIX=DIR")))?;
        Self::new(prefix, Path::new(dir))
    }
}

/// Where and how uploads are accepted.
#[derive(Clone, Debug)]
pub struct TitanSettings {
    /// The prefixes that take uploads.
    pub routes: Vec<TitanRoute>,
    /// Largest upload, in bytes (default 10 MiB).
    pub max_size: u64,
    /// A token that authorises uploads anywhere under the routes.
    pub token: Option<String>,
    /// Uploads under a CGI or SCGI prefix go to that handler (off by default:
    /// a script written for requests should not be sent bodies unasked).
    pub to_handlers: bool,
}

impl Default for TitanSettings {
    fn default() -> Self {
        Self {
            routes: Vec::new(),
            max_size: 10 * 1024 * 1024,
            token: None,
            to_handlers: false,
        }
    }
}

/// A parsed Titan request line.
#[derive(Debug)]
pub(crate) struct Upload {
    /// The URL without its parameters, as a `gemini://` request (host, port, path).
    pub(crate) request: Request,
    pub(crate) size: u64,
    pub(crate) token: Option<String>,
    /// The `mime` parameter, if given (Titan's default is `text/gemini`).
    pub(crate) mime: Option<String>,
}

/// Why an upload is refused with `59`.
pub(crate) type Refusal = &'static str;

/// Parses `titan://host/path;size=N[;mime=T][;token=X]`.
pub(crate) fn parse_upload(line: &[u8]) -> Result<Upload, Refusal> {
    let text = std::str::from_utf8(line).map_err(|_| "Request is not UTF-8")?;
    let rest = text.strip_prefix("titan://").ok_or("Not a Titan request")?;
    let (base, parameters) = rest.split_once(';').ok_or("Titan request without size")?;
    let request =
        parse_request(format!("gemini://{base}").as_bytes()).map_err(|_| "Invalid Titan URL")?;
    let (mut size, mut token, mut mime) = (None, None, None);
    for parameter in parameters.split(';') {
        match parameter.split_once('=') {
            Some(("size", n)) => size = Some(n.parse::<u64>().map_err(|_| "Invalid size")?),
            Some(("token", t)) => token = Some(t.to_owned()),
            Some(("mime", m)) => {
                // It may reach a handler's environment: a plain media type only.
                let plain = !m.is_empty()
                    && m.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"\\\"".contains(&b));
                mime = Some(plain.then(|| m.to_owned()).ok_or("Invalid mime")?);
            }
            _ => return Err("Unknown Titan parameter"),
        }
    }
    Ok(Upload {
        request,
        size: size.ok_or("Titan request without size")?,
        token,
        mime,
    })
}

impl TitanSettings {
    /// The file an upload to `path` writes, if a route takes it: below the
    /// route's directory, every segment a plain name (letters, digits, `.`,
    /// `_`, `-`; none hidden), so nothing can land outside it.
    pub(crate) fn target(&self, path: &CanonicalPath) -> Option<UploadTarget> {
        let route = self
            .routes
            .iter()
            .filter(|route| path.as_str().starts_with(&route.prefix))
            .max_by_key(|route| route.prefix.len())?;
        let rest = &path.as_str()[route.prefix.len()..];
        let plain = |segment: &str| {
            !segment.is_empty()
                && !segment.starts_with('.')
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        rest.split('/').all(plain).then(|| UploadTarget {
            dir: route.dir.clone(),
            file: route.dir.join(rest),
        })
    }

    /// Whether `token` is the configured one (compared in constant time).
    pub(crate) fn token_matches(&self, token: Option<&str>) -> bool {
        use subtle::ConstantTimeEq;
        match (&self.token, token) {
            (Some(expected), Some(given)) => expected.as_bytes().ct_eq(given.as_bytes()).into(),
            _ => false,
        }
    }
}

/// Where an upload goes: `file`, which must stay below `dir` (the route's
/// directory, canonical).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UploadTarget {
    pub(crate) dir: PathBuf,
    pub(crate) file: PathBuf,
}

/// Writes `body` (its first bytes `head`, the rest read from `stream`,
/// `size` in all) to `target` atomically: a temporary file next to it,
/// renamed into place once complete. Each read waits at most `idle`. The
/// directory it lands in is resolved first (symbolic links followed) and
/// must be below the route's: a link in the upload tree that points
/// elsewhere is refused, never written through. Returns the file written.
pub(crate) async fn store<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    head: &[u8],
    size: u64,
    target: &UploadTarget,
    idle: std::time::Duration,
) -> std::io::Result<PathBuf> {
    let parent = target
        .file
        .parent()
        .ok_or(std::io::ErrorKind::InvalidInput)?;
    let name = target
        .file
        .file_name()
        .ok_or(std::io::ErrorKind::InvalidInput)?
        .to_string_lossy();
    tokio::fs::create_dir_all(parent).await?;
    let parent = tokio::fs::canonicalize(parent).await?;
    if !parent.starts_with(&target.dir) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "a symbolic link leads out of the upload directory",
        ));
    }
    let destination = parent.join(&*name);
    let temporary = parent.join(format!(".{name}.{:016x}.upload", rand::random::<u64>()));
    let written = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .await?;
        receive(stream, head, size, &mut file, idle).await?;
        file.sync_all().await?;
        tokio::fs::rename(&temporary, &destination).await
    };
    let result = written.await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temporary).await;
    }
    result.map(|()| destination)
}

/// Receives a whole upload into an unnamed temporary file (gone when
/// closed), rewound for the handler to read. Each read waits at most `idle`.
pub(crate) async fn spool<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    head: &[u8],
    size: u64,
    idle: std::time::Duration,
) -> std::io::Result<std::fs::File> {
    use tokio::io::AsyncSeekExt;
    let mut file = tokio::fs::File::from_std(tempfile::tempfile()?);
    receive(stream, head, size, &mut file, idle).await?;
    file.rewind().await?;
    Ok(file.into_std().await)
}

/// Copies the `size` bytes of an upload to `file`: `head`, which came with
/// the request line, then the rest from `stream`.
async fn receive<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    head: &[u8],
    size: u64,
    file: &mut tokio::fs::File,
    idle: std::time::Duration,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    file.write_all(head).await?;
    let mut left = size - head.len() as u64;
    let mut chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let want = usize::try_from(left.min(chunk.len() as u64)).unwrap_or(chunk.len());
        let n = tokio::time::timeout(idle, stream.read(&mut chunk[..want]))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        file.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    file.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titan_lines_parse_with_their_parameters() {
        let upload =
            parse_upload(b"titan://example.org/files/a.gmi;size=12;mime=text/gemini;token=s3")
                .unwrap();
        assert_eq!(upload.request.host, "example.org");
        assert_eq!(upload.request.path.as_str(), "/files/a.gmi");
        assert_eq!((upload.size, upload.token.as_deref()), (12, Some("s3")));
        for bad in [
            &b"titan://example.org/a"[..],
            b"titan://example.org/a;size=x",
            b"titan://example.org/a;mime=text/plain",
            b"titan://example.org/a;size=1;evil=1",
            b"gemini://example.org/a;size=1",
            b"titan://user@example.org/a;size=1",
        ] {
            assert!(
                parse_upload(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn uploads_land_below_their_directory_only() {
        let dir = tempfile::tempdir().unwrap();
        let settings = TitanSettings {
            routes: vec![TitanRoute::new("/files/", dir.path()).unwrap()],
            ..TitanSettings::default()
        };
        let target = |path: &str| settings.target(&CanonicalPath::parse(path).unwrap());
        let root = dir.path().canonicalize().unwrap();
        let file = |path: &str| target(path).map(|t| t.file);
        assert_eq!(file("/files/a.gmi"), Some(root.join("a.gmi")));
        assert_eq!(file("/files/sub/b.txt"), Some(root.join("sub/b.txt")));
        for refused in [
            "/files/",
            "/files/.hidden",
            "/files/sub/",
            "/other/a",
            "/files/a%2Fb",
        ] {
            assert_eq!(target(refused), None, "{refused}");
        }
    }

    #[tokio::test]
    async fn a_link_out_of_the_upload_directory_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let (uploads, outside) = (dir.path().join("uploads"), dir.path().join("outside"));
        std::fs::create_dir_all(&uploads).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, uploads.join("link")).unwrap();
        let settings = TitanSettings {
            routes: vec![TitanRoute::new("/files/", &uploads).unwrap()],
            ..TitanSettings::default()
        };
        let idle = std::time::Duration::from_secs(5);
        let through = settings
            .target(&CanonicalPath::parse("/files/link/x.gmi").unwrap())
            .unwrap();
        let refused = store(&mut &b""[..], b"hi", 2, &through, idle).await;
        assert_eq!(
            refused.unwrap_err().kind(),
            std::io::ErrorKind::PermissionDenied
        );
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let inside = settings
            .target(&CanonicalPath::parse("/files/sub/x.gmi").unwrap())
            .unwrap();
        let written = store(&mut &b""[..], b"hi", 2, &inside, idle).await.unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"hi");
    }
}
