//! What the `bench` commands share: a calls-per-second loop, and running a
//! Python baseline from `benches/` in the same command so both sides are
//! measured on the same machine at the same time.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;

/// A child process (a server under test, a baseline) killed on every path.
pub(crate) struct KillOnDrop(pub(crate) std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Calls `op` repeatedly for `duration`; returns calls per second.
pub(crate) fn rate(
    duration: Duration,
    mut op: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < duration {
        for _ in 0..16 {
            op()?;
        }
        count += 16;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// The Python baselines of `benches/`, built into the binary so that an
/// installed `tessera` runs them as well as one in the build tree.
const BASELINE_SCRIPTS: [(&str, &str); 3] = [
    (
        "tlacacoca_guard.py",
        include_str!("../../../../benches/tlacacoca_guard.py"),
    ),
    (
        "trust_core_bench.py",
        include_str!("../../../../benches/trust_core_bench.py"),
    ),
    (
        "netaio_bench.py",
        include_str!("../../../../benches/netaio_bench.py"),
    ),
];

/// Runs the baseline `script` with `args` under python3 and parses the one
/// JSON object it prints. A baseline that cannot run (no python3, `package`
/// not installed) is not fatal: the note on stderr says why and how to
/// install it, and the bench prints its own results alone.
pub(crate) fn python_baseline(
    script: &str,
    args: &[String],
    package: &str,
) -> Option<serde_json::Value> {
    match run_baseline(script, args) {
        Ok(results) => Some(results),
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "tessera: the {script} baseline was not measured: {error:#}\n\
                 tessera: install it with `python3 -m pip install {package}` and run again"
            );
            None
        }
    }
}

fn run_baseline(script: &str, args: &[String]) -> anyhow::Result<serde_json::Value> {
    let source = BASELINE_SCRIPTS
        .iter()
        .find(|(name, _)| *name == script)
        .map(|(_, source)| *source)
        .with_context(|| format!("no baseline named {script}"))?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join(script);
    std::fs::write(&path, source)?;
    let output = std::process::Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .context("running python3")?;
    anyhow::ensure!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or("python3 failed")
    );
    serde_json::from_slice(&output.stdout).context("reading its results")
}

/// How a bench prints: the baseline's name as a JSON key and a column title,
/// and the decimals of the measured values.
pub(crate) struct Report<'a> {
    pub(crate) first_column: &'a str,
    pub(crate) baseline_key: &'a str,
    pub(crate) baseline_title: &'a str,
    pub(crate) decimals: usize,
}

impl Report<'_> {
    /// Prints `results` with `baseline` (when it was measured): one JSON object
    /// with the baseline under its key, or a table with a ratio for each `_per_s` key.
    pub(crate) fn print(
        &self,
        results: serde_json::Map<String, serde_json::Value>,
        baseline: Option<serde_json::Value>,
        json: bool,
    ) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            let mut object = serde_json::Value::Object(results);
            if let Some(baseline) = baseline {
                object[self.baseline_key] = baseline;
            }
            writeln!(out, "{object}")?;
            return Ok(());
        }
        let decimals = self.decimals;
        writeln!(
            out,
            "{:<28} {:>16} {:>16} {:>8}",
            self.first_column, "tessera", self.baseline_title, "ratio"
        )?;
        for (key, value) in &results {
            let ours = value.as_f64().unwrap_or(0.0);
            let theirs = baseline.as_ref().and_then(|b| b[key].as_f64());
            let ratio = theirs
                .filter(|t| *t > 0.0 && key.ends_with("_per_s"))
                .map(|t| ours / t);
            writeln!(
                out,
                "{key:<28} {ours:>16.decimals$} {:>16} {:>8}",
                theirs.map_or_else(|| "-".to_owned(), |t| format!("{t:.decimals$}")),
                ratio.map_or_else(
                    || "-".to_owned(),
                    // Small ratios keep a decimal; large ones need none.
                    |r| format!("{r:.*}x", usize::from(r < 10.0))
                )
            )?;
        }
        Ok(())
    }
}
