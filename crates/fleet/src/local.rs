//! A `redis-server` of our own on a free loopback port, stopped when dropped:
//! what `tessera demo --fleet` and the tests run against. It keeps nothing on
//! disk beyond its temporary directory, which goes with it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::Digest;

use crate::Error;

/// How long a started server has to answer PING.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports tried before giving up (another process may take a free port first).
const ATTEMPTS: usize = 5;

/// Settings of a local server.
#[derive(Clone, Debug, Default)]
pub struct LocalOptions {
    /// An ACL user `(name, password)` allowed everything, with the default user disabled.
    pub user: Option<(String, String)>,
    /// Pin the server to this CPU (with `taskset`), for benchmarks that keep
    /// the load generator on another.
    pub cpu: Option<usize>,
    /// Serve TLS only, with this certificate and key (PEM files).
    pub tls: Option<LocalTls>,
}

/// The certificate a TLS-only local server presents.
#[derive(Clone, Debug)]
pub struct LocalTls {
    /// Certificate chain (PEM), for `localhost`.
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The CA that issued it (PEM); Redis needs one even when clients send no certificate.
    pub ca: PathBuf,
}

/// A running `redis-server`, killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct LocalRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    options: LocalOptions,
}

impl LocalRedis {
    /// Whether `redis-server` can be started here.
    pub fn installed() -> bool {
        Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Starts a server without authentication on a free loopback port.
    ///
    /// # Errors
    /// [`Error::LocalServer`] when it is not installed or does not come up.
    pub fn start() -> Result<Self, Error> {
        Self::start_with(LocalOptions::default())
    }

    /// Starts a server with `options`.
    ///
    /// # Errors
    /// As [`LocalRedis::start`].
    pub fn start_with(options: LocalOptions) -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!(
            "tessera-redis-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir)
            .map_err(|error| Error::LocalServer(format!("{}: {error}", dir.display())))?;
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            options,
        };
        let mut last = String::new();
        for _ in 0..ATTEMPTS {
            let port = free_port()?;
            match server.launch(port) {
                Ok(()) => return Ok(server),
                Err(error) => last = error.to_string(),
            }
        }
        Err(Error::LocalServer(last))
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://localhost:PORT/0` with TLS),
    /// with the ACL user when there is one.
    pub fn url(&self) -> String {
        let (scheme, host) = match self.options.tls {
            Some(_) => ("rediss", "localhost"),
            None => ("redis", "127.0.0.1"),
        };
        match &self.options.user {
            Some((user, _)) => format!("{scheme}://{user}@{host}:{}/0", self.port),
            None => format!("{scheme}://{host}:{}/0", self.port),
        }
    }

    /// Kills the server (as a crash would); [`LocalRedis::restart`] brings it back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (nothing is saved).
    ///
    /// # Errors
    /// [`Error::LocalServer`] when it does not come up.
    pub fn restart(&mut self) -> Result<(), Error> {
        self.kill();
        self.launch(self.port)
    }

    fn launch(&mut self, port: u16) -> Result<(), Error> {
        let config = self.dir.join("redis.conf");
        let mut text = format!(
            "bind 127.0.0.1\nprotected-mode yes\nsave \"\"\nappendonly no\n\
             daemonize no\nloglevel warning\ndir {}\nlogfile {}\n",
            self.dir.display(),
            self.dir.join("redis.log").display()
        );
        match &self.options.tls {
            Some(tls) => text.push_str(&format!(
                "port 0\ntls-port {port}\ntls-cert-file {}\ntls-key-file {}\n\
                 tls-ca-cert-file {}\ntls-auth-clients no\n",
                tls.cert.display(),
                tls.key.display(),
                tls.ca.display()
            )),
            None => text.push_str(&format!("port {port}\n")),
        }
        if let Some((user, password)) = &self.options.user {
            // The password as its SHA-256 (`#hex`): no quoting, and not in clear on disk.
            let digest = hex::encode(sha2::Sha256::digest(password.as_bytes()));
            text.push_str(&format!(
                "user default off\nuser {user} on #{digest} ~* &* +@all\n"
            ));
        }
        write_private(&config, &text)?;
        // Errors in the configuration go to stdout before the log file is open.
        let early = std::fs::File::create(self.dir.join("stdout.log"))
            .map_err(|error| Error::LocalServer(format!("{}: {error}", self.dir.display())))?;
        let mut command = match self.options.cpu {
            Some(cpu) => {
                let mut taskset = Command::new("taskset");
                taskset.arg("-c").arg(cpu.to_string()).arg("redis-server");
                taskset
            }
            None => Command::new("redis-server"),
        };
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(early)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| Error::LocalServer(format!("cannot start redis-server: {error}")))?;
        self.child = Some(child);
        self.port = port;
        self.wait_ready()
    }

    /// Waits until the server answers PING (or refuses it for want of a login).
    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    let log = ["redis.log", "stdout.log"]
                        .iter()
                        .filter_map(|file| std::fs::read_to_string(self.dir.join(file)).ok())
                        .collect::<String>();
                    return Err(Error::LocalServer(format!(
                        "exited ({status}) on port {}: {}",
                        self.port,
                        log.lines().last().unwrap_or("no log")
                    )));
                }
            }
            let ready = match self.options.tls {
                // Our PING is plain text; a TLS port that accepts is ready.
                Some(_) => TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok(),
                None => answers_ping(self.port),
            };
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err(Error::LocalServer(format!(
            "no answer on port {} within {READY_TIMEOUT:?}",
            self.port
        )))
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|error| Error::LocalServer(format!("no free loopback port: {error}")))
}

fn answers_ping(port: u16) -> bool {
    let timeout = Duration::from_millis(500);
    let Ok(mut stream) = TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), timeout)
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut reply = [0u8; 64];
    stream.write_all(b"PING\r\n").is_ok()
        && stream
            .read(&mut reply)
            .is_ok_and(|n| reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH"))
}

fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|error| Error::LocalServer(format!("{}: {error}", path.display())))
}
