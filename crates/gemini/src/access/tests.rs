use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tessera_guard::{CertRule, CertRules, Chain, DenialReason};

use super::*;

/// A capsule with a protected `private/` next to look-alikes: names that are
/// escapes of `private`, a symbolic link and a linked directory leading into it.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    capsule: Capsule,
    chain: Chain,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    for sub in ["private/deep", "public", "%70rivate", "%2570rivate", "a b"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    for file in [
        "index.gmi",
        "private/index.gmi",
        "private/x.gmi",
        "private/deep/index.gmi",
        "public/index.gmi",
        "public/x.gmi",
        "%70rivate/index.gmi",
        "%2570rivate/index.gmi",
        "a b/x.gmi",
    ] {
        std::fs::write(root.join(file), file).unwrap();
    }
    std::os::unix::fs::symlink(root.join("private/x.gmi"), root.join("public/link.gmi")).unwrap();
    std::os::unix::fs::symlink(root.join("private"), root.join("public/dirlink")).unwrap();
    let capsule = Capsule::new(&root, "text/gemini".into(), true).unwrap();
    let root = capsule.root().to_owned();
    let chain = Chain::new().certs(CertRules::new(vec![CertRule::any("/private/")]).unwrap());
    Fixture {
        _dir: dir,
        root,
        capsule,
        chain,
    }
}

impl Fixture {
    /// What an anonymous request for `path` gets: `None` when its escapes are
    /// invalid (59), else the guard's verdict and what would be served. The
    /// path is canonicalised, not checked as a request line would be, so the
    /// dot and empty segments the server refuses still prove this layer safe.
    fn anonymous(&self, path: &str) -> Option<Result<Resolved, Denial>> {
        let path = CanonicalPath::parse(path).ok()?;
        Some(authorise(
            &self.chain,
            &self.capsule,
            &path,
            None,
            OffsetDateTime::now_utc(),
        ))
    }

    /// Whether `real` (a file or directory on disk) lies under `private/`.
    fn is_private(&self, real: &Path) -> bool {
        real.starts_with(self.root.join("private"))
    }
}

#[test]
fn regression_double_decoding_opened_a_protected_path() {
    let fixture = fixture();
    for path in [
        "/%%37%30rivate/",
        "/%%37%30rivate/x.gmi",
        "/%%32%65%%32%65/private/",
        "/x/%%32%65%%32%65/private/",
        "/X/%%32%45%%32%45/private/x.gmi",
        "/%%37%30%%37%32ivate/",
        "/%",
    ] {
        assert!(fixture.anonymous(path).is_none(), "{path} must get 59");
    }
    for path in [
        "/private/",
        "/private/x.gmi",
        "/%70rivate/",
        "/priv%61te/x.gmi",
        "/%70%72%69%76%61%74%65/deep/",
        "/public/../private/",
        "/public/%2e%2e/private/deep/",
        "/public/.%2E/private/",
        "//private//x.gmi",
        // An index file or a link inside the root leads to a protected file.
        "/public/link.gmi",
        "/public/dirlink/",
        "/public/dirlink/x.gmi",
        "/public/dirlink/deep/",
    ] {
        let verdict = fixture.anonymous(path).expect("a valid request line");
        assert_eq!(
            verdict.map_err(|denial| denial.reason),
            Err(DenialReason::CertRequired),
            "{path}"
        );
    }
    // Escapes of escapes name other files, which are public, and are served.
    for (path, served) in [
        ("/%2570rivate/", "/%2570rivate/index.gmi"),
        ("/%252570rivate/", "/%252570rivate/index.gmi"),
        ("/a%20b/x.gmi", "/a%20b/x.gmi"),
    ] {
        let verdict = fixture.anonymous(path).expect("a valid request line");
        let served_path = verdict.ok().and_then(|r| r.served().cloned());
        assert_eq!(
            served_path.as_ref().map(CanonicalPath::as_str),
            Some(served),
            "{path}"
        );
    }
}

/// Request paths built from the pieces that matter: names on disk, links
/// leading into `private/`, dot segments, escapes (of escapes) and the
/// protected name cut in parts.
fn request_path() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("private"),
        Just("public"),
        Just("dirlink"),
        Just("link.gmi"),
        Just("deep"),
        Just("x.gmi"),
        Just("index.gmi"),
        Just("%70rivate"),
        Just("%2570rivate"),
        Just("a%20b"),
        Just(".."),
        Just("."),
        Just(""),
    ];
    let piece = prop_oneof![
        Just("."),
        Just("%"),
        Just("%25"),
        Just("%2e"),
        Just("%2E"),
        Just("%2f"),
        Just("%5c"),
        Just("%70"),
        Just("%37%30"),
        Just("p"),
        Just("rivate"),
        Just("riv%61te"),
        Just("?"),
    ];
    let mixed = proptest::collection::vec(piece, 1..4).prop_map(|pieces| pieces.concat());
    let segment = prop_oneof![3 => name.prop_map(str::to_owned), 1 => mixed];
    proptest::collection::vec(segment, 0..6).prop_map(|segments| format!("/{}", segments.join("/")))
}

/// Whatever the request line, nothing under `private/` is served without a
/// certificate, and whatever is served was checked under its own path.
#[test]
fn no_request_reaches_a_protected_file_without_its_rule() {
    let fixture = fixture();
    let config = proptest::test_runner::Config {
        cases: 2048,
        source_file: Some(file!()),
        ..proptest::test_runner::Config::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = runner.run(&request_path(), |path| {
        let Some(Ok(resolved)) = fixture.anonymous(&path) else {
            return Ok(());
        };
        if let Resolved::File {
            path: real,
            canonical,
            ..
        } = &resolved
        {
            prop_assert!(
                !fixture.is_private(real),
                "{} served {}",
                path,
                real.display()
            );
            let below = real.strip_prefix(&fixture.root).unwrap();
            let own = CanonicalPath::from_segments(
                below.iter().map(std::os::unix::ffi::OsStrExt::as_bytes),
                false,
            );
            prop_assert_eq!(&own, canonical);
            let verdict = fixture
                .chain
                .check_certs(&own, None, OffsetDateTime::now_utc());
            prop_assert_eq!(verdict, Decision::Allow);
        }
        if let Some(served) = resolved.served() {
            let first = served.segments().next();
            prop_assert!(
                first.is_none_or(|first| *first != *b"private"),
                "{} served {}",
                path,
                served
            );
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}
