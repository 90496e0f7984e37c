//! The TOFU store and verifier (`../shared/spec/guard.md` §11, §13).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use tessera_tls::tofu::{HostKey, ImportMode, RotationPolicy, TrustedBy, Verdict};
use tessera_tls::{
    client_config, mismatch, server_config, CertificateInfo, ClientAuth, DevPki, Error,
    Fingerprint, PkiOptions, ServerAuth, TofuStore, TofuVerifier,
};
use time::{Duration, OffsetDateTime};

use crate::util::{client, dated_certificate, next_seen, server};

fn cert(name: &str) -> CertificateInfo {
    let pki = DevPki::generate(&PkiOptions::default()).unwrap();
    CertificateInfo::parse(pki.server.der().as_ref(), name).unwrap()
}

fn key() -> HostKey {
    HostKey::new("capsule.example", 1965).unwrap()
}

#[test]
fn first_use_then_match_then_mismatch_with_both_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let store = TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap();
    let (a, b) = (cert("a"), cert("b"));
    let now = OffsetDateTime::now_utc();
    assert_eq!(
        store.verify_or_trust(&key(), &a, now).unwrap(),
        Verdict::FirstUse
    );
    assert_eq!(
        store.verify_or_trust(&key(), &a, now).unwrap(),
        Verdict::Match { expired: false }
    );
    // A later match refreshes last_seen at most hourly.
    let later = now + Duration::hours(2);
    assert_eq!(
        store.verify_or_trust(&key(), &a, later).unwrap(),
        Verdict::Match { expired: false }
    );
    assert_eq!(
        store
            .lookup(&key())
            .unwrap()
            .unwrap()
            .last_seen
            .unix_timestamp(),
        later.unix_timestamp()
    );

    let Verdict::Mismatch(mismatch) = store.verify_or_trust(&key(), &b, now).unwrap() else {
        panic!("expected a mismatch");
    };
    assert_eq!(mismatch.stored, a.fingerprint());
    assert_eq!(mismatch.presented, b.fingerprint());
    assert_eq!(mismatch.first_seen.unix_timestamp(), now.unix_timestamp());
    let error = Error::from(mismatch);
    let text = error.to_string();
    assert!(
        text.contains(&a.fingerprint().to_string()) && text.contains(&b.fingerprint().to_string()),
        "{text}"
    );
    // The hint names the store the pin is in, so that it edits the same file.
    let db = dir.path().join("tofu.sqlite3");
    assert!(
        text.contains(&format!(
            "`tessera tofu trust --db {} {}`",
            db.display(),
            key()
        )),
        "{text}"
    );
    // A mismatch writes nothing.
    assert_eq!(
        store.lookup(&key()).unwrap().unwrap().fingerprint,
        a.fingerprint()
    );
    // Other ports of the same host are separate pins; host spelling is normalised.
    assert_eq!(
        store
            .verify_or_trust(&HostKey::new("capsule.example", 1966).unwrap(), &b, now)
            .unwrap(),
        Verdict::FirstUse
    );
    assert_eq!(
        store
            .verify_or_trust(&HostKey::new("CAPSULE.example.", 1965).unwrap(), &a, now)
            .unwrap(),
        Verdict::Match { expired: false }
    );
}

#[test]
fn store_file_is_private_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/tessera/tofu.sqlite3");
    let a = cert("a");
    {
        let store = TofuStore::open(&path).unwrap();
        assert_eq!(
            store
                .verify_or_trust(&key(), &a, OffsetDateTime::now_utc())
                .unwrap(),
            Verdict::FirstUse
        );
    }
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    let store = TofuStore::open(&path).unwrap();
    let pin = store.lookup(&key()).unwrap().unwrap();
    assert_eq!(pin.fingerprint, a.fingerprint());
    assert_eq!(pin.trusted_by, TrustedBy::FirstUse);
    assert_eq!(
        pin.not_after.unwrap().unix_timestamp(),
        a.not_after().unix_timestamp()
    );
}

#[test]
fn expiry_policy_decides_whether_a_changed_certificate_may_replace_an_expired_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (_, _, expired) = dated_certificate(dir.path(), "old", -60, -1);
    let fresh = cert("fresh");
    let now = OffsetDateTime::now_utc();

    let mut store = TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap();
    assert_eq!(
        store.verify_or_trust(&key(), &expired, now).unwrap(),
        Verdict::FirstUse
    );
    // A matching but expired certificate is accepted (with a warning).
    assert_eq!(
        store.verify_or_trust(&key(), &expired, now).unwrap(),
        Verdict::Match { expired: true }
    );
    // Default policy: still a mismatch.
    assert!(matches!(
        store.verify_or_trust(&key(), &fresh, now).unwrap(),
        Verdict::Mismatch(_)
    ));
    store.set_rotation_policy(RotationPolicy::AfterExpiry);
    assert_eq!(
        store.verify_or_trust(&key(), &fresh, now).unwrap(),
        Verdict::Rotated {
            previous: expired.fingerprint()
        }
    );
    let pin = store.lookup(&key()).unwrap().unwrap();
    assert_eq!(
        (pin.fingerprint, pin.trusted_by),
        (fresh.fingerprint(), TrustedBy::Rotation)
    );
    // The new pin has not expired: another change is a mismatch even under the policy.
    assert!(matches!(
        store.verify_or_trust(&key(), &cert("third"), now).unwrap(),
        Verdict::Mismatch(_)
    ));
}

#[test]
fn trust_revoke_and_revoke_all_ports() {
    let dir = tempfile::tempdir().unwrap();
    let store = TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap();
    let (a, b) = (cert("a"), cert("b"));
    let now = OffsetDateTime::now_utc();
    let _ = store.verify_or_trust(&key(), &a, now).unwrap();
    assert_eq!(
        store.trust(&key(), b.fingerprint(), None, now).unwrap(),
        Some(a.fingerprint())
    );
    assert_eq!(
        store.verify_or_trust(&key(), &b, now).unwrap(),
        Verdict::Match { expired: false }
    );
    assert!(store.revoke(&key()).unwrap());
    assert!(!store.revoke(&key()).unwrap());
    assert_eq!(
        store.verify_or_trust(&key(), &a, now).unwrap(),
        Verdict::FirstUse
    );

    for port in [1, 2, 3] {
        let _ = store
            .verify_or_trust(&HostKey::new("multi.example", port).unwrap(), &a, now)
            .unwrap();
    }
    assert_eq!(store.revoke_host("MULTI.example").unwrap(), 3);
    assert_eq!(store.len().unwrap(), 1);
}

#[test]
fn export_import_round_trip_and_conflicts_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let source = TofuStore::open(&dir.path().join("a.sqlite3")).unwrap();
    let now = OffsetDateTime::now_utc();
    for (i, host) in ["one.example", "two.example", "2001:db8::1"]
        .iter()
        .enumerate()
    {
        let _ = source
            .verify_or_trust(
                &HostKey::new(host, 1965 + i as u16).unwrap(),
                &cert(host),
                now,
            )
            .unwrap();
    }
    let json = source.export_json().unwrap();

    let target = TofuStore::open(&dir.path().join("b.sqlite3")).unwrap();
    let report = target.import_json(&json, ImportMode::KeepExisting).unwrap();
    assert_eq!(
        (report.added, report.unchanged, report.conflicts.len()),
        (3, 0, 0)
    );
    let exported: Vec<_> = source
        .list()
        .unwrap()
        .into_iter()
        .map(|p| (p.key, p.fingerprint, p.first_seen, p.not_after))
        .collect();
    let imported: Vec<_> = target
        .list()
        .unwrap()
        .into_iter()
        .map(|p| (p.key, p.fingerprint, p.first_seen, p.not_after))
        .collect();
    assert_eq!(exported, imported);
    assert!(target
        .list()
        .unwrap()
        .iter()
        .all(|p| p.trusted_by == TrustedBy::Import));

    // Importing again changes nothing; a changed pin is a reported conflict.
    assert_eq!(
        target
            .import_json(&json, ImportMode::KeepExisting)
            .unwrap()
            .unchanged,
        3
    );
    let one = HostKey::new("one.example", 1965).unwrap();
    let other = cert("other");
    target.trust(&one, other.fingerprint(), None, now).unwrap();
    let report = target.import_json(&json, ImportMode::KeepExisting).unwrap();
    assert_eq!(report.conflicts.len(), 1);
    assert_eq!(report.conflicts[0].stored, other.fingerprint());
    assert_eq!(
        target.lookup(&one).unwrap().unwrap().fingerprint,
        other.fingerprint()
    );
    let report = target.import_json(&json, ImportMode::Replace).unwrap();
    assert!(report.conflicts_replaced);
    assert_ne!(
        target.lookup(&one).unwrap().unwrap().fingerprint,
        other.fingerprint()
    );

    // A malformed import writes nothing.
    let bad = json.replacen("one.example", "bad host name", 1);
    let empty = TofuStore::open(&dir.path().join("c.sqlite3")).unwrap();
    assert!(empty.import_json(&bad, ImportMode::KeepExisting).is_err());
    assert!(empty.is_empty().unwrap());
}

#[test]
fn nauyaca_toml_export_imports_with_validated_fingerprints() {
    let fp = Fingerprint::of_der(b"capsule");
    let toml = format!(
        r#"[_metadata]
exported_at = "2026-05-01T10:00:00.123456+00:00"
version = "1.0"

[hosts."Gemini.Example:1965"]
hostname = "Gemini.Example"
port = 1965
fingerprint = "{}"
first_seen = "2025-01-02T03:04:05.678901+00:00"
last_seen = "2026-04-30T00:00:00+00:00"

[hosts."other.example:1966"]
hostname = "other.example"
port = 1966
fingerprint = "{fp}"
first_seen = "2025-01-02T03:04:05"
last_seen = "2025-01-02T03:04:05"
"#,
        fp.to_string().to_uppercase().replace("SHA256:", "sha256:")
    );
    let dir = tempfile::tempdir().unwrap();
    let store = TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap();
    let report = store
        .import_nauyaca_toml(&toml, ImportMode::KeepExisting)
        .unwrap();
    assert_eq!(report.added, 2);
    let pin = store
        .lookup(&HostKey::new("gemini.example", 1965).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(pin.fingerprint, fp);
    assert_eq!(pin.first_seen.year(), 2025);

    let broken = toml.replace(&fp.to_hex(), "zz");
    let error = TofuStore::open(&dir.path().join("other.sqlite3"))
        .unwrap()
        .import_nauyaca_toml(&broken, ImportMode::KeepExisting)
        .unwrap_err();
    assert!(error.to_string().contains("fingerprint"), "{error}");
}

#[test]
fn corrupt_or_foreign_files_are_reported_and_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.sqlite3");
    let bytes = b"this is not an SQLite database, and it must survive".repeat(100);
    std::fs::write(&garbage, &bytes).unwrap();
    let error = TofuStore::open(&garbage).unwrap_err();
    assert!(matches!(error, Error::CorruptStore { .. }), "{error}");
    assert!(error.to_string().contains("left untouched"));
    assert_eq!(std::fs::read(&garbage).unwrap(), bytes);

    let foreign = dir.path().join("foreign.sqlite3");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (text TEXT)")
        .unwrap();
    let before = std::fs::read(&foreign).unwrap();
    assert!(matches!(
        TofuStore::open(&foreign),
        Err(Error::CorruptStore { .. })
    ));
    assert_eq!(std::fs::read(&foreign).unwrap(), before);

    // A store from a newer release.
    let newer = dir.path().join("newer.sqlite3");
    drop(TofuStore::open(&newer).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch("UPDATE tessera_schema SET version = 99")
        .unwrap();
    let error = TofuStore::open(&newer).unwrap_err();
    assert!(error.to_string().contains("schema version 99"), "{error}");
}

/// Child half of the two-process race below: waits for the go file, then makes
/// first contact with the certificate in TESSERA_RACE_CERT and prints the verdict.
#[test]
#[ignore = "run as a child process by two_processes_racing_first_contact_get_one_first_use_and_one_mismatch"]
fn race_child() {
    let (Ok(db), Ok(cert_path), Ok(go)) = (
        std::env::var("TESSERA_RACE_DB"),
        std::env::var("TESSERA_RACE_CERT"),
        std::env::var("TESSERA_RACE_GO"),
    ) else {
        return;
    };
    let der = tessera_tls::load_certificates(Path::new(&cert_path))
        .unwrap()
        .remove(0);
    let info = CertificateInfo::parse(der.as_ref(), "race").unwrap();
    let store = TofuStore::open(Path::new(&db)).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !Path::new(&go).exists() && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    let verdict = store
        .verify_or_trust(&key(), &info, OffsetDateTime::now_utc())
        .unwrap();
    println!(
        "VERDICT {}",
        match verdict {
            Verdict::FirstUse => "first-use",
            Verdict::Mismatch(_) => "mismatch",
            Verdict::Match { .. } => "match",
            Verdict::Rotated { .. } => "rotated",
        }
    );
}

#[test]
fn two_processes_racing_first_contact_get_one_first_use_and_one_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tofu.sqlite3");
    drop(TofuStore::open(&db).unwrap());
    let go = dir.path().join("go");
    let mut children = Vec::new();
    for name in ["a", "b"] {
        let pki = DevPki::generate(&PkiOptions::default()).unwrap();
        let cert_path = dir.path().join(format!("{name}.pem"));
        std::fs::write(&cert_path, pki.server.cert_pem()).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tofu::race_child",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("TESSERA_RACE_DB", &db)
            .env("TESSERA_RACE_CERT", &cert_path)
            .env("TESSERA_RACE_GO", &go)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    std::fs::write(&go, b"").unwrap();
    let mut verdicts: Vec<String> = children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success());
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            stdout
                .lines()
                .find_map(|l| l.split("VERDICT ").nth(1))
                .unwrap_or_else(|| panic!("no verdict in {stdout}"))
                .to_owned()
        })
        .collect();
    verdicts.sort();
    assert_eq!(verdicts, ["first-use", "mismatch"]);
}

#[tokio::test]
async fn verifier_pins_in_the_handshake_and_a_mismatch_sends_no_request_byte() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap());
    let first = DevPki::generate(&PkiOptions::default()).unwrap();
    let (address, mut seen) =
        server(server_config(&first.server.identity().unwrap(), ClientAuth::None).unwrap()).await;
    let key = HostKey::new("localhost", address.port()).unwrap();
    let config = || {
        client_config(
            ServerAuth::Tofu(Arc::new(TofuVerifier::new(store.clone(), key.clone()))),
            None,
        )
        .unwrap()
    };

    assert_eq!(
        client(address, config(), "localhost").await.unwrap().0,
        "ok\n"
    );
    assert_eq!(next_seen(&mut seen).await.received, b"hi");
    assert_eq!(
        store.lookup(&key).unwrap().unwrap().fingerprint,
        Fingerprint::of_der(first.server.der())
    );
    assert_eq!(
        client(address, config(), "localhost").await.unwrap().0,
        "ok\n"
    );
    let _ = next_seen(&mut seen).await;

    // Another server on another port, pinned to the first certificate: mismatch.
    let second = DevPki::generate(&PkiOptions::default()).unwrap();
    let (address2, mut seen2) =
        server(server_config(&second.server.identity().unwrap(), ClientAuth::None).unwrap()).await;
    let key2 = HostKey::new("localhost", address2.port()).unwrap();
    store
        .trust(
            &key2,
            Fingerprint::of_der(first.server.der()),
            None,
            OffsetDateTime::now_utc(),
        )
        .unwrap();
    let config2 = client_config(
        ServerAuth::Tofu(Arc::new(TofuVerifier::new(store.clone(), key2.clone()))),
        None,
    )
    .unwrap();
    let error = client(address2, config2, "localhost").await.unwrap_err();
    let found = mismatch(&error).expect("the error carries the mismatch");
    assert_eq!(found.stored, Fingerprint::of_der(first.server.der()));
    assert_eq!(found.presented, Fingerprint::of_der(second.server.der()));
    let report = next_seen(&mut seen2).await;
    assert!(
        report.received.is_empty(),
        "no request byte may reach an unverified server"
    );
    assert_eq!(
        store.lookup(&key2).unwrap().unwrap().fingerprint,
        Fingerprint::of_der(first.server.der())
    );
}

#[test]
fn a_hundred_thousand_hosts_fit_and_stay_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let store = TofuStore::open(&dir.path().join("tofu.sqlite3")).unwrap();
    let fp = Fingerprint::of_der(b"x");
    let hosts: Vec<_> = (0..100_000)
        .map(|i| serde_json::json!({"host": format!("h{i}.example"), "port": 1965, "fingerprint": fp.to_string(),
            "first_seen": "2026-01-01T00:00:00Z", "last_seen": "2026-01-01T00:00:00Z", "not_after": null, "trusted_by": "first-use"}))
        .collect();
    let json =
        serde_json::json!({"format": "tessera-tofu", "version": 1, "hosts": hosts}).to_string();
    assert_eq!(
        store
            .import_json(&json, ImportMode::KeepExisting)
            .unwrap()
            .added,
        100_000
    );
    assert_eq!(store.len().unwrap(), 100_000);
    assert_eq!(
        store
            .lookup(&HostKey::new("h99999.example", 1965).unwrap())
            .unwrap()
            .unwrap()
            .fingerprint,
        fp
    );
}
