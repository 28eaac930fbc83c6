//! Vassals of workers and cron jobs (SPEC §10): one socket-less vassal each, a master with no
//! workers of its own, running from the Act's live release with the environment, secrets and
//! account of the Act's first Sess.
//!
//! A worker is an `attach-daemon2` under the master: restarted when it dies, and at the
//! vassal's end (the Emperor removing it: `kill_them_all`, then `uwsgi_detach_daemons`) sent
//! its `stop_signal` (to its process group, once a second) and killed after `stop_timeout`
//! (`reload-mercy`). A cron job is a `cron2` line per uWSGI-expressible part of its schedule
//! (see `Schedule::cron_lines` in `backstage_core::work`), each run under `flock -n` so that two runs of one job never
//! overlap, even across its lines; a small shell wrapper logs each run's start and exit status
//! and records the last one for `status`.

use std::fmt::Write as _;

use backstage_core::values::{ConfPath, InstanceId, Slug};
use backstage_core::work::{WorkInstance, WorkKind};
use backstage_core::{DesiredFile, FileKind, Production, files};

use crate::error::Error;
use crate::vassal::{IniWriter, LEFT_PAREN_PLACEHOLDER, act_environment};

/// The line a worker instance logs when it starts: `[backstage-worker] instance N of <id>
/// started at <unix time> under <master pid>` (`status` counts them to tell a worker that keeps
/// dying under one master from one whose vassal was started again, by `up` after `down`).
pub const WORKER_START: &str = "[backstage-worker] instance ";

/// What a worker's daemon runs (`$1` its instance, `$2` its stop signal's number): logs its
/// start, then runs the command in a session of its own and passes it the stop signal. uWSGI
/// signals the daemon's whole process group once a second while it stops; straight to a Celery
/// worker, the second SIGTERM would reach its pool processes and kill the tasks in hand. Here
/// only the command's own process gets it, as often as uWSGI sends it (Celery takes a repeated
/// SIGTERM as the same warm shutdown).
const WORKER_RUN: &str = "echo \"[backstage-worker] instance $1 of $BACKSTAGE_WORKER_ID started at $(date +%s) under $PPID\"; \
     BACKSTAGE_WORKER_INSTANCE=$1; export BACKSTAGE_WORKER_INSTANCE; \
     setsid /bin/sh -c \"exec $BACKSTAGE_WORKER_COMMAND\" & child=$!; \
     trap \"kill -$2 $child 2>/dev/null\" $2; \
     while :; do wait $child; s=$?; kill -0 $child 2>/dev/null || break; done; exit $s";

/// What each run of a cron job runs (under its lock): records and logs its start and exit.
const CRON_RUN: &str = "t=$(date +%s); echo \"started=$t\" > \"$BACKSTAGE_CRON_LAST\"; \
     echo \"[backstage-cron] $BACKSTAGE_CRON_JOB: started\"; \
     /bin/sh -c \"$BACKSTAGE_CRON_COMMAND\"; s=$?; \
     echo \"started=$t finished=$(date +%s) status=$s\" > \"$BACKSTAGE_CRON_LAST\"; \
     echo \"[backstage-cron] $BACKSTAGE_CRON_JOB: exited with status $s\"; exit $s";

/// `flock`'s exit status when the lock is held: the previous run still goes.
const LOCKED: u8 = 75;

/// One rendered vassal of a worker or cron job.
#[derive(Debug, Clone)]
pub struct WorkVassal {
    /// Its files.
    pub instance: WorkInstance,
    /// The file to place.
    pub file: DesiredFile,
}

/// Renders the vassals of every worker and cron job of the Production.
pub fn render_work(production: &Production) -> Result<Vec<WorkVassal>, Error> {
    let mut out = Vec::new();
    for (act_name, act) in &production.acts {
        for (name, w) in &act.workers {
            let mut body = common(production, act_name, name, WorkKind::Worker)?;
            body.set("reload-mercy", &w.stop_timeout.to_string())?;
            body.env("BACKSTAGE_WORKER", name.as_str())?;
            body.env("BACKSTAGE_WORKER_COMMAND", &w.command)?;
            body.env("BACKSTAGE_WORKER_RUN", WORKER_RUN)?;
            for i in 1..=w.processes {
                body.set(
                    "attach-daemon2",
                    &format!(
                        "cmd=exec /bin/sh -c \"$BACKSTAGE_WORKER_RUN\" backstage-worker {i} {sig},stopsignal={sig},max_throttle=30",
                        sig = w.stop_signal.0
                    ),
                )?;
            }
            out.push(finish(production, act_name, name, WorkKind::Worker, &body));
        }
        for (name, job) in &act.cron {
            let mut body = common(production, act_name, name, WorkKind::Cron)?;
            let (last, lock) = production
                .cron_files(act_name, name)
                .ok_or_else(|| no_sess(act_name))?;
            body.env("BACKSTAGE_CRON_JOB", name.as_str())?;
            body.env("BACKSTAGE_CRON_COMMAND", &job.command)?;
            body.env("BACKSTAGE_CRON_LAST", last.as_str())?;
            body.env("BACKSTAGE_CRON_RUN", CRON_RUN)?;
            body.set("cron-harakiri", "0")?;
            let _ = writeln!(body.body, "# schedule {}", job.schedule.as_str());
            for line in job.schedule.cron_lines() {
                body.set(
                    "cron2",
                    &format!(
                        "{line},unique=1 flock -n -E {LOCKED} {} /bin/sh -c \"$BACKSTAGE_CRON_RUN\" || [ $? != {LOCKED} ] || echo \"[backstage-cron] $BACKSTAGE_CRON_JOB: skipped, the previous run is still going\"",
                        lock.as_str()
                    ),
                )?;
            }
            out.push(finish(production, act_name, name, WorkKind::Cron, &body));
        }
    }
    Ok(out)
}

fn no_sess(act: &Slug) -> Error {
    Error::Unrepresentable {
        sess: act.to_string(),
        key: "workers".to_owned(),
        why: "no Sess plays the Act, so its workers have no Stage or account",
    }
}

/// The lines every work vassal has: master, release, environment, account.
fn common<'p>(
    production: &'p Production,
    act_name: &'p Slug,
    name: &Slug,
    kind: WorkKind,
) -> Result<IniWriter<'p>, Error> {
    let act = &production.acts[act_name];
    let (lead, sess) = production
        .lead_sess(act_name)
        .ok_or_else(|| no_sess(act_name))?;
    let stage = &production.stages[&sess.stage];
    let mut w = IniWriter::new(act_name.as_str());
    master_head(&mut w)?;
    w.set("vacuum", "true")?;
    w.set(
        "procname-prefix-spaced",
        &format!(
            "backstage.{}.{}.{act_name}.{name}",
            production.name,
            kind.as_str()
        ),
    )?;
    w.set("chdir", act.root.as_str())?;
    w.path("logto", &production.work_log(kind, act_name, name))?;
    w.env("BACKSTAGE_PRODUCTION", production.name.as_str())?;
    w.env("BACKSTAGE_ACT", act_name.as_str())?;
    w.env("PYTHONPATH", act.root.as_str())?;
    w.env("PYTHONDONTWRITEBYTECODE", "1")?;
    // The release's own environment when its requirements differ from the Stage's.
    let venv = act.virtualenv(stage);
    w.env("VIRTUAL_ENV", venv.as_str())?;
    w.env(
        "PATH",
        &format!("{venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    )?;
    let (hosts, origins) = production.hosts_of(lead);
    w.env("BACKSTAGE_ALLOWED_HOSTS", &hosts.join(","))?;
    w.env("BACKSTAGE_CSRF_TRUSTED_ORIGINS", &origins.join(","))?;
    // The lead Sess' envdir: written by `apply` for it, kept while a vassal names it.
    act_environment(&mut w, production, act_name, act, lead)?;
    if let Some(v) = &sess.tuning.uid {
        w.set("uid", v.as_str())?;
    }
    if let Some(v) = &sess.tuning.gid {
        w.set("gid", v.as_str())?;
    }
    Ok(w)
}

fn finish(
    production: &Production,
    act: &Slug,
    name: &Slug,
    kind: WorkKind,
    body: &IniWriter<'_>,
) -> WorkVassal {
    let id = InstanceId::of_content(body.body.as_bytes());
    let instance = production.work_instance(kind, act, name, &id);
    // After the hash: the vassal's own id, which its worker's start lines name.
    let content = assemble(
        production,
        &instance.pid_file,
        &format!("env = BACKSTAGE_WORKER_ID={}\n", id.as_str()),
        body,
    );
    WorkVassal {
        file: DesiredFile {
            kind: FileKind::Worker,
            name: format!("{act}.{name}"),
            path: instance.vassal.as_path().to_owned(),
            content,
            origin: format!(
                "acts.{act}.{}.{name}",
                match kind {
                    WorkKind::Worker => "workers",
                    WorkKind::Cron => "cron",
                }
            ),
        },
        instance,
    }
}

/// The first lines of every socket-less master: strict, a master, and a stop that stops.
fn master_head(w: &mut IniWriter<'_>) -> Result<(), Error> {
    w.set("strict", "true")?;
    w.set("master", "true")?;
    // A stop must stop (uWSGI 2.0 reloads on SIGTERM).
    w.set("die-on-term", "true")
}

/// A socket-less vassal's file: the marker, `[uwsgi]`, the placeholder when the body needs it,
/// its pid file, `after_pid`, then the body.
fn assemble(
    production: &Production,
    pid: &ConfPath,
    after_pid: &str,
    body: &IniWriter<'_>,
) -> String {
    let mut content = files::marker(&production.name);
    content.push_str("\n[uwsgi]\n");
    if body.needs_placeholder {
        let _ = writeln!(content, "set-placeholder = {LEFT_PAREN_PLACEHOLDER}=(");
    }
    content.push_str(&pid_line(pid));
    content.push_str(after_pid);
    content.push_str(&body.body);
    content
}

fn pid_line(path: &ConfPath) -> String {
    // A generated path: no `%`, no `$(`, nothing to escape.
    format!("pidfile = {path}\n")
}

/// The `stop_timeout` a placed worker vassal gives its worker (`reload-mercy`), if it says.
pub fn stop_timeout_of(content: &str) -> Option<u64> {
    content
        .lines()
        .find_map(|l| l.strip_prefix("reload-mercy = "))
        .and_then(|v| v.trim().parse().ok())
}

/// The vassal that runs `backstage tls renew` twice a day, when a Venue has
/// `tls = { acme = true }`: a master with two `cron2` lines, at a minute and hours drawn from
/// the Production's name (Productions on one CA spread out, as certbot's timer does). `command`
/// is the `backstage` program (its path, or an interpreter and `-m backstage`). In system mode
/// it runs as the Emperor's account (root): it writes the keys and reloads nginx. Each run's
/// output goes to its log; `--quiet` keeps a run with nothing due silent.
pub fn render_renewal(production: &Production, command: &[String]) -> Result<DesiredFile, Error> {
    // FNV-1a of the name: stable across runs and machines.
    let hash = production
        .name
        .as_str()
        .bytes()
        .fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
    let minute = hash % 60;
    let hour = (hash / 60) % 12;
    let unrepresentable = |why| Error::Unrepresentable {
        sess: backstage_core::work::RENEWAL.to_owned(),
        key: "cron2".to_owned(),
        why,
    };
    let quote = |s: &str| {
        if s.contains('\'') {
            Err(unrepresentable(
                "a path with `'` cannot be quoted for the shell",
            ))
        } else {
            Ok(format!("'{s}'"))
        }
    };
    let manifest = production
        .manifest_file
        .to_str()
        .ok_or_else(|| unrepresentable("the manifest's path is not UTF-8"))?;
    let mut line = Vec::new();
    for part in command {
        line.push(quote(part)?);
    }
    line.extend([
        "tls".to_owned(),
        "renew".to_owned(),
        "--quiet".to_owned(),
        "-f".to_owned(),
        quote(manifest)?,
    ]);
    let line = line.join(" ");
    let mut w = IniWriter::new(backstage_core::work::RENEWAL);
    master_head(&mut w)?;
    w.set(
        "procname-prefix-spaced",
        &format!(
            "backstage.{}.{}",
            production.name,
            backstage_core::work::RENEWAL
        ),
    )?;
    w.set("chdir", production.layout.base_dir.as_str())?;
    w.path("logto", &production.renewal_log())?;
    w.env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    )?;
    // A run may take minutes (an order, a reload): never cut short.
    w.set("cron-harakiri", "0")?;
    for h in [hour, hour + 12] {
        w.set(
            "cron2",
            &format!("minute={minute},hour={h},unique=1 {line}"),
        )?;
    }
    let content = assemble(production, &production.renewal_pid(), "", &w);
    Ok(DesiredFile {
        kind: FileKind::Renewal,
        name: backstage_core::work::RENEWAL.to_owned(),
        path: production.renewal_vassal().as_path().to_owned(),
        content,
        origin: "acme".to_owned(),
    })
}
