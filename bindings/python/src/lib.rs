//! The native half of the `tessera` Python package. Each Python module
//! (`tessera.pow`, `tessera.guard`, …) re-exports the classes and functions
//! registered here; `python/tessera/_tessera.pyi` types them.
//!
//! Everything that can fail raises a subclass of `tessera.TesseraError`
//! (`errors.rs`, one place); long work (proof-of-work searches) releases the GIL.

// PyO3 hands arguments over by value, and errors are converted with
// `map_err(errors::pow)`, which takes them by value too. Python functions
// take their options as keyword arguments, so their Rust signatures are long.
#![allow(clippy::needless_pass_by_value, clippy::too_many_arguments)]

use pyo3::prelude::*;

mod certs;
mod errors;
mod guard;
mod pow;
mod proxy;
mod ready;
mod time_arg;
mod tofu;
mod trust;

#[pymodule]
fn _tessera(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(module)?;
    pow::register(module)?;
    guard::register(module)?;
    proxy::register(module)?;
    certs::register(module)?;
    tofu::register(module)?;
    trust::register(module)?;
    Ok(())
}
