//! Where a bench's processes run and how much CPU they use: a server pinned
//! to one CPU and the load kept off it, and CPU time read from /proc.

use std::process::Command;

use anyhow::Context;

/// User + system CPU seconds of process `pid`, every thread included (the
/// totals of `/proc/PID/stat`, in clock ticks of 1/100 s).
pub(crate) fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    Ok((ticks(11) + ticks(12)) / 100.0)
}

/// Keeps this process (the load), every thread, off `cpu`, where the server runs.
pub(crate) fn pin_self_away_from(cpu: usize) -> anyhow::Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let others: Vec<String> = (0..cpus)
        .filter(|c| *c != cpu)
        .map(|c| c.to_string())
        .collect();
    anyhow::ensure!(!others.is_empty(), "pinning needs at least two CPUs");
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &others.join(","),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset")?;
    anyhow::ensure!(status.success(), "taskset failed");
    Ok(())
}
