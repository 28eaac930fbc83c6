//! Python bindings for Backstage: the `backstage._backstage` extension module.
//!
//! Thin over `backstage-core`; the Python package lives in `python/backstage`.
#![deny(missing_docs)]

use pyo3::prelude::*;

/// The `backstage._backstage` extension module.
#[pymodule]
fn _backstage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
