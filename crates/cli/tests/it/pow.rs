//! `tessera pow` as scripts use it, and Hashcash interop with the real Debian
//! `hashcash` CLI both ways (skipped with a printed reason when it is absent;
//! `.ci/run` installs it).

use crate::common::{stdout, tessera};
use std::path::Path;
use std::process::Command;

const TOKEN: &str = "gkcjcibIFynKssuJnJpSrgvawiVjLjEbdFuYQzuWROTeTaSmqFCAzuwkwLCRgIIq";

fn hashcash_cli() -> bool {
    let found = Command::new("hashcash").arg("-V").output().is_ok();
    if !found {
        // Straight to stderr: the harness captures print macros of passing tests.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the Debian hashcash CLI is not installed (apt-get install hashcash)"
        );
    }
    found
}

/// `hashcash -c -d -b BITS -r RESOURCE STAMP` with its spend database in `dir`.
fn cli_check(dir: &Path, bits: u32, resource: &str, stamp: &str) -> bool {
    Command::new("hashcash")
        .args(["-c", "-d", "-f"])
        .arg(dir.join("spent.sdb"))
        .args(["-b", &bits.to_string(), "-r", resource, stamp])
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn solve_then_verify_round_trip_and_wrong_suffixes_fail() {
    let solved = tessera(&[
        "pow",
        "solve",
        "--token",
        TOKEN,
        "--bits",
        "16",
        "--threads",
        "2",
    ]);
    assert!(
        solved.status.success(),
        "{}",
        String::from_utf8_lossy(&solved.stderr)
    );
    let suffix = stdout(&solved);
    assert!(
        !suffix.is_empty()
            && suffix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    assert!(
        tessera(&["pow", "verify", "--token", TOKEN, "--bits", "16", &suffix])
            .status
            .success()
    );
    assert!(
        tessera(&["pow", "verify", "--token", TOKEN, "--bits", "20", "B9PD"])
            .status
            .success()
    );
    let wrong = tessera(&["pow", "verify", "--token", TOKEN, "--bits", "21", "B9PD"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("20 trailing zero bits"));
    let bad_token = tessera(&["pow", "solve", "--token", "abc.def", "--bits", "4"]);
    assert!(!bad_token.status.success());
}

#[test]
fn every_kernel_is_selectable_and_a_timeout_fails() {
    let solved = tessera(&[
        "pow", "solve", "--token", TOKEN, "--bits", "12", "--kernel", "portable",
    ]);
    assert!(solved.status.success());
    let timed_out = tessera(&[
        "pow",
        "solve",
        "--token",
        TOKEN,
        "--bits",
        "64",
        "--timeout",
        "0.2",
    ]);
    assert!(!timed_out.status.success());
    assert!(String::from_utf8_lossy(&timed_out.stderr).contains("deadline"));
}

#[test]
fn our_stamps_pass_the_hashcash_cli_and_its_stamps_pass_ours() {
    if !hashcash_cli() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let minted = tessera(&[
        "pow",
        "hashcash",
        "mint",
        "--bits",
        "18",
        "Alice@Example.org",
    ]);
    assert!(minted.status.success());
    let stamp = stdout(&minted);
    assert!(
        cli_check(dir.path(), 18, "alice@example.org", &stamp),
        "{stamp}"
    );
    // Its double-spend database now refuses the replay; ours is stateless.
    assert!(!cli_check(dir.path(), 18, "alice@example.org", &stamp));
    assert!(tessera(&[
        "pow",
        "hashcash",
        "verify",
        "--bits",
        "18",
        "--resource",
        "alice@example.org",
        &stamp
    ])
    .status
    .success());

    let theirs = Command::new("hashcash")
        .args(["-m", "-q", "-b", "16", "bob@example.org"])
        .output()
        .unwrap();
    let theirs = stdout(&theirs);
    assert!(tessera(&[
        "pow",
        "hashcash",
        "verify",
        "--bits",
        "16",
        "--resource",
        "BOB@example.org",
        &theirs
    ])
    .status
    .success());

    // Bad stamps are refused by both: too few bits required-wise, wrong resource, tampered.
    let tampered = format!("{}x", &stamp);
    for (bits, resource, text) in [
        (19, "alice@example.org", stamp.as_str()),
        (18, "bob@example.org", stamp.as_str()),
        (18, "alice@example.org", tampered.as_str()),
    ] {
        let fresh = tempfile::tempdir().unwrap();
        assert!(
            !cli_check(fresh.path(), bits, resource, text),
            "CLI accepted {text}"
        );
        let ours = tessera(&[
            "pow",
            "hashcash",
            "verify",
            "--bits",
            &bits.to_string(),
            "--resource",
            resource,
            text,
        ]);
        assert!(!ours.status.success(), "we accepted {text}");
        assert!(String::from_utf8_lossy(&ours.stderr).starts_with("tessera: invalid stamp"));
    }
}

#[test]
fn bench_reports_json() {
    let output = tessera(&["pow", "bench", "--steps", "2", "--json"]);
    assert!(output.status.success());
    let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(value["compress256_per_s"].as_f64().unwrap() > 0.0);
    assert!(!value["kernels"].as_array().unwrap().is_empty());
}
