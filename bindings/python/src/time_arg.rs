//! Times given from Python: UNIX seconds as a float, `None` meaning now.

use pyo3::exceptions::PyValueError;
use pyo3::PyResult;
use time::OffsetDateTime;

/// `now` (UNIX seconds) as a date, or the current time when `None`.
pub(crate) fn at(now: Option<f64>) -> PyResult<OffsetDateTime> {
    let Some(seconds) = now else {
        return Ok(OffsetDateTime::now_utc());
    };
    if !seconds.is_finite() {
        return Err(PyValueError::new_err(
            "a time must be a finite number of seconds",
        ));
    }
    // Whole nanoseconds fit an i128 for any finite f64 in OffsetDateTime's range.
    let nanos = (seconds * 1e9) as i128;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| PyValueError::new_err(format!("time {seconds} is out of range")))
}

/// A non-negative, finite duration in seconds.
pub(crate) fn seconds(value: f64, what: &str) -> PyResult<std::time::Duration> {
    std::time::Duration::try_from_secs_f64(value).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite, non-negative number of seconds"
        ))
    })
}
