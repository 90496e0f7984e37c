//! `tessera.pow`: tlslp WORK puzzles, Hashcash v1 stamps and SHA-256
//! challenges. Searches run on every core with the GIL released, and stop on
//! a timeout, a `CancelToken`, Ctrl-C, or a progress callback that raises.

use std::sync::mpsc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use tessera_pow::hashcash::{self, HashcashPolicy, MemorySpentSet, SpentSet, SqliteSpentSet};
use tessera_pow::{Kernel, SearchOptions, TlslpPuzzle};

use crate::errors::{self, StampSpent};
use crate::time_arg;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<CancelToken>()?;
    module.add_class::<Solution>()?;
    module.add_class::<Stamp>()?;
    module.add_class::<SpentStamps>()?;
    module.add_class::<Challenge>()?;
    module.add_function(wrap_pyfunction!(solve, module)?)?;
    module.add_function(wrap_pyfunction!(verify, module)?)?;
    module.add_function(wrap_pyfunction!(kernels, module)?)?;
    module.add_function(wrap_pyfunction!(mint_stamp, module)?)?;
    module.add_function(wrap_pyfunction!(verify_stamp, module)?)?;
    Ok(())
}

/// Stops a running search from another thread: `token.cancel()`.
#[pyclass(frozen, module = "tessera.pow")]
#[derive(Default)]
pub(crate) struct CancelToken(tessera_pow::CancelToken);

#[pymethods]
impl CancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Asks every search holding this token to stop (it raises `SearchCancelled`).
    fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether `cancel()` was called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.0.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!("CancelToken(cancelled={})", self.0.is_cancelled())
    }
}

/// A solved tlslp puzzle: the suffix to send and the candidates it took.
#[pyclass(frozen, get_all, module = "tessera.pow")]
pub(crate) struct Solution {
    suffix: String,
    candidates: u64,
}

#[pymethods]
impl Solution {
    fn __repr__(&self) -> String {
        format!(
            "Solution(suffix={:?}, candidates={})",
            self.suffix, self.candidates
        )
    }
}

/// How a search is run, as every search function takes it.
struct Search<'py> {
    options: SearchOptions,
    progress: Option<Bound<'py, PyAny>>,
    interval: Duration,
}

impl<'py> Search<'py> {
    fn new(
        threads: Option<usize>,
        timeout: Option<f64>,
        cancel: Option<&CancelToken>,
        progress: Option<Bound<'py, PyAny>>,
        progress_interval: f64,
    ) -> PyResult<Self> {
        let mut options = SearchOptions::default();
        if let Some(threads) = threads {
            if threads == 0 {
                return Err(PyValueError::new_err("threads must be at least 1"));
            }
            options.threads(threads);
        }
        if let Some(timeout) = timeout {
            options.timeout(time_arg::seconds(timeout, "timeout")?);
        }
        if let Some(cancel) = cancel {
            options.cancel_token(cancel.0.clone());
        }
        let interval = time_arg::seconds(progress_interval, "progress_interval")?;
        if interval.is_zero() {
            return Err(PyValueError::new_err("progress_interval must be above 0"));
        }
        Ok(Self {
            options,
            progress,
            interval,
        })
    }

    /// Runs `work` on its own thread with the GIL released. Every `interval`
    /// this thread takes the GIL back to deliver Ctrl-C and call `progress`
    /// with the candidates tried so far; either raising cancels the search.
    fn run<T: Send + 'static>(
        self,
        py: Python<'py>,
        work: impl FnOnce(&SearchOptions) -> Result<T, tessera_pow::Error> + Send + 'static,
    ) -> PyResult<T> {
        let Self {
            options,
            progress,
            interval,
        } = self;
        let cancel = options.cancellation().clone();
        let counter = options.progress();
        let (done, mut result) = mpsc::sync_channel(1);
        let worker = std::thread::Builder::new()
            .name("tessera-pow".into())
            .spawn(move || {
                // The receiver only goes away after joining this thread.
                let _ = done.send(work(&options));
            })
            .map_err(|error| {
                errors::PowError::new_err(format!("cannot start the search: {error}"))
            })?;
        let outcome = loop {
            let waiting = &mut result;
            match py.detach(move || waiting.recv_timeout(interval)) {
                Ok(outcome) => break outcome.map_err(errors::pow),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Err(errors::PowError::new_err("the search thread failed"))
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            let interrupted = py.check_signals().err().or_else(|| {
                let tried = counter.load(std::sync::atomic::Ordering::Relaxed);
                let callback = progress.as_ref()?;
                callback.call1((tried,)).err()
            });
            if let Some(error) = interrupted {
                // A cancelled search returns at its next batch of candidates.
                cancel.cancel();
                break Err(error);
            }
        };
        // The thread has sent its result or been cancelled: this wait is short.
        let _ = py.detach(move || worker.join());
        outcome
    }
}

/// Solves a tlslp WORK puzzle: a suffix of `[A-Za-z0-9_-]` such that
/// SHA-256(token + suffix) ends in `bits` zero bits.
#[pyfunction]
#[pyo3(signature = (token, bits, *, threads=None, timeout=None, cancel=None, progress=None, progress_interval=0.5))]
fn solve<'py>(
    py: Python<'py>,
    token: &str,
    bits: u32,
    threads: Option<usize>,
    timeout: Option<f64>,
    cancel: Option<&CancelToken>,
    progress: Option<Bound<'py, PyAny>>,
    progress_interval: f64,
) -> PyResult<Solution> {
    let puzzle = TlslpPuzzle::new(token, bits).map_err(errors::pow)?;
    let search = Search::new(threads, timeout, cancel, progress, progress_interval)?;
    let solution = search.run(py, move |options| puzzle.solve(options))?;
    Ok(Solution {
        suffix: solution.suffix,
        candidates: solution.candidates,
    })
}

/// Whether `suffix` solves the tlslp puzzle (`token`, `bits`). Raises
/// `PowError` for a token or difficulty no puzzle can have.
#[pyfunction]
fn verify(token: &str, bits: u32, suffix: &str) -> PyResult<bool> {
    let puzzle = TlslpPuzzle::new(token, bits).map_err(errors::pow)?;
    Ok(puzzle.verify(suffix))
}

/// The SIMD kernels this CPU can run, fastest family first.
#[pyfunction]
fn kernels() -> Vec<String> {
    Kernel::available()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// Mints a Hashcash v1 stamp worth `bits` for `resource`, as the `hashcash`
/// CLI does (`hashcash -m -b BITS RESOURCE`).
#[pyfunction]
#[pyo3(signature = (resource, bits, *, now=None, threads=None, timeout=None, cancel=None, progress=None, progress_interval=0.5))]
fn mint_stamp<'py>(
    py: Python<'py>,
    resource: String,
    bits: u32,
    now: Option<f64>,
    threads: Option<usize>,
    timeout: Option<f64>,
    cancel: Option<&CancelToken>,
    progress: Option<Bound<'py, PyAny>>,
    progress_interval: f64,
) -> PyResult<String> {
    let now = time_arg::at(now)?;
    let search = Search::new(threads, timeout, cancel, progress, progress_interval)?;
    search.run(py, move |options| {
        hashcash::mint(&resource, bits, now, options)
    })
}

/// A verified Hashcash stamp. Times are UNIX seconds.
#[pyclass(frozen, get_all, module = "tessera.pow")]
pub(crate) struct Stamp {
    text: String,
    bits: u32,
    resource: String,
    date: i64,
    expires_at: Option<i64>,
}

#[pymethods]
impl Stamp {
    fn __repr__(&self) -> String {
        format!("Stamp({:?}, bits={})", self.text, self.bits)
    }
}

/// Spent Hashcash stamps: in memory (at most `capacity`, expired ones
/// dropped first) or, with `path`, in an SQLite file shared by processes.
#[pyclass(frozen, module = "tessera.pow")]
pub(crate) struct SpentStamps(Box<dyn SpentSet>);

#[pymethods]
impl SpentStamps {
    #[new]
    #[pyo3(signature = (path=None, *, capacity=MemorySpentSet::DEFAULT_CAP))]
    fn new(path: Option<std::path::PathBuf>, capacity: usize) -> PyResult<Self> {
        match path {
            Some(path) => Ok(Self(Box::new(
                SqliteSpentSet::open(&path).map_err(errors::pow)?,
            ))),
            None if capacity == 0 => Err(PyValueError::new_err("capacity must be at least 1")),
            None => Ok(Self(Box::new(MemorySpentSet::new(capacity)))),
        }
    }
}

/// Checks a Hashcash stamp for `resource` and `bits` with the CLI's rules
/// (28-day expiry, 2-day grace by default; both in seconds). With `spent`,
/// the stamp is also recorded, and a second use raises `StampSpent`.
#[pyfunction]
#[pyo3(signature = (stamp, resource, bits, *, expiry=28.0 * 86400.0, grace=2.0 * 86400.0, spent=None, now=None))]
fn verify_stamp(
    py: Python<'_>,
    stamp: &str,
    resource: &str,
    bits: u32,
    expiry: f64,
    grace: f64,
    spent: Option<&SpentStamps>,
    now: Option<f64>,
) -> PyResult<Stamp> {
    let now = time_arg::at(now)?;
    let mut policy = HashcashPolicy::new(bits, resource);
    policy
        .expiry(whole_seconds(expiry, "expiry")?)
        .grace(whole_seconds(grace, "grace")?);
    let verified = hashcash::verify(stamp, &policy, now).map_err(errors::pow)?;
    if let Some(spent) = spent {
        let first = py
            .detach(|| spent.0.spend(&verified, now))
            .map_err(errors::pow)?;
        if !first {
            return Err(StampSpent::new_err("stamp already spent"));
        }
    }
    Ok(Stamp {
        text: verified.text,
        bits: verified.bits,
        resource: verified.resource,
        date: verified.date.unix_timestamp(),
        expires_at: verified
            .expires_at
            .map(time::OffsetDateTime::unix_timestamp),
    })
}

fn whole_seconds(value: f64, what: &str) -> PyResult<time::Duration> {
    let duration = time_arg::seconds(value, what)?;
    time::Duration::try_from(duration)
        .map_err(|_| PyValueError::new_err(format!("{what} is too long")))
}

/// A SHA-256 challenge (`v1.<random>.<expiry>.<bits>`): issued by a server,
/// solved by a client for a context (e.g. the request), verified statelessly.
#[pyclass(frozen, module = "tessera.pow")]
pub(crate) struct Challenge(tessera_pow::Challenge);

#[pymethods]
impl Challenge {
    /// A fresh challenge of `bits` leading zero bits, valid for `ttl` seconds.
    #[staticmethod]
    #[pyo3(signature = (bits, *, ttl=60.0, now=None))]
    fn issue(bits: u32, ttl: f64, now: Option<f64>) -> PyResult<Self> {
        let ttl = whole_seconds(ttl, "ttl")?;
        tessera_pow::Challenge::issue(bits, ttl, time_arg::at(now)?)
            .map(Self)
            .map_err(errors::pow)
    }

    /// Reads a challenge's text form.
    #[staticmethod]
    fn parse(text: &str) -> PyResult<Self> {
        tessera_pow::Challenge::parse(text)
            .map(Self)
            .map_err(errors::pow)
    }

    /// The text form, to send to the client.
    #[getter]
    fn text(&self) -> String {
        self.0.to_text()
    }

    /// Leading zero bits required.
    #[getter]
    fn bits(&self) -> u32 {
        self.0.bits()
    }

    /// Finds a nonce for `context`.
    #[pyo3(signature = (context, *, threads=None, timeout=None, cancel=None, progress=None, progress_interval=0.5))]
    fn solve<'py>(
        &self,
        py: Python<'py>,
        context: String,
        threads: Option<usize>,
        timeout: Option<f64>,
        cancel: Option<&CancelToken>,
        progress: Option<Bound<'py, PyAny>>,
        progress_interval: f64,
    ) -> PyResult<String> {
        let challenge = self.0.clone();
        let search = Search::new(threads, timeout, cancel, progress, progress_interval)?;
        search.run(py, move |options| challenge.solve(&context, options))
    }

    /// Checks `nonce` for `context`; raises `InvalidChallenge` (expired, too
    /// few bits, over-long input).
    #[pyo3(signature = (context, nonce, *, now=None))]
    fn verify(&self, context: &str, nonce: &str, now: Option<f64>) -> PyResult<()> {
        self.0
            .verify(context, nonce, time_arg::at(now)?)
            .map_err(errors::pow)
    }

    fn __str__(&self) -> String {
        self.0.to_text()
    }

    fn __repr__(&self) -> String {
        format!("Challenge({:?})", self.0.to_text())
    }
}
