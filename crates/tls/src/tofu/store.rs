//! The SQLite store behind TOFU.
//!
//! One file at `$XDG_DATA_HOME/tessera/tofu.sqlite3` by default, directory 0700,
//! file 0600, WAL with a busy timeout so several processes can share it, a
//! schema version with migrations, and an application id so a foreign or
//! damaged file is reported and never overwritten.
//!
//! [`TofuStore::verify_or_trust`] decides and writes in one `BEGIN IMMEDIATE`
//! transaction, so two processes racing first contact with different
//! certificates get one `FirstUse` and one `Mismatch`. A match reads without a
//! transaction and writes `last_seen` at most once an hour: no disk sync.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use time::OffsetDateTime;

use super::{HostKey, KnownHost, TofuMismatch, TrustedBy, Verdict};
use crate::files::create_private_dir;
use crate::{CertificateInfo, Error, Fingerprint};

/// `PRAGMA application_id` of Tessera TOFU stores ("TSTF").
const APPLICATION_ID: i32 = 0x5453_5446;
/// How long a writer waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `last_seen` is refreshed at most this often (seconds).
const LAST_SEEN_GRANULARITY: i64 = 3600;

/// Schema migrations, applied in order; index + 1 is the version they produce.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE known_hosts (
        host        TEXT    NOT NULL,
        port        INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
        fingerprint BLOB    NOT NULL CHECK (length(fingerprint) = 32),
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL,
        not_after   INTEGER,
        trusted_by  TEXT    NOT NULL,
        PRIMARY KEY (host, port)
    ) WITHOUT ROWID;
"];

/// What to do when a pinned certificate changed after it expired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RotationPolicy {
    /// Any change is a mismatch (default).
    #[default]
    Never,
    /// Accept and pin a new certificate when the stored one's not-after has
    /// passed, with a warning (`tofu_rotation = "after-expiry"`).
    AfterExpiry,
}

/// A TOFU store. Cheap to share behind an `Arc`; calls are serialised per process
/// and transactional across processes.
#[derive(Debug)]
pub struct TofuStore {
    path: PathBuf,
    connection: Mutex<Connection>,
    rotation: RotationPolicy,
}

impl TofuStore {
    /// Opens the store at `path`, creating it (and its directory, 0700) if missing.
    ///
    /// # Errors
    /// [`Error::CorruptStore`] when the file is not a Tessera TOFU store, is damaged
    /// or is from a newer release; [`Error::Store`] or [`Error::Io`] otherwise.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        if !path.exists() {
            // Create the file 0600 ourselves: SQLite would use the umask.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(path)(e)),
            }
        }
        let connection = Connection::open(path).map_err(|e| sql_error(path, e))?;
        let store = Self {
            path: path.to_owned(),
            connection: Mutex::new(connection),
            rotation: RotationPolicy::default(),
        };
        store.prepare()?;
        Ok(store)
    }

    /// Opens an existing store for reading only: nothing is created, migrated
    /// or written, so a mistyped path leaves no file or directory behind.
    ///
    /// # Errors
    /// [`Error::Io`] (not found) when there is no file at `path`;
    /// [`Error::CorruptStore`] when it is not a Tessera TOFU store or needs a
    /// schema upgrade (any command that writes performs it); [`Error::Store`] otherwise.
    pub fn open_read_only(path: &Path) -> Result<Self, Error> {
        if !path.is_file() {
            return Err(Error::io(path)(std::io::ErrorKind::NotFound.into()));
        }
        let connection = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_error(path, e))?;
        let store = Self {
            path: path.to_owned(),
            connection: Mutex::new(connection),
            rotation: RotationPolicy::default(),
        };
        {
            let connection = store.lock();
            connection
                .busy_timeout(BUSY_TIMEOUT)
                .map_err(|e| store.error(e))?;
            let application_id: i32 = connection
                .query_row("PRAGMA application_id", [], |row| row.get(0))
                .map_err(|e| store.error(e))?;
            if application_id != APPLICATION_ID {
                return Err(store.corrupt(
                    "not a Tessera TOFU store (foreign or empty SQLite database)".to_owned(),
                ));
            }
            let version: i64 = connection
                .query_row(
                    "SELECT version FROM tessera_schema WHERE id = 1",
                    [],
                    |row| row.get(0),
                )
                .map_err(|e| store.error(e))?;
            let latest = MIGRATIONS.len() as i64;
            if version != latest {
                return Err(store.corrupt(format!(
                    "schema version {version}, this release reads {latest}: open it with a command that writes (it upgrades) or upgrade Tessera"
                )));
            }
        }
        Ok(store)
    }

    /// The default location, `$XDG_DATA_HOME/tessera/tofu.sqlite3`.
    pub fn default_path(data_dir: &Path) -> PathBuf {
        data_dir.join("tofu.sqlite3")
    }

    /// Sets the policy for changed certificates whose pin has expired.
    pub fn set_rotation_policy(&mut self, policy: RotationPolicy) -> &mut Self {
        self.rotation = policy;
        self
    }

    /// The policy for changed certificates whose pin has expired.
    pub fn rotation_policy(&self) -> RotationPolicy {
        self.rotation
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks `presented` against the pin for `key` and pins it on first use, in
    /// one transaction. A mismatch writes nothing.
    ///
    /// # Errors
    /// Database errors only; a mismatch is [`Verdict::Mismatch`].
    pub fn verify_or_trust(
        &self,
        key: &HostKey,
        presented: &CertificateInfo,
        now: OffsetDateTime,
    ) -> Result<Verdict, Error> {
        let fingerprint = presented.fingerprint();
        let now_s = now.unix_timestamp();
        let mut connection = self.lock();

        // Fast path: a recent match needs no lock and no write.
        if let Some(pin) = read_pin(&connection, key).map_err(|e| self.error(e))? {
            if pin.fingerprint == fingerprint
                && now_s - pin.last_seen.unix_timestamp() < LAST_SEEN_GRANULARITY
            {
                return Ok(Verdict::Match {
                    expired: presented.not_after() < now,
                });
            }
        }

        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        let verdict = match read_pin(&tx, key).map_err(|e| self.error(e))? {
            None => {
                tx.execute(
                    "INSERT INTO known_hosts (host, port, fingerprint, first_seen, last_seen, not_after, trusted_by)
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, 'first-use')",
                    params![key.host(), key.port(), &fingerprint.as_bytes()[..], now_s, presented.not_after().unix_timestamp()],
                )
                .map_err(|e| self.error(e))?;
                Verdict::FirstUse
            }
            Some(pin) if pin.fingerprint == fingerprint => {
                tx.execute(
                    "UPDATE known_hosts SET last_seen = ?3 WHERE host = ?1 AND port = ?2",
                    params![key.host(), key.port(), now_s],
                )
                .map_err(|e| self.error(e))?;
                Verdict::Match {
                    expired: presented.not_after() < now,
                }
            }
            Some(pin) if self.may_rotate(&pin, now) => {
                tx.execute(
                    "UPDATE known_hosts SET fingerprint = ?3, first_seen = ?4, last_seen = ?4, not_after = ?5,
                     trusted_by = 'rotation' WHERE host = ?1 AND port = ?2",
                    params![key.host(), key.port(), &fingerprint.as_bytes()[..], now_s, presented.not_after().unix_timestamp()],
                )
                .map_err(|e| self.error(e))?;
                tracing::warn!(host = %key, previous = %pin.fingerprint, new = %fingerprint,
                    "pinned certificate had expired; new certificate accepted under the after-expiry policy");
                Verdict::Rotated {
                    previous: pin.fingerprint,
                }
            }
            Some(pin) => Verdict::Mismatch(self.mismatch(key, &pin, fingerprint)),
        };
        tx.commit().map_err(|e| self.error(e))?;
        Ok(verdict)
    }

    /// Read-only: the mismatch [`TofuStore::verify_or_trust`] would report for
    /// `presented` now, if any. Lets a verifier refuse before the handshake
    /// signature is checked, without writing.
    ///
    /// # Errors
    /// Database errors.
    pub fn check(
        &self,
        key: &HostKey,
        presented: &CertificateInfo,
        now: OffsetDateTime,
    ) -> Result<Option<TofuMismatch>, Error> {
        let fingerprint = presented.fingerprint();
        Ok(self.lookup(key)?.and_then(|pin| {
            (pin.fingerprint != fingerprint && !self.may_rotate(&pin, now))
                .then(|| self.mismatch(key, &pin, fingerprint))
        }))
    }

    /// Whether the policy lets a changed certificate replace `pin` at `now`.
    fn may_rotate(&self, pin: &KnownHost, now: OffsetDateTime) -> bool {
        self.rotation == RotationPolicy::AfterExpiry && pin.not_after.is_some_and(|at| at < now)
    }

    /// The pin for `key`, if any.
    ///
    /// # Errors
    /// Database errors.
    pub fn lookup(&self, key: &HostKey) -> Result<Option<KnownHost>, Error> {
        read_pin(&self.lock(), key).map_err(|e| self.error(e))
    }

    /// Pins `fingerprint` for `key`, replacing any pin (the user confirmed it).
    /// Returns the replaced fingerprint.
    ///
    /// # Errors
    /// Database errors.
    pub fn trust(
        &self,
        key: &HostKey,
        fingerprint: Fingerprint,
        not_after: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<Option<Fingerprint>, Error> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        let previous = read_pin(&tx, key).map_err(|e| self.error(e))?;
        upsert(
            &tx,
            key,
            fingerprint,
            now,
            now,
            not_after,
            TrustedBy::Manual,
        )
        .map_err(|e| self.error(e))?;
        tx.commit().map_err(|e| self.error(e))?;
        Ok(previous
            .map(|pin| pin.fingerprint)
            .filter(|old| *old != fingerprint))
    }

    /// Removes the pin for `key`. Returns whether there was one.
    ///
    /// # Errors
    /// Database errors.
    pub fn revoke(&self, key: &HostKey) -> Result<bool, Error> {
        let removed = self
            .lock()
            .execute(
                "DELETE FROM known_hosts WHERE host = ?1 AND port = ?2",
                params![key.host(), key.port()],
            )
            .map_err(|e| self.error(e))?;
        Ok(removed > 0)
    }

    /// Removes the pins of every port of `host`. Returns how many.
    ///
    /// # Errors
    /// An invalid host or a database error.
    pub fn revoke_host(&self, host: &str) -> Result<usize, Error> {
        let host = super::normalize_host(host)?;
        self.lock()
            .execute("DELETE FROM known_hosts WHERE host = ?1", params![host])
            .map_err(|e| self.error(e))
    }

    /// Every pin, ordered by host and port.
    ///
    /// # Errors
    /// Database errors, or a row this release cannot read.
    pub fn list(&self) -> Result<Vec<KnownHost>, Error> {
        let connection = self.lock();
        let mut statement = connection
            .prepare("SELECT host, port, fingerprint, first_seen, last_seen, not_after, trusted_by FROM known_hosts ORDER BY host, port")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                let host: String = row.get(0)?;
                let key = HostKey::new(&host, row.get(1)?)
                    .map_err(|_| conversion_error(0, "invalid host"))?;
                pin_from_row(row, 2, key)
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.error(e))
    }

    /// Number of pins.
    ///
    /// # Errors
    /// Database errors.
    pub fn len(&self) -> Result<u64, Error> {
        self.lock()
            .query_row("SELECT count(*) FROM known_hosts", [], |row| row.get(0))
            .map_err(|e| self.error(e))
    }

    /// Whether the store holds no pin.
    ///
    /// # Errors
    /// Database errors.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }

    /// Runs `work` on the connection inside one immediate transaction (imports).
    pub(super) fn with_transaction<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let mut connection = self.lock();
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        let value = work(&tx).map_err(|e| self.error(e))?;
        tx.commit().map_err(|e| self.error(e))?;
        Ok(value)
    }

    fn prepare(&self) -> Result<(), Error> {
        let mut connection = self.lock();
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| self.error(e))?;
        let application_id: i32 = connection
            .query_row("PRAGMA application_id", [], |row| row.get(0))
            .map_err(|e| self.error(e))?;
        let table_count: i64 = connection
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(|e| self.error(e))?;
        if application_id != APPLICATION_ID && !(application_id == 0 && table_count == 0) {
            return Err(
                self.corrupt("not a Tessera TOFU store (foreign SQLite database)".to_owned())
            );
        }
        let mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(|e| self.error(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), %mode, "TOFU store could not switch to WAL");
        }
        connection
            .execute_batch("PRAGMA synchronous = NORMAL")
            .map_err(|e| self.error(e))?;

        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID};
             CREATE TABLE IF NOT EXISTS tessera_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL);
             INSERT OR IGNORE INTO tessera_schema (id, version) VALUES (1, 0);"
        ))
        .map_err(|e| self.error(e))?;
        let version: i64 = tx
            .query_row(
                "SELECT version FROM tessera_schema WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.error(e))?;
        let latest = MIGRATIONS.len() as i64;
        if version > latest || version < 0 {
            return Err(self.corrupt(format!(
                "schema version {version} is not known to this release (latest {latest}); upgrade Tessera"
            )));
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration).map_err(|e| self.error(e))?;
            tx.execute(
                "UPDATE tessera_schema SET version = ?1 WHERE id = 1",
                params![index as i64 + 1],
            )
            .map_err(|e| self.error(e))?;
        }
        tx.commit().map_err(|e| self.error(e))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions
        // roll back on drop), so a poisoned lock is safe to keep using.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn error(&self, source: rusqlite::Error) -> Error {
        sql_error(&self.path, source)
    }

    fn corrupt(&self, detail: String) -> Error {
        Error::CorruptStore {
            path: self.path.clone(),
            detail,
        }
    }

    fn mismatch(&self, key: &HostKey, pin: &KnownHost, presented: Fingerprint) -> TofuMismatch {
        TofuMismatch {
            key: key.clone(),
            stored: pin.fingerprint,
            presented,
            first_seen: pin.first_seen,
            stored_not_after: pin.not_after,
            store: self.path.clone(),
        }
    }
}

/// Writes one pin, replacing any.
pub(super) fn upsert(
    connection: &Connection,
    key: &HostKey,
    fingerprint: Fingerprint,
    first_seen: OffsetDateTime,
    last_seen: OffsetDateTime,
    not_after: Option<OffsetDateTime>,
    trusted_by: TrustedBy,
) -> rusqlite::Result<()> {
    connection.execute(
        "INSERT INTO known_hosts (host, port, fingerprint, first_seen, last_seen, not_after, trusted_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (host, port) DO UPDATE SET fingerprint = excluded.fingerprint,
             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
             not_after = excluded.not_after, trusted_by = excluded.trusted_by",
        params![
            key.host(),
            key.port(),
            &fingerprint.as_bytes()[..],
            first_seen.unix_timestamp(),
            last_seen.unix_timestamp(),
            not_after.map(OffsetDateTime::unix_timestamp),
            trusted_by_text(trusted_by),
        ],
    )?;
    Ok(())
}

/// Reads the pin for `key`.
pub(super) fn read_pin(
    connection: &Connection,
    key: &HostKey,
) -> rusqlite::Result<Option<KnownHost>> {
    let mut statement = connection.prepare_cached(
        "SELECT fingerprint, first_seen, last_seen, not_after, trusted_by FROM known_hosts WHERE host = ?1 AND port = ?2",
    )?;
    statement
        .query_row(params![key.host(), key.port()], |row| {
            pin_from_row(row, 0, key.clone())
        })
        .optional()
}

fn pin_from_row(
    row: &rusqlite::Row<'_>,
    first: usize,
    key: HostKey,
) -> rusqlite::Result<KnownHost> {
    let bytes: Vec<u8> = row.get(first)?;
    let fingerprint = <[u8; 32]>::try_from(bytes.as_slice())
        .map(Fingerprint::from_bytes)
        .map_err(|_| conversion_error(first, "fingerprint is not 32 bytes"))?;
    let timestamp = |index: usize, value: i64| {
        OffsetDateTime::from_unix_timestamp(value)
            .map_err(|_| conversion_error(index, "timestamp out of range"))
    };
    let first_seen = timestamp(first + 1, row.get(first + 1)?)?;
    let last_seen = timestamp(first + 2, row.get(first + 2)?)?;
    let not_after = match row.get::<_, Option<i64>>(first + 3)? {
        Some(value) => Some(timestamp(first + 3, value)?),
        None => None,
    };
    let trusted_by_text: String = row.get(first + 4)?;
    let trusted_by = parse_trusted_by(&trusted_by_text)
        .ok_or_else(|| conversion_error(first + 4, "unknown trusted_by"))?;
    Ok(KnownHost {
        key,
        fingerprint,
        first_seen,
        last_seen,
        not_after,
        trusted_by,
    })
}

fn conversion_error(index: usize, message: &'static str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Blob, message.into())
}

pub(super) fn trusted_by_text(trusted_by: TrustedBy) -> &'static str {
    match trusted_by {
        TrustedBy::FirstUse => "first-use",
        TrustedBy::Manual => "manual",
        TrustedBy::Import => "import",
        TrustedBy::Rotation => "rotation",
    }
}

fn parse_trusted_by(text: &str) -> Option<TrustedBy> {
    Some(match text {
        "first-use" => TrustedBy::FirstUse,
        "manual" => TrustedBy::Manual,
        "import" => TrustedBy::Import,
        "rotation" => TrustedBy::Rotation,
        _ => return None,
    })
}

fn sql_error(path: &Path, source: rusqlite::Error) -> Error {
    let corrupt = match &source {
        rusqlite::Error::SqliteFailure(failure, _) => {
            matches!(
                failure.code,
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt
            )
        }
        rusqlite::Error::FromSqlConversionFailure(..) => true,
        _ => false,
    };
    if corrupt {
        Error::CorruptStore {
            path: path.to_owned(),
            detail: source.to_string(),
        }
    } else {
        Error::Store {
            path: path.to_owned(),
            error: source,
        }
    }
}
