//! User mode: `up` and `down`, Backstage's own Emperor and nginx.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

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
    let manifest = production;
    if production.mode != Mode::User {
        return Err(ManagerError::NotUserMode {
            what: "backstage up",
        });
    }
    let _lock = take_lock(production, options.lock_wait, progress)?;
    let resolved = fresh(production, production, None, progress)?;
    // Every Act on its live release; the first release of an Act that has none is built now.
    let (production, links) =
        if let Some((target, links)) = first_releases(production, &resolved, progress)? {
            (Cow::Owned(target), links)
        } else {
            build_stages(&resolved, progress)?;
            (resolved, Vec::new())
        };
    let production = production.as_ref();
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
    let apply = apply_locked(production, None, options, &links, progress)?;
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
    let mut apply = apply;
    super::acme::first_certificates(manifest, production, None, options, &mut apply, progress)?;
    // Venues that now have their first certificate are probed over HTTPS.
    let refreshed;
    let production = if apply.certificates.is_empty() {
        production
    } else {
        refreshed = fresh(manifest, production, None, progress)?;
        refreshed.as_ref()
    };
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

pub(super) fn start_nginx(
    production: &Production,
    options: &ApplyOptions,
) -> Result<(), ManagerError> {
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
    let work = super::workers::work_processes(production);
    emperor.stop(Duration::from_secs(30))?;
    // Workers and cron jobs end with their masters (each given its stop timeout); none is
    // left behind, even one whose master the Emperor had to kill.
    super::workers::end_processes(&work, progress);
    Ok(())
}
