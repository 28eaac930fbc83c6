//! The `[acts.NAME]` section: an Act's code, environment, static files and uploads, secrets,
//! and how the Act Manager releases it (release phase, shared paths, health).

// The manifest reader's parts share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

use crate::work::{CronJob, DEFAULT_STOP_TIMEOUT, Schedule, StopSignal, Worker};

/// An Act, from its table; `None` when it has problems (reported to `ck`).
pub(super) fn act(
    ck: &mut Checker<'_>,
    mut t: Tbl<'_, '_>,
    base: Option<&ConfPath>,
) -> Option<Act> {
    let root = match (t.required(ck, "root"), base) {
        (Some((v, p)), Some(base)) => path_in(ck, &p, v, base, false, "Act root"),
        _ => None,
    };
    let wsgi = t
        .required(ck, "wsgi")
        .and_then(|(v, p)| ck.parsed::<WsgiTarget>(&p, v, "WSGI entry point"));
    let settings = match t.get("settings") {
        None => Some(None),
        Some((v, p)) => ck.parsed::<PyModule>(&p, v, "settings module").map(Some),
    };
    // Requirements belong to the project: inside the Act's root or the manifest's directory.
    let requirements = match (t.get("requirements"), base, &root) {
        (None, _, _) => Some(None),
        (Some((v, p)), Some(base), Some(root)) => {
            let s = ck.string(&p, v)?;
            let inside = ConfPath::resolve(base, s, false).ok().filter(|r| {
                r.as_path().starts_with(root.as_path()) || r.as_path().starts_with(base.as_path())
            });
            match (inside, ConfPath::resolve(base, s, false)) {
                (Some(r), _) => Some(Some(r)),
                (None, Err(e)) => {
                    ck.report(
                        &p,
                        v.span(),
                        format!("invalid requirements file `{}`: {e}", shorten(s)),
                    );
                    None
                }
                (None, Ok(_)) => {
                    ck.report(&p, v.span(), format!("requirements file `{}` escapes the Act's root and the manifest's directory", shorten(s)));
                    None
                }
            }
        }
        _ => None,
    };
    let static_dirs = match t.get("static") {
        None => Some(BTreeMap::new()),
        Some((v, p)) => ck.table(&p, v).and_then(|mut st| {
            let mut out = BTreeMap::new();
            let mut ok = true;
            for (k, v, kp) in st.entries() {
                let prefix = match k.get_ref().parse::<UrlPrefix>() {
                    Ok(x) => Some(x),
                    Err(e) => {
                        ck.report(&kp, k.span(), format!("invalid static URL prefix `{}`: {e}", shorten(k.get_ref())));
                        None
                    }
                };
                // Static directories are served by nginx to anyone: keep them inside the Act.
                let dir = match (base, &root) {
                    (Some(base), Some(root)) => {
                        let s = ck.string(&kp, v);
                        s.and_then(|s| match ConfPath::resolve(base, s, false) {
                            Ok(d) if d.as_path().starts_with(root.as_path()) => Some(d),
                            Ok(_) => {
                                ck.report_at(&kp, v.span(), format!("static directory `{}` is outside the Act's root `{root}`", shorten(s)),
                                    Some("nginx serves it to anyone: keep static files inside the project".to_owned()));
                                None
                            }
                            Err(e) => {
                                ck.report(&kp, v.span(), format!("invalid static directory `{}`: {e}", shorten(s)));
                                None
                            }
                        })
                    }
                    _ => None,
                };
                match (prefix, dir) {
                    (Some(prefix), Some(dir)) => {
                        out.insert(prefix, dir);
                    }
                    _ => ok = false,
                }
            }
            ok.then_some(out)
        }),
    };
    let env = match t.get("env") {
        None => Some(BTreeMap::new()),
        Some((v, p)) => ck.table(&p, v).and_then(|mut et| {
            let mut out = BTreeMap::new();
            let mut ok = true;
            for (k, v, kp) in et.entries() {
                let key = match k.get_ref().parse::<EnvKey>() {
                    Ok(x) => Some(x),
                    Err(e) => {
                        ck.report(
                            &kp,
                            k.span(),
                            format!(
                                "invalid environment variable name `{}`: {e}",
                                shorten(k.get_ref())
                            ),
                        );
                        None
                    }
                };
                let value = ck.parsed::<IniValue>(&kp, v, "environment value");
                match (key, value) {
                    (Some(k), Some(v)) => {
                        out.insert(k, v);
                    }
                    _ => ok = false,
                }
            }
            ok.then_some(out)
        }),
    };
    let release = act_release(ck, &mut t);
    let mut shared = act_shared(ck, &mut t, root.as_ref());
    let env_file = act_env_file(ck, &mut t, base, root.as_ref());
    let media = act_media(
        ck,
        &mut t,
        root.as_ref(),
        static_dirs.as_ref(),
        shared.as_mut(),
    );
    let keep_releases = opt_int::<u16>(ck, &mut t, "keep_releases", 1, 1000)
        .map(|k| k.unwrap_or(DEFAULT_KEEP_RELEASES));
    let health = match t.get("health") {
        None => Some(Health::default()),
        Some((v, p)) => ck.table(&p, v).and_then(|ht| act_health(ck, ht)),
    };
    let workers = act_workers(ck, &mut t);
    let cron = act_cron(ck, &mut t);
    t.finish(ck, ACT_KEYS);
    Some(Act {
        root: root?,
        wsgi: wsgi?,
        settings: settings?,
        requirements: requirements?,
        static_dirs: static_dirs?,
        env: env?,
        release: release?,
        shared: shared?,
        keep_releases: keep_releases?,
        health: health?,
        env_file: env_file?,
        media: media?,
        secrets: crate::secrets::Secrets::default(),
        live_link: None,
        fallback_root: None,
        environment: None,
        workers: workers?,
        cron: cron?,
    })
}

/// A worker's or cron job's shell command: not empty, one line, no NUL.
fn work_command(ck: &mut Checker<'_>, t: &mut Tbl<'_, '_>) -> Option<String> {
    let (v, p) = t.required(ck, "command")?;
    let s = ck.string(&p, v)?;
    let why = if s.trim().is_empty() {
        "a command cannot be empty"
    } else if s.contains(['\n', '\r', '\0']) {
        "a command is one line (use `sh -c` or a script for more)"
    } else if s.contains("%(") {
        "uWSGI expands `%(name)` and has no escape for it"
    } else {
        return Some(s.trim().to_owned());
    };
    ck.report(&p, v.span(), why);
    None
}

/// The entries of a table of named things (`workers`, `cron`), each name a slug.
fn named_tables<T>(
    ck: &mut Checker<'_>,
    t: &mut Tbl<'_, '_>,
    key: &'static str,
    what: &str,
    mut each: impl FnMut(&mut Checker<'_>, Tbl<'_, '_>) -> Option<T>,
) -> Option<BTreeMap<Slug, T>> {
    let Some((v, p)) = t.get(key) else {
        return Some(BTreeMap::new());
    };
    let mut wt = ck.table(&p, v)?;
    let mut out = BTreeMap::new();
    let mut ok = true;
    for (k, v, kp) in wt.entries() {
        let name = match k.get_ref().parse::<Slug>() {
            Ok(n) => Some(n),
            Err(e) => {
                ck.report(
                    &kp,
                    k.span(),
                    format!("invalid {what} name `{}`: {e}", shorten(k.get_ref())),
                );
                None
            }
        };
        let item = ck.table(&kp, v).and_then(|it| each(ck, it));
        match (name, item) {
            (Some(n), Some(i)) => {
                out.insert(n, i);
            }
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// `[acts.X.workers.NAME]`: `command`, `processes`, `stop_signal`, `stop_timeout`.
fn act_workers(ck: &mut Checker<'_>, t: &mut Tbl<'_, '_>) -> Option<BTreeMap<Slug, Worker>> {
    named_tables(ck, t, "workers", "worker", |ck, mut wt| {
        let command = work_command(ck, &mut wt);
        let processes = opt_int::<u16>(ck, &mut wt, "processes", 1, 64).map(|n| n.unwrap_or(1));
        let stop_timeout = opt_int::<u16>(ck, &mut wt, "stop_timeout", 1, 3600)
            .map(|n| n.unwrap_or(DEFAULT_STOP_TIMEOUT));
        let stop_signal = match wt.get("stop_signal") {
            None => Some(StopSignal::default()),
            Some((v, p)) => {
                let parsed = match (v.get_ref().as_str(), v.get_ref().as_integer()) {
                    (Some(s), _) => StopSignal::parse(s).map_err(|e| (s.to_owned(), e)),
                    (None, Some(i)) => {
                        StopSignal::parse(i.as_str()).map_err(|e| (i.as_str().to_owned(), e))
                    }
                    _ => Err((String::new(), "expected a signal name or number".to_owned())),
                };
                match parsed {
                    Ok(sig) => Some(sig),
                    Err((s, why)) => {
                        ck.report(
                            &p,
                            v.span(),
                            format!("invalid stop_signal `{}`: {why}", shorten(&s)),
                        );
                        None
                    }
                }
            }
        };
        wt.finish(ck, WORKER_KEYS);
        Some(Worker {
            command: command?,
            processes: processes?,
            stop_signal: stop_signal?,
            stop_timeout: stop_timeout?,
        })
    })
}

/// `[acts.X.cron.NAME]`: `schedule` (five-field cron syntax) and `command`.
fn act_cron(ck: &mut Checker<'_>, t: &mut Tbl<'_, '_>) -> Option<BTreeMap<Slug, CronJob>> {
    named_tables(ck, t, "cron", "cron job", |ck, mut ct| {
        let schedule = ct.required(ck, "schedule").and_then(|(v, p)| {
            let s = ck.string(&p, v)?;
            match Schedule::parse(s) {
                Ok(sch) => Some(sch),
                Err(e) => {
                    ck.report_at(
                        &p,
                        v.span(),
                        format!("invalid schedule: {e}"),
                        Some("five fields: minute hour day-of-month month day-of-week, e.g. `17 3 * * *`".to_owned()),
                    );
                    None
                }
            }
        });
        let command = work_command(ck, &mut ct);
        ct.finish(ck, CRON_KEYS);
        Some(CronJob {
            schedule: schedule?,
            command: command?,
        })
    })
}

/// `env_file = "/etc/backstage/club.env"`: a dotenv file outside the Act's root (a release
/// copies the root), which parses. Its values are never repeated in a problem.
fn act_env_file(
    ck: &mut Checker<'_>,
    t: &mut Tbl<'_, '_>,
    base: Option<&ConfPath>,
    root: Option<&ConfPath>,
) -> Option<Option<ConfPath>> {
    let Some((v, p)) = t.get("env_file") else {
        return Some(None);
    };
    let path = path_in(ck, &p, v, base?, false, "env_file")?;
    if root.is_some_and(|r| path.as_path().starts_with(r.as_path())) {
        ck.report_at(
            &p,
            v.span(),
            format!("env_file `{path}` is inside the Act's root"),
            Some("every release copies the root: keep secrets outside it (`/etc/backstage/<act>.env`)".to_owned()),
        );
        return None;
    }
    match crate::secrets::read_dotenv(path.as_path()) {
        Ok(_) => Some(Some(path)),
        // Root's file, checked by a user: `apply` (as root) reads it.
        Err(crate::secrets::SecretsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            Some(Some(path))
        }
        Err(e) => {
            let why = match &e {
                crate::secrets::SecretsError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            ck.report(&p, v.span(), format!("env_file `{path}`: {why}"));
            None
        }
    }
}

/// `media = { "/media/" = "media" }`: one URL prefix and a directory inside the Act's root,
/// which becomes a `shared` entry (uploads outlive releases).
fn act_media(
    ck: &mut Checker<'_>,
    t: &mut Tbl<'_, '_>,
    root: Option<&ConfPath>,
    statics: Option<&BTreeMap<UrlPrefix, ConfPath>>,
    shared: Option<&mut Vec<String>>,
) -> Option<Option<Media>> {
    let Some((v, p)) = t.get("media") else {
        return Some(None);
    };
    let mut mt = ck.table(&p, v)?;
    let entries = mt.entries();
    if entries.len() != 1 {
        ck.report_at(
            &p,
            v.span(),
            format!("`media` has {} entries; an Act has one", entries.len()),
            Some(
                "Django has one MEDIA_URL and MEDIA_ROOT: `media = { \"/media/\" = \"media\" }`"
                    .to_owned(),
            ),
        );
        return None;
    }
    let (k, v, kp) = entries.into_iter().next()?;
    let prefix = match k.get_ref().parse::<UrlPrefix>() {
        Ok(x) if statics.is_some_and(|st| st.contains_key(&x)) => {
            ck.report(
                &kp,
                k.span(),
                format!("media URL prefix `{x}` is also a static prefix"),
            );
            None
        }
        Ok(x) => Some(x),
        Err(e) => {
            ck.report(
                &kp,
                k.span(),
                format!("invalid media URL prefix `{}`: {e}", shorten(k.get_ref())),
            );
            None
        }
    };
    let s = ck.string(&kp, v)?;
    let root = root?;
    let rel = match ConfPath::resolve(root, s, true) {
        Ok(r) if r == *root => {
            ck.report(
                &kp,
                v.span(),
                "the media directory cannot be the Act's root itself",
            );
            None
        }
        Ok(r) => Some(
            r.as_path()
                .strip_prefix(root.as_path())
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default(),
        ),
        Err(e) => {
            ck.report_at(
                &kp,
                v.span(),
                format!("invalid media directory `{}`: {e}", shorten(s)),
                Some(
                    "the media directory is relative to the Act's root and stays inside it"
                        .to_owned(),
                ),
            );
            None
        }
    }?;
    if let Some(shared) = shared {
        let overlaps = shared.iter().any(|o| {
            o != &rel && (Path::new(&rel).starts_with(o) || Path::new(o).starts_with(&rel))
        });
        if overlaps {
            ck.report(
                &kp,
                v.span(),
                format!("media directory `{}` overlaps a shared path", shorten(s)),
            );
            return None;
        }
        if !shared.contains(&rel) {
            shared.push(rel.clone());
        }
    }
    Some(Some(Media {
        prefix: prefix?,
        path: rel,
    }))
}

/// `release = ["python manage.py migrate --noinput", ...]`: shell commands, none empty.
fn act_release(ck: &mut Checker<'_>, t: &mut Tbl<'_, '_>) -> Option<Vec<String>> {
    let Some((v, p)) = t.get("release") else {
        return Some(Vec::new());
    };
    let arr = ck.array(&p, v)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in arr.iter().enumerate() {
        let ip = p.index(i);
        match ck.string(&ip, item) {
            Some(s) if s.trim().is_empty() => {
                ck.report(&ip, item.span(), "a release command cannot be empty");
                ok = false;
            }
            Some(s) if s.contains('\0') => {
                ck.report(
                    &ip,
                    item.span(),
                    "a release command cannot contain a NUL byte",
                );
                ok = false;
            }
            Some(s) => out.push(s.to_owned()),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// `shared = ["db.sqlite3", "media"]`: paths inside the Act's root, each once.
fn act_shared(
    ck: &mut Checker<'_>,
    t: &mut Tbl<'_, '_>,
    root: Option<&ConfPath>,
) -> Option<Vec<String>> {
    let Some((v, p)) = t.get("shared") else {
        return Some(Vec::new());
    };
    let arr = ck.array(&p, v)?;
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (i, item) in arr.iter().enumerate() {
        let ip = p.index(i);
        let Some(s) = ck.string(&ip, item) else {
            ok = false;
            continue;
        };
        let Some(root) = root else {
            ok = false;
            continue;
        };
        let rel = ConfPath::resolve(root, s, true).map(|r| {
            r.as_path()
                .strip_prefix(root.as_path())
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        match rel {
            Ok(r) if r.is_empty() => {
                ck.report(&ip, item.span(), format!("shared path `{}` is the Act's root itself; name a file or directory inside it", shorten(s)));
                ok = false;
            }
            Ok(r)
                if out.iter().any(|o| {
                    o == &r || Path::new(&r).starts_with(o) || Path::new(o).starts_with(&r)
                }) =>
            {
                ck.report(
                    &ip,
                    item.span(),
                    format!("shared path `{}` overlaps another shared path", shorten(s)),
                );
                ok = false;
            }
            Ok(r) => out.push(r),
            Err(e) => {
                ck.report_at(
                    &ip,
                    item.span(),
                    format!("invalid shared path `{}`: {e}", shorten(s)),
                    Some(
                        "shared paths are relative to the Act's root and stay inside it".to_owned(),
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `health = { path = "/healthz", status = [200] }`.
fn act_health(ck: &mut Checker<'_>, mut t: Tbl<'_, '_>) -> Option<Health> {
    let path = match t.get("path") {
        None => Some(UrlPath::root()),
        Some((v, p)) => ck.parsed::<UrlPath>(&p, v, "health path"),
    };
    let status = match t.get("status") {
        None => Some(Vec::new()),
        Some((v, p)) => ck.array(&p, v).and_then(|arr| {
            let mut out = Vec::new();
            let mut ok = true;
            if arr.is_empty() {
                ck.report(&p, v.span(), "needs at least one HTTP status");
                return None;
            }
            for (i, item) in arr.iter().enumerate() {
                match ck.int(&p.index(i), item, 100, 599) {
                    Some(n) => out.push(u16::try_from(n).expect("range checked")),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }),
    };
    t.finish(ck, HEALTH_KEYS);
    Some(Health {
        path: path?,
        status: status?,
    })
}
