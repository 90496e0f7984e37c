//! Double-spend protection: a set of spent stamps, each kept only until it
//! expires (an expired stamp fails verification on its date anyway, so older
//! entries are never needed). In memory with a hard cap, or in SQLite.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{params, Connection};
use time::OffsetDateTime;

use super::Stamp;
use crate::Error;

/// Records spent stamps.
pub trait SpentSet: Send + Sync {
    /// Marks `stamp` spent. `Ok(true)` the first time, `Ok(false)` for a replay.
    ///
    /// # Errors
    /// A full set or a store failure: the caller must refuse the stamp (fail closed).
    fn spend(&self, stamp: &Stamp, now: OffsetDateTime) -> Result<bool, Error>;
}

/// An in-memory set holding at most `cap` stamps. Expired entries are dropped
/// when the cap is reached; if all are still live, new stamps are refused
/// ([`Error::SpentSetFull`]) rather than forgetting a live one.
#[derive(Debug)]
pub struct MemorySpentSet {
    cap: usize,
    entries: Mutex<HashMap<String, i64>>,
}

impl MemorySpentSet {
    /// Default cap: one million stamps (~100 MiB worst case).
    pub const DEFAULT_CAP: usize = 1_000_000;

    /// A set holding at most `cap` stamps.
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Stamps held now.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SpentSet for MemorySpentSet {
    fn spend(&self, stamp: &Stamp, now: OffsetDateTime) -> Result<bool, Error> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.contains_key(&stamp.text) {
            return Ok(false);
        }
        if entries.len() >= self.cap {
            let now = now.unix_timestamp();
            entries.retain(|_, expires| *expires >= now);
            if entries.len() >= self.cap {
                return Err(Error::SpentSetFull(self.cap));
            }
        }
        let expires = stamp
            .expires_at
            .map_or(i64::MAX, OffsetDateTime::unix_timestamp);
        entries.insert(stamp.text.clone(), expires);
        Ok(true)
    }
}

/// A spent set in SQLite, shared by processes; expired rows are purged on insert.
#[derive(Debug)]
pub struct SqliteSpentSet {
    connection: Mutex<Connection>,
}

impl SqliteSpentSet {
    /// Opens or creates the set at `path`.
    ///
    /// # Errors
    /// [`Error::Store`].
    pub fn open(path: &Path) -> Result<Self, Error> {
        let connection = Connection::open(path)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS spent_stamps (stamp TEXT PRIMARY KEY, expires INTEGER NOT NULL) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS spent_stamps_expires ON spent_stamps (expires);",
        )?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }
}

impl SpentSet for SqliteSpentSet {
    fn spend(&self, stamp: &Stamp, now: OffsetDateTime) -> Result<bool, Error> {
        let mut connection = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let tx = connection.transaction()?;
        tx.execute(
            "DELETE FROM spent_stamps WHERE expires < ?1",
            params![now.unix_timestamp()],
        )?;
        let expires = stamp
            .expires_at
            .map_or(i64::MAX, OffsetDateTime::unix_timestamp);
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO spent_stamps (stamp, expires) VALUES (?1, ?2)",
            params![stamp.text, expires],
        )?;
        tx.commit()?;
        Ok(inserted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn stamp(text: &str, expires_at: OffsetDateTime) -> Stamp {
        Stamp {
            text: text.to_owned(),
            bits: 0,
            date: expires_at,
            resource: "x".to_owned(),
            expires_at: Some(expires_at),
        }
    }

    fn replay_is_refused(set: &dyn SpentSet) {
        let now = OffsetDateTime::now_utc();
        let a = stamp("1:0:261120:x::a:1", now + Duration::days(1));
        assert!(set.spend(&a, now).unwrap());
        assert!(!set.spend(&a, now).unwrap());
        // After expiry the entry may go; a new stamp is still fresh.
        let later = now + Duration::days(2);
        assert!(set
            .spend(
                &stamp("1:0:261120:x::a:2", later + Duration::days(1)),
                later
            )
            .unwrap());
    }

    #[test]
    fn memory_set_refuses_replays_and_stays_within_its_cap() {
        replay_is_refused(&MemorySpentSet::new(10));
        let set = MemorySpentSet::new(100);
        let now = OffsetDateTime::now_utc();
        for i in 0..100 {
            assert!(set
                .spend(&stamp(&format!("s{i}"), now + Duration::hours(1)), now)
                .unwrap());
        }
        assert!(matches!(
            set.spend(&stamp("one more", now + Duration::hours(1)), now),
            Err(Error::SpentSetFull(100))
        ));
        // Once those expire, room returns and the cap holds.
        let later = now + Duration::hours(2);
        for i in 0..1000 {
            let _ = set.spend(
                &stamp(&format!("t{i}"), later + Duration::seconds(i)),
                later + Duration::seconds(i),
            );
            assert!(set.len() <= 100);
        }
    }

    #[test]
    fn sqlite_set_refuses_replays_across_handles() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spent.sqlite3");
        replay_is_refused(&SqliteSpentSet::open(&path).unwrap());
        let now = OffsetDateTime::now_utc();
        let s = stamp("shared", now + Duration::days(1));
        assert!(SqliteSpentSet::open(&path).unwrap().spend(&s, now).unwrap());
        assert!(!SqliteSpentSet::open(&path).unwrap().spend(&s, now).unwrap());
    }
}
