//! Python bindings for Backstage: the `backstage._backstage` extension module.
//!
//! Thin over `backstage-core`: reading, validating and describing a Production happen in Rust;
//! this crate only converts values and errors (errors in one place, [`errors`]). The Python
//! package around it lives in `python/backstage` (re-exports, exception classes, the Django
//! app, `.pyi` stubs). Built by maturin into an abi3 wheel:
//!
//! ```python
//! import backstage
//!
//! production = backstage.Production.load("examples/jazzclub/backstage.toml")
//! production.check()              # raises backstage.ValidationError listing every problem
//! print(production.name, production.gigs)
//! for problem in backstage.Production.from_toml("[production]\nname = 'X'\n").problems():
//!     print(problem)              # 2:8: production.name: invalid name ...
//! for change in production.plan():   # the Production Manager: plan, render, apply, up, down,
//!     print(change.action, change.file)  # status; backstage.request() speaks uwsgi
//! ```
#![deny(missing_docs)]

mod errors;
mod manage;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backstage::manager::{self, ApplyOptions};
use backstage_core::{Manifest, Mode};
use pyo3::prelude::*;

/// One problem in a manifest: where it is and why.
#[pyclass(frozen, eq, hash, module = "backstage", get_all)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Problem {
    /// The TOML path of the offending value (`venues.jazz.server_names[1]`); empty for the
    /// document as a whole.
    path: String,
    /// 1-based line.
    line: usize,
    /// 1-based column, in characters.
    column: usize,
    /// A one-line reason.
    message: String,
    /// What to do about it, when Backstage can tell.
    hint: Option<String>,
}

impl From<&backstage_core::Problem> for Problem {
    fn from(p: &backstage_core::Problem) -> Self {
        Problem {
            path: p.path.clone(),
            line: p.line,
            column: p.column,
            message: p.message.clone(),
            hint: p.hint.clone(),
        }
    }
}

#[pymethods]
impl Problem {
    #[new]
    #[pyo3(signature = (path, line, column, message, hint = None))]
    fn new(
        path: String,
        line: usize,
        column: usize,
        message: String,
        hint: Option<String>,
    ) -> Self {
        Problem {
            path,
            line,
            column,
            message,
            hint,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Problem(path={:?}, line={}, column={}, message={:?}, hint={})",
            self.path,
            self.line,
            self.column,
            self.message,
            self.hint
                .as_ref()
                .map_or_else(|| "None".to_owned(), |h| format!("{h:?}"))
        )
    }

    fn __str__(&self) -> String {
        let core = backstage_core::Problem {
            path: self.path.clone(),
            span: 0..0,
            line: self.line,
            column: self.column,
            message: self.message.clone(),
            hint: self.hint.clone(),
        };
        core.to_string()
    }
}

/// A Production read from a `backstage.toml`: valid or not, with every problem found.
///
/// Reading never raises for an invalid manifest (only for one that cannot be read);
/// `check()` raises `ValidationError`, `problems()` lists them, and the descriptive
/// properties raise `ValidationError` on an invalid Production.
#[pyclass(frozen, module = "backstage")]
#[derive(Debug)]
pub struct Production {
    manifest: Manifest,
    parsed: Result<backstage_core::Production, Vec<backstage_core::Problem>>,
}

impl Production {
    /// Validates `manifest` with the GIL released, so other Python threads run meanwhile.
    fn validate(py: Python<'_>, manifest: Manifest) -> Production {
        py.detach(|| {
            let parsed = manifest.parse();
            Production { manifest, parsed }
        })
    }

    /// The valid Production, or `ValidationError`.
    fn valid(&self, py: Python<'_>) -> PyResult<&backstage_core::Production> {
        self.parsed
            .as_ref()
            .map_err(|problems| errors::validation_error(py, self.manifest.path(), problems))
    }

    fn names<T>(
        &self,
        py: Python<'_>,
        pick: impl Fn(
            &backstage_core::Production,
        ) -> &std::collections::BTreeMap<backstage_core::values::Slug, T>,
    ) -> PyResult<Vec<String>> {
        Ok(pick(self.valid(py)?)
            .keys()
            .map(ToString::to_string)
            .collect())
    }
}

#[pymethods]
impl Production {
    /// Reads and validates the manifest at `path`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Production> {
        let manifest = py
            .detach(move || Manifest::read(&path))
            .map_err(|e| errors::to_py(py, e))?;
        Ok(Production::validate(py, manifest))
    }

    /// Finds `backstage.toml` in `start` (default: the current directory) or its nearest
    /// parent, reads and validates it.
    #[staticmethod]
    #[pyo3(signature = (start = None))]
    fn discover(py: Python<'_>, start: Option<PathBuf>) -> PyResult<Production> {
        let manifest = py
            .detach(|| {
                let start = match start {
                    Some(dir) => dir,
                    None => {
                        std::env::current_dir().map_err(|source| backstage_core::Error::Read {
                            path: ".".into(),
                            source,
                        })?
                    }
                };
                Manifest::discover(&start)
            })
            .map_err(|e| errors::to_py(py, e))?;
        Ok(Production::validate(py, manifest))
    }

    /// Validates manifest text; relative paths in it resolve against `base_dir` (default: the
    /// current directory).
    #[staticmethod]
    #[pyo3(signature = (text, base_dir = None))]
    fn from_toml(py: Python<'_>, text: String, base_dir: Option<PathBuf>) -> PyResult<Production> {
        let base_dir = base_dir.unwrap_or_else(|| PathBuf::from("."));
        let base_dir = std::path::absolute(&base_dir).map_err(|source| {
            errors::to_py(
                py,
                backstage_core::Error::Read {
                    path: base_dir,
                    source,
                },
            )
        })?;
        let manifest = Manifest::from_source(PathBuf::from("<string>"), base_dir, text);
        Ok(Production::validate(py, manifest))
    }

    /// Raises `ValidationError` (with every problem) unless the Production is valid.
    fn check(&self, py: Python<'_>) -> PyResult<()> {
        self.valid(py).map(|_| ())
    }

    /// Every problem found, in file order; empty when the Production is valid.
    fn problems(&self) -> Vec<Problem> {
        match &self.parsed {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(Problem::from).collect(),
        }
    }

    /// Where the manifest was read from (`<string>` for `from_toml`).
    #[getter]
    fn path(&self) -> &Path {
        self.manifest.path()
    }

    /// The directory relative paths in the manifest resolve against.
    #[getter]
    fn base_dir(&self) -> &Path {
        self.manifest.base_dir()
    }

    /// The manifest's text.
    #[getter]
    fn source(&self) -> &str {
        self.manifest.source()
    }

    /// The Production's name; prefixes every generated name.
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.valid(py)?.name.to_string())
    }

    /// `"user"` or `"system"`.
    #[getter]
    fn mode(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(match self.valid(py)?.mode {
            Mode::User => "user",
            Mode::System => "system",
        })
    }

    /// Backstage's own state directory.
    #[getter]
    fn state_dir(&self, py: Python<'_>) -> PyResult<PathBuf> {
        Ok(self.valid(py)?.layout.state_dir.as_path().to_owned())
    }

    /// Where sockets, stats sockets, master FIFOs and pid files live.
    #[getter]
    fn run_dir(&self, py: Python<'_>) -> PyResult<PathBuf> {
        Ok(self.valid(py)?.layout.run_dir.as_path().to_owned())
    }

    /// Where the Emperor, the vassals and (user mode) nginx log.
    #[getter]
    fn log_dir(&self, py: Python<'_>) -> PyResult<PathBuf> {
        Ok(self.valid(py)?.layout.log_dir.as_path().to_owned())
    }

    /// The Emperor's vassal directory.
    #[getter]
    fn vassal_dir(&self, py: Python<'_>) -> PyResult<PathBuf> {
        Ok(self.valid(py)?.layout.vassal_dir.as_path().to_owned())
    }

    /// Where nginx site files are written.
    #[getter]
    fn nginx_dir(&self, py: Python<'_>) -> PyResult<PathBuf> {
        Ok(self.valid(py)?.layout.nginx_dir.as_path().to_owned())
    }

    /// The Acts' names, sorted.
    #[getter]
    fn acts(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names(py, |p| &p.acts)
    }

    /// The Stages' names, sorted.
    #[getter]
    fn stages(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names(py, |p| &p.stages)
    }

    /// The Sess' names, sorted.
    #[getter]
    fn sess(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names(py, |p| &p.sess)
    }

    /// The Venues' names, sorted.
    #[getter]
    fn venues(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names(py, |p| &p.venues)
    }

    /// The Gigs' names, sorted.
    #[getter]
    fn gigs(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.names(py, |p| &p.gigs)
    }

    /// The changes `apply()` would make, in apply order; writes nothing.
    fn plan(&self, py: Python<'_>) -> PyResult<Vec<manage::Change>> {
        let production = self.valid(py)?;
        let plan = py
            .detach(|| manager::plan(production))
            .map_err(|e| errors::manager_error(py, e, false))?;
        Ok(plan.changes.iter().map(manage::Change::from).collect())
    }

    /// Writes every file the Production implies under `out_dir` (mirroring the live paths),
    /// never touching the live ones; returns the paths written.
    fn render(&self, py: Python<'_>, out_dir: PathBuf) -> PyResult<Vec<PathBuf>> {
        let production = self.valid(py)?;
        py.detach(move || manager::render_into(production, &out_dir))
            .map_err(|e| errors::manager_error(py, e, false))
    }

    /// Makes the live files match the manifest: new Sess must answer within `health_timeout`
    /// seconds before nginx switches, and a failure rolls every change back (`ApplyError`).
    #[pyo3(signature = (*, health_timeout = 30.0))]
    fn apply(&self, py: Python<'_>, health_timeout: f64) -> PyResult<manage::ApplyReport> {
        let production = self.valid(py)?;
        let options = apply_options(health_timeout)?;
        let report = py
            .detach(|| manager::apply(production, &options, &mut |_| ()))
            .map_err(|e| errors::manager_error(py, e, true))?;
        Ok(manage::ApplyReport::from(&report))
    }

    /// User mode: builds the Stages, starts the Emperor, applies, starts nginx and waits until
    /// every Gig answers. Idempotent.
    #[pyo3(signature = (*, health_timeout = 30.0))]
    fn up(&self, py: Python<'_>, health_timeout: f64) -> PyResult<manage::ApplyReport> {
        let production = self.valid(py)?;
        let options = apply_options(health_timeout)?;
        let report = py
            .detach(|| manager::up(production, &options, &mut |_| ()))
            .map_err(|e| errors::manager_error(py, e, true))?;
        Ok(manage::ApplyReport::from(&report.apply))
    }

    /// Builds a release of each of `acts` (every Act when `None`), runs its release phase and
    /// switches every Sess of the Act to it blue/green; returns the releases now live. A
    /// failing release phase or health check switches nothing (`ApplyError`).
    #[pyo3(signature = (acts = None, *, r#ref = None, health_timeout = 30.0))]
    fn deploy(
        &self,
        py: Python<'_>,
        acts: Option<Vec<String>>,
        r#ref: Option<String>,
        health_timeout: f64,
    ) -> PyResult<Vec<manage::Release>> {
        let production = self.valid(py)?;
        let options = manager::DeployOptions {
            apply: apply_options(health_timeout)?,
            reference: r#ref,
        };
        let acts = acts.unwrap_or_default();
        let report = py
            .detach(|| manager::deploy(production, &acts, &options, &mut |_| ()))
            .map_err(|e| errors::manager_error(py, e, true))?;
        Ok(report.acts.iter().map(manage::Release::from).collect())
    }

    /// The kept releases of `act` (of every Act when `None`), oldest first.
    #[pyo3(signature = (act = None))]
    // pyo3 hands arguments over owned (abi3 for Python 3.9 has no borrowed `str`).
    #[allow(clippy::needless_pass_by_value)]
    fn releases(&self, py: Python<'_>, act: Option<String>) -> PyResult<Vec<manage::Release>> {
        let production = self.valid(py)?;
        let list = py
            .detach(|| manager::releases(production, act.as_deref()))
            .map_err(|e| errors::manager_error(py, e, false))?;
        Ok(list.into_iter().map(manage::Release::from).collect())
    }

    /// Switches `act` back to the kept release `to` (default: the one before the live one),
    /// blue/green, with no release phase (migrations are not reversed); returns it.
    #[pyo3(signature = (act, *, to = None, health_timeout = 30.0))]
    // pyo3 hands arguments over owned (abi3 for Python 3.9 has no borrowed `str`).
    #[allow(clippy::needless_pass_by_value)]
    fn rollback(
        &self,
        py: Python<'_>,
        act: String,
        to: Option<String>,
        health_timeout: f64,
    ) -> PyResult<manage::Release> {
        let production = self.valid(py)?;
        let options = apply_options(health_timeout)?;
        let report = py
            .detach(|| manager::rollback(production, &act, to.as_deref(), &options, &mut |_| ()))
            .map_err(|e| errors::manager_error(py, e, true))?;
        report
            .acts
            .first()
            .map(manage::Release::from)
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("rollback switched nothing"))
    }

    /// User mode: stops nginx and the Emperor (and with it every Sess).
    fn down(&self, py: Python<'_>) -> PyResult<()> {
        let production = self.valid(py)?;
        py.detach(|| manager::down(production, &mut |_| ()))
            .map_err(|e| errors::manager_error(py, e, true))
    }

    /// Every Sess (from its stats socket) and every Gig (asked through nginx), now.
    fn status(&self, py: Python<'_>) -> PyResult<manage::Status> {
        let production = self.valid(py)?;
        let status = py
            .detach(|| manager::status(production))
            .map_err(|e| errors::manager_error(py, e, false))?;
        Ok(manage::Status::from(status))
    }

    fn __repr__(&self) -> String {
        match &self.parsed {
            Ok(p) => format!(
                "<Production {:?} from {:?}>",
                p.name.to_string(),
                self.manifest.path().display().to_string()
            ),
            Err(problems) => format!(
                "<Production (invalid: {} problem{}) from {:?}>",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" },
                self.manifest.path().display().to_string()
            ),
        }
    }
}

/// `apply`'s options, with a health timeout in seconds.
fn apply_options(health_timeout: f64) -> PyResult<ApplyOptions> {
    let health_timeout = manage::seconds("health_timeout", health_timeout)?;
    Ok(ApplyOptions {
        health_timeout,
        ..ApplyOptions::default()
    })
}

/// Runs the `backstage` command line on `argv` (program name first) and returns its exit code:
/// 0 success, 1 failure, 2 bad usage. The CLI prints to the process' stdout and stderr.
#[pyfunction]
fn run_cli(py: Python<'_>, argv: Vec<OsString>) -> u8 {
    let code = py.detach(|| backstage::run(argv));
    // `ExitCode` hides its number; the CLI only ever returns these three.
    if code == ExitCode::SUCCESS {
        0
    } else if code == ExitCode::from(2) {
        2
    } else {
        1
    }
}

/// The `backstage._backstage` extension module.
#[pymodule]
fn _backstage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Problem>()?;
    m.add_class::<Production>()?;
    m.add_class::<manage::Change>()?;
    m.add_class::<manage::ApplyReport>()?;
    m.add_class::<manage::Status>()?;
    m.add_class::<manage::SessStatus>()?;
    m.add_class::<manage::GigStatus>()?;
    m.add_class::<manage::Response>()?;
    m.add_class::<manage::Release>()?;
    m.add_function(wrap_pyfunction!(run_cli, m)?)?;
    m.add_function(wrap_pyfunction!(manage::request, m)?)?;
    Ok(())
}
