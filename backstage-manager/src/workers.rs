//! Workers and cron jobs in `apply` (SPEC §10): their vassals are written after the Sess have
//! answered (a new worker starts on the new release beside the old one, and must stay up), and
//! removed with the retired Sess; after the commit, `apply` waits for each retired worker's
//! master to end (its worker given `stop_timeout` to finish the task in hand).
//!
//! Also what `status` says of them: each worker's state and pids, each cron job's last run.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

use backstage_core::work::{WorkInstance, WorkKind};
use backstage_uwsgi::work::{WORKER_START, stop_timeout_of};

/// How long a new worker must stay up (its daemons the same processes) to count as started.
const STEADY: Duration = Duration::from_secs(3);

/// The worker and cron vassals the Production implies.
pub(super) fn desired_work(production: &Production) -> Result<Vec<DesiredFile>, ManagerError> {
    Ok(backstage_uwsgi::work::render_work(production)?
        .into_iter()
        .map(|w| w.file)
        .collect())
}

/// Phase 1b: the new and changed worker and cron vassals, each waited for (a worker must stay
/// up for a few seconds; one that keeps exiting fails the apply, which is rolled back).
pub(super) fn start_work(
    production: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    plan: &Plan,
    desired: &[DesiredFile],
    journal: &mut Journal,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    let emperor = emperor_running(production);
    let mut started = Vec::new();
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Worker && c.action != Action::Delete)
    {
        let Some(work) = production.work_of_vassal(&c.file) else {
            continue;
        };
        let what = describe(&work);
        progress(Event::Step(format!("starting {what}")));
        super::apply::write_vassal(journal, &c.file, content_of(desired, &c.file), host)?;
        started.push(work);
    }
    if !emperor {
        return Ok(());
    }
    if !started.is_empty() {
        wake_emperor(production);
    }
    for work in &started {
        if work.kind == WorkKind::Worker {
            progress(Event::Step(format!(
                "waiting for {} to run",
                describe(work)
            )));
        }
        wait_started(production, work, options.health_timeout)?;
    }
    Ok(())
}

/// Phase 3b: the vassals of workers and cron jobs replaced or gone are removed; the Emperor
/// stops them at its next scan.
pub(super) fn retire_work(
    production: &Production,
    plan: &Plan,
    journal: &mut Journal,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Worker && c.action == Action::Delete)
    {
        if let Some(work) = production.work_of_vassal(&c.file) {
            progress(Event::Step(format!("retiring {}", describe(&work))));
        }
        journal.remove(&c.file)?;
    }
    Ok(())
}

/// After the commit: waits for each retired worker or cron vassal's master to end.
pub(super) fn wait_retired(
    production: &Production,
    plan: &Plan,
    timeouts: &[(PathBuf, u64)],
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    for c in plan
        .changes
        .iter()
        .filter(|c| c.kind == FileKind::Worker && c.action == Action::Delete)
    {
        let Some(work) = production.work_of_vassal(&c.file) else {
            continue;
        };
        let Some(pid) = master_pid(&work) else {
            kill_leftovers(&work, progress);
            continue;
        };
        let stop = timeouts
            .iter()
            .find(|(p, _)| *p == c.file)
            .map_or(30, |(_, t)| *t);
        progress(Event::Step(format!(
            "waiting for the previous {} to stop (up to {stop} s for the task in hand)",
            describe(&work)
        )));
        // The Emperor's scan (up to 3 s), the stop timeout, the kill.
        let deadline = Instant::now() + Duration::from_secs(stop + 10);
        while process_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        if process_alive(pid) {
            return Err(ManagerError::WorkerFailed {
                worker: work.name.to_string(),
                act: work.act.to_string(),
                reason: format!("its previous master (pid {pid}) did not stop in {stop} s"),
                log_tail: log_tail(
                    production
                        .work_log(work.kind, &work.act, &work.name)
                        .as_path(),
                    20,
                ),
            });
        }
        kill_leftovers(&work, progress);
    }
    Ok(())
}

/// The stop timeouts of the worker vassals a plan retires, read before they are removed.
pub(super) fn retired_timeouts(plan: &Plan) -> Vec<(PathBuf, u64)> {
    plan.changes
        .iter()
        .filter(|c| c.kind == FileKind::Worker && c.action == Action::Delete)
        .filter_map(|c| {
            let content = fs::read_to_string(&c.file).ok()?;
            Some((c.file.clone(), stop_timeout_of(&content).unwrap_or(3)))
        })
        .collect()
}

fn describe(work: &WorkInstance) -> String {
    match work.kind {
        WorkKind::Worker => format!("worker `{}` of Act `{}`", work.name, work.act),
        WorkKind::Cron => format!("cron job `{}` of Act `{}`", work.name, work.act),
    }
}

/// The live master of a work vassal, from its pid file.
fn master_pid(work: &WorkInstance) -> Option<i32> {
    let pid: i32 = fs::read_to_string(work.pid_file.as_path())
        .ok()?
        .trim()
        .parse()
        .ok()?;
    process_alive(pid).then_some(pid)
}

/// The processes whose parent is `pid` (a master's daemons).
fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in tasks.flatten() {
        if let Ok(list) = fs::read_to_string(t.path().join("children")) {
            out.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
    }
    out.sort_unstable();
    out
}

/// Every process a work vassal started that still runs, its master gone or not: the daemons,
/// their children (a Celery worker's pool, orphaned when its main process was killed) and cron
/// runs, all marked by the vassal's id in their environment.
fn processes_of(work: &WorkInstance) -> Vec<i32> {
    let mark = format!("BACKSTAGE_WORKER_ID={}", work.id.as_str());
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(env) = fs::read(e.path().join("environ"))
            && env.split(|b| *b == 0).any(|v| v == mark.as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

/// Kills what is left of a work vassal once its master has ended.
fn kill_leftovers(work: &WorkInstance, progress: &mut dyn FnMut(Event)) {
    for pid in processes_of(work) {
        progress(Event::Step(format!(
            "killing process {pid}, left by a stopped worker"
        )));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// How many worker starts its log records since byte `from`.
fn starts_since(production: &Production, work: &WorkInstance, from: u64) -> usize {
    use std::io::{Read as _, Seek as _};
    let path = production.work_log(work.kind, &work.act, &work.name);
    let Ok(mut f) = fs::File::open(path.as_path()) else {
        return 0;
    };
    if f.seek(std::io::SeekFrom::Start(from)).is_err() {
        return 0;
    }
    let mut text = String::new();
    let _ = f.take(4 << 20).read_to_string(&mut text);
    text.lines()
        .filter_map(|l| l.strip_prefix(WORKER_START))
        .filter(|l| l.contains(&format!(" of {} ", work.id.as_str())))
        .count()
}

fn log_len(production: &Production, work: &WorkInstance) -> u64 {
    fs::metadata(
        production
            .work_log(work.kind, &work.act, &work.name)
            .as_path(),
    )
    .map_or(0, |m| m.len())
}

/// Waits until the vassal's master runs and (a worker) its daemons have stayed the same
/// processes for [`STEADY`]; a worker started more often than it has instances has exited.
fn wait_started(
    production: &Production,
    work: &WorkInstance,
    timeout: Duration,
) -> Result<(), ManagerError> {
    let from = log_len(production, work);
    let want = match work.kind {
        WorkKind::Worker => production.acts[&work.act].workers[&work.name].processes,
        WorkKind::Cron => 0,
    };
    let deadline = Instant::now() + timeout;
    let mut steady_since: Option<(Instant, Vec<i32>)> = None;
    let fail = |reason: String| ManagerError::WorkerFailed {
        worker: work.name.to_string(),
        act: work.act.to_string(),
        reason,
        log_tail: log_tail(
            production
                .work_log(work.kind, &work.act, &work.name)
                .as_path(),
            20,
        ),
    };
    loop {
        if Instant::now() > deadline {
            return Err(fail(format!(
                "it did not start within {} s",
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(200));
        let Some(master) = master_pid(work) else {
            continue;
        };
        if work.kind == WorkKind::Cron {
            return Ok(());
        }
        if starts_since(production, work, from) > usize::from(want) {
            return Err(fail("its command exited at once".to_owned()));
        }
        let kids = children(master);
        if kids.len() < usize::from(want) {
            steady_since = None;
            continue;
        }
        match &steady_since {
            Some((at, pids)) if *pids == kids => {
                if at.elapsed() >= STEADY {
                    return Ok(());
                }
            }
            _ => steady_since = Some((Instant::now(), kids)),
        }
    }
}

/// A worker as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// Its name.
    pub name: String,
    /// Its Act.
    pub act: String,
    /// `running`, `stopped` or `failed` (its command keeps exiting).
    pub state: &'static str,
    /// The pids of its processes (its master's children).
    pub pids: Vec<i32>,
    /// The release it runs, when it runs from one.
    pub release: Option<String>,
}

/// A cron job as `status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CronStatus {
    /// Its name.
    pub name: String,
    /// Its Act.
    pub act: String,
    /// Its schedule.
    pub schedule: String,
    /// Whether its vassal's master runs (it runs the job on time).
    pub scheduled: bool,
    /// Its last run, if any since the run dir was made.
    pub last_run: Option<CronRun>,
}

/// One run of a cron job.
#[derive(Debug, Clone, Serialize)]
pub struct CronRun {
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// When it ended; `None` while it runs.
    pub finished: Option<String>,
    /// How long it ran, in seconds, once ended.
    pub seconds: Option<u64>,
    /// Its exit status, once ended.
    pub status: Option<i32>,
}

/// The placed vassals of the Production's workers and cron jobs.
fn placed(production: &Production) -> Vec<WorkInstance> {
    let mut out: Vec<WorkInstance> = fs::read_dir(production.layout.vassal_dir.as_path())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| production.work_of_vassal(&e.path()))
        .collect();
    out.sort();
    out
}

/// Every worker of the manifest, and any still running that the manifest dropped.
pub fn worker_status(production: &Production) -> Vec<WorkerStatus> {
    let placed = placed(production);
    let mut out = Vec::new();
    let mut names: Vec<(Slug, Slug)> = production
        .acts
        .iter()
        .flat_map(|(a, act)| act.workers.keys().map(move |w| (a.clone(), w.clone())))
        .collect();
    for w in placed.iter().filter(|w| w.kind == WorkKind::Worker) {
        if !names.iter().any(|(a, n)| *a == w.act && *n == w.name) {
            names.push((w.act.clone(), w.name.clone()));
        }
    }
    for (act, name) in names {
        let mine: Vec<&WorkInstance> = placed
            .iter()
            .filter(|w| w.kind == WorkKind::Worker && w.act == act && w.name == name)
            .collect();
        let mut pids = Vec::new();
        let mut release = None;
        for w in &mine {
            if let Some(master) = master_pid(w) {
                // Each daemon is a small wrapper; the worker is its child.
                for daemon in children(master) {
                    pids.extend(children(daemon));
                }
                release = release_of(w);
            }
        }
        let state = if pids.is_empty() {
            if mine.is_empty() { "stopped" } else { "failed" }
        } else if recently_restarting(production, &mine) {
            "failed"
        } else {
            "running"
        };
        out.push(WorkerStatus {
            name: name.to_string(),
            act: act.to_string(),
            state,
            pids,
            release,
        });
    }
    out
}

/// Whether the worker keeps exiting: an instance of a placed vassal started again within
/// the last few seconds, less than a minute after its previous start under the same master
/// (uWSGI starts a command that exits again and again, ever slower; a master started again, by
/// `up` after `down`, starts it afresh). One killed once looks so for a few seconds.
fn recently_restarting(production: &Production, work: &[&WorkInstance]) -> bool {
    let Some(first) = work.first() else {
        return false;
    };
    let path = production.work_log(first.kind, &first.act, &first.name);
    let tail = log_tail(path.as_path(), 400);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut starts: std::collections::BTreeMap<(String, String, String), Vec<u64>> =
        std::collections::BTreeMap::new();
    for l in tail.iter().filter_map(|l| l.strip_prefix(WORKER_START)) {
        // `N of <id> started at <time> under <master>` (a vassal written before: no `under`)
        let parts: Vec<&str> = l.split(' ').collect();
        let (n, id, t, master) = match parts.as_slice() {
            [n, "of", id, "started", "at", t, "under", master] => (n, id, t, *master),
            [n, "of", id, "started", "at", t] => (n, id, t, ""),
            _ => continue,
        };
        if work.iter().any(|w| w.id.as_str() == *id)
            && let Ok(t) = t.parse::<u64>()
        {
            starts
                .entry(((*n).to_owned(), (*id).to_owned(), master.to_owned()))
                .or_default()
                .push(t);
        }
    }
    starts.values().any(|ts| match ts.as_slice() {
        [.., before, last] => now.saturating_sub(*last) < 5 && last.saturating_sub(*before) < 60,
        _ => false,
    })
}

/// The release a work vassal runs from: the last part of its `chdir`, a release's directory
/// (`<state_dir>/releases/<act>/<id>`).
fn release_of(work: &WorkInstance) -> Option<String> {
    let content = fs::read_to_string(work.vassal.as_path()).ok()?;
    let dir = Path::new(
        content
            .lines()
            .find_map(|l| l.strip_prefix("chdir = "))?
            .trim(),
    );
    let in_release = dir.parent()?.parent()?.file_name()? == "releases";
    in_release.then(|| dir.file_name()?.to_str().map(str::to_owned))?
}

/// Every cron job of the manifest and its last run.
pub fn cron_status(production: &Production) -> Vec<CronStatus> {
    let placed = placed(production);
    let mut out = Vec::new();
    for (act, a) in &production.acts {
        for (name, job) in &a.cron {
            let scheduled = placed
                .iter()
                .filter(|w| w.kind == WorkKind::Cron && w.act == *act && w.name == *name)
                .any(|w| master_pid(w).is_some());
            let last_run = production
                .cron_files(act, name)
                .and_then(|(last, _)| fs::read_to_string(last.as_path()).ok())
                .and_then(|s| parse_run(&s));
            out.push(CronStatus {
                name: name.to_string(),
                act: act.to_string(),
                schedule: job.schedule.as_str().to_owned(),
                scheduled,
                last_run,
            });
        }
    }
    out
}

fn parse_run(s: &str) -> Option<CronRun> {
    let (mut started, mut finished, mut status) = (None, None, None);
    for part in s.split_whitespace() {
        match part.split_once('=')? {
            ("started", v) => started = v.parse::<u64>().ok(),
            ("finished", v) => finished = v.parse::<u64>().ok(),
            ("status", v) => status = v.parse().ok(),
            _ => {}
        }
    }
    let at = |t: u64| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(t))
            .to_string()
    };
    let started = started?;
    Some(CronRun {
        started: at(started),
        finished: finished.map(at),
        seconds: finished.map(|f| f.saturating_sub(started)),
        status,
    })
}

/// The placed worker and cron vassals, with the time each gives its processes to stop (for
/// `down`).
pub(super) fn work_processes(production: &Production) -> Vec<(WorkInstance, u64)> {
    placed(production)
        .into_iter()
        .map(|w| {
            let stop = fs::read_to_string(w.vassal.as_path())
                .ok()
                .and_then(|c| stop_timeout_of(&c))
                .unwrap_or(3);
            (w, stop)
        })
        .collect()
}

/// Waits for the processes of `work` to end, each within its stop timeout (and a margin),
/// then kills any left.
pub(super) fn end_processes(work: &[(WorkInstance, u64)], progress: &mut dyn FnMut(Event)) {
    let Some(longest) = work.iter().map(|(_, t)| *t).max() else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(longest + 5);
    while work.iter().any(|(w, _)| !processes_of(w).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    for (w, _) in work {
        kill_leftovers(w, progress);
    }
}
