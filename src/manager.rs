//! The Production Manager: `render`, `plan`, `apply`, `up`, `down` and `status` over the whole
//! Production, built on `backstage-core` (plan, journal), `backstage-uwsgi` (vassals, Emperor,
//! Stage Set, uwsgi client) and `backstage-nginx` (sites, `nginx -t`, reload).
//!
//! It never prints: progress goes to a callback, results come back as values.
//!
//! `apply` works in three phases, so that re-booking a Gig drops no request:
//! 1. new and changed Sess: their vassals are written (journaled) and each must answer a real
//!    uwsgi request; if one does not, every change is rolled back and nothing is switched;
//! 2. nginx: the candidate files pass `nginx -t`, are written, and nginx is reloaded;
//! 3. Sess no longer booked are retired.
//!
//! An apply interrupted at any point is rolled back by the next one (the journal), and a second
//! apply with no change writes nothing and reloads nothing.

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
use backstage_core::{DesiredFile, FileKind, Mode, Production, SessInstance, SessSocket};
use backstage_nginx::{NginxBinary, UserNginx};
use backstage_uwsgi::emperor::{Emperor, log_tail};
use backstage_uwsgi::stage_manager::{SessState, StageManager, next_mtime, socket_link};
use backstage_uwsgi::stage_set::{self, Progress};
use backstage_uwsgi::{Client, Request, Target};
use serde::Serialize;

mod doctor;
pub mod releases;
mod system;
pub use doctor::{Diagnosis, Finding, doctor};
pub use system::{Host, nginx_can_reach, resolve};

/// What the Production Manager can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// A uWSGI operation (vassals, Emperor, Stage Set, the uwsgi protocol) failed.
    #[error(transparent)]
    Uwsgi(#[from] backstage_uwsgi::Error),
    /// nginx rendering, validation or reload failed.
    #[error(transparent)]
    Nginx(#[from] backstage_nginx::Error),
    /// A managed file could not be read, written or removed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The apply lock or journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A new or changed Sess did not answer; every change was rolled back.
    #[error(
        "Sess `{sess}` did not become healthy: {reason}; nothing was switched, the previous configuration is back"
    )]
    Unhealthy {
        /// The Sess.
        sess: String,
        /// Why, in one line.
        reason: String,
        /// The last lines of its log.
        log_tail: Vec<String>,
        /// What to do next, in one line.
        hint: &'static str,
    },
    /// A directory or process operation failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// nginx did not start.
    #[error("nginx did not start: {reason} (see `{}`)", error_log.display())]
    NginxStart {
        /// Why.
        reason: String,
        /// nginx's error log.
        error_log: PathBuf,
    },
    /// A Gig did not answer through nginx in time.
    #[error("Gig `{gig}` does not answer at {url} ({reason})")]
    GigDown {
        /// The Gig.
        gig: String,
        /// Where it was asked.
        url: String,
        /// What happened.
        reason: String,
    },
    /// System mode needs root.
    #[error("system mode needs root: {what}; run Backstage as root (e.g. with sudo)")]
    NeedsRoot {
        /// What needs it.
        what: &'static str,
    },
    /// No uWSGI Emperor watches the Production's vassal dir.
    #[error("no uWSGI Emperor watches `{}`; start the system's Emperor (`systemctl start uwsgi-emperor`) or set `vassal_dir` to the directory yours watches", vassal_dir.display())]
    NoEmperor {
        /// The vassal dir.
        vassal_dir: PathBuf,
    },
    /// The system's Emperor runs in a way Backstage cannot drive.
    #[error("the uWSGI Emperor (pid {pid}) cannot run Backstage's vassals: {why}")]
    EmperorUnsupported {
        /// The Emperor's pid.
        pid: i32,
        /// Why, and the fix.
        why: String,
    },
    /// A Sess names an account the system's Emperor cannot switch to.
    #[error(
        "Sess `{sess}` runs as `{uid}`, but the uWSGI Emperor (pid {emperor_pid}) runs as `{emperor_user}` and cannot switch users: uWSGI would ignore `uid` and run the app as `{emperor_user}`; either set `uid = \"{emperor_user}\"` on the Sess, or let the Emperor run as root by removing its `uid`/`gid` lines{} and restarting it (`systemctl restart uwsgi-emperor`)",
        config.as_ref().map(|c| format!(" from `{}`", c.display())).unwrap_or_default()
    )]
    UidIgnored {
        /// The Sess.
        sess: String,
        /// The account it names.
        uid: String,
        /// The Emperor's pid.
        emperor_pid: i32,
        /// The account the Emperor runs as.
        emperor_user: String,
        /// The Emperor's ini file.
        config: Option<PathBuf>,
    },
    /// The operation needs system mode.
    #[error(
        "`{what}` looks at the server's own Emperor and nginx, which is system mode; this Production is in user mode"
    )]
    NotSystemMode {
        /// The command.
        what: &'static str,
    },
    /// The operation needs user mode.
    #[error(
        "`{what}` runs Backstage's own Emperor and nginx, which is user mode; this Production is in system mode, where the system's services run them"
    )]
    NotUserMode {
        /// The command.
        what: &'static str,
    },
}

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
    let (production, _host) = resolve(production, &NginxBinary::from_env())?;
    let production = production.as_ref();
    let mut written = Vec::new();
    for f in desired(production)? {
        let target = render_path(production, out, &f.path);
        if let Some(dir) = target.parent() {
            fs::create_dir_all(dir).map_err(|source| ManagerError::Io {
                action: "create",
                path: dir.to_owned(),
                source,
            })?;
        }
        fs::write(&target, f.content.as_bytes()).map_err(|source| ManagerError::Io {
            action: "write",
            path: target.clone(),
            source,
        })?;
        written.push(target);
    }
    Ok(written)
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

/// How `apply` runs.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The nginx used for `nginx -t` (and started by `up`).
    pub nginx: NginxBinary,
    /// How long a new Sess has to answer.
    pub health_timeout: Duration,
    /// How long to wait for a concurrent apply.
    pub lock_wait: Duration,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            nginx: NginxBinary::from_env(),
            health_timeout: Duration::from_secs(30),
            lock_wait: Duration::from_secs(60),
        }
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    /// The changes made (empty: nothing was written, nothing reloaded).
    pub changes: Vec<core_plan::Change>,
    /// Paths an interrupted earlier apply had changed, restored before this one.
    pub recovered: Vec<PathBuf>,
    /// Whether nginx was reloaded.
    pub nginx_reloaded: bool,
    /// The Sess that were health-checked before nginx was switched.
    pub checked_sess: Vec<String>,
}

fn is_nginx(kind: FileKind) -> bool {
    matches!(kind, FileKind::Site | FileKind::NginxConf | FileKind::Page)
}

/// Whether the Production's uWSGI Emperor is running (system mode: the system's, watching
/// the vassal dir).
fn emperor_running(production: &Production) -> bool {
    match production.mode {
        Mode::System => {
            backstage_uwsgi::system::SystemEmperor::find(production.layout.vassal_dir.as_path())
                .is_some()
        }
        Mode::User => Emperor::for_production(production).is_ok_and(|mut e| e.is_running()),
    }
}

/// The pid file of the nginx serving this Production, when Backstage runs it.
fn nginx_pid_file(production: &Production) -> Option<PathBuf> {
    (production.mode == Mode::User).then(|| UserNginx::of(production).pid_file)
}

fn nginx_running(production: &Production) -> bool {
    nginx_pid_file(production)
        .is_some_and(|p| backstage_nginx::master_pid(&p).is_ok_and(process_alive))
}

/// Reloads the nginx serving the Production when it runs (user mode: Backstage's own; system
/// mode: the server's, through systemd when it runs it), waiting for its new workers. Returns
/// whether it reloaded.
fn reload_nginx(
    production: &Production,
    host: Option<&Host>,
    progress: &mut dyn FnMut(Event),
) -> Result<bool, ManagerError> {
    let deadline = Duration::from_secs(10);
    let Some(host) = host else {
        if !nginx_running(production) {
            return Ok(false);
        }
        progress(Event::Step("reloading nginx".into()));
        let nginx = UserNginx::of(production);
        backstage_nginx::reload(&nginx.pid_file, Some(&nginx.error_log), deadline)?;
        return Ok(true);
    };
    if host.nginx.running_master().is_none() {
        progress(Event::Skipped(format!(
            "the system's nginx is not running (no live pid in `{}`): start it with `systemctl start nginx`",
            host.nginx.pid_file.display()
        )));
        return Ok(false);
    }
    progress(Event::Step("reloading nginx".into()));
    host.nginx.reload(deadline)?;
    Ok(true)
}

fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Links that are not as the manifest implies although their files are in place: a Sess'
/// socket link (gone after a reboot empties `/run`) and, in system mode, a site's link in
/// `sites-enabled`. Files the plan creates get their links from `apply` anyway.
fn link_drift(production: &Production, desired: &[DesiredFile]) -> Vec<core_plan::Change> {
    let mut out = Vec::new();
    let points_to = |link: &Path, target: &Path| fs::read_link(link).is_ok_and(|t| t == target);
    let describe = |link: &Path| match fs::read_link(link) {
        Ok(t) => format!("points to `{}`", t.display()),
        Err(_) if fs::symlink_metadata(link).is_ok() => "is not a link".to_owned(),
        Err(_) => "is missing (a reboot empties `/run`)".to_owned(),
    };
    for f in desired {
        if !f.path.is_file() {
            continue;
        }
        let link = match f.kind {
            FileKind::Vassal => production
                .instance_of_vassal(&f.path)
                .and_then(|copy| socket_link(production, &copy)),
            FileKind::Site if production.mode == Mode::System => {
                backstage_nginx::enabled_link(production, &f.path).map(|l| (l, f.path.clone()))
            }
            _ => None,
        };
        let Some((link, target)) = link else {
            continue;
        };
        if points_to(&link, &target) {
            continue;
        }
        let what = if f.kind == FileKind::Vassal {
            format!("the socket link of Sess `{}`", f.name)
        } else {
            format!("the enabled-site link of Venue `{}`", f.name)
        };
        out.push(core_plan::Change {
            action: if fs::symlink_metadata(&link).is_ok() {
                Action::Update
            } else {
                Action::Create
            },
            kind: FileKind::Link,
            name: f.name.clone(),
            reason: format!("{what} {}", describe(&link)),
            file: link,
        });
    }
    out
}

/// The plan: file changes, then links to restore.
fn full_plan(production: &Production, desired: &[DesiredFile]) -> Result<Plan, ManagerError> {
    let mut plan = core_plan::plan(production, desired)?;
    plan.changes.extend(link_drift(production, desired));
    Ok(plan)
}

/// Whether a link change is a site's link (nginx reads it).
fn is_site_link(production: &Production, c: &core_plan::Change) -> bool {
    c.kind == FileKind::Link
        && production
            .layout
            .nginx_enabled_dir
            .as_ref()
            .is_some_and(|d| c.file.starts_with(d.as_path()))
}

/// Makes the live files match the manifest; see the module docs.
pub fn apply(
    production: &Production,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<ApplyReport, ManagerError> {
    let (production, host) = resolve(production, &options.nginx)?;
    let production = production.as_ref();
    let host = host.as_ref();
    if let Some(host) = host {
        host.preflight(production)?;
        // Again after every reboot: `/run` starts empty.
        host.ensure_dirs(production)?;
    }
    let _lock = take_lock(production, options.lock_wait, progress)?;
    if host.is_some() {
        // No `up` in system mode: apply builds what the Stages lack (idempotent).
        build_stages(production, progress)?;
    }
    apply_locked(production, host, options, progress)
}

/// Takes the lock that serialises `apply`, `up` and `down`, saying so while it waits. First,
/// the state dir must still lead where `check` saw it lead (not out through a new symlink).
fn take_lock(
    production: &Production,
    wait: Duration,
    progress: &mut dyn FnMut(Event),
) -> Result<ApplyLock, ManagerError> {
    backstage_core::journal::ensure_inside(&production.layout)?;
    let state_dir = production.layout.state_dir.as_path();
    let lock = ApplyLock::acquire_reporting(state_dir, &production.name, wait, &mut |holder| {
        progress(Event::Step(match holder {
            Some(pid) => format!("waiting for another apply (pid {pid}) to finish"),
            None => "waiting for another apply to finish".to_owned(),
        }));
    })?;
    Ok(lock)
}

/// [`apply`], for a caller that holds the lock (`up` takes it once for all it does).
fn apply_locked(
    production: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<ApplyReport, ManagerError> {
    let state_dir = production.layout.state_dir.as_path();
    for leftover in backstage_core::files::sweep_temp_files(production)? {
        progress(Event::Step(format!(
            "removed `{}`, left by an interrupted write",
            leftover.display()
        )));
    }
    let mut report = ApplyReport::default();
    if let Some(Recovered { restored }) = Journal::recover(state_dir, &production.name)? {
        progress(Event::Step(format!(
            "rolled back an interrupted apply ({} file{})",
            restored.len(),
            if restored.len() == 1 { "" } else { "s" }
        )));
        // nginx may already run the interrupted apply's configuration: make it read the
        // restored files, or it keeps routing to Sess the rollback just stopped.
        let vassals = production.layout.vassal_dir.as_path();
        if restored.iter().any(|p| !p.starts_with(vassals)) {
            reload_nginx(production, host, progress)?;
        }
        report.recovered = restored;
    }
    let desired = desired(production)?;
    let plan = full_plan(production, &desired)?;
    if plan.is_empty() {
        // An apply killed after its commit may have left a retired copy running.
        settle(production, progress)?;
        return Ok(report);
    }
    let nginx_changes = plan
        .changes
        .iter()
        .any(|c| is_nginx(c.kind) || is_site_link(production, c));
    if nginx_changes {
        progress(Event::Step(
            "nginx -t on the candidate configuration".into(),
        ));
        let candidates: Vec<DesiredFile> = desired
            .iter()
            .filter(|f| is_nginx(f.kind))
            .cloned()
            .collect();
        backstage_nginx::validate(production, &candidates, &options.nginx)?;
    }
    let mut journal = Journal::begin(state_dir, &production.name)?;
    let result = apply_phases(
        production,
        host,
        options,
        &plan,
        &desired,
        &mut journal,
        &mut report,
        progress,
    );
    match result {
        Ok(()) => {
            journal.commit()?;
            Applied::store(production, &desired)?;
            if emperor_running(production) {
                let manager = StageManager::new(production);
                for c in plan
                    .changes
                    .iter()
                    .filter(|c| c.kind == FileKind::Vassal && c.action == Action::Delete)
                {
                    match production.instance_of_vassal(&c.file) {
                        // A previous copy of a Sess that plays on: its link is the new copy's.
                        Some(copy) if production.sess.contains_key(&copy.sess) => {
                            progress(Event::Step(format!(
                                "waiting for the previous copy of Sess `{}` to stop",
                                c.name
                            )));
                            manager.wait_copy_stopped(&copy, Duration::from_secs(30))?;
                        }
                        _ => {
                            progress(Event::Step(format!(
                                "waiting for Sess `{}` to stop",
                                c.name
                            )));
                            manager.wait_stopped(&c.name, Duration::from_secs(30))?;
                        }
                    }
                }
            }
            settle(production, progress)?;
            report.changes = plan.changes;
            Ok(report)
        }
        Err(e) => {
            progress(Event::Step("rolling back".into()));
            journal.rollback()?;
            // The Emperor sees the restored vassals and returns to the previous Sess; nginx
            // still serves the previous configuration (it was not reloaded, or is reloaded now).
            if report.nginx_reloaded {
                let _ = reload_nginx(production, host, &mut |_| {});
            }
            Err(e)
        }
    }
}

/// Waits until only the serving copy of each Sess runs: a copy whose vassal is gone but whose
/// master still runs (retired by an apply killed after its commit, or rolled back) is waited
/// for, so an apply never reports success while two masters of a Sess run.
fn settle(production: &Production, progress: &mut dyn FnMut(Event)) -> Result<(), ManagerError> {
    if !emperor_running(production) {
        return Ok(());
    }
    let manager = StageManager::new(production);
    for copy in manager.unplaced_running() {
        if production.sess.contains_key(&copy.sess) {
            progress(Event::Step(format!(
                "waiting for a previous copy of Sess `{}` to stop",
                copy.sess
            )));
            manager.wait_copy_stopped(&copy, Duration::from_secs(30))?;
        } else {
            progress(Event::Step(format!(
                "waiting for Sess `{}` to stop",
                copy.sess
            )));
            manager.wait_stopped(copy.sess.as_str(), Duration::from_secs(30))?;
        }
    }
    Ok(())
}

// The phases share the apply's whole context; bundling it into a struct would only rename it.
#[allow(clippy::too_many_arguments)]
fn apply_phases(
    production: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    plan: &Plan,
    desired: &[DesiredFile],
    journal: &mut Journal,
    report: &mut ApplyReport,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    // Phase 1: new and changed Sess, each answering before anything points at it. A changed
    // Sess on the default socket is a new copy (a new vassal) beside the running one.
    let emperor = emperor_running(production);
    let manager = StageManager::new(production);
    let starting: Vec<&core_plan::Change> = plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Vassal && c.action != Action::Delete)
        .collect();
    let mut new_copies = Vec::new();
    // On a small machine a hundred Djangos starting at once would each take minutes: start
    // them a batch at a time, each batch answering before the next one starts.
    for batch in starting.chunks(start_batch()) {
        let mut started = Vec::new();
        for c in batch {
            let copy = copy_of(production, &c.file)?;
            // A copy reloaded in place keeps answering with its old workers until the Emperor
            // has reloaded it: remember them, so the health check waits for the new ones.
            let old_workers = match (emperor, c.action) {
                (true, Action::Update) => match manager.copy_state(&copy, true) {
                    SessState::Running { pids, .. } => pids,
                    _ => Vec::new(),
                },
                _ => Vec::new(),
            };
            let previous = fs::metadata(&c.file).and_then(|m| m.modified()).ok();
            progress(Event::Step(format!("{} Sess `{}`", verb(c.action), c.name)));
            if c.action == Action::Create && emperor {
                // A master may still run from a vassal a rollback just removed: until the
                // Emperor has stopped it, it would pass the health check in the new one's stead.
                manager.wait_copy_stopped(&copy, Duration::from_secs(30))?;
            }
            journal.write_at(
                &c.file,
                content_of(desired, &c.file),
                Some(next_mtime(previous)),
            )?;
            if c.action == Action::Create {
                new_copies.push(copy.clone());
            }
            started.push((copy, old_workers));
        }
        if !emperor {
            continue;
        }
        for (copy, old_workers) in &started {
            if !old_workers.is_empty() {
                progress(Event::Step(format!(
                    "waiting for Sess `{}` to reload",
                    copy.sess
                )));
                wait_reloaded(production, copy, old_workers, options.health_timeout)?;
            }
        }
        progress(Event::Step(format!(
            "waiting for {} to answer",
            list_names(started.iter().map(|(c, _)| c.sess.as_str()))
        )));
        let copies: Vec<SessInstance> = started.iter().map(|(c, _)| c.clone()).collect();
        health_check_all(production, &copies, options.health_timeout)?;
        check_nginx_reaches(host, &copies)?;
        report
            .checked_sess
            .extend(started.iter().map(|(c, _)| c.sess.to_string()));
    }
    if !starting.is_empty() && !emperor {
        progress(Event::Skipped(
            "the Emperor is not running: Sess start with `backstage up`".into(),
        ));
    }
    // Socket links lost (a reboot empties `/run`): their copies must answer first.
    let relinked = relink_copies(production, host, options, plan, journal, progress)?;
    // Every new copy answers: its Sess' socket link moves to it, and new connections (nginx,
    // `backstage request`) reach it from now on.
    for copy in new_copies.iter().chain(&relinked) {
        if let Some((link, target)) = socket_link(production, copy) {
            backstage_uwsgi::stage_manager::ensure_run_dir(production)?;
            // A stale socket (left by a master killed with SIGKILL) is no one's to restore.
            if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = fs::remove_file(&link);
            }
            journal.symlink(&link, &target)?;
        }
    }
    // Phase 2: nginx, validated above.
    let mut nginx_written = false;
    for c in plan.changes.iter().filter(|c| is_site_link(production, c)) {
        let site = production
            .layout
            .nginx_dir
            .as_path()
            .join(c.file.file_name().unwrap_or_default());
        journal.symlink(&c.file, &site)?;
        nginx_written = true;
    }
    for c in plan.changes.iter().filter(|c| is_nginx(c.kind)) {
        match c.action {
            Action::Delete => journal.remove(&c.file)?,
            _ => journal.write(&c.file, content_of(desired, &c.file))?,
        }
        nginx_written = true;
        if production.mode == Mode::System
            && c.kind == FileKind::Site
            && let Some(link) = backstage_nginx::enabled_link(production, &c.file)
        {
            match c.action {
                Action::Delete => journal.remove_symlink(&link)?,
                _ => journal.symlink(&link, &c.file)?,
            }
        }
    }
    if nginx_written {
        // Marked first: a reload that fails half-way is undone by the rollback's reload.
        report.nginx_reloaded = true;
        report.nginx_reloaded = reload_nginx(production, host, progress)?;
    }
    // Phase 3: retire previous copies, once idle, and Sess no longer in the manifest.
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Vassal && c.action == Action::Delete)
    {
        let copy = production.instance_of_vassal(&c.file);
        let plays_on = copy
            .as_ref()
            .is_some_and(|copy| production.sess.contains_key(&copy.sess));
        match &copy {
            Some(copy) if plays_on && emperor => {
                progress(Event::Step(format!(
                    "retiring the previous copy of Sess `{}` once idle",
                    c.name
                )));
                manager.drain(copy, Duration::from_secs(30))?;
            }
            _ => progress(Event::Step(format!("retiring Sess `{}`", c.name))),
        }
        // The Emperor stops the copy at its next scan of the directory (every 3 s). Nothing
        // reaches it any more: a replaced copy is drained, and nginx no longer routes to a
        // retired Sess (its old workers are gone). Until that scan, a rollback (this apply
        // failing, or killed and recovered by the next) restores the vassal unnoticed.
        journal.remove(&c.file)?;
        if !plays_on
            && let Some(copy) = &copy
            && let Some((link, _)) = socket_link(production, copy)
            && fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink())
        {
            journal.remove_symlink(&link)?;
        }
    }
    Ok(())
}

/// System mode: nginx's workers must be able to open each copy's socket, through the Sess'
/// socket link, before anything routes to it (the health check itself connects as root).
fn check_nginx_reaches(host: Option<&Host>, copies: &[SessInstance]) -> Result<(), ManagerError> {
    let Some(host) = host else {
        return Ok(());
    };
    for copy in copies {
        let SessSocket::Unix(socket) = &copy.socket else {
            continue;
        };
        if let Err(reason) = nginx_can_reach(&host.nginx.worker_user, socket.as_path()) {
            return Err(ManagerError::Unhealthy {
                sess: copy.sess.to_string(),
                reason,
                log_tail: Vec::new(),
                hint: HINT_REACH,
            });
        }
    }
    Ok(())
}

/// The copies whose socket link the plan restores: each is started if it is not running (its
/// vassal touched, so the Emperor starts it now rather than at its next retry) and must answer
/// before its link is made.
fn relink_copies(
    production: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    plan: &Plan,
    journal: &mut Journal,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<SessInstance>, ManagerError> {
    let manager = StageManager::new(production);
    let mut copies = Vec::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Link && !is_site_link(production, c))
    {
        let Some(sess) = production.sess.keys().find(|s| s.as_str() == c.name) else {
            continue;
        };
        let copy = backstage_uwsgi::vassal::instance(production, sess)?;
        if !matches!(manager.copy_state(&copy, true), SessState::Running { .. }) {
            progress(Event::Step(format!("restarting Sess `{sess}`")));
            let previous = fs::metadata(copy.vassal.as_path())
                .and_then(|m| m.modified())
                .ok();
            let content = fs::read(copy.vassal.as_path()).map_err(|source| ManagerError::Io {
                action: "read",
                path: copy.vassal.as_path().to_owned(),
                source,
            })?;
            journal.write_at(copy.vassal.as_path(), &content, Some(next_mtime(previous)))?;
        }
        copies.push(copy);
    }
    if !copies.is_empty() {
        progress(Event::Step(format!(
            "waiting for {} to answer",
            list_names(copies.iter().map(|c| c.sess.as_str()))
        )));
        health_check_all(production, &copies, options.health_timeout)?;
        check_nginx_reaches(host, &copies)?;
    }
    Ok(copies)
}

/// Builds every Stage: virtualenv, requirements (and uWSGI in user mode), static files.
fn build_stages(
    production: &Production,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    for stage in production.stages.keys() {
        progress(Event::Step(format!("building Stage `{stage}`")));
        stage_set::build_stage(production, stage, &mut |p| {
            progress(match p {
                Progress::Step(s) => Event::Step(s),
                Progress::Output(s) => Event::Output(s),
                Progress::Skipped(s) => Event::Skipped(s),
                other => Event::Output(format!("{other:?}")),
            });
        })?;
    }
    Ok(())
}

/// How many Sess start at once: twice the cores, at least four.
fn start_batch() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and 3 more ``.
fn list_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|n| format!("Sess `{n}`")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

/// The copy of a Sess a vassal path names.
fn copy_of(production: &Production, file: &Path) -> Result<SessInstance, ManagerError> {
    production
        .instance_of_vassal(file)
        .ok_or_else(|| ManagerError::Io {
            action: "recognise the vassal",
            path: file.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a vassal name Backstage writes",
            ),
        })
}

/// The content `desired` holds for `path` (every planned create or update is desired).
fn content_of<'d>(desired: &'d [DesiredFile], path: &Path) -> &'d [u8] {
    desired
        .iter()
        .find(|f| f.path == path)
        .map_or(&[], |f| f.content.as_bytes())
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "starting",
        Action::Update => "reloading",
        Action::Delete => "retiring",
    }
}

/// A host name the Sess' Act accepts: the first server name of a Venue booking it.
fn host_for(production: &Production, sess: &Slug) -> String {
    production
        .gigs
        .values()
        .filter(|g| g.sess.iter().any(|(s, _)| s == sess))
        .filter_map(|g| production.venues.get(&g.venue))
        .flat_map(|v| v.server_names.iter())
        .find(|n| !n.is_wildcard())
        .map_or_else(|| "localhost".to_owned(), ToString::to_string)
}

fn target_of(production: &Production, sess: &Slug) -> Option<Target> {
    let s = production.sess.get(sess)?;
    Some(Target::from(&s.socket))
}

/// Waits until none of a reloaded copy's workers is one of `old_workers` (the Emperor has
/// reloaded it with the new configuration).
fn wait_reloaded(
    production: &Production,
    copy: &SessInstance,
    old_workers: &[u32],
    timeout: Duration,
) -> Result<(), ManagerError> {
    let manager = StageManager::new(production);
    let deadline = Instant::now() + timeout;
    loop {
        if let SessState::Running { pids, .. } = manager.copy_state(copy, true)
            && !pids.is_empty()
            && pids.iter().all(|p| !old_workers.contains(p))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ManagerError::Unhealthy {
                sess: copy.sess.to_string(),
                reason: format!(
                    "it did not come back with new workers within {}s of its new configuration",
                    timeout.as_secs()
                ),
                log_tail: log_tail(production.log_file(&copy.sess).as_path(), 15),
                hint: HINT_FIX_ACT,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Health-checks copies side by side; the first failure (in the given order) is the error.
fn health_check_all(
    production: &Production,
    copies: &[SessInstance],
    timeout: Duration,
) -> Result<(), ManagerError> {
    std::thread::scope(|scope| {
        let checks: Vec<_> = copies
            .iter()
            .map(|copy| scope.spawn(move || health_check(production, copy, timeout)))
            .collect();
        checks
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    })
}

/// Waits until a copy runs and answers a real uwsgi request on its own socket with a status
/// below 500.
fn health_check(
    production: &Production,
    copy: &SessInstance,
    timeout: Duration,
) -> Result<(), ManagerError> {
    let manager = StageManager::new(production);
    let deadline = Instant::now() + timeout;
    let slug = &copy.sess;
    let log = production.log_file(slug);
    let unhealthy = |reason: String, hint: &'static str| {
        let tail = log_tail(log.as_path(), 15);
        // A vassal uWSGI refuses before it opens its log leaves its reason with the Emperor.
        let reason = if tail.is_empty() && production.mode == Mode::System {
            format!(
                "{reason}; uWSGI wrote nothing to `{log}`, so its reason is in the Emperor's log (`journalctl -u uwsgi-emperor`)"
            )
        } else {
            reason
        };
        ManagerError::Unhealthy {
            sess: slug.to_string(),
            reason,
            log_tail: tail,
            hint,
        }
    };
    match manager.wait_copy_running(copy, true, timeout) {
        SessState::Running { .. } => {}
        SessState::Failed { reason, .. } => {
            // A master that runs without answering yet is starting, not failing (a failed
            // app load ends it): the deadline was too short, or the Act slow to import.
            return Err(match manager.master_pid(copy) {
                Some(pid) if Instant::now() >= deadline => unhealthy(
                    format!(
                        "it was still starting when its {}s ran out ({reason}; its master, pid {pid}, runs)",
                        timeout.as_secs()
                    ),
                    HINT_SLOW_START,
                ),
                _ => unhealthy(reason, HINT_FIX_ACT),
            });
        }
        SessState::Stopped => return Err(unhealthy("it is not running".into(), HINT_FIX_ACT)),
    }
    let target = Target::from(&copy.socket);
    let host = host_for(production, slug);
    let runtime = runtime()?;
    let mut last = String::from("no answer");
    let mut hint = HINT_FIX_ACT;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let client = Client::new(target.clone())
            .connect_timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_secs(10))
            .deadline(left.clamp(Duration::from_secs(1), Duration::from_secs(10)));
        let answer = runtime.block_on(client.send(Request::get("/").header("Host", host.clone())));
        match answer {
            Ok(r) if r.status() < 500 => return Ok(()),
            Ok(r) => last = format!("it answers `/` with HTTP {}", r.status()),
            Err(e) => {
                last = e.to_string();
                // Not the Act's doing: a running master whose socket file is gone.
                if let SessSocket::Unix(socket) = &copy.socket
                    && !socket.as_path().exists()
                    && let Some(pid) = manager.master_pid(copy)
                {
                    last = format!(
                        "its master (pid {pid}) runs, but its socket `{socket}` is gone: something removed it while the master ran"
                    );
                    hint = HINT_SOCKET_GONE;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(unhealthy(last, hint))
}

/// What to do when a Sess does not answer because of its Act.
const HINT_FIX_ACT: &str =
    "fix the Act, then run `backstage apply` again; `backstage status` shows every Sess";
/// What to do when a Sess was still starting at its deadline.
const HINT_SLOW_START: &str = "if the Act needs longer to start, give it more with `--health-timeout SECONDS`, then run `backstage apply` again";
/// What to do when a running copy's socket was removed.
const HINT_SOCKET_GONE: &str =
    "the Act is not at fault; run `backstage apply` again, which starts the copy afresh";
/// What to do when nginx cannot reach a Sess' socket.
const HINT_REACH: &str = "fix the permissions named above, then run `backstage apply` again";

fn runtime() -> Result<tokio::runtime::Runtime, ManagerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ManagerError::Io {
            action: "start an async runtime for",
            path: PathBuf::from("health checks"),
            source,
        })
}

/// A Gig's public URL and where nginx listens for it.
#[derive(Debug, Clone, Serialize)]
pub struct GigUrl {
    /// The Gig.
    pub name: String,
    /// Its URL (`http://jazz.localhost:8080/`).
    pub url: String,
    /// The address to connect to.
    #[serde(skip)]
    pub connect: SocketAddr,
    /// The Host header to send.
    #[serde(skip)]
    pub host: String,
    /// The path to ask for.
    #[serde(skip)]
    pub path: String,
}

/// Every Gig's URL: its Venue's first non-wildcard name on its first listen address.
pub fn gig_urls(production: &Production) -> Vec<GigUrl> {
    let mut out = Vec::new();
    for (name, gig) in &production.gigs {
        let Some(venue) = production.venues.get(&gig.venue) else {
            continue;
        };
        let Some(listen) = venue.listen.first() else {
            continue;
        };
        let host = venue
            .server_names
            .iter()
            .find(|n| !n.is_wildcard())
            .map_or_else(|| "localhost".to_owned(), ToString::to_string);
        let connect = match listen {
            ListenAddr::Port(p) => SocketAddr::from(([127, 0, 0, 1], *p)),
            ListenAddr::Socket(a) if a.ip().is_unspecified() => SocketAddr::new(
                if a.is_ipv4() {
                    [127, 0, 0, 1].into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                },
                a.port(),
            ),
            ListenAddr::Socket(a) => *a,
        };
        let path = if gig.path.is_root() {
            "/".to_owned()
        } else {
            format!("{}/", gig.path)
        };
        let port = if connect.port() == 80 {
            String::new()
        } else {
            format!(":{}", connect.port())
        };
        out.push(GigUrl {
            name: name.to_string(),
            url: format!("http://{host}{port}{path}"),
            connect,
            host,
            path,
        });
    }
    out
}

/// The HTTP status a Gig answers through nginx. The request carries the probe header with
/// the Production's name, and only the Gig's own location answers it with the Gig's name: an
/// answer without it came from another server block (a default site, say), and the Gig is
/// not up.
async fn http_status(url: &GigUrl, production: &str, timeout: Duration) -> Result<u16, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(url.connect)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", url.connect))?;
        let request = format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: backstage\r\n{}: {production}\r\n\r\n",
            url.path,
            url.host,
            backstage_nginx::PROBE_HEADER
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16384 {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head);
        let first = text.lines().next().unwrap_or("");
        let code = first
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("not an HTTP answer: `{first}`"))?;
        let answered_by = text.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(backstage_nginx::PROBE_ANSWER)
                .then(|| v.trim().to_owned())
        });
        match answered_by {
            Some(gig) if gig == url.name => Ok(code),
            Some(other) => Err(format!("HTTP {code} from Gig `{other}`, not this one")),
            None => Err(format!(
                "HTTP {code} from another server block: nginx does not route {} to this Gig (is the site enabled and nginx reloaded?)",
                url.url
            )),
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no answer within {}s", timeout.as_secs()))?
}

/// Every Sess' state and every Gig's answer through nginx.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// One entry per Sess.
    pub sess: Vec<SessStatus>,
    /// One entry per Gig.
    pub gigs: Vec<GigStatus>,
}

impl Status {
    /// What is down, one line each: every Sess that is not running, every Gig that nothing
    /// answers or that answers 5xx. Empty when all is up.
    pub fn down(&self) -> Vec<String> {
        let sess = self
            .sess
            .iter()
            .filter(|s| s.state != "running")
            .map(|s| format!("Sess `{}` is {}", s.name, s.state));
        let gigs = self.gigs.iter().filter_map(|g| match g.http_status {
            Some(code) if code < 500 => None,
            Some(code) => Some(format!("Gig `{}` answers HTTP {code}", g.name)),
            None => Some(format!("Gig `{}` does not answer", g.name)),
        });
        sess.chain(gigs).collect()
    }
}

/// A Sess in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct SessStatus {
    /// Its name.
    pub name: String,
    /// `running`, `stopped` or `failed`.
    pub state: &'static str,
    /// Live workers.
    pub workers: u32,
    /// Requests served.
    pub requests: u64,
    /// Resident memory of its workers.
    pub rss_bytes: u64,
    /// Why it failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The end of its log, when it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// A Gig in `status`.
#[derive(Debug, Clone, Serialize)]
pub struct GigStatus {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// The HTTP status nginx answered with; `null` when nothing answered.
    pub http_status: Option<u16>,
    /// Why nothing answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads every Sess' state and asks every Gig through nginx, all at once.
pub fn status(production: &Production) -> Result<Status, ManagerError> {
    let (production, _host) = resolve(production, &NginxBinary::from_env())?;
    let production = production.as_ref();
    if production.mode == Mode::System && !nix::unistd::Uid::effective().is_root() {
        // Each Sess' stats socket is its account's and nginx's group's: any other user would
        // see every Sess as failed.
        return Err(ManagerError::NeedsRoot {
            what: "status reads each Sess' stats socket, which only its account and root may open",
        });
    }
    let emperor = emperor_running(production);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|source| ManagerError::Io {
            action: "start an async runtime for",
            path: PathBuf::from("status"),
            source,
        })?;
    runtime.block_on(async {
        let mut sess_tasks = Vec::new();
        for name in production.sess.keys() {
            let production = production.clone();
            let name = name.to_string();
            sess_tasks.push(tokio::task::spawn_blocking(move || {
                let state = StageManager::new(&production).state(&name, emperor);
                (name, state)
            }));
        }
        let urls = gig_urls(production);
        let mut gig_tasks = Vec::new();
        for url in urls {
            let probe = production.name.to_string();
            gig_tasks.push(tokio::spawn(async move {
                let answer = http_status(&url, &probe, Duration::from_secs(5)).await;
                (url, answer)
            }));
        }
        let mut sess = Vec::new();
        for t in sess_tasks {
            let (name, state) = t.await.expect("status task");
            sess.push(sess_status(name, state?));
        }
        let mut gigs = Vec::new();
        for t in gig_tasks {
            let (url, answer) = t.await.expect("status task");
            let (http_status, error) = match answer {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            gigs.push(GigStatus {
                name: url.name,
                url: url.url,
                http_status,
                error,
            });
        }
        Ok(Status { sess, gigs })
    })
}

fn sess_status(name: String, state: SessState) -> SessStatus {
    let mut s = SessStatus {
        name,
        state: state.name(),
        workers: 0,
        requests: 0,
        rss_bytes: 0,
        reason: None,
        log_tail: Vec::new(),
    };
    match state {
        SessState::Running {
            workers,
            requests,
            rss_bytes,
            ..
        } => {
            s.workers = workers;
            s.requests = requests;
            s.rss_bytes = rss_bytes;
        }
        SessState::Failed { reason, log_tail } => {
            s.reason = Some(reason);
            s.log_tail = log_tail;
        }
        SessState::Stopped => {}
    }
    s
}

/// What `up` did.
#[derive(Debug, Clone, Serialize)]
pub struct UpReport {
    /// The apply it ran.
    pub apply: ApplyReport,
    /// Every Gig's URL, answering.
    pub gigs: Vec<GigUrl>,
}

/// User mode: builds the Stages, starts the Emperor, applies, starts nginx, and waits until
/// every Gig answers through nginx, all under the apply lock. Idempotent.
pub fn up(
    production: &Production,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<UpReport, ManagerError> {
    if production.mode != Mode::User {
        return Err(ManagerError::NotUserMode {
            what: "backstage up",
        });
    }
    let _lock = take_lock(production, options.lock_wait, progress)?;
    build_stages(production, progress)?;
    let nginx = UserNginx::of(production);
    for dir in nginx.dirs.iter().chain([
        &production.layout.run_dir.as_path().to_owned(),
        &production.layout.log_dir.as_path().to_owned(),
    ]) {
        fs::create_dir_all(dir).map_err(|source| ManagerError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
    }
    if !production.sess.is_empty() {
        let mut emperor = Emperor::for_production(production)?;
        if !emperor.is_running() {
            // After a `down` every vassal is still placed: an Emperor started over them would
            // start every Sess at once. Cleared, apply writes them back a batch at a time.
            let cleared = StageManager::new(production).unplace_all()?;
            if !cleared.is_empty() {
                progress(Event::Step(format!(
                    "took {} placed vassal{} out: apply puts them back a batch at a time",
                    cleared.len(),
                    if cleared.len() == 1 { "" } else { "s" }
                )));
            }
        }
        progress(Event::Step("starting the uWSGI Emperor".into()));
        emperor.start()?;
    }
    let apply = apply_locked(production, None, options, progress)?;
    // Sess whose vassals were already in place before the Emperor started were not checked by
    // apply: wait for every booked one now.
    let booked: BTreeSet<&Slug> = production
        .gigs
        .values()
        .flat_map(|g| g.sess.iter().map(|(s, _)| s))
        .collect();
    let manager = StageManager::new(production);
    let mut unchecked = Vec::new();
    for s in production.sess.keys() {
        let copy = manager.wanted(s.as_str())?;
        // After a `down` the links are gone, and an apply with nothing to change does not
        // write them: every placed wanted copy gets its link back here.
        if copy.vassal.as_path().exists() {
            manager.link(&copy)?;
        }
        if booked.contains(s) && !apply.checked_sess.contains(&s.to_string()) {
            unchecked.push(copy);
        }
    }
    for batch in unchecked.chunks(start_batch()) {
        progress(Event::Step(format!(
            "waiting for {} to answer",
            list_names(batch.iter().map(|c| c.sess.as_str()))
        )));
        health_check_all(production, batch, options.health_timeout)?;
    }
    if !nginx_running(production) {
        progress(Event::Step("starting nginx".into()));
        start_nginx(production, options)?;
    }
    let gigs = gig_urls(production);
    let rt = runtime()?;
    for g in &gigs {
        progress(Event::Step(format!(
            "waiting for Gig `{}` at {}",
            g.name, g.url
        )));
        let deadline = Instant::now() + options.health_timeout;
        loop {
            match rt.block_on(http_status(
                g,
                production.name.as_str(),
                Duration::from_secs(5),
            )) {
                Ok(s) if s < 500 => break,
                answer => {
                    if Instant::now() > deadline {
                        return Err(ManagerError::GigDown {
                            gig: g.name.clone(),
                            url: g.url.clone(),
                            reason: match answer {
                                Ok(s) => format!("HTTP {s}"),
                                Err(e) => e,
                            },
                        });
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
    }
    Ok(UpReport { apply, gigs })
}

fn start_nginx(production: &Production, options: &ApplyOptions) -> Result<(), ManagerError> {
    let nginx = UserNginx::of(production);
    let output = options
        .nginx
        .command()
        .arg("-p")
        .arg(&nginx.prefix)
        .arg("-c")
        .arg(&nginx.conf)
        .output()
        .map_err(|source| ManagerError::Io {
            action: "run",
            path: options.nginx.path().to_owned(),
            source,
        })?;
    if !output.status.success() {
        return Err(ManagerError::NginxStart {
            reason: String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', "; "),
            error_log: nginx.error_log,
        });
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nginx_running(production) {
        if Instant::now() > deadline {
            return Err(ManagerError::NginxStart {
                reason: "no master pid appeared".into(),
                error_log: nginx.error_log,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// User mode: stops nginx and the Emperor (and with it every Sess), and waits until nothing is
/// left running; a running apply (or `up`) finishes first, as it holds the apply lock. Idempotent.
pub fn down(production: &Production, progress: &mut dyn FnMut(Event)) -> Result<(), ManagerError> {
    if production.mode != Mode::User {
        return Err(ManagerError::NotUserMode {
            what: "backstage down",
        });
    }
    let _lock = take_lock(production, ApplyOptions::default().lock_wait, progress)?;
    let nginx = UserNginx::of(production);
    if let Ok(pid) = backstage_nginx::master_pid(&nginx.pid_file)
        && process_alive(pid)
    {
        progress(Event::Step("stopping nginx".into()));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGQUIT,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if process_alive(pid) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let _ = fs::remove_file(&nginx.pid_file);
    let mut emperor = Emperor::for_production(production)?;
    if emperor.is_running() {
        progress(Event::Step(
            "stopping the uWSGI Emperor and every Sess".into(),
        ));
    }
    emperor.stop(Duration::from_secs(30))?;
    Ok(())
}

/// Where a Sess listens, and a Host its Act accepts (for `backstage request SESS`).
pub fn sess_target(production: &Production, name: &str) -> Option<(Target, String)> {
    let slug: Slug = name.parse().ok()?;
    Some((target_of(production, &slug)?, host_for(production, &slug)))
}
