//! What the `bench` commands share: a calls-per-second loop, and running a
//! Python baseline from `benches/` in the same command so both sides are
//! measured on the same machine at the same time.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;

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

/// Runs `benches/{script}` with `args` under python3 and parses the one JSON
/// object it prints; `package` names what to `pip install` when it fails.
pub(crate) fn python_baseline(
    script: &str,
    args: &[String],
    package: &str,
) -> anyhow::Result<serde_json::Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches")
        .join(script);
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "baseline {} failed (pip install {package}): {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or_default()
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}
