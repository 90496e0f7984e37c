//! Where a bench's processes run and how much CPU they use: a server pinned
//! to one CPU and the load kept off it, and CPU time read from /proc.

use std::process::Command;

use anyhow::Context;

/// User + system CPU seconds of process `pid`, every thread included (the
/// totals of `/proc/PID/stat`, in clock ticks of 1/100 s).
pub(crate) fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(cpu_ticks(pid)?[..2].iter().sum::<f64>() / 100.0)
}

/// [`process_cpu_seconds`] plus the CPU of its children that it waited for
/// (CGI scripts, say).
pub(crate) fn process_and_children_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(cpu_ticks(pid)?.iter().sum::<f64>() / 100.0)
}

/// utime, stime, cutime and cstime of `pid`, in ticks of 10 ms: fields 14
/// to 17 of /proc/PID/stat, 12 to 15 after the command name.
fn cpu_ticks(pid: u32) -> anyhow::Result<[f64; 4]> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok([tick(11), tick(12), tick(13), tick(14)])
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
