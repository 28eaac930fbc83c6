//! The Production Manager: `render`, `plan`, `apply`, `up`, `down` and `status` over the whole
//! Production, built on `backstage-core` (plan, journal), `backstage-uwsgi` (vassals, Emperor,
//! Stage Set, uwsgi client) and `backstage-nginx` (sites, `nginx -t`, reload).
//!
//! It never prints: progress goes to a callback, results come back as values.
//!
//! For operations: [`logs`] finds, reads, interleaves and follows the Production's logs;
//! [`graph`] draws it (DOT, and SVG through Graphviz).
//!
//! `apply` works in three phases, so that re-booking a Gig drops no request:
//! 1. new and changed Sess: their vassals are written (journaled) and each must answer a real
//!    uwsgi request; if one does not, every change is rolled back and nothing is switched;
//! 2. nginx: the candidate files pass `nginx -t`, are written, and nginx is reloaded;
//! 3. Sess no longer booked are retired.
//!
//! An apply interrupted at any point is rolled back by the next one (the journal), and a second
//! apply with no change writes nothing and reloads nothing.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use backstage_core::files::FileError;
use backstage_core::journal::{ApplyLock, Journal, JournalError, Recovered};
use backstage_core::plan::{self as core_plan, Action, Applied, Plan};
use backstage_core::values::{ListenAddr, Slug};
use backstage_core::{DesiredFile, FileKind, Mode, Production, Sess, SessInstance, SessSocket};
use backstage_nginx::{NginxBinary, UserNginx};
use backstage_uwsgi::emperor::{Emperor, log_tail};
use backstage_uwsgi::stage_manager::{SessState, StageManager, next_mtime, socket_link};
use backstage_uwsgi::stage_set::{self, Progress};
use backstage_uwsgi::{Client, Request, Target};
use serde::Serialize;

pub mod acme;
mod apply;
mod deploy;
mod doctor;
mod environments;
mod error;
pub mod graph;
mod health;
mod life;
pub mod logs;
pub mod releases;
mod secrets;
mod status;
mod system;
mod workers;
pub use apply::*;
use deploy::first_releases;
pub use deploy::{
    DeployOptions, DeployReport, ReleaseInfo, Switched, command_in_release, deploy,
    on_live_releases, releases, restart, rollback, store_of,
};
pub use doctor::{Diagnosis, Finding, doctor};
pub use error::*;
#[allow(clippy::wildcard_imports)]
use health::*;
pub use life::*;
use secrets::vassal_access;
pub use secrets::{SecretKey, env_list, env_set, env_unset};
pub use status::*;
pub use system::{Host, nginx_can_reach, resolve};
pub use workers::{CronRun, CronStatus, WorkerStatus, cron_status, worker_status};

/// Progress of a long operation, for the caller to show.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A step begins.
    Step(String),
    /// A line of a sub-process' output (pip, collectstatic).
    Output(String),
    /// Something was skipped, and why.
    Skipped(String),
}

/// Every file the Production implies: vassals and nginx files.
pub fn desired(production: &Production) -> Result<Vec<DesiredFile>, ManagerError> {
    let mut files = backstage_uwsgi::vassal::render_vassals(production)?;
    files.extend(workers::desired_work(production)?);
    if production
        .venues
        .values()
        .any(backstage_core::Venue::is_acme)
    {
        files.push(backstage_uwsgi::work::render_renewal(
            production,
            &acme::renew_program(),
        )?);
    }
    files.extend(backstage_nginx::render(production)?);
    Ok(files)
}

/// Where `render --out` puts a file: its path relative to the state dir when it lives there,
/// else its absolute path below `out`.
pub fn render_path(production: &Production, out: &Path, file: &Path) -> PathBuf {
    match file.strip_prefix(production.layout.state_dir.as_path()) {
        Ok(rel) => out.join(rel),
        Err(_) => out.join(file.strip_prefix("/").unwrap_or(file)),
    }
}

/// Writes every file the Production implies below `out`, touching nothing live.
pub fn render_into(production: &Production, out: &Path) -> Result<Vec<PathBuf>, ManagerError> {
    use rayon::prelude::*;
    let (production, _host) = resolve(production, &NginxBinary::from_env())?;
    let production = production.as_ref();
    let files: Vec<(PathBuf, DesiredFile)> = desired(production)?
        .into_iter()
        .map(|f| (render_path(production, out, &f.path), f))
        .collect();
    // Thousands of files share a handful of directories: create each once, before any write.
    let dirs: BTreeSet<&Path> = files.iter().filter_map(|(t, _)| t.parent()).collect();
    for dir in dirs {
        fs::create_dir_all(dir).map_err(|source| ManagerError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
    }
    // One open, one write and one close per file, on every core.
    files.par_iter().try_for_each(|(target, f)| {
        fs::write(target, f.content.as_bytes()).map_err(|source| ManagerError::Io {
            action: "write",
            path: target.clone(),
            source,
        })
    })?;
    Ok(files.into_iter().map(|(target, _)| target).collect())
}

/// What `apply` would change. In system mode, server names foreign sites already serve are
/// refused here too, as `apply` refuses them.
pub fn plan(production: &Production) -> Result<Plan, ManagerError> {
    let (production, _host) = resolve(production, &NginxBinary::from_env())?;
    let production = production.as_ref();
    if production.mode == Mode::System {
        backstage_nginx::check_foreign(production)?;
    }
    let desired = desired(production)?;
    full_plan(production, &desired)
}

/// Where a Sess listens, and a Host its Act accepts (for `backstage request SESS`).
pub fn sess_target(production: &Production, name: &str) -> Option<(Target, String)> {
    let slug: Slug = name.parse().ok()?;
    Some((target_of(production, &slug)?, host_for(production, &slug)))
}
