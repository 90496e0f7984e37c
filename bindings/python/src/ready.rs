//! `tessera.guard.Ready`: an awaitable that is already done, so an `async`
//! API over a decision that never waits costs no coroutine per call.

use pyo3::exceptions::{PyBaseException, PyStopIteration};
use pyo3::gc::PyVisit;
use pyo3::prelude::*;
use pyo3::PyTraverseError;

/// An awaitable that is already done: `await` gives its value at once,
/// without suspending. One may be awaited any number of times, always with the
/// same value. Like a coroutine it has `send`, `throw` and `close`, and
/// `tessera.guard` registers it as a `collections.abc.Coroutine`, so
/// `asyncio.create_task` and `asyncio.gather` take it too.
#[pyclass(frozen, module = "tessera.guard")]
pub(crate) struct Ready {
    /// `StopIteration(value)`, made once: finishing an await raises it.
    stop: Py<PyBaseException>,
}

impl Ready {
    pub(crate) fn new(py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<Self>> {
        Py::new(py, Self::from_value(py, value))
    }

    fn from_value(py: Python<'_>, value: Py<PyAny>) -> Self {
        Self {
            stop: PyStopIteration::new_err((value,)).into_value(py),
        }
    }

    /// The `StopIteration` that ends an await with the value.
    fn finish(&self, py: Python<'_>) -> PyResult<PyErr> {
        let stop = self.stop.bind(py);
        let error = PyErr::from_value(stop.clone().into_any());
        if error.traceback(py).is_none() {
            return Ok(error);
        }
        // Raised through Python frames (a `send` called from Python code),
        // the shared exception kept them; let it hold none between raises.
        stop.setattr("__traceback__", py.None())?;
        Ok(PyErr::from_value(stop.clone().into_any()))
    }
}

#[pymethods]
impl Ready {
    /// An awaitable that gives `value`.
    #[new]
    fn py_new(py: Python<'_>, value: Py<PyAny>) -> Self {
        Self::from_value(py, value)
    }

    /// What awaiting gives.
    #[getter]
    fn value(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.stop.bind(py).getattr("value").map(Bound::unbind)
    }

    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<()> {
        Err(self.finish(py)?)
    }

    /// As a coroutine's `send`: there is nothing to resume, so it finishes
    /// with the value.
    fn send(&self, py: Python<'_>, _value: &Bound<'_, PyAny>) -> PyResult<()> {
        Err(self.finish(py)?)
    }

    /// As a coroutine's `throw`: nothing runs inside to catch the exception,
    /// so it comes straight back out (`throw(exc)`, or the older
    /// `throw(type, value)`).
    #[pyo3(signature = (error, value=None, _traceback=None))]
    fn throw(
        &self,
        error: Bound<'_, PyAny>,
        value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let exception = match value {
            Some(value) if value.is_instance_of::<PyBaseException>() => value,
            Some(value) if !value.is_none() => error.call1((value,))?,
            _ => error,
        };
        Err(PyErr::from_value(exception))
    }

    /// As a coroutine's `close`: nothing to clean up.
    fn close(&self) {}

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("Ready({})", self.value(py)?.bind(py).repr()?))
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        visit.call(&self.stop)
    }
}
