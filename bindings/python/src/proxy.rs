//! `tessera.guard.parse_proxy_header`: PROXY protocol v1 and v2 headers, in
//! full, parsed by the guard crate the servers use.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use tessera_guard::{ProxyDetails, ProxyFamily};

use crate::errors;

/// The header tlacacoca's default bound allows (v1 needs at most 107).
const DEFAULT_MAX_HEADER_SIZE: usize = 4096;

pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<ProxyHeader>()?;
    module.add_function(wrap_pyfunction!(parse_proxy_header, module)?)?;
    Ok(())
}

/// A parsed PROXY header: `version` 1 or 2; `command` `"PROXY"` or
/// `"LOCAL"` (the relay's own connection); `family` `"UNSPEC"`, `"INET"`,
/// `"INET6"` or `"UNIX"`; `source` and `destination` as `(host, port)` for
/// a relayed TCP connection, else `None`; `tlvs` as `(type, value)` pairs;
/// `length` the bytes the header takes.
#[pyclass(frozen, get_all, module = "tessera.guard")]
pub(crate) struct ProxyHeader {
    version: u8,
    command: &'static str,
    family: &'static str,
    source: Option<(String, u16)>,
    destination: Option<(String, u16)>,
    tlvs: Py<PyTuple>,
    length: usize,
}

#[pymethods]
impl ProxyHeader {
    fn __repr__(&self) -> String {
        format!(
            "ProxyHeader(version={}, command={:?}, family={:?}, source={:?}, length={})",
            self.version, self.command, self.family, self.source, self.length
        )
    }
}

/// Parses the PROXY header at the start of `data` (everything received so
/// far): `None` while it is incomplete; `GuardError` as soon as the bytes
/// cannot form one, or it would be longer than `max_header_size`.
#[pyfunction]
#[pyo3(signature = (data, max_header_size=DEFAULT_MAX_HEADER_SIZE))]
fn parse_proxy_header(
    py: Python<'_>,
    data: &[u8],
    max_header_size: usize,
) -> PyResult<Option<ProxyHeader>> {
    let Some(details) =
        tessera_guard::parse_proxy_details(data, max_header_size).map_err(errors::guard)?
    else {
        return Ok(None);
    };
    let ProxyDetails {
        version,
        local,
        family,
        source,
        destination,
        tlvs,
        length,
    } = details;
    let tlvs = tlvs
        .iter()
        .map(|(kind, value)| (*kind, PyBytes::new(py, value)))
        .collect::<Vec<_>>();
    let endpoint = |address: std::net::SocketAddr| (address.ip().to_string(), address.port());
    Ok(Some(ProxyHeader {
        version,
        command: if local { "LOCAL" } else { "PROXY" },
        family: match family {
            ProxyFamily::Unspecified => "UNSPEC",
            ProxyFamily::Inet => "INET",
            ProxyFamily::Inet6 => "INET6",
            ProxyFamily::Unix => "UNIX",
        },
        source: source.map(endpoint),
        destination: destination.map(endpoint),
        tlvs: PyTuple::new(py, tlvs)?.unbind(),
        length,
    }))
}
