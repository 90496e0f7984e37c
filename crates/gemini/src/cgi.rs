//! CGI: executables in a directory answer the requests under a path prefix
//! (`--cgi /app/=DIR`: `/app/hello/x` runs `DIR/hello` with PATH_INFO `/x`).
//!
//! Safe by default: the script is run directly (no shell), with an empty
//! environment plus the variables Gemini servers share (`docs/CGI.md`),
//! stdin closed (it never sees another client's request, nor its own
//! beyond the URL; a Titan upload handed to it is its stdin, received whole
//! beforehand), in its directory, under a time limit, with its output
//! capped and the number of scripts running at once capped. Its stdout is
//! the response, whose header line is checked (a malformed one becomes
//! `42`); its stderr goes to the log.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tessera_guard::CanonicalPath;
use tessera_tls::CertificateInfo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use crate::proxy::Upstream;
use crate::{Error, Header, ServerTrust};

/// The PATH a script gets (never the server's).
const SCRIPT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
/// Bytes of a script's stderr logged at most.
const MAX_STDERR: usize = 16 * 1024;

/// Requests under a path prefix answered by CGI programs in a directory,
/// or forwarded to an SCGI application or another Gemini server.
#[derive(Clone, Debug)]
pub struct CgiRoute {
    /// Canonical, ending in `/`.
    prefix: String,
    target: Target,
}

#[derive(Clone, Debug)]
enum Target {
    /// Executables in this directory (canonical).
    Programs(PathBuf),
    /// A long-running application speaking SCGI.
    Scgi(ScgiAddress),
    /// Another Gemini server (`proxy.rs`).
    Proxy(Upstream),
}

#[derive(Clone, Debug)]
enum ScgiAddress {
    Unix(PathBuf),
    /// Loopback only.
    Tcp(SocketAddr),
}

impl CgiRoute {
    /// A route from `prefix` (a path, e.g. `/app/`) to the programs in `dir`.
    ///
    /// # Errors
    /// [`Error::Config`] for a prefix that is not a canonical absolute path,
    /// or a directory that cannot be read.
    pub fn new(prefix: &str, dir: &Path) -> Result<Self, Error> {
        let prefix = canonical_prefix(prefix)?;
        let dir = dir
            .canonicalize()
            .map_err(|error| Error::Config(format!("CGI directory {}: {error}", dir.display())))?;
        if !dir.is_dir() {
            return Err(Error::Config(format!(
                "CGI directory {}: not a directory",
                dir.display()
            )));
        }
        Ok(Self {
            prefix,
            target: Target::Programs(dir),
        })
    }

    /// A route from `prefix` to the SCGI application at `address`: a Unix
    /// socket (a path, with a `/`) or a loopback `HOST:PORT`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad prefix, or an address that is neither.
    pub fn scgi(prefix: &str, address: &str) -> Result<Self, Error> {
        let prefix = canonical_prefix(prefix)?;
        let address = if address.contains('/') {
            ScgiAddress::Unix(PathBuf::from(address))
        } else {
            let tcp = address
                .strip_prefix("localhost:")
                .map_or_else(|| address.parse().ok(), |port| {
                    port.parse().ok().map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
                })
                .filter(|tcp: &SocketAddr| tcp.ip().is_loopback())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "SCGI address {address:?}: expected a Unix socket path or a loopback HOST:PORT"
                    ))
                })?;
            ScgiAddress::Tcp(tcp)
        };
        Ok(Self {
            prefix,
            target: Target::Scgi(address),
        })
    }

    /// A route from `prefix` to the Gemini server at `upstream`
    /// (`gemini://HOST[:PORT][/PATH/]`), verified as `trust` says (pins in
    /// a TOFU store, or CA roots).
    ///
    /// # Errors
    /// [`Error::Config`] for a bad prefix or upstream.
    pub fn proxy(prefix: &str, upstream: &str, trust: ServerTrust) -> Result<Self, Error> {
        Ok(Self {
            prefix: canonical_prefix(prefix)?,
            target: Target::Proxy(Upstream::new(upstream, trust)?),
        })
    }

    /// `PREFIX=URL`, as the `--proxy` flag takes it.
    ///
    /// # Errors
    /// As [`CgiRoute::proxy`], or no `=`.
    pub fn parse_proxy(spec: &str, trust: ServerTrust) -> Result<Self, Error> {
        let (prefix, upstream) = spec
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--proxy {spec:?}: expected PREFIX=URL")))?;
        Self::proxy(prefix, upstream, trust)
    }

    /// `PREFIX=DIR`, as the `--cgi` flag takes it.
    ///
    /// # Errors
    /// As [`CgiRoute::new`], or no `=`.
    pub fn parse(spec: &str) -> Result<Self, Error> {
        let (prefix, dir) = spec
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--cgi {spec:?}: expected PREFIX=DIR")))?;
        Self::new(prefix, Path::new(dir))
    }

    /// `PREFIX=ADDRESS`, as the `--scgi` flag takes it.
    ///
    /// # Errors
    /// As [`CgiRoute::scgi`], or no `=`.
    pub fn parse_scgi(spec: &str) -> Result<Self, Error> {
        let (prefix, address) = spec
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--scgi {spec:?}: expected PREFIX=ADDRESS")))?;
        Self::scgi(prefix, address)
    }

    /// The prefix it serves (ending in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// `prefix` if it is a canonical absolute path, ending in `/`.
pub(crate) fn canonical_prefix(prefix: &str) -> Result<String, Error> {
    let canonical = CanonicalPath::parse(prefix)
        .ok()
        .filter(|path| {
            prefix.starts_with('/')
                && path.as_str().trim_end_matches('/') == prefix.trim_end_matches('/')
        })
        .ok_or_else(|| {
            Error::Config(format!(
                "CGI prefix {prefix:?}: expected a path such as /cgi/ (no dot or empty segments, no escapes)"
            ))
        })?;
    let mut prefix = canonical.as_str().to_owned();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    Ok(prefix)
}

/// Limits on scripts. Defaults: 10 s, 4 MiB of output, 16 at once.
#[derive(Clone, Copy, Debug)]
pub struct CgiLimits {
    /// A script still running after this is killed and the client gets `42`.
    pub timeout: Duration,
    /// Bytes of output (header and body) at most; more is a `42`.
    pub max_output: usize,
    /// Scripts running at once; beyond, clients get `41`.
    pub max_running: usize,
}

impl Default for CgiLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            max_output: 4 * 1024 * 1024,
            max_running: 16,
        }
    }
}

/// What a script is told about the request.
#[derive(Debug)]
pub(crate) struct CgiRequest<'a> {
    pub(crate) url: &'a Url,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) path: &'a CanonicalPath,
    pub(crate) certificate: Option<&'a CertificateInfo>,
    /// The client's keyed id (REMOTE_HOST).
    pub(crate) client: &'a str,
    /// The client's address (REMOTE_ADDR), when the operator logs addresses.
    pub(crate) address: Option<IpAddr>,
    /// A Titan upload for the handler, if this is one.
    pub(crate) upload: Option<&'a Spooled>,
}

/// A Titan upload handed to a handler: received whole into an unnamed
/// temporary file, rewound.
#[derive(Debug)]
pub(crate) struct Spooled {
    pub(crate) file: std::fs::File,
    pub(crate) size: u64,
    /// The upload's media type (CONTENT_TYPE).
    pub(crate) mime: String,
}

/// The CGI routes of a server and the scripts running now.
#[derive(Debug)]
pub(crate) struct Cgi {
    routes: Vec<CgiRoute>,
    limits: CgiLimits,
    running: Arc<Semaphore>,
}

/// The answer when every running slot is taken.
fn busy() -> (Header, Option<Vec<u8>>) {
    (Header::new(41, "Server busy, try again"), None)
}

/// The script a path runs.
struct Script<'a> {
    dir: &'a Path,
    file: PathBuf,
    name: String,
    path_info: String,
}

impl Cgi {
    pub(crate) fn new(routes: Vec<CgiRoute>, limits: CgiLimits) -> Self {
        Self {
            routes,
            running: Arc::new(Semaphore::new(limits.max_running.max(1))),
            limits,
        }
    }

    /// One of the running slots, which scripts, SCGI exchanges and proxied
    /// requests share; `None` when all are taken (the client gets [`busy`]).
    fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.running.clone().try_acquire_owned().ok()
    }

    /// Whether a CGI route covers `path` (then the script answers, or 51).
    pub(crate) fn covers(&self, path: &CanonicalPath) -> bool {
        self.route(path).is_some()
    }

    /// Whether a script or an SCGI application (not a proxied server) answers `path`.
    pub(crate) fn takes_uploads(&self, path: &CanonicalPath) -> bool {
        self.route(path)
            .is_some_and(|route| !matches!(route.target, Target::Proxy(_)))
    }

    fn route(&self, path: &CanonicalPath) -> Option<&CgiRoute> {
        self.routes
            .iter()
            .filter(|route| path.as_str().starts_with(&route.prefix))
            .max_by_key(|route| route.prefix.len())
    }

    /// The executable `path` names: its first segment below the prefix, a
    /// plain file name in the route's directory (never a hidden one, never
    /// outside it), with the execute bit.
    fn script(&self, path: &CanonicalPath) -> Option<Script<'_>> {
        use std::os::unix::fs::PermissionsExt;
        let route = self.route(path)?;
        let Target::Programs(dir) = &route.target else {
            return None;
        };
        let rest = &path.as_str()[route.prefix.len()..];
        let (name, path_info) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, ""),
        };
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !plain {
            return None;
        }
        let file = dir.join(name).canonicalize().ok()?;
        let metadata = file.metadata().ok()?;
        let runnable = file.starts_with(dir)
            && metadata.is_file()
            && metadata.permissions().mode() & 0o111 != 0;
        runnable.then(|| Script {
            dir,
            file,
            name: format!("{}{name}", route.prefix),
            path_info: path_info.to_owned(),
        })
    }

    /// Runs the script for `request`: its header and body, or the status
    /// that says why there is none.
    pub(crate) async fn run(&self, request: &CgiRequest<'_>) -> (Header, Option<Vec<u8>>) {
        if let Some(route) = self.route(request.path) {
            match &route.target {
                Target::Scgi(address) => return self.forward(route, address, request).await,
                Target::Proxy(_) if request.upload.is_some() => {
                    return (
                        Header::bad_request("Uploads are not accepted at this path"),
                        None,
                    );
                }
                Target::Proxy(upstream) => {
                    let Some(_running) = self.slot() else {
                        return busy();
                    };
                    let rest = &request.path.as_str()[route.prefix.len()..];
                    return upstream
                        .forward(&route.prefix, rest, request, self.limits)
                        .await;
                }
                Target::Programs(_) => {}
            }
        }
        let Some(script) = self.script(request.path) else {
            return (Header::not_found(), None);
        };
        let Some(_running) = self.slot() else {
            return busy();
        };
        let stdin = match request.upload {
            None => Stdio::null(),
            Some(upload) => match upload.file.try_clone() {
                Ok(file) => Stdio::from(file),
                Err(error) => {
                    tracing::warn!(script = %script.name, %error, "upload not handed over");
                    return (Header::new(42, "CGI error"), None);
                }
            },
        };
        let mut command = tokio::process::Command::new(&script.file);
        command
            .env_clear()
            .envs(environment(request, &script.name, &script.path_info))
            .env("PATH", SCRIPT_PATH)
            .current_dir(script.dir)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                tracing::warn!(script = %script.name, %error, "CGI script did not start");
                return (Header::new(42, "CGI error"), None);
            }
        };
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return (Header::new(42, "CGI error"), None);
        };
        let group = child.id();
        let cap = self.limits.max_output;
        let finished = async {
            let (output, errors) = tokio::join!(
                read_capped(stdout, cap + 1),
                read_capped(stderr, MAX_STDERR)
            );
            let status = child.wait().await;
            (output, errors, status)
        };
        let outcome = tokio::time::timeout(self.limits.timeout, finished).await;
        let Ok((output, errors, status)) = outcome else {
            // Too slow: the script's whole process group goes (what it
            // started in the background too), while the script is still
            // ours and unreaped, so the group id cannot name anyone else.
            kill_group(group);
            let seconds = self.limits.timeout.as_secs_f64();
            tracing::warn!(script = %script.name, seconds, "CGI script killed: too slow");
            return (Header::new(42, "CGI script timed out"), None);
        };
        for line in String::from_utf8_lossy(&errors).lines() {
            tracing::warn!(script = %script.name, "{line}");
        }
        if let Ok(status) = status {
            if !status.success() {
                tracing::warn!(script = %script.name, %status, "CGI script failed");
            }
        }
        if output.len() > cap {
            tracing::warn!(script = %script.name, max_output = cap, "CGI output too large");
            return (Header::new(42, "CGI output too large"), None);
        }
        response(&output).unwrap_or_else(|why| {
            tracing::warn!(script = %script.name, why, "CGI script sent a malformed header");
            (Header::new(42, "CGI error"), None)
        })
    }
}

impl Cgi {
    /// Forwards `request` to the SCGI application at `address`, under the
    /// same limits as a script: the answer within the time limit, at most
    /// the output cap, one of the running slots.
    async fn forward(
        &self,
        route: &CgiRoute,
        address: &ScgiAddress,
        request: &CgiRequest<'_>,
    ) -> (Header, Option<Vec<u8>>) {
        let Some(_running) = self.slot() else {
            return busy();
        };
        let script_name = route.prefix.trim_end_matches('/');
        let path_info = &request.path.as_str()[script_name.len()..];
        let environment = environment(request, script_name, path_info);
        let header = scgi_header(request.upload.map_or(0, |upload| upload.size), &environment);
        let cap = self.limits.max_output;
        let exchange = async {
            let mut stream: Box<dyn AsyncReadWrite> = match address {
                ScgiAddress::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
                ScgiAddress::Tcp(tcp) => Box::new(tokio::net::TcpStream::connect(tcp).await?),
            };
            stream.write_all(&header).await?;
            if let Some(upload) = request.upload {
                let mut body = tokio::fs::File::from_std(upload.file.try_clone()?);
                tokio::io::copy(&mut body, &mut stream).await?;
            }
            stream.flush().await?;
            std::io::Result::Ok(read_capped(stream, cap + 1).await)
        };
        let output = match tokio::time::timeout(self.limits.timeout, exchange).await {
            Ok(Ok(output)) => output,
            Ok(Err(error)) => {
                tracing::warn!(prefix = %route.prefix, %error, "SCGI application unreachable");
                return (Header::new(43, "SCGI application unavailable"), None);
            }
            Err(_) => {
                tracing::warn!(prefix = %route.prefix, "SCGI application too slow");
                return (Header::new(42, "SCGI application timed out"), None);
            }
        };
        if output.len() > cap {
            tracing::warn!(prefix = %route.prefix, max_output = cap, "SCGI output too large");
            return (Header::new(42, "SCGI output too large"), None);
        }
        response(&output).unwrap_or_else(|why| {
            tracing::warn!(prefix = %route.prefix, why, "SCGI application sent a malformed header");
            (Header::new(42, "SCGI error"), None)
        })
    }
}

/// A stream to an SCGI application.
trait AsyncReadWrite: AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

/// The SCGI request header: a netstring of NUL-separated names and values,
/// CONTENT_LENGTH first (0 but for a Titan upload) and SCGI=1.
fn scgi_header(content_length: u64, environment: &[(&'static str, String)]) -> Vec<u8> {
    let mut fields = Vec::new();
    let content_length = content_length.to_string();
    let pairs = [("CONTENT_LENGTH", content_length.as_str()), ("SCGI", "1")]
        .into_iter()
        .chain(
            environment
                .iter()
                .filter(|(name, _)| *name != "CONTENT_LENGTH")
                .map(|(name, value)| (*name, value.as_str())),
        );
    for (name, value) in pairs {
        fields.extend_from_slice(name.as_bytes());
        fields.push(0);
        // A NUL would end the value early: none of ours has one.
        fields.extend(value.bytes().filter(|&b| b != 0));
        fields.push(0);
    }
    let mut netstring = format!("{}:", fields.len()).into_bytes();
    netstring.extend_from_slice(&fields);
    netstring.push(b',');
    netstring
}

/// Sends SIGKILL to the process group `leader` leads (its pid).
fn kill_group(leader: Option<u32>) {
    let group = leader
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

/// The script's output as a response: a valid header line (CRLF, or a bare
/// LF as many scripts write it), then the body, kept for `2x` only.
fn response(output: &[u8]) -> Result<(Header, Option<Vec<u8>>), &'static str> {
    let end = output
        .iter()
        .take(crate::MAX_META + 8)
        .position(|&b| b == b'\n')
        .ok_or("no header line")?;
    let line = output[..end].strip_suffix(b"\r").unwrap_or(&output[..end]);
    let header = Header::parse(line).map_err(|_| "not a Gemini header")?;
    let body = (header.status / 10 == 2).then(|| output[end + 1..].to_vec());
    Ok((header, body))
}

/// Reads `from` to its end or to `cap` bytes, whichever comes first: past
/// the cap the pipe is closed, so a script still writing gets EPIPE (or
/// SIGPIPE) instead of being read forever.
async fn read_capped(from: impl AsyncRead + Unpin, cap: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut from = from;
    let mut chunk = [0u8; 8192];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..n.min(room)]);
                if kept.len() >= cap {
                    // Past the cap: the answer is decided, stop reading.
                    return kept;
                }
            }
        }
    }
}

/// The variables Gemini servers give scripts, and nothing of the server's own.
fn environment(
    request: &CgiRequest<'_>,
    script_name: &str,
    path_info: &str,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
        (
            "SERVER_PROTOCOL",
            if request.upload.is_some() {
                "TITAN"
            } else {
                "GEMINI"
            }
            .to_owned(),
        ),
        (
            "SERVER_SOFTWARE",
            concat!("tessera/", env!("CARGO_PKG_VERSION")).to_owned(),
        ),
        ("SERVER_NAME", request.host.to_owned()),
        ("SERVER_PORT", request.port.to_string()),
        ("GEMINI_URL", request.url.as_str().to_owned()),
        ("SCRIPT_NAME", script_name.to_owned()),
        ("PATH_INFO", path_info.to_owned()),
        ("QUERY_STRING", request.url.query().unwrap_or("").to_owned()),
        ("REMOTE_HOST", request.client.to_owned()),
    ];
    if let Some(address) = request.address {
        env.push(("REMOTE_ADDR", address.to_string()));
    }
    if let Some(upload) = request.upload {
        env.push(("CONTENT_LENGTH", upload.size.to_string()));
        env.push(("CONTENT_TYPE", upload.mime.clone()));
    }
    if let Some(cert) = request.certificate {
        let time = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        env.push(("AUTH_TYPE", "Certificate".to_owned()));
        env.push(("TLS_CLIENT_HASH", cert.fingerprint().to_string()));
        env.push(("TLS_CLIENT_SUBJECT", cert.subject().to_owned()));
        env.push(("TLS_CLIENT_NOT_BEFORE", time(cert.not_before())));
        env.push(("TLS_CLIENT_NOT_AFTER", time(cert.not_after())));
        if let Some(name) = cert.common_name() {
            env.push(("REMOTE_USER", name.to_owned()));
        }
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_line_is_checked_and_the_body_kept_for_success_only() {
        let (header, body) = response(b"20 text/gemini\r\n# Hi\n").unwrap();
        assert_eq!((header.status, header.meta.as_str()), (20, "text/gemini"));
        assert_eq!(body.unwrap(), b"# Hi\n");
        let (header, body) = response(b"51 Nothing here\nignored").unwrap();
        assert_eq!(header.status, 51);
        assert!(body.is_none());
        for bad in [
            &b"hello\r\n"[..],
            b"",
            b"20 text/gemini",
            b"99 x\r\n",
            b"2 x\r\n",
        ] {
            assert!(response(bad).is_err(), "{bad:?}");
        }
    }

    /// A CGI directory with a script, a hidden one, a plain file and a
    /// symbolic link to a program outside it.
    fn scripts() -> (tempfile::TempDir, Cgi) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("cgi");
        std::fs::create_dir(&bin).unwrap();
        for name in ["hello", ".hidden"] {
            std::fs::write(bin.join(name), "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        std::fs::write(bin.join("data.txt"), "x").unwrap();
        std::os::unix::fs::symlink("/bin/sh", bin.join("shell")).unwrap();
        let cgi = Cgi::new(
            vec![CgiRoute::new("/app/", &bin).unwrap()],
            CgiLimits::default(),
        );
        (dir, cgi)
    }

    #[test]
    fn only_plain_executables_inside_the_directory_run() {
        let (dir, cgi) = scripts();
        let script = |path: &str| {
            cgi.script(&CanonicalPath::parse(path).unwrap())
                .map(|s| (s.name, s.path_info))
        };
        assert_eq!(
            script("/app/hello/a/b"),
            Some(("/app/hello".to_owned(), "/a/b".to_owned()))
        );
        assert_eq!(
            script("/app/hello"),
            Some(("/app/hello".to_owned(), String::new()))
        );
        for refused in [
            "/app/",
            "/app/.hidden",
            "/app/data.txt",
            "/app/shell",
            "/app/missing",
            "/other/hello",
        ] {
            assert_eq!(script(refused), None, "{refused}");
        }
        drop(dir);
    }

    proptest::proptest! {
        /// No request path runs anything outside the CGI directory.
        #[test]
        fn no_path_runs_a_program_outside_the_directory(
            segments in proptest::collection::vec("[a-z.%2F/\\\\-]{0,12}|hello|shell|\\.\\.", 0..5)
        ) {
            let (dir, cgi) = scripts();
            let raw = format!("/app/{}", segments.join("/"));
            if let Ok(path) = CanonicalPath::parse(&raw) {
                if let Some(script) = cgi.script(&path) {
                    let inside = dir.path().join("cgi").canonicalize().unwrap();
                    proptest::prop_assert!(script.file.starts_with(&inside), "{raw}");
                    proptest::prop_assert_eq!(script.file.file_name().unwrap(), "hello");
                }
            }
        }
    }

    #[test]
    fn the_scgi_header_is_a_netstring_with_content_length_first() {
        let header = scgi_header(0, &[("PATH_INFO", "/x".to_owned())]);
        assert_eq!(
            header,
            b"37:CONTENT_LENGTH\x000\x00SCGI\x001\x00PATH_INFO\x00/x\x00,"
        );
        // An upload's length is the one CONTENT_LENGTH, first.
        let environment = [
            ("CONTENT_LENGTH", "12".to_owned()),
            ("CONTENT_TYPE", "text/plain".to_owned()),
        ];
        assert_eq!(
            scgi_header(12, &environment),
            b"49:CONTENT_LENGTH\x0012\x00SCGI\x001\x00CONTENT_TYPE\x00text/plain\x00,"
        );
        assert!(CgiRoute::scgi("/app/", "127.0.0.1:4000").is_ok());
        assert!(CgiRoute::scgi("/app/", "localhost:4000").is_ok());
        assert!(CgiRoute::scgi("/app/", "/run/app.sock").is_ok());
        assert!(CgiRoute::scgi("/app/", "192.0.2.1:4000").is_err());
        assert!(CgiRoute::scgi("/app/", "nowhere").is_err());
    }

    #[test]
    fn prefixes_must_be_canonical_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(CgiRoute::new("/app", dir.path()).unwrap().prefix(), "/app/");
        for bad in ["app/", "/a/../b/", "//app/", "/%61pp/"] {
            assert!(CgiRoute::new(bad, dir.path()).is_err(), "{bad}");
        }
        assert!(CgiRoute::new("/app/", &dir.path().join("missing")).is_err());
    }
}
