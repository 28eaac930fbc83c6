//! The Production Manager and the uwsgi client as Python objects: `Change`, `ApplyReport`,
//! `Status` (`SessStatus`, `GigStatus`), `Response`, and `request()`.

use std::path::PathBuf;
use std::time::Duration;

use backstage::manager;
use backstage_uwsgi::{Client, Request, Target};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors;

/// One change `apply` makes (or made): create, update or delete a managed file.
#[pyclass(frozen, eq, module = "backstage", get_all)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `"create"`, `"update"` or `"delete"`.
    action: String,
    /// `"vassal"`, `"site"`, `"nginx_conf"` or `"page"`.
    kind: String,
    /// The manifest entry's name (`club-a`).
    name: String,
    /// The live path.
    file: PathBuf,
    /// Why: which manifest entry, or that the file was edited by hand.
    reason: String,
}

impl From<&backstage_core::plan::Change> for Change {
    fn from(c: &backstage_core::plan::Change) -> Self {
        use backstage_core::plan::Action;
        Change {
            action: match c.action {
                Action::Create => "create",
                Action::Update => "update",
                Action::Delete => "delete",
            }
            .to_owned(),
            kind: c.kind.to_string(),
            name: c.name.clone(),
            file: c.file.clone(),
            reason: c.reason.clone(),
        }
    }
}

#[pymethods]
impl Change {
    fn __repr__(&self) -> String {
        format!(
            "Change(action={:?}, kind={:?}, name={:?}, file={:?})",
            self.action,
            self.kind,
            self.name,
            self.file.display().to_string()
        )
    }
}

/// What `apply` (or `up`) did.
#[pyclass(frozen, module = "backstage", get_all)]
#[derive(Debug, Clone)]
pub struct ApplyReport {
    /// The changes made; empty when nothing was written and nothing reloaded.
    changes: Vec<Change>,
    /// Paths an interrupted earlier apply had changed, restored before this one.
    recovered: Vec<PathBuf>,
    /// Whether nginx was reloaded.
    nginx_reloaded: bool,
    /// The Sess health-checked before nginx was switched.
    checked_sess: Vec<String>,
}

impl From<&manager::ApplyReport> for ApplyReport {
    fn from(r: &manager::ApplyReport) -> Self {
        ApplyReport {
            changes: r.changes.iter().map(Change::from).collect(),
            recovered: r.recovered.clone(),
            nginx_reloaded: r.nginx_reloaded,
            checked_sess: r.checked_sess.clone(),
        }
    }
}

#[pymethods]
impl ApplyReport {
    fn __repr__(&self) -> String {
        format!(
            "<ApplyReport: {} change{}, nginx_reloaded={}>",
            self.changes.len(),
            if self.changes.len() == 1 { "" } else { "s" },
            if self.nginx_reloaded { "True" } else { "False" }
        )
    }
}

/// One Sess, as its uWSGI stats socket tells.
#[pyclass(frozen, module = "backstage", get_all)]
#[derive(Debug, Clone)]
pub struct SessStatus {
    /// The Sess.
    name: String,
    /// `"running"`, `"stopped"`, … (the Stage Manager's word).
    state: String,
    /// Live workers.
    workers: u32,
    /// Requests served since start.
    requests: u64,
    /// Resident memory of master and workers, in bytes.
    rss_bytes: u64,
    /// Why it is not running, when known.
    reason: Option<String>,
    /// The last lines of its log.
    log_tail: Vec<String>,
}

#[pymethods]
impl SessStatus {
    fn __repr__(&self) -> String {
        format!("<SessStatus {:?}: {}>", self.name, self.state)
    }
}

/// One Gig, asked through nginx.
#[pyclass(frozen, module = "backstage", get_all)]
#[derive(Debug, Clone)]
pub struct GigStatus {
    /// The Gig.
    name: String,
    /// Its URL.
    url: String,
    /// The HTTP status it answered with; `None` when it did not answer.
    http_status: Option<u16>,
    /// Why it did not answer.
    error: Option<String>,
}

#[pymethods]
impl GigStatus {
    fn __repr__(&self) -> String {
        format!(
            "<GigStatus {:?} {}: {}>",
            self.name,
            self.url,
            self.http_status
                .map_or_else(|| "None".to_owned(), |s| s.to_string())
        )
    }
}

/// Every Sess and every Gig of a Production, as they are now.
#[pyclass(frozen, module = "backstage", get_all)]
#[derive(Debug, Clone)]
pub struct Status {
    /// Every Sess, by name.
    sess: Vec<SessStatus>,
    /// Every Gig, by name.
    gigs: Vec<GigStatus>,
}

impl From<manager::Status> for Status {
    fn from(s: manager::Status) -> Self {
        Status {
            sess: s
                .sess
                .into_iter()
                .map(|s| SessStatus {
                    name: s.name,
                    state: s.state.to_owned(),
                    workers: s.workers,
                    requests: s.requests,
                    rss_bytes: s.rss_bytes,
                    reason: s.reason,
                    log_tail: s.log_tail,
                })
                .collect(),
            gigs: s
                .gigs
                .into_iter()
                .map(|g| GigStatus {
                    name: g.name,
                    url: g.url,
                    http_status: g.http_status,
                    error: g.error,
                })
                .collect(),
        }
    }
}

#[pymethods]
impl Status {
    fn __repr__(&self) -> String {
        format!(
            "<Status: {} Sess, {} Gigs>",
            self.sess.len(),
            self.gigs.len()
        )
    }
}

/// An HTTP response that came back over uwsgi.
#[pyclass(frozen, module = "backstage")]
#[derive(Debug)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

#[pymethods]
impl Response {
    /// The status code.
    #[getter]
    fn status(&self) -> u16 {
        self.status
    }

    /// Headers in order, names as sent, values decoded as Latin-1 (HTTP's own charset).
    #[getter]
    fn headers(&self) -> Vec<(String, String)> {
        self.headers.clone()
    }

    /// The whole body.
    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.body)
    }

    fn __repr__(&self) -> String {
        format!("<Response {} ({} bytes)>", self.status, self.body.len())
    }
}

/// Sends one HTTP request over the uwsgi protocol to `target` (a unix socket path, with a `/`,
/// or `host:port`) and reads the whole response, with the GIL released; `timeout` bounds the
/// whole exchange.
#[pyfunction]
#[pyo3(signature = (target, path, method = "GET", headers = None, body = None, timeout = 30.0))]
pub fn request(
    py: Python<'_>,
    target: &str,
    path: String,
    method: &str,
    headers: Option<&Bound<'_, PyAny>>,
    body: Option<&Bound<'_, PyBytes>>,
    timeout: f64,
) -> PyResult<Response> {
    let target: Target = target
        .parse()
        .map_err(|e: backstage_uwsgi::Error| PyValueError::new_err(e.to_string()))?;
    let timeout = seconds("timeout", timeout)?;
    let mut req = Request::new(method.to_owned(), path);
    if let Some(headers) = headers {
        let items = if headers.is_instance_of::<PyDict>() {
            headers.call_method0("items")?
        } else {
            headers.clone()
        };
        for item in items.try_iter()? {
            let (name, value): (String, String) = item?.extract()?;
            req = req.header(name, value);
        }
    }
    if let Some(body) = body {
        req = req.body(body.as_bytes().to_vec());
    }
    py.detach(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(backstage_uwsgi::Error::Stream)?;
        runtime.block_on(async move {
            let client = Client::new(target)
                .connect_timeout(timeout)
                .read_timeout(timeout)
                .deadline(timeout);
            let (head, body) = client.send(req).await?.into_parts();
            let body = body.bytes().await?;
            Ok(Response {
                status: head.status,
                headers: head
                    .headers
                    .into_iter()
                    .map(|(name, value)| (name, value.iter().map(|&b| char::from(b)).collect()))
                    .collect(),
                body: body.to_vec(),
            })
        })
    })
    .map_err(|e| errors::protocol_error(py, &e))
}

/// A positive number of seconds, or `ValueError` naming the argument.
pub(crate) fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{name} `{value}` is not a positive number of seconds"
            ))
        })
}

/// One kept release of an Act (`Production.releases()`, and what `deploy()`/`rollback()` made
/// live).
// `release_phase` is the name `releases --json` uses.
#[allow(clippy::struct_field_names)]
#[pyclass(frozen, module = "backstage", get_all)]
#[derive(Debug, Clone)]
pub struct Release {
    /// The Act.
    act: String,
    /// Its id: `<UTC time>-<short revision>`.
    id: String,
    /// The git commit, or the content hash of a plain directory.
    revision: String,
    /// When it was built (RFC 3339, UTC).
    created: String,
    /// Whether it is the Act's live release.
    live: bool,
    /// `"ok"`, `"failed"` or `"skipped"` (no release commands).
    release_phase: String,
}

#[pymethods]
impl Release {
    fn __repr__(&self) -> String {
        format!(
            "<Release {}:{}{}>",
            self.act,
            self.id,
            if self.live { " live" } else { "" }
        )
    }
}

fn phase_word(phase: manager::releases::Phase) -> String {
    phase.as_str().to_owned()
}

impl From<manager::ReleaseInfo> for Release {
    fn from(r: manager::ReleaseInfo) -> Self {
        Release {
            release_phase: phase_word(r.release_phase),
            act: r.act,
            id: r.id,
            revision: r.revision,
            created: r.created,
            live: r.live,
        }
    }
}

impl From<&manager::Switched> for Release {
    fn from(s: &manager::Switched) -> Self {
        Release {
            act: s.act.clone(),
            id: s.release.id.clone(),
            revision: s.release.revision.clone(),
            created: s.release.created.clone(),
            live: true,
            release_phase: phase_word(s.release.release_phase),
        }
    }
}
