//! The Act Manager: `deploy`, `rollback`, `releases` and one-off commands, over the release
//! store ([`releases`](super::releases)) and the blue/green `apply`.
//!
//! Every Sess runs from its Act's live release, never from the working tree: [`resolve`]
//! (through [`on_live_releases`]) points each Act's root, static dirs and requirements at
//! `<state_dir>/releases/<act>/<id>/`, so a vassal names its release and switching releases is
//! a change of vassal, which `apply` makes the blue/green way (the new copy answers before
//! nginx routes to it; the old one drains). The `current` and `previous` links move in the
//! same journaled transaction as the vassals and nginx files, so an interrupted deploy is
//! undone as a whole by the next command.
//!
//! A deploy builds the release (a snapshot), gives it its own virtualenv when its
//! requirements differ from what its Stage installed (never pip into the environment a
//! running copy imports from), then in the release: `collectstatic`, Django's `manage.py check` (an import error
//! fails here in seconds, with its traceback, before any Sess starts) and the Act's release
//! phase (`release = [...]`, e.g. migrations). Any failure there deploys nothing.
//!
//! [`resolve`]: super::resolve

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use backstage_core::Act;
use backstage_core::values::ConfPath;

use super::environments;
use super::releases::{Phase, Release, ReleaseStore};

/// Lines of a failing release command's output kept in its error.
const OUTPUT_TAIL_LINES: usize = 40;

/// How `deploy` runs.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// How the switch is applied.
    pub apply: ApplyOptions,
    /// The git ref to deploy (default `HEAD`); only for Acts in a git work tree.
    pub reference: Option<String>,
}

/// One Act's release after a deploy or rollback.
#[derive(Debug, Clone, Serialize)]
pub struct Switched {
    /// The Act.
    pub act: String,
    /// The release now live.
    pub release: Release,
    /// The release live before, if any.
    pub previous: Option<String>,
    /// Releases pruned afterwards.
    pub pruned: Vec<String>,
}

/// What `deploy` or `rollback` did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployReport {
    /// Each Act switched.
    pub acts: Vec<Switched>,
    /// The apply that switched them.
    pub apply: ApplyReport,
}

/// One kept release, as `releases --json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseInfo {
    /// The Act.
    pub act: String,
    /// The release id.
    pub id: String,
    /// The git commit or content hash.
    pub revision: String,
    /// When it was built (RFC 3339).
    pub created: String,
    /// Whether it is the live release.
    pub live: bool,
    /// How its release phase went.
    pub release_phase: Phase,
}

/// The store of `act`'s releases.
pub fn store_of(production: &Production, act: &Slug) -> ReleaseStore {
    ReleaseStore::new(production.layout.state_dir.as_path(), act.as_str())
}

/// Where `sess reload` counts its restarts.
fn restarts_file(production: &Production) -> PathBuf {
    production.layout.state_dir.as_path().join("restarts.json")
}

fn read_restarts(production: &Production) -> BTreeMap<String, u32> {
    fs::read(restarts_file(production))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The Production with every Act that has a live release running from it, and every Sess
/// with its restart count; `None` when there is neither (the manifest as written is what
/// runs).
pub fn on_live_releases(production: &Production) -> Option<Production> {
    let mut out: Option<Production> = None;
    for (sess, n) in read_restarts(production) {
        if let Some(key) = production.sess.keys().find(|k| k.as_str() == sess) {
            let p = out.get_or_insert_with(|| production.clone());
            if let Some(s) = p.sess.get_mut(key) {
                s.restarts = n;
            }
        }
    }
    let with_releases = backstage_core::files::names_in(&ReleaseStore::dir_of_all(
        production.layout.state_dir.as_path(),
    ));
    for (name, act) in &production.acts {
        if with_releases
            .as_ref()
            .is_some_and(|names| !names.contains(std::ffi::OsStr::new(name.as_str())))
        {
            continue;
        }
        let store = store_of(production, name);
        let Some(live) = store.live() else {
            continue;
        };
        let environment = store.get(&live).ok().and_then(|r| r.environment);
        let moved = on_release(act, &store, &live, environment.as_deref());
        if let Some(moved) = moved {
            out.get_or_insert_with(|| production.clone())
                .acts
                .insert(name.clone(), moved);
        }
    }
    out
}

/// `act` running from its release `id` in `store`: its root, the static dirs and requirements
/// file inside the root, moved there; nginx reaching the static files through the `current`
/// link, backed up by the `previous` one's; `environment` the release's own virtualenv, if it
/// has one. `None` when a path cannot be expressed (it never can: they are validated).
fn on_release(
    act: &Act,
    store: &ReleaseStore,
    id: &str,
    environment: Option<&Path>,
) -> Option<Act> {
    let release = store.path_of(id);
    let release = release.as_path();
    let root = act.root.as_path();
    let moved = |p: &ConfPath| -> Option<ConfPath> {
        match p.as_path().strip_prefix(root) {
            Ok(rel) => release.join(rel).to_str()?.parse().ok(),
            Err(_) => Some(p.clone()),
        }
    };
    let mut out = act.clone();
    out.root = release.to_str()?.parse().ok()?;
    out.requirements = match &act.requirements {
        Some(r) => Some(moved(r)?),
        None => None,
    };
    out.static_dirs = act
        .static_dirs
        .iter()
        .map(|(k, v)| Some((k.clone(), moved(v)?)))
        .collect::<Option<BTreeMap<_, _>>>()?;
    out.live_link = Some(store.current_link().to_str()?.parse().ok()?);
    out.fallback_root = Some(store.previous_link().to_str()?.parse().ok()?);
    out.environment = match environment {
        Some(e) => Some(e.to_str()?.parse().ok()?),
        None => None,
    };
    Some(out)
}

/// The Acts named (all when none is), each checked against the manifest.
fn acts_named(production: &Production, names: &[String]) -> Result<Vec<Slug>, ManagerError> {
    if names.is_empty() {
        return Ok(production.acts.keys().cloned().collect());
    }
    names
        .iter()
        .map(|n| act_named(production, n))
        .collect::<Result<Vec<_>, _>>()
}

fn act_named(production: &Production, name: &str) -> Result<Slug, ManagerError> {
    production
        .acts
        .keys()
        .find(|a| a.as_str() == name)
        .cloned()
        .ok_or_else(|| ManagerError::UnknownAct {
            name: name.to_owned(),
            known: production.acts.keys().map(ToString::to_string).collect(),
        })
}

/// The Sess that speaks for an Act in one-off commands and release phases: its first one by
/// name (its Stage's Python, its account, its hosts).
pub(super) fn lead_sess<'p>(
    production: &'p Production,
    act: &Slug,
) -> Option<(&'p Slug, &'p Sess)> {
    production.sess.iter().find(|(_, s)| &s.act == act)
}

/// The environment of `act`'s code outside uWSGI (release phase, `backstage run`): the
/// manifest's `env`, its settings module, the release on `PYTHONPATH`, the Stage's `bin` first
/// on `PATH`, and the hosts its Sess get.
/// System mode: as the Sess' account when `as_sess` (collectstatic writes into the release,
/// which stays root's, so it runs as root).
fn act_command(production: &Production, name: &Slug, program: &str, as_sess: bool) -> Command {
    let act = &production.acts[name];
    let mut cmd = Command::new(program);
    cmd.current_dir(act.root.as_path())
        .env("PYTHONPATH", act.root.as_path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    if let Some(settings) = &act.settings {
        cmd.env("DJANGO_SETTINGS_MODULE", settings.as_str());
    }
    if let Some((sess_name, sess)) = lead_sess(production, name) {
        let venv = act.virtualenv(&production.stages[&sess.stage]).as_path();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![venv.join("bin")];
        paths.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(paths) {
            cmd.env("PATH", joined);
        }
        cmd.env("VIRTUAL_ENV", venv);
        let (hosts, origins) = production.hosts_of(sess_name);
        cmd.env("BACKSTAGE_ALLOWED_HOSTS", hosts.join(","));
        cmd.env("BACKSTAGE_CSRF_TRUSTED_ORIGINS", origins.join(","));
        if production.mode == Mode::System && as_sess {
            as_account(&mut cmd, sess);
        }
    }
    if let (Some(media), Some(dir)) = (&act.media, production.media_dir(name)) {
        cmd.env("BACKSTAGE_MEDIA_ROOT", dir.as_path())
            .env("BACKSTAGE_MEDIA_URL", media.prefix.as_str());
    }
    for (k, v) in &act.env {
        cmd.env(k.as_str(), v.as_str());
    }
    // As the Sess get them (see `secrets`): the `env_file`'s and the store's, over `env`.
    for (k, v) in &act.secrets.values {
        cmd.env(k.as_str(), v.expose());
    }
    cmd
}

/// System mode: the command runs as the Sess' account (as its workers do).
fn as_account(cmd: &mut Command, sess: &Sess) {
    use std::os::unix::process::CommandExt as _;
    let user = sess
        .tuning
        .uid
        .as_ref()
        .and_then(|u| nix::unistd::User::from_name(u.as_str()).ok().flatten());
    if let Some(user) = user {
        let gid = sess
            .tuning
            .gid
            .as_ref()
            .and_then(|g| nix::unistd::Group::from_name(g.as_str()).ok().flatten())
            .map_or(user.gid, |g| g.gid);
        cmd.uid(user.uid.as_raw()).gid(gid.as_raw());
        cmd.env("HOME", &user.dir).env("USER", &user.name);
    }
}

/// A one-off command (`argv`) in `act`'s live release, with its environment and (system mode)
/// as its Sess' account; the caller runs it. Fails when the Act has no live release.
pub fn command_in_release(
    production: &Production,
    act: &str,
    argv: &[String],
) -> Result<Command, ManagerError> {
    let (resolved, _host) = resolve(production, &NginxBinary::from_env())?;
    let resolved = resolved.as_ref();
    let name = act_named(resolved, act)?;
    if store_of(resolved, &name).live().is_none() {
        return Err(ManagerError::NoRelease {
            act: name.to_string(),
        });
    }
    let Some((program, rest)) = argv.split_first() else {
        return Err(ManagerError::NoCommand);
    };
    let mut cmd = act_command(resolved, &name, program, true);
    cmd.args(rest);
    Ok(cmd)
}

/// Every kept release of `act` (of every Act when `None`), oldest first.
pub fn releases(
    production: &Production,
    act: Option<&str>,
) -> Result<Vec<ReleaseInfo>, ManagerError> {
    let names = match act {
        Some(a) => vec![act_named(production, a)?],
        None => production.acts.keys().cloned().collect(),
    };
    let mut out = Vec::new();
    for name in names {
        let store = store_of(production, &name);
        let live = store.live();
        for r in store.list()? {
            out.push(ReleaseInfo {
                act: name.to_string(),
                live: live.as_deref() == Some(r.id.as_str()),
                id: r.id,
                revision: r.revision,
                created: r.created,
                release_phase: r.release_phase,
            });
        }
    }
    Ok(out)
}

/// Links to move with a switch: (link, target).
pub(super) type Links = Vec<(PathBuf, PathBuf)>;

/// A release built for a switch, not live yet.
struct Built {
    act: Slug,
    release: Release,
    previous: Option<String>,
}

/// Builds a release of each of `acts` from the manifest's roots (in `manifest`), prepares it
/// (Stages, `collectstatic`, `manage.py check`, release phase) and returns the Production to
/// switch to, with the links that make the releases live.
fn build_releases(
    manifest: &Production,
    resolved: &Production,
    acts: &[Slug],
    reference: Option<&str>,
    progress: &mut dyn FnMut(Event),
) -> Result<(Production, Vec<Built>, Links), ManagerError> {
    let mut target = resolved.clone();
    let mut built = Vec::new();
    let mut links = Vec::new();
    for name in acts {
        let act = &manifest.acts[name];
        let store = store_of(manifest, name);
        progress(Event::Step(format!(
            "building a release of Act `{name}` from `{}`{}",
            act.root,
            reference.map(|r| format!(" at `{r}`")).unwrap_or_default()
        )));
        let release = store.build(
            act.root.as_path(),
            reference,
            &act.shared,
            SystemTime::now(),
        )?;
        progress(Event::Output(format!(
            "release {} (revision {})",
            release.id, release.revision
        )));
        let live = store.live();
        if let Some(live) = &live
            && let Ok(current) = store.get(live)
            && current.revision == release.revision
            && current.release_phase != Phase::Failed
        {
            if current.id != release.id {
                store.remove(&release.id)?;
            }
            progress(Event::Skipped(format!(
                "Act `{name}`: revision {} is live already (release {live}); nothing to deploy",
                &release.revision[..release.revision.len().min(12)]
            )));
            continue;
        }
        let mut moved = on_release(act, &store, &release.id, None)
            .expect("validated paths move into a release");
        moved.secrets.clone_from(&resolved.acts[name].secrets);
        moved.environment = environments::environment_of(&target, name, &moved)?;
        store.set_environment(
            &release.id,
            moved.environment.as_ref().map(ConfPath::as_path),
        )?;
        target.acts.insert(name.clone(), moved);
        links.extend(store.live_links(&release.id));
        built.push(Built {
            act: name.clone(),
            release,
            previous: live,
        });
    }
    if resolved.mode == Mode::System {
        own_shared(&target, acts);
    }
    build_stages(&target, progress)?;
    for b in &built {
        environments::build_environment(&target, &b.act, progress)?;
    }
    for b in &mut built {
        prepare(&target, &store_of(&target, &b.act), b, progress)?;
    }
    Ok((target, built, links))
}

/// System mode: an Act's shared files are its Sess' account's (the app writes its database
/// and uploads there); its releases stay root's, read-only to the app.
fn own_shared(production: &Production, acts: &[Slug]) {
    for name in acts {
        let Some((_, sess)) = lead_sess(production, name) else {
            continue;
        };
        let Some(user) = sess
            .tuning
            .uid
            .as_ref()
            .and_then(|u| nix::unistd::User::from_name(u.as_str()).ok().flatten())
        else {
            continue;
        };
        let dir = store_of(production, name).shared_dir().to_owned();
        // An entry already the account's was handed over with all it holds when it was
        // seeded (uploads can be many): only what a build seeded since is walked.
        let theirs = |e: &walkdir::DirEntry| {
            use std::os::unix::fs::MetadataExt as _;
            e.depth() > 0 && e.metadata().is_ok_and(|m| m.uid() == user.uid.as_raw())
        };
        for entry in walkdir::WalkDir::new(&dir)
            .into_iter()
            .filter_entry(|e| !theirs(e))
            .flatten()
        {
            let _ = nix::unistd::chown(entry.path(), Some(user.uid), Some(user.gid));
        }
    }
}

/// In the new release: `collectstatic`, `manage.py check`, then the release phase; a failure
/// marks the release failed and deploys nothing.
fn prepare(
    production: &Production,
    store: &ReleaseStore,
    built: &mut Built,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    let name = &built.act;
    let act = &production.acts[name];
    let Some((_, sess)) = lead_sess(production, name) else {
        progress(Event::Skipped(format!(
            "no Sess plays Act `{name}`: nothing runs its release phase"
        )));
        return Ok(());
    };
    let python = act
        .virtualenv(&production.stages[&sess.stage])
        .as_path()
        .join("bin/python");
    // Marked failed until it has passed: a deploy killed half-way leaves no release that
    // looks fine but never ran its migrations.
    let has_phase = !act.release.is_empty();
    if has_phase {
        store.set_phase(&built.release.id, Phase::Failed)?;
    }
    let fail = |command: String, output: Vec<String>| {
        let _ = store.set_phase(&built.release.id, Phase::Failed);
        ManagerError::ReleasePhase {
            act: name.to_string(),
            release: built.release.id.clone(),
            command,
            output,
        }
    };
    if !act.static_dirs.is_empty() {
        let mut cmd = act_command(production, name, python.to_str().unwrap_or("python"), false);
        cmd.args(["-m", "django", "collectstatic", "--noinput"]);
        progress(Event::Step(format!("collectstatic for Act `{name}`")));
        run_step(cmd, progress)
            .map_err(|out| fail("manage.py collectstatic --noinput".into(), out))?;
    }
    if act.settings.is_some() {
        let mut cmd = act_command(production, name, python.to_str().unwrap_or("python"), true);
        cmd.args(["-m", "django", "check"]);
        progress(Event::Step(format!("manage.py check for Act `{name}`")));
        run_step(cmd, progress).map_err(|out| fail("manage.py check".into(), out))?;
    }
    for command in &act.release {
        let mut cmd = act_command(production, name, "/bin/sh", true);
        cmd.arg("-c").arg(command);
        progress(Event::Step(format!(
            "release phase of Act `{name}`: {command}"
        )));
        run_step(cmd, progress).map_err(|out| fail(command.clone(), out))?;
    }
    built.release.release_phase = if has_phase { Phase::Ok } else { Phase::Skipped };
    store.set_phase(&built.release.id, built.release.release_phase)?;
    Ok(())
}

/// Runs one step, its output (stdout and stderr, merged) streamed as progress; on failure,
/// its last lines and how it ended.
fn run_step(mut cmd: Command, progress: &mut dyn FnMut(Event)) -> Result<(), Vec<String>> {
    let (reader, writer) = match std::io::pipe() {
        Ok(p) => p,
        Err(e) => return Err(vec![format!("could not make a pipe: {e}")]),
    };
    let Ok(writer2) = writer.try_clone() else {
        return Err(vec!["could not make a pipe".to_owned()]);
    };
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Err(vec![format!(
                "could not start `{}`: {e}",
                cmd.get_program().to_string_lossy()
            )]);
        }
    };
    // The pipe's write ends live on in `cmd` until it is dropped.
    drop(cmd);
    let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    let mut buf = Vec::new();
    let mut reader = reader;
    let mut chunk = [0u8; 8192];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&buf[..at]).into_owned();
                    buf.drain(..=at);
                    progress(Event::Output(line.clone()));
                    tail.push_back(line);
                    if tail.len() > OUTPUT_TAIL_LINES {
                        tail.pop_front();
                    }
                }
            }
        }
    }
    if !buf.is_empty() {
        tail.push_back(String::from_utf8_lossy(&buf).into_owned());
    }
    match child.wait() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => {
            tail.push_back(format!("({status})"));
            Err(tail.into())
        }
        Err(e) => Err(vec![format!("could not wait for it: {e}")]),
    }
}

/// `backstage deploy [ACT...]`: builds a release of each Act (all when none is named), runs
/// its release phase, and switches every Sess of the Act to it the blue/green way.
pub fn deploy(
    production: &Production,
    acts: &[String],
    options: &DeployOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<DeployReport, ManagerError> {
    let (resolved, host) = resolve(production, &options.apply.nginx)?;
    let resolved = resolved.as_ref();
    let host = host.as_ref();
    let names = acts_named(production, acts)?;
    if let Some(host) = host {
        host.preflight(resolved)?;
        host.ensure_dirs(resolved)?;
    }
    let _lock = take_lock(resolved, options.apply.lock_wait, progress)?;
    let resolved = fresh(production, resolved, host, progress)?;
    let resolved = resolved.as_ref();
    let (target, built, links) = build_releases(
        production,
        resolved,
        &names,
        options.reference.as_deref(),
        progress,
    )?;
    progress(Event::Step("switching to the new release".into()));
    let apply = apply_locked(&target, host, &options.apply, &links, progress)?;
    finish(&target, built, apply, progress)
}

/// Prunes and reports after a switch.
fn finish(
    production: &Production,
    built: Vec<Built>,
    apply: ApplyReport,
    progress: &mut dyn FnMut(Event),
) -> Result<DeployReport, ManagerError> {
    let mut acts = Vec::new();
    for b in built {
        let act = &production.acts[&b.act];
        let pruned = store_of(production, &b.act).prune(usize::from(act.keep_releases))?;
        if !pruned.is_empty() {
            progress(Event::Step(format!(
                "pruned {} old release{} of Act `{}`",
                pruned.len(),
                if pruned.len() == 1 { "" } else { "s" },
                b.act
            )));
        }
        acts.push(Switched {
            act: b.act.to_string(),
            release: b.release,
            previous: b.previous,
            pruned,
        });
    }
    environments::prune_environments(production, progress);
    Ok(DeployReport { acts, apply })
}

/// For `apply` and `up`: the first release of every Act that has none, built and prepared,
/// with the links that make them live; `None` when every Act has one.
pub(super) fn first_releases(
    manifest: &Production,
    resolved: &Production,
    progress: &mut dyn FnMut(Event),
) -> Result<Option<(Production, Links)>, ManagerError> {
    let missing: Vec<Slug> = resolved
        .acts
        .keys()
        .filter(|a| store_of(resolved, a).live().is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        return Ok(None);
    }
    let (target, _built, links) = build_releases(manifest, resolved, &missing, None, progress)?;
    Ok(Some((target, links)))
}

/// `backstage rollback ACT [--to ID]`: switches the Act back to a kept release (default: the
/// one before the live one), blue/green, with no rebuild and no release phase. Migrations the
/// newer release ran are not reversed.
pub fn rollback(
    production: &Production,
    act: &str,
    to: Option<&str>,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<DeployReport, ManagerError> {
    let (resolved, host) = resolve(production, &options.nginx)?;
    let resolved = resolved.as_ref();
    let host = host.as_ref();
    let name = act_named(production, act)?;
    if let Some(host) = host {
        host.preflight(resolved)?;
        host.ensure_dirs(resolved)?;
    }
    let _lock = take_lock(resolved, options.lock_wait, progress)?;
    let resolved = fresh(production, resolved, host, progress)?;
    let resolved = resolved.as_ref();
    let store = store_of(resolved, &name);
    let live = store.live();
    let release = match to {
        Some(id) => store.get(id)?,
        None => store
            .previous()?
            .ok_or_else(|| ManagerError::NoRollbackTarget {
                act: name.to_string(),
            })?,
    };
    if release.release_phase == Phase::Failed {
        return Err(ManagerError::FailedRelease {
            act: name.to_string(),
            release: release.id,
        });
    }
    let mut target = resolved.clone();
    let mut moved = on_release(
        &production.acts[&name],
        &store,
        &release.id,
        release.environment.as_deref(),
    )
    .expect("validated paths move into a release");
    moved.secrets.clone_from(&resolved.acts[&name].secrets);
    target.acts.insert(name.clone(), moved);
    let links = store.live_links(&release.id);
    progress(Event::Step(format!(
        "rolling Act `{name}` back to release {}",
        release.id
    )));
    let apply = apply_locked(&target, host, options, &links, progress)?;
    finish(
        &target,
        vec![Built {
            act: name,
            release,
            previous: live,
        }],
        apply,
        progress,
    )
}

/// `backstage sess reload NAME`: restarts a Sess on its live release the blue/green way: a new
/// copy starts beside the running one and must answer before it takes the traffic (a Sess on a
/// TCP address, which two copies cannot share, is reloaded in place and waited for).
pub fn restart(
    production: &Production,
    sess: &str,
    options: &ApplyOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<ApplyReport, ManagerError> {
    let (resolved, host) = resolve(production, &options.nginx)?;
    let host = host.as_ref();
    let name = backstage_uwsgi::vassal::find_sess(production, sess)?
        .0
        .clone();
    if let Some(host) = host {
        host.preflight(&resolved)?;
        host.ensure_dirs(&resolved)?;
    }
    let _lock = take_lock(&resolved, options.lock_wait, progress)?;
    let resolved = fresh(production, &resolved, host, progress)?;
    let mut counts = read_restarts(&resolved);
    let n = {
        let n = counts.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n
    };
    let mut target = resolved.into_owned();
    if let Some(s) = target.sess.get_mut(&name) {
        s.restarts = n;
    }
    let file = restarts_file(&target);
    let json = serde_json::to_vec(&counts).expect("counts serialize");
    backstage_core::files::place(&file, &json, None, None)?;
    progress(Event::Step(format!(
        "restarting Sess `{name}` (restart {n})"
    )));
    apply_locked(&target, host, options, &[], progress)
}
