//! Export and import of TOFU pins: our JSON format, and nauyaca's TOML export
//! (`[hosts."host:port"]` tables with `sha256:` fingerprints and ISO dates).
//!
//! An import is validated whole before anything is written, runs in one
//! transaction, and reports conflicts instead of skipping them silently.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::store::{read_pin, upsert};
use super::{HostKey, KnownHost, TofuStore, TrustedBy};
use crate::{Error, Fingerprint};

/// The `format` field of our JSON export.
const FORMAT: &str = "tessera-tofu";
/// Most entries one import accepts.
const MAX_IMPORT_ENTRIES: usize = 1_000_000;

/// What an import does with a host pinned to a different fingerprint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImportMode {
    /// Keep the existing pin and report the conflict (default).
    #[default]
    KeepExisting,
    /// Replace the existing pin and report that it was replaced.
    Replace,
}

/// The outcome of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Hosts that had no pin.
    pub added: usize,
    /// Hosts already pinned to the same fingerprint.
    pub unchanged: usize,
    /// Hosts pinned to a different fingerprint.
    pub conflicts: Vec<ImportConflict>,
    /// Whether the conflicts were replaced ([`ImportMode::Replace`]) or kept.
    pub conflicts_replaced: bool,
}

/// One host whose imported fingerprint differs from its pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportConflict {
    /// The host.
    pub key: HostKey,
    /// The pin in the store.
    pub stored: Fingerprint,
    /// The fingerprint in the import.
    pub imported: Fingerprint,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Export {
    format: String,
    version: u32,
    hosts: Vec<ExportedHost>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportedHost {
    host: String,
    port: u16,
    fingerprint: Fingerprint,
    #[serde(with = "time::serde::rfc3339")]
    first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    not_after: Option<OffsetDateTime>,
    trusted_by: TrustedBy,
}

#[derive(Deserialize)]
struct NauyacaExport {
    hosts: std::collections::BTreeMap<String, NauyacaHost>,
}

#[derive(Deserialize)]
struct NauyacaHost {
    hostname: String,
    port: i64,
    fingerprint: String,
    first_seen: String,
    last_seen: String,
}

impl TofuStore {
    /// Every pin as pretty JSON (`{"format": "tessera-tofu", "version": 1, "hosts": [...]}`).
    ///
    /// # Errors
    /// Database errors.
    pub fn export_json(&self) -> Result<String, Error> {
        let hosts = self
            .list()?
            .into_iter()
            .map(|pin| ExportedHost {
                host: pin.key.host().to_owned(),
                port: pin.key.port(),
                fingerprint: pin.fingerprint,
                first_seen: pin.first_seen,
                last_seen: pin.last_seen,
                not_after: pin.not_after,
                trusted_by: pin.trusted_by,
            })
            .collect();
        let export = Export {
            format: FORMAT.to_owned(),
            version: 1,
            hosts,
        };
        serde_json::to_string_pretty(&export).map_err(|e| Error::Import(e.to_string()))
    }

    /// Imports our JSON export.
    ///
    /// # Errors
    /// [`Error::Import`] for a malformed file (nothing written); database errors.
    pub fn import_json(&self, json: &str, mode: ImportMode) -> Result<ImportReport, Error> {
        let export: Export = serde_json::from_str(json)
            .map_err(|e| Error::Import(format!("not a Tessera TOFU export: {e}")))?;
        if export.format != FORMAT || export.version != 1 {
            return Err(Error::Import(format!(
                "unsupported export format {:?} version {}",
                export.format, export.version
            )));
        }
        let entries = export
            .hosts
            .into_iter()
            .map(|host| {
                Ok(KnownHost {
                    key: HostKey::new(&host.host, host.port)?,
                    fingerprint: host.fingerprint,
                    first_seen: host.first_seen,
                    last_seen: host.last_seen,
                    not_after: host.not_after,
                    trusted_by: TrustedBy::Import,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        self.import_entries(&entries, mode)
    }

    /// Imports nauyaca's `tofu export` TOML file.
    ///
    /// # Errors
    /// [`Error::Import`] naming the first bad entry (nothing written); database errors.
    pub fn import_nauyaca_toml(&self, text: &str, mode: ImportMode) -> Result<ImportReport, Error> {
        let export: NauyacaExport = toml::from_str(text)
            .map_err(|e| Error::Import(format!("not a nauyaca TOFU export: {e}")))?;
        let entries = export
            .hosts
            .into_iter()
            .map(|(name, host)| {
                let bad = |what: &str| Error::Import(format!("host {name:?}: {what}"));
                let port = u16::try_from(host.port)
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad("port must be 1-65535"))?;
                let fingerprint = host
                    .fingerprint
                    .parse::<Fingerprint>()
                    .map_err(|_| bad("fingerprint is not sha256:<64 hex>"))?;
                Ok(KnownHost {
                    key: HostKey::new(&host.hostname, port).map_err(|e| bad(&e.to_string()))?,
                    fingerprint,
                    first_seen: parse_iso(&host.first_seen)
                        .ok_or_else(|| bad("first_seen is not an ISO 8601 date"))?,
                    last_seen: parse_iso(&host.last_seen)
                        .ok_or_else(|| bad("last_seen is not an ISO 8601 date"))?,
                    not_after: None,
                    trusted_by: TrustedBy::Import,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        self.import_entries(&entries, mode)
    }

    fn import_entries(
        &self,
        entries: &[KnownHost],
        mode: ImportMode,
    ) -> Result<ImportReport, Error> {
        if entries.len() > MAX_IMPORT_ENTRIES {
            return Err(Error::Import(format!(
                "more than {MAX_IMPORT_ENTRIES} entries"
            )));
        }
        self.with_transaction(|tx| {
            let mut report = ImportReport {
                conflicts_replaced: mode == ImportMode::Replace,
                ..ImportReport::default()
            };
            for entry in entries {
                match read_pin(tx, &entry.key)? {
                    Some(pin) if pin.fingerprint == entry.fingerprint => report.unchanged += 1,
                    Some(pin) => {
                        report.conflicts.push(ImportConflict {
                            key: entry.key.clone(),
                            stored: pin.fingerprint,
                            imported: entry.fingerprint,
                        });
                        if mode == ImportMode::Replace {
                            write(tx, entry)?;
                        }
                    }
                    None => {
                        write(tx, entry)?;
                        report.added += 1;
                    }
                }
            }
            Ok(report)
        })
    }
}

fn write(tx: &rusqlite::Connection, entry: &KnownHost) -> rusqlite::Result<()> {
    upsert(
        tx,
        &entry.key,
        entry.fingerprint,
        entry.first_seen,
        entry.last_seen,
        entry.not_after,
        TrustedBy::Import,
    )
}

/// Python's `datetime.isoformat()` output: RFC 3339, or without an offset (UTC assumed).
fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let naive = time::PrimitiveDateTime::parse(
        text,
        &time::format_description::well_known::Iso8601::DEFAULT,
    )
    .ok()?;
    Some(naive.assume_utc())
}
