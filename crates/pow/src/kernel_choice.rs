//! Which SIMD kernel this process uses for each hash: the fastest one measured
//! here (`../shared/spec/pow.md` §5.6: detection plus measurement, not
//! assumption), measured once per process — or, with
//! [`cache_kernel_choice`], once per CPU model and remembered in a small file,
//! because measuring every kernel costs ~20 ms of CPU and a short command
//! (`tessera pow solve --bits 1`, one tlslp session) needs only a few.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::search::{measure, Target};
use crate::Kernel;

static SHA256: OnceLock<Kernel> = OnceLock::new();
static SHA1: OnceLock<Kernel> = OnceLock::new();
static CACHE_FILE: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The largest cache file we read; a few lines are expected.
const MAX_CACHE_BYTES: u64 = 64 * 1024;

/// Remember the kernel choice in `file` (created with its directory on the
/// first measurement; `None` picks `$XDG_CACHE_HOME/tessera/pow-kernels`, or
/// `~/.cache/…`). Searches in this process then read the choice for this CPU
/// from the file instead of measuring, and write it there after measuring.
/// The cache is only ever a hint: a missing, unreadable or stale file means a
/// measurement, a write that fails is ignored.
pub fn cache_kernel_choice(file: Option<PathBuf>) {
    let file = file.or_else(default_cache_file);
    *CACHE_FILE.lock().unwrap_or_else(PoisonError::into_inner) = file;
}

/// `$XDG_CACHE_HOME/tessera/pow-kernels`, falling back to `~/.cache`.
fn default_cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("tessera").join("pow-kernels"))
}

/// The kernel that scans `target` fastest here.
pub(crate) fn fastest(target: Target) -> Kernel {
    let (cell, hash) = if target == Target::Sha1Leading {
        (&SHA1, "sha1")
    } else {
        (&SHA256, "sha256")
    };
    *cell.get_or_init(|| {
        let candidates = candidates();
        if let [only] = candidates[..] {
            return only;
        }
        let file = CACHE_FILE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let key = cpu_key();
        if let Some(kernel) = file
            .as_deref()
            .and_then(|file| remembered(file, &key, hash))
            .filter(|kernel| candidates.contains(kernel))
        {
            return kernel;
        }
        let kernel = measure_fastest(&candidates, target);
        if let Some(file) = file {
            remember(&file, &key, hash, kernel);
        }
        kernel
    })
}

/// The SIMD kernels this CPU runs (the portable one only when there is none).
fn candidates() -> Vec<Kernel> {
    let available = Kernel::available();
    if available.len() > 1 {
        available
            .into_iter()
            .filter(|kernel| *kernel != Kernel::Portable)
            .collect()
    } else {
        available
    }
}

fn measure_fastest(candidates: &[Kernel], target: Target) -> Kernel {
    let mut best = (Kernel::Portable, 0.0);
    for &kernel in candidates {
        let rate = measure(kernel, target, 4);
        if rate > best.1 {
            best = (kernel, rate);
        }
    }
    best.0
}

/// What a remembered choice is valid for: this crate's version (kernels
/// change), the CPU model and the kernels it offers.
fn cpu_key() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    let kernels: Vec<String> = Kernel::available()
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "{} {} [{}]",
        env!("CARGO_PKG_VERSION"),
        model.replace(['\t', '\n'], " "),
        kernels.join(",")
    )
}

/// Lines of the cache file: `KEY \t HASH \t KERNEL`.
fn read_lines(file: &Path) -> Vec<String> {
    use std::io::Read;
    let mut text = String::new();
    let read =
        std::fs::File::open(file).and_then(|f| f.take(MAX_CACHE_BYTES).read_to_string(&mut text));
    if read.is_err() {
        return Vec::new();
    }
    text.lines().map(str::to_owned).collect()
}

fn remembered(file: &Path, key: &str, hash: &str) -> Option<Kernel> {
    read_lines(file).iter().find_map(|line| {
        let mut fields = line.split('\t');
        let (k, h, kernel) = (fields.next()?, fields.next()?, fields.next()?);
        (k == key && h == hash)
            .then(|| kernel.parse().ok())
            .flatten()
    })
}

/// Replace this CPU's line for `hash`, keeping the others; written to a
/// temporary file and renamed, so concurrent processes never read half a file.
fn remember(file: &Path, key: &str, hash: &str, kernel: Kernel) {
    let prefix = format!("{key}\t{hash}\t");
    let mut lines: Vec<String> = read_lines(file)
        .into_iter()
        .filter(|line| !line.starts_with(&prefix))
        .collect();
    lines.push(format!("{prefix}{kernel}"));
    let Some(dir) = file.parent() else { return };
    let temp = dir.join(format!(".pow-kernels.{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&temp, lines.join("\n") + "\n"))
        .and_then(|()| std::fs::rename(&temp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_choice_is_found_by_key_and_hash_and_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub").join("pow-kernels");
        assert_eq!(remembered(&file, "cpu", "sha256"), None);
        remember(&file, "cpu", "sha256", Kernel::Avx2);
        remember(&file, "cpu", "sha1", Kernel::Portable);
        remember(&file, "other cpu", "sha256", Kernel::ShaNi);
        remember(&file, "cpu", "sha256", Kernel::Avx512);
        assert_eq!(remembered(&file, "cpu", "sha256"), Some(Kernel::Avx512));
        assert_eq!(remembered(&file, "cpu", "sha1"), Some(Kernel::Portable));
        assert_eq!(
            remembered(&file, "other cpu", "sha256"),
            Some(Kernel::ShaNi)
        );
        assert_eq!(read_lines(&file).len(), 3);
    }

    #[test]
    fn a_damaged_cache_file_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pow-kernels");
        std::fs::write(&file, "garbage\n\tsha256\tnot-a-kernel\n\0\0\0").unwrap();
        assert_eq!(remembered(&file, "", "sha256"), None);
        assert_eq!(remembered(&file, "garbage", "sha256"), None);
    }

    #[test]
    fn the_key_names_this_cpus_kernels() {
        let key = cpu_key();
        assert!(key.contains("portable"), "{key}");
        assert!(!key.contains('\t'));
    }
}
