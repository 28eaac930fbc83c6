//! The Stage Set: what a Stage has installed.
//!
//! Creates the Stage's virtualenv when missing, installs uWSGI and the requirements of every
//! Act playing on the Stage (only when they changed since the last install: the exact inputs
//! are kept in a stamp file under the state dir); [`collect_static`] runs `collectstatic` for
//! an Act that declares `static` (the Act Manager runs it in each new release). Progress goes to a callback; a failing command's error carries the tail of
//! its own standard error.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use backstage_core::values::Slug;
use backstage_core::{Act, Production};

use crate::error::{Error, io_err};

/// What pip installs uWSGI from.
pub const UWSGI_REQUIREMENT: &str = "uwsgi";

/// Lines of a failing command's standard error kept in its error.
const STDERR_TAIL_LINES: usize = 30;

/// One step of building a Stage, for progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A step starts (`creating virtualenv …`, `pip install …`, `collectstatic for act …`).
    Step(String),
    /// A line of a command's output.
    Output(String),
    /// A step was skipped, and why.
    Skipped(String),
}

/// Builds the Stage `stage` of the Production: virtualenv, uWSGI and requirements,
/// collected static files.
pub fn build_stage(
    production: &Production,
    stage: &Slug,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), Error> {
    let Some(st) = production.stages.get(stage) else {
        return Err(Error::UnknownStage {
            name: stage.to_string(),
            production: production.name.to_string(),
        });
    };
    let venv = st.virtualenv.as_path();
    let python = venv.join("bin/python");
    if python.exists() {
        progress(Progress::Skipped(format!(
            "virtualenv `{}` exists",
            venv.display()
        )));
    } else {
        progress(Progress::Step(format!(
            "creating virtualenv `{}`",
            venv.display()
        )));
        let mut cmd = Command::new(st.python.as_str());
        cmd.arg("-m").arg("venv").arg(venv);
        run(cmd, progress)?;
    }

    // An Act whose live release has its own environment imports nothing from the Stage:
    // its requirements are not the Stage's to install.
    let acts: BTreeSet<&Slug> = production
        .sess
        .values()
        .filter(|s| &s.stage == stage)
        .map(|s| &s.act)
        .filter(|a| production.acts[*a].environment.is_none())
        .collect();
    let requirements: Vec<PathBuf> = acts
        .iter()
        .filter_map(|a| production.acts[*a].requirements.as_ref())
        .map(|r| r.as_path().to_owned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();

    let stamp_path = stamp_path(production, stage);
    // System mode: the system's Emperor (its uWSGI) runs the Sess; the Stage holds the Acts'
    // requirements only.
    let with_uwsgi = production.mode == backstage_core::Mode::User;
    let stamp = Stamp::of(&python, with_uwsgi, &requirements)?;
    let previous = Stamp::read(&stamp_path);
    if previous.as_ref().is_some_and(|p| p.covers(&stamp)) {
        progress(Progress::Skipped(
            "uwsgi and requirements unchanged since the last install".to_owned(),
        ));
    } else if !with_uwsgi && requirements.is_empty() {
        progress(Progress::Skipped(
            "no requirements to install (the system's Emperor brings uWSGI)".to_owned(),
        ));
    } else {
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pip", "install", "--disable-pip-version-check"]);
        if with_uwsgi {
            cmd.arg(UWSGI_REQUIREMENT);
        }
        for r in &requirements {
            cmd.arg("-r").arg(r);
        }
        progress(Progress::Step(describe(&cmd)));
        run(cmd, progress)?;
        let dir = production.layout.state_dir.as_path();
        std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        let json = serde_json::to_vec_pretty(&stamp).expect("a stamp serializes");
        std::fs::write(&stamp_path, json).map_err(io_err("write", &stamp_path))?;
    }
    Ok(())
}

/// Whether the Stage `stage` has the requirements file `requirements` installed, as it reads
/// now (the same content, whatever its path: each release has its own copy). `None` when the
/// Stage was never installed (its first install will bring them).
pub fn has_installed(
    production: &Production,
    stage: &Slug,
    requirements: &Path,
) -> Result<Option<bool>, Error> {
    let Some(installed) = Stamp::read(&stamp_path(production, stage)) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(requirements).map_err(io_err("read", requirements))?;
    Ok(Some(installed.requirements.contains(&text)))
}

/// Marks an environment whose install finished.
const ENVIRONMENT_DONE: &str = ".backstage-installed";

/// Builds the virtualenv `dir` for one release's requirements: created from the Stage's
/// Python (`python`, the Stage's own `bin/python`, so both share one interpreter and uWSGI's
/// embedded Python can run it) with the requirements installed. An environment already built
/// is reused without pip; one whose install was cut short is built again. Never touches the
/// Stage itself.
pub fn build_environment(
    python: &Path,
    requirements: &Path,
    dir: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), Error> {
    let done = dir.join(ENVIRONMENT_DONE);
    if done.exists() {
        progress(Progress::Skipped(format!(
            "environment `{}` has these requirements already",
            dir.display()
        )));
        return Ok(());
    }
    // Built in place (a virtualenv names its own path in its scripts, so it cannot move).
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io_err("remove", dir))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
    }
    progress(Progress::Step(format!(
        "creating environment `{}` for the release's requirements",
        dir.display()
    )));
    let mut cmd = Command::new(python);
    cmd.arg("-m").arg("venv").arg(dir);
    run(cmd, progress)?;
    let mut cmd = Command::new(dir.join("bin/python"));
    cmd.args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
        .arg(requirements);
    // pip reads a relative path in a requirements file (`./vendor/pkg`) from where it runs:
    // the file's own directory, in the release.
    if let Some(dir) = requirements.parent() {
        cmd.current_dir(dir);
    }
    progress(Progress::Step(describe(&cmd)));
    run(cmd, progress)?;
    std::fs::write(&done, b"").map_err(io_err("write", &done))?;
    Ok(())
}

fn stamp_path(production: &Production, stage: &Slug) -> PathBuf {
    production
        .layout
        .state_dir
        .as_path()
        .join(format!("stage-{stage}.installed"))
}

/// The exact inputs of a Stage's install: the interpreter, whether uWSGI came with it, and
/// the content of each requirements file (the content only: each release has its own copy of
/// the same file).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Stamp {
    python: PathBuf,
    uwsgi: bool,
    requirements: Vec<String>,
}

impl Stamp {
    fn of(python: &Path, uwsgi: bool, requirements: &[PathBuf]) -> Result<Stamp, Error> {
        let requirements = requirements
            .iter()
            .map(|r| std::fs::read_to_string(r).map_err(io_err("read", r)))
            .collect::<Result<_, _>>()?;
        Ok(Stamp {
            python: python.to_owned(),
            uwsgi,
            requirements,
        })
    }

    /// The recorded install, if any (an unreadable or older-format stamp is none: one more
    /// pip run, which finds everything installed).
    fn read(path: &Path) -> Option<Stamp> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    /// Whether this install brought everything `wanted` needs: the same interpreter, uWSGI
    /// when wanted, and every wanted requirements file's content.
    fn covers(&self, wanted: &Stamp) -> bool {
        self.python == wanted.python
            && (self.uwsgi || !wanted.uwsgi)
            && wanted
                .requirements
                .iter()
                .all(|r| self.requirements.contains(r))
    }
}

/// Runs `collectstatic` for Act `name` with the Stage's Python `python` in the Act's root (a
/// release, for the Act Manager), when the Act declares `static`.
pub fn collect_static(
    name: &Slug,
    act: &Act,
    python: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), Error> {
    if act.static_dirs.is_empty() {
        return Ok(());
    }
    progress(Progress::Step(format!("collectstatic for act `{name}`")));
    run(collectstatic(name, act, python)?, progress)
}

fn collectstatic(name: &Slug, act: &Act, python: &Path) -> Result<Command, Error> {
    let Some(settings) = &act.settings else {
        return Err(Error::NoSettings {
            act: name.to_string(),
        });
    };
    let mut cmd = Command::new(python);
    cmd.args(["-m", "django", "collectstatic", "--noinput"])
        .current_dir(act.root.as_path())
        .env("PYTHONPATH", act.root.as_path())
        .env("DJANGO_SETTINGS_MODULE", settings.as_str());
    for (k, v) in &act.env {
        cmd.env(k.as_str(), v.as_str());
    }
    Ok(cmd)
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command, streaming its stdout lines as progress; on failure the error carries the
/// tail of its stderr.
fn run(mut cmd: Command, progress: &mut dyn FnMut(Progress)) -> Result<(), Error> {
    let command = describe(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: PathBuf::from(cmd.get_program()),
            source,
        })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            match line {
                Ok(l) => progress(Progress::Output(l)),
                Err(_) => break,
            }
        }
    }
    let status = child.wait().map_err(|source| Error::Spawn {
        program: PathBuf::from(cmd.get_program()),
        source,
    })?;
    let err = err_reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&err);
    let lines: Vec<&str> = text.lines().collect();
    Err(Error::Command {
        command,
        status,
        stderr_tail: lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..]
            .iter()
            .map(|l| (*l).to_owned())
            .collect(),
    })
}
