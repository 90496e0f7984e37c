//! Runs the Python package's pytest suite (`bindings/python/tests/*.py`) as
//! part of `cargo test --workspace`, with the interpreter of the virtual
//! environment `maturin develop` installed the package into
//! (`bindings/python/.venv`, or `TESSERA_PYTHON`). Without that environment
//! the test says it skipped and why; with a package older than its sources
//! it fails and says how to rebuild.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

/// The whole suite takes seconds; this only stops a hung test from hanging CI.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

/// Sources the native module is built from.
const SOURCES: &[&str] = &[
    "bindings/python/src",
    "crates/pow/src",
    "crates/guard/src",
    "crates/tls/src",
    "crates/trust/src",
    "crates/serve/src",
];

#[test]
fn python_package_passes_its_pytest_suite() {
    let package = Path::new(env!("CARGO_MANIFEST_DIR"));
    let repository = package.join("../..");
    let python = std::env::var_os("TESSERA_PYTHON")
        .map_or_else(|| package.join(".venv/bin/python"), PathBuf::from);
    if !python.exists() {
        // Straight to stderr: the harness captures print macros of passing tests.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: the Python package's pytest suite: no {} \
             (build it: cd bindings/python && python3 -m venv .venv && \
             .venv/bin/pip install maturin pytest && .venv/bin/maturin develop)",
            python.display()
        );
        return;
    }
    let module = find_module(&package.join("python/tessera"));
    let Some(module) = module else {
        panic!(
            "{} has no built tessera module: run `.venv/bin/maturin develop` in bindings/python",
            package.display()
        );
    };
    let built = modified(&module);
    let newest = SOURCES
        .iter()
        .filter_map(|dir| newest_in(&repository.join(dir)))
        .max();
    if let Some(newest) = newest {
        assert!(
            built >= newest,
            "{} is older than its Rust sources: rebuild it with \
             `.venv/bin/maturin develop` in bindings/python",
            module.display()
        );
    }
    let output = run_with_timeout(
        Command::new(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(package),
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The summary line ("58 passed, 1 skipped in 1.2s") shows in a plain run.
    if let Some(summary) = stdout.lines().rev().find(|line| !line.trim().is_empty()) {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "pytest: {summary}");
    }
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(" passed"),
        "pytest ran no test:\n{stdout}\n{stderr}"
    );
}

/// `tessera/_tessera*.so`, which `maturin develop` puts beside the Python sources.
fn find_module(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("_tessera") && name.ends_with(".so"))
        })
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path)
        .and_then(|meta| meta.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// The latest modification time of any file under `dir`.
fn newest_in(dir: &Path) -> Option<SystemTime> {
    let mut newest = None;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                newest = newest.max(Some(modified(&path)));
            }
        }
    }
    newest
}

/// Runs `command`, killing it when it outlives [`SUITE_TIMEOUT`].
fn run_with_timeout(command: &mut Command) -> Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pytest");
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(SUITE_TIMEOUT) {
        Ok(output) => output.expect("wait for pytest"),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("pytest ran past {SUITE_TIMEOUT:?} and was killed");
        }
    }
}
