//! `apply`: the three phases, the lock, the journal, and the links it keeps.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

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
    /// ACME Venues' first certificates, ordered and made live by this apply.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<super::acme::Issued>,
}

pub(super) fn is_nginx(kind: FileKind) -> bool {
    matches!(kind, FileKind::Site | FileKind::NginxConf | FileKind::Page)
}

/// Whether the Production's uWSGI Emperor is running (system mode: the system's, watching
/// the vassal dir).
pub(super) fn emperor_running(production: &Production) -> bool {
    match production.mode {
        Mode::System => {
            backstage_uwsgi::system::SystemEmperor::find(production.layout.vassal_dir.as_path())
                .is_some()
        }
        Mode::User => Emperor::for_production(production).is_ok_and(|mut e| e.is_running()),
    }
}

/// Wakes the Production's Emperor so it scans its vassal dir now rather than at its next poll
/// (up to a second for Backstage's own, three for Debian's): uWSGI's Emperor rescans on
/// SIGWINCH (`emperor_wakeup` in its `core/emperor.c`, in every 2.0 release). A new copy
/// starts at once; a removed one is stopped at once. Best effort: without it the poll comes.
pub(super) fn wake_emperor(production: &Production) {
    let pid = match production.mode {
        Mode::System => {
            backstage_uwsgi::system::SystemEmperor::find(production.layout.vassal_dir.as_path())
                .map(|e| e.pid)
        }
        Mode::User => Emperor::for_production(production)
            .ok()
            .and_then(|mut e| e.pid()),
    };
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGWINCH,
        );
    }
}

/// The pid file of the nginx serving this Production, when Backstage runs it.
pub(super) fn nginx_pid_file(production: &Production) -> Option<PathBuf> {
    (production.mode == Mode::User).then(|| UserNginx::of(production).pid_file)
}

pub(super) fn nginx_running(production: &Production) -> bool {
    nginx_pid_file(production)
        .is_some_and(|p| backstage_nginx::master_pid(&p).is_ok_and(process_alive))
}

/// Reloads the nginx serving the Production when it runs (user mode: Backstage's own; system
/// mode: the server's, through systemd when it runs it), waiting for its new workers. Returns
/// whether it reloaded.
pub(super) fn reload_nginx(
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

pub(super) fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Links that are not as the manifest implies although their files are in place: a Sess'
/// socket link (gone after a reboot empties `/run`) and, in system mode, a site's link in
/// `sites-enabled`. Files the plan creates get their links from `apply` anyway.
pub(super) fn link_drift(
    production: &Production,
    desired: &[DesiredFile],
) -> Vec<core_plan::Change> {
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
pub(super) fn full_plan(
    production: &Production,
    desired: &[DesiredFile],
) -> Result<Plan, ManagerError> {
    let mut plan = core_plan::plan(production, desired)?;
    plan.changes.extend(link_drift(production, desired));
    Ok(plan)
}

/// Whether a link change is a site's link (nginx reads it).
pub(super) fn is_site_link(production: &Production, c: &core_plan::Change) -> bool {
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
    let manifest = production;
    let (production, host) = resolve(production, &options.nginx)?;
    let production = production.as_ref();
    let host = host.as_ref();
    if let Some(host) = host {
        host.preflight(production)?;
        // Again after every reboot: `/run` starts empty.
        host.ensure_dirs(production)?;
    }
    let _lock = take_lock(production, options.lock_wait, progress)?;
    let production = fresh(manifest, production, host, progress)?;
    let production = production.as_ref();
    if host.is_some() {
        // No `up` in system mode: apply builds what the Stages lack (idempotent).
        build_stages(production, progress)?;
    }
    let mut report = match first_releases(manifest, production, progress)? {
        Some((target, links)) => apply_locked(&target, host, options, &links, progress)?,
        None => apply_locked(production, host, options, &[], progress)?,
    };
    super::acme::first_certificates(manifest, production, host, options, &mut report, progress)?;
    Ok(report)
}

/// Takes the lock that serialises `apply`, `up` and `down`, saying so while it waits. First,
/// the state dir must still lead where `check` saw it lead (not out through a new symlink).
pub(super) fn take_lock(
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

/// Undoes what an interrupted apply (or deploy) left: temp files, and the journal's changes
/// (nginx reloaded when it may run the interrupted configuration). Returns the paths restored.
/// For a caller that holds the lock; a second call finds nothing.
pub(super) fn recover(
    production: &Production,
    host: Option<&Host>,
    progress: &mut dyn FnMut(Event),
) -> Result<Vec<PathBuf>, ManagerError> {
    for leftover in backstage_core::files::sweep_temp_files(production)? {
        progress(Event::Step(format!(
            "removed `{}`, left by an interrupted write",
            leftover.display()
        )));
    }
    let state_dir = production.layout.state_dir.as_path();
    let Some(Recovered { restored }) = Journal::recover(state_dir, &production.name)? else {
        return Ok(Vec::new());
    };
    progress(Event::Step(format!(
        "rolled back an interrupted apply ({} file{})",
        restored.len(),
        if restored.len() == 1 { "" } else { "s" }
    )));
    // nginx may already run the interrupted apply's configuration: make it read the restored
    // files, or it keeps routing to Sess the rollback just stopped.
    let vassals = production.layout.vassal_dir.as_path();
    if restored.iter().any(|p| !p.starts_with(vassals)) {
        reload_nginx(production, host, progress)?;
    }
    Ok(restored)
}

/// Under the lock: undoes what an interrupted command left, then reads the Production afresh
/// (`stale` was read before the lock; meanwhile another command may have moved an Act's live
/// release, or the recovery moved it back).
pub(super) fn fresh<'m>(
    manifest: &'m Production,
    stale: &Production,
    host: Option<&Host>,
    progress: &mut dyn FnMut(Event),
) -> Result<Cow<'m, Production>, ManagerError> {
    recover(stale, host, progress)?;
    // Secrets and live releases read again; what the server was found running (system mode) stays as
    // inspected before the lock, not inspected twice.
    let mut production = system::on_state(manifest)?;
    if stale.mode == Mode::System {
        let p = production.to_mut();
        p.uwsgi_plugins.clone_from(&stale.uwsgi_plugins);
        p.nginx_group.clone_from(&stale.nginx_group);
    }
    Ok(production)
}

/// [`apply`], for a caller that holds the lock (`up` takes it once for all it does). `links`
/// (link, target) are moved in the same transaction (a deploy's `current` release link).
pub(super) fn apply_locked(
    production: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    links: &[(PathBuf, PathBuf)],
    progress: &mut dyn FnMut(Event),
) -> Result<ApplyReport, ManagerError> {
    let state_dir = production.layout.state_dir.as_path();
    let mut report = ApplyReport {
        recovered: recover(production, host, progress)?,
        ..ApplyReport::default()
    };
    let desired = desired(production)?;
    let plan = full_plan(production, &desired)?;
    super::secrets::write_envdirs(production)?;
    if plan.is_empty() {
        if !links.is_empty() {
            let mut journal = Journal::begin(state_dir, &production.name)?;
            for (link, target) in links {
                journal.symlink(link, target)?;
            }
            journal.commit()?;
        }
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
    let retired_timeouts = super::workers::retired_timeouts(&plan);
    let mut journal = Journal::begin(state_dir, &production.name)?;
    let result = apply_phases(
        production,
        host,
        options,
        &plan,
        &desired,
        links,
        &mut journal,
        &mut report,
        progress,
    );
    match result {
        Ok(()) => {
            journal.commit()?;
            Applied::store(production, &desired)?;
            if emperor_running(production) {
                // Retired vassals are gone for good now: their copies may stop at once.
                wake_emperor(production);
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
            if emperor_running(production) {
                super::workers::wait_retired(production, &plan, &retired_timeouts, progress)?;
            }
            settle(production, progress)?;
            super::secrets::sweep_envdirs(production);
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
pub(super) fn settle(
    production: &Production,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
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
    for copy in manager.remove_dead_leftovers()? {
        progress(Event::Step(format!(
            "removed what a stopped copy of Sess `{}` left",
            copy.sess
        )));
    }
    Ok(())
}

// The phases share the apply's whole context; bundling it into a struct would only rename it.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply_phases(
    production: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    plan: &Plan,
    desired: &[DesiredFile],
    links: &[(PathBuf, PathBuf)],
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
            progress(Event::Step(format!("{} Sess `{}`", verb(c.action), c.name)));
            if c.action == Action::Create && emperor {
                // A master may still run from a vassal a rollback just removed: until the
                // Emperor has stopped it, it would pass the health check in the new one's stead.
                manager.wait_copy_stopped(&copy, Duration::from_secs(30))?;
            }
            write_vassal(journal, &c.file, content_of(desired, &c.file), host)?;
            if c.action == Action::Create {
                new_copies.push(copy.clone());
            }
            started.push((copy, old_workers));
        }
        if !emperor {
            continue;
        }
        wake_emperor(production);
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
    // Every new copy answers. The release links move first (nginx serves static files through
    // `current`, falling back to `previous`): until the socket links move, the old copies'
    // pages find their assets through `previous`, and from then on the new ones' through
    // `current`, with no nginx reload.
    for (link, target) in links {
        journal.symlink(link, target)?;
    }
    // Then each Sess' socket link moves to its new copy, and new connections (nginx,
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
    // Workers and cron jobs: the new ones start (on the new release) beside the old ones.
    super::workers::start_work(production, host, options, plan, desired, journal, progress)?;
    // The job that renews ACME certificates twice a day.
    let mut renewal = false;
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Renewal && c.action != Action::Delete)
    {
        progress(Event::Step(format!(
            "{} the certificate renewal job (`backstage tls renew`, twice a day)",
            if c.action == Action::Create {
                "installing"
            } else {
                "updating"
            }
        )));
        write_vassal(journal, &c.file, content_of(desired, &c.file), host)?;
        renewal = true;
    }
    if renewal && emperor {
        wake_emperor(production);
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
    // Phase 3: retire previous copies, once idle (drained side by side), and Sess no longer
    // in the manifest.
    let retiring: Vec<(&core_plan::Change, Option<SessInstance>, bool)> = plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Vassal && c.action == Action::Delete)
        .map(|c| {
            let copy = production.instance_of_vassal(&c.file);
            let plays_on = copy
                .as_ref()
                .is_some_and(|copy| production.sess.contains_key(&copy.sess));
            (c, copy, plays_on)
        })
        .collect();
    let mut draining = Vec::new();
    for (c, copy, plays_on) in &retiring {
        match copy {
            Some(copy) if *plays_on && emperor => {
                progress(Event::Step(format!(
                    "retiring the previous copy of Sess `{}` once idle",
                    c.name
                )));
                draining.push(copy);
            }
            _ => progress(Event::Step(format!("retiring Sess `{}`", c.name))),
        }
    }
    std::thread::scope(|scope| {
        let drains: Vec<_> = draining
            .iter()
            .map(|copy| scope.spawn(|| manager.drain(copy, Duration::from_secs(30))))
            .collect();
        drains
            .into_iter()
            .map(|d| d.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<()>, _>>()
    })?;
    for (c, copy, plays_on) in retiring {
        // The Emperor stops the copy at its next scan of the directory (woken once the apply
        // has committed; until then, its poll: every 1 s for ours, 3 s for Debian's). Nothing
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
    super::workers::retire_work(production, plan, journal, progress)?;
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Renewal && c.action == Action::Delete)
    {
        progress(Event::Step("removing the certificate renewal job".into()));
        journal.remove(&c.file)?;
    }
    Ok(())
}

/// System mode: nginx's workers must be able to open each copy's socket, through the Sess'
/// socket link, before anything routes to it (the health check itself connects as root).
pub(super) fn check_nginx_reaches(
    host: Option<&Host>,
    copies: &[SessInstance],
) -> Result<(), ManagerError> {
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
pub(super) fn relink_copies(
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
            let content = fs::read(copy.vassal.as_path()).map_err(|source| ManagerError::Io {
                action: "read",
                path: copy.vassal.as_path().to_owned(),
                source,
            })?;
            write_vassal(journal, copy.vassal.as_path(), &content, host)?;
        }
        copies.push(copy);
    }
    if !copies.is_empty() {
        wake_emperor(production);
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
pub(super) fn build_stages(
    production: &Production,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    for stage in production.stages.keys() {
        progress(Event::Step(format!("building Stage `{stage}`")));
        stage_set::build_stage(production, stage, &mut stage_progress(progress))?;
    }
    Ok(())
}

/// The Stage Set's progress, as the Manager's events.
pub(super) fn stage_progress(progress: &mut dyn FnMut(Event)) -> impl FnMut(Progress) + '_ {
    |p| {
        progress(match p {
            Progress::Step(s) => Event::Step(s),
            Progress::Output(s) => Event::Output(s),
            Progress::Skipped(s) => Event::Skipped(s),
            other => Event::Output(format!("{other:?}")),
        });
    }
}

/// How many Sess start at once: twice the cores, at least four.
pub(super) fn start_batch() -> usize {
    std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).max(4))
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and 3 more ``.
pub(super) fn list_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<String> = names.map(|n| format!("Sess `{n}`")).collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

/// The copy of a Sess a vassal path names.
pub(super) fn copy_of(production: &Production, file: &Path) -> Result<SessInstance, ManagerError> {
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
/// Writes a vassal through the journal: with an mtime past its current one (the Emperor
/// reloads a vassal only when its mtime grows) and the access the Emperor needs.
pub(super) fn write_vassal(
    journal: &mut Journal,
    file: &Path,
    content: &[u8],
    host: Option<&Host>,
) -> Result<(), ManagerError> {
    let previous = fs::metadata(file).and_then(|m| m.modified()).ok();
    journal.write_with(
        file,
        content,
        Some(next_mtime(previous)),
        Some(vassal_access(host)),
    )?;
    Ok(())
}

pub(super) fn content_of<'d>(desired: &'d [DesiredFile], path: &Path) -> &'d [u8] {
    desired
        .iter()
        .find(|f| f.path == path)
        .map_or(&[], |f| f.content.as_bytes())
}

pub(super) fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "starting",
        Action::Update => "reloading",
        Action::Delete => "retiring",
    }
}

/// A host name the Sess' Act accepts: the first server name of a Venue booking it.
pub(super) fn host_for(production: &Production, sess: &Slug) -> String {
    production
        .gigs
        .values()
        .filter(|g| g.sess.iter().any(|(s, _)| s == sess))
        .filter_map(|g| production.venues.get(&g.venue))
        .flat_map(|v| v.server_names.iter())
        .find(|n| !n.is_wildcard())
        .map_or_else(|| "localhost".to_owned(), ToString::to_string)
}

pub(super) fn target_of(production: &Production, sess: &Slug) -> Option<Target> {
    let s = production.sess.get(sess)?;
    Some(Target::from(&s.socket))
}
