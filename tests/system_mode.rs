//! System mode against the real thing: Debian's `nginx-light`, `uwsgi-emperor` and
//! `uwsgi-plugin-python3`, started the way their units start them, at their real paths.
//!
//! Each test re-runs itself inside private mount, network and pid namespaces (`unshare`, as
//! root), where temporary copies are bind-mounted over `/etc/nginx`, `/etc/uwsgi-emperor`,
//! `/run`, `/var/log` and `/var/lib`: the machine's own files and port 80 are never touched,
//! and every process the test started dies with its namespace (`support/sandbox.rs`).

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use support::sandbox::{SRV, Sandbox, run, sandboxed};
use support::{get, ok, test_venv, under_load};

/// The jazz Production in system mode: Sess `club-a` (and `club-b` when `two`) as `uid`.
fn manifest(uid: &str, two: bool, processes: u16) -> String {
    let srv = SRV.get().expect("inside a sandbox");
    let (club, venv) = (srv.join("club"), srv.join("venv"));
    let mut m = format!(
        r#"
[production]
name = "jazzclub"
mode = "system"

[acts.club]
root = "{club}"
wsgi = "club.wsgi:application"
settings = "club.settings"
env = {{ DJANGO_DEBUG = "0", DJANGO_ALLOWED_HOSTS = ".localhost,127.0.0.1" }}
release = ["python manage.py migrate --noinput"]
shared = ["db.sqlite3"]

[stages.local]
virtualenv = "{venv}"

[sess.club-a]
act = "club"
stage = "local"
uid = "{uid}"
gid = "{gid}"
processes = {processes}
"#,
        gid = group_of(uid),
        club = club.display(),
        venv = venv.display(),
    );
    if two {
        let _ = write!(
            m,
            "\n[sess.club-b]\nact = \"club\"\nstage = \"local\"\nuid = \"{uid}\"\ngid = \"{}\"\n",
            group_of(uid)
        );
    }
    let sess = if two {
        r#"["club-a", "club-b"]"#
    } else {
        r#"["club-a"]"#
    };
    let _ = write!(
        m,
        "\n[venues.jazz]\nserver_names = [\"jazz.localhost\"]\n\n[gigs.jazz-home]\nvenue = \"jazz\"\nsess = {sess}\n"
    );
    m
}

fn group_of(user: &str) -> &'static str {
    match user {
        "nobody" => "nogroup",
        "root" => "root",
        _ => "www-data",
    }
}

/// SHA-256 of every file (and link target) under `dirs` that is not Backstage's.
fn foreign_files(dirs: &[&str]) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for d in dirs {
        for path in support::walk(Path::new(d)) {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                continue;
            }
            let bytes = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                if target.to_string_lossy().contains("backstage.") {
                    continue;
                }
                target.to_string_lossy().into_owned().into_bytes()
            } else {
                std::fs::read(&path).unwrap()
            };
            if bytes.starts_with(b"# backstage: managed by Backstage") {
                continue;
            }
            let digest = Sha256::digest(&bytes)
                .iter()
                .fold(String::new(), |mut s, b| {
                    let _ = write!(s, "{b:02x}");
                    s
                });
            out.insert(path, digest);
        }
    }
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn foreign_files_stay_byte_identical_and_foreign_sites_are_tested_as_nginx_loads_them() {
    sandboxed(
        "foreign_files_stay_byte_identical_and_foreign_sites_are_tested_as_nginx_loads_them",
        |s| {
            // A foreign site using Debian's echo module (modules-enabled) and a conf.d map: a
            // scratch nginx.conf would refuse both.
            std::fs::write(
                "/etc/nginx/conf.d/flags.conf",
                "map $http_x_flag $flag_on { default 0; yes 1; }\n",
            )
            .unwrap();
            std::fs::write(
                "/etc/nginx/sites-available/echo",
                "server {\n  listen 80;\n  server_name echo.localhost;\n  location / { echo \"flag $flag_on\"; }\n}\n",
            )
            .unwrap();
            std::os::unix::fs::symlink(
                "/etc/nginx/sites-available/echo",
                "/etc/nginx/sites-enabled/echo",
            )
            .unwrap();
            run(Command::new("/usr/sbin/nginx").args(["-s", "reload"]));
            let dirs = ["/etc/nginx", "/etc/uwsgi-emperor"];
            let before = foreign_files(&dirs);
            assert!(before.contains_key(Path::new("/etc/nginx/nginx.conf")));

            // Accepted.
            s.write_manifest(&manifest("www-data", true, 1));
            ok(&s.backstage(&["apply"]));
            assert_eq!(foreign_files(&dirs), before, "an accepted apply");
            let (code, body) = get(80, "jazz.localhost", "/whoami").unwrap();
            assert_eq!(code, 200, "{body}");
            let (_, echo) = get(80, "echo.localhost", "/").unwrap();
            assert_eq!(echo.trim(), "flag 0", "the foreign site still serves");

            // Refused by nginx (a certificate that does not exist): nothing changes.
            let broken = manifest("www-data", true, 1).replace(
                "server_names = [\"jazz.localhost\"]",
                "server_names = [\"jazz.localhost\"]\ntls = { cert = \"/nonexistent.pem\", key = \"/nonexistent.key\" }",
            );
            s.write_manifest(&broken);
            let out = s.backstage(&["apply"]);
            assert!(!out.status.success());
            assert!(stderr(&out).contains("venues.jazz"), "{}", stderr(&out));
            assert_eq!(foreign_files(&dirs), before, "a refused apply");
            let (code, _) = get(80, "jazz.localhost", "/whoami").unwrap();
            assert_eq!(code, 200, "the refused apply left the site serving");

            // A broken foreign site is blamed by name, and blocks nothing else of ours silently.
            std::fs::write(
                "/etc/nginx/sites-enabled/broken",
                "server {\n  listen 80;\n  server_name broken.localhost;\n  no_such_directive;\n}\n",
            )
            .unwrap();
            // (A change nginx must load: a Sess change alone never reloads nginx.)
            s.write_manifest(&manifest("www-data", true, 1).replace(
                "server_names = [\"jazz.localhost\"]",
                "server_names = [\"jazz.localhost\", \"www.jazz.localhost\"]",
            ));
            let out = s.backstage(&["apply"]);
            assert!(!out.status.success());
            assert!(
                stderr(&out).contains("/etc/nginx/sites-enabled/broken")
                    && stderr(&out).contains("not managed by Backstage"),
                "{}",
                stderr(&out)
            );
            std::fs::remove_file("/etc/nginx/sites-enabled/broken").unwrap();

            // Retirement of a Sess and of the whole Venue.
            s.write_manifest(&manifest("www-data", false, 1));
            ok(&s.backstage(&["apply"]));
            assert_eq!(foreign_files(&dirs), before, "a retirement");
            let no_venue = manifest("www-data", false, 1);
            let no_venue = no_venue.split("\n[venues.jazz]").next().unwrap();
            s.write_manifest(no_venue);
            ok(&s.backstage(&["apply"]));
            assert_eq!(foreign_files(&dirs), before, "a retired Venue");
            assert!(!Path::new("/etc/nginx/sites-enabled/backstage.jazzclub.jazz.conf").exists());
            let (_, echo) = get(80, "echo.localhost", "/").unwrap();
            assert_eq!(echo.trim(), "flag 0");

            // `check` and `plan` refuse a name a foreign site serves, as `apply` does.
            s.write_manifest(&manifest("www-data", false, 1).replace(
                "server_names = [\"jazz.localhost\"]",
                "server_names = [\"jazz.localhost\", \"echo.localhost\"]",
            ));
            for command in ["check", "plan", "apply"] {
                let out = s.backstage(&[command]);
                assert!(!out.status.success(), "{command}");
                let err = stderr(&out);
                assert!(
                    err.contains("echo.localhost") && err.contains("/etc/nginx/sites-enabled/echo"),
                    "{command}: {err}"
                );
            }
            assert_eq!(foreign_files(&dirs), before, "refused names");
        },
    );
}

/// The uid of the process answering `/whoami` through nginx on port 80.
fn worker_uid() -> u32 {
    let (code, body) = get(80, "jazz.localhost", "/whoami").unwrap();
    assert_eq!(code, 200, "{body}");
    let who: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pid = who["pid"].as_u64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(2).unwrap().parse().unwrap()
}

#[test]
fn a_production_lives_on_port_80_as_its_sess_account_and_survives_changes_and_a_reboot() {
    sandboxed(
        "a_production_lives_on_port_80_as_its_sess_account_and_survives_changes_and_a_reboot",
        |s| {
            s.make_emperor_root();
            s.write_manifest(&manifest("nobody", true, 2));
            // Before the first apply Debian's default site answers every name on port 80:
            // status must not take its 200 for the Gig's.
            let out = s.backstage(&["status", "--json"]);
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert!(status["gigs"][0]["http_status"].is_null(), "{status}");
            assert!(
                status["gigs"][0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("another server block"),
                "{status}"
            );
            let started = Instant::now();
            ok(&s.backstage(&["apply"]));
            eprintln!("first apply: {:?}", started.elapsed());
            assert_eq!(worker_uid(), 65534, "the app runs as the Sess' uid");
            let status = ok(&s.backstage(&["status", "--json"]));
            let status: serde_json::Value = serde_json::from_str(&status).unwrap();
            assert_eq!(status["gigs"][0]["http_status"], 200, "{status}");
            // The socket: the Sess' account and nginx's group, nobody else.
            let link = "/run/backstage/jazzclub/backstage.jazzclub.club-a.sock";
            let real = std::fs::canonicalize(link).unwrap();
            let meta = std::fs::metadata(&real).unwrap();
            assert_eq!(
                (meta.uid(), meta.gid(), meta.mode() & 0o777),
                (65534, 33, 0o660)
            );

            // A changed Sess, blue/green under load: not one failed request.
            s.write_manifest(&manifest("nobody", true, 3));
            let (served, failed, took) = under_load(80, || {
                let t = Instant::now();
                ok(&s.backstage(&["apply"]));
                t.elapsed()
            });
            eprintln!("apply of a changed Sess: {took:?}; {served} served, {failed} failed");
            assert!(served > 50, "{served}");
            assert_eq!(failed, 0, "{failed} of {} failed", served + failed);

            // A retired Sess is no longer routed.
            s.write_manifest(&manifest("nobody", false, 3));
            ok(&s.backstage(&["apply"]));
            for _ in 0..20 {
                let (code, body) = get(80, "jazz.localhost", "/whoami").unwrap();
                assert_eq!(code, 200);
                assert!(body.contains("\"club-a\""), "{body}");
            }
            let error_log = std::fs::read_to_string("/var/log/nginx/error.log").unwrap_or_default();
            assert!(!error_log.contains("club-b.sock failed"), "{error_log}");

            // A reboot: /run is empty, the services start again; plan sees the lost links and
            // apply brings the Gig back.
            s.reboot();
            let plan = ok(&s.backstage(&["plan"]));
            assert!(plan.contains("socket link"), "{plan}");
            ok(&s.backstage(&["apply"]));
            assert_eq!(worker_uid(), 65534);
            let plan = ok(&s.backstage(&["plan"]));
            assert!(plan.contains("nothing to change"), "{plan}");
        },
    );
}

#[test]
fn the_stock_www_data_emperor_runs_www_data_sess_and_refuses_other_accounts_clearly() {
    sandboxed(
        "the_stock_www_data_emperor_runs_www_data_sess_and_refuses_other_accounts_clearly",
        |s| {
            s.write_manifest(&manifest("nobody", false, 1));
            let out = s.backstage(&["apply"]);
            assert!(!out.status.success());
            let err = stderr(&out);
            assert!(
                err.contains("runs as `www-data` and cannot switch users")
                    && err.contains("/etc/uwsgi-emperor/emperor.ini"),
                "{err}"
            );
            assert!(
                std::fs::read_dir("/etc/uwsgi-emperor/vassals")
                    .unwrap()
                    .all(|e| !e
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with("backstage.")),
                "nothing was written"
            );
            s.write_manifest(&manifest("www-data", false, 1));
            ok(&s.backstage(&["apply"]));
            assert_eq!(worker_uid(), 33);
        },
    );
}

#[test]
fn without_root_system_mode_says_it_needs_root() {
    sandboxed("without_root_system_mode_says_it_needs_root", |s| {
        s.write_manifest(&manifest("www-data", false, 1));
        // apply, and status too (rather than calling every Sess failed).
        for command in ["apply", "status"] {
            let out = Command::new(env!("CARGO_BIN_EXE_backstage"))
                .arg(command)
                .current_dir(&s.dir)
                .uid(65534)
                .gid(65534)
                .output()
                .unwrap();
            assert!(!out.status.success(), "{command}");
            assert!(
                stderr(&out).contains("system mode needs root"),
                "{command}: {}",
                stderr(&out)
            );
        }
    });
}

#[test]
fn a_pip_installed_emperor_gets_vassals_without_plugins() {
    sandboxed(
        "a_pip_installed_emperor_gets_vassals_without_plugins",
        |s| {
            // A monolithic uWSGI (pip's, Python built in) as the Emperor, running as root.
            s.stop_emperor();
            let mut emperor = Command::new(test_venv().join("bin/uwsgi"));
            emperor.args(["--emperor", "/etc/uwsgi-emperor/vassals", "--master"]);
            s.start_emperor_with(emperor);
            // As root: pip built this uWSGI against the test machine's Python under /root, which
            // no other account may read.
            s.write_manifest(&manifest("root", false, 1));
            ok(&s.backstage(&["apply"]));
            assert_eq!(worker_uid(), 0);
            let vassal = support::walk(Path::new("/etc/uwsgi-emperor/vassals"))
                .into_iter()
                .find(|p| p.to_string_lossy().contains("backstage.jazzclub.club-a."))
                .unwrap();
            let text = std::fs::read_to_string(vassal).unwrap();
            assert!(!text.contains("need-plugin"), "{text}");
        },
    );
}

#[test]
fn doctor_names_what_is_wrong_on_the_server_and_the_fix() {
    sandboxed(
        "doctor_names_what_is_wrong_on_the_server_and_the_fix",
        |s| {
            s.write_manifest(&manifest("nobody", false, 1));
            // A broken server: no Emperor, and an nginx.conf that does not load sites-enabled.
            s.stop_emperor();
            let conf = std::fs::read_to_string("/etc/nginx/nginx.conf").unwrap();
            let without = conf.replace("include /etc/nginx/sites-enabled/*;", "");
            assert_ne!(conf, without);
            std::fs::write("/etc/nginx/nginx.conf", &without).unwrap();
            let out = s.backstage(&["doctor", "--json"]);
            assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
            let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let finding = |check: &str| {
                d["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["check"] == check)
                    .unwrap_or_else(|| panic!("no `{check}` finding in {d}"))
                    .clone()
            };
            assert_eq!(d["ok"], false);
            let emperor = finding("emperor");
            assert_eq!(emperor["ok"], false);
            assert!(
                emperor["fix"]
                    .as_str()
                    .unwrap()
                    .contains("systemctl enable --now uwsgi-emperor")
            );
            let sites = finding("nginx_sites");
            assert_eq!(sites["ok"], false);
            assert!(
                sites["fix"]
                    .as_str()
                    .unwrap()
                    .contains("include /etc/nginx/sites-enabled/*;"),
                "{sites}"
            );
            assert_eq!(finding("run_dir")["ok"], false);
            // apply refuses up front too, saying what to start.
            let out = s.backstage(&["apply"]);
            assert!(
                stderr(&out).contains("no uWSGI Emperor watches"),
                "{}",
                stderr(&out)
            );

            // The stock Emperor runs as www-data: a Sess as `nobody` cannot work, and doctor says how
            // to make the Emperor root.
            std::fs::write("/etc/nginx/nginx.conf", &conf).unwrap();
            s.start_emperor();
            let out = s.backstage(&["doctor"]);
            assert_eq!(out.status.code(), Some(1));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("cannot switch users")
                    && text.contains("/etc/uwsgi-emperor/emperor.ini"),
                "{text}"
            );

            // Mended: everything in order once applied.
            s.make_emperor_root();
            ok(&s.backstage(&["apply"]));
            let out = s.backstage(&["doctor"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        },
    );
}

/// Every regular file under `dirs` whose bytes hold `needle`.
fn files_holding(dirs: &[&str], needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in dirs {
        for path in support::walk(Path::new(d)) {
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
                && std::fs::read(&path)
                    .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn secrets_stay_in_root_only_files_and_media_is_the_sess_accounts_and_served() {
    sandboxed(
        "secrets_stay_in_root_only_files_and_media_is_the_sess_accounts_and_served",
        |s| {
            const SECRET: &str = "system-mode-secret-4b1d9e";
            s.make_emperor_root();
            let text = manifest("nobody", false, 1).replace(
                "shared = [\"db.sqlite3\"]",
                "shared = [\"db.sqlite3\"]\nmedia = { \"/media/\" = \"media\" }",
            );
            s.write_manifest(&text);
            ok(&s.backstage(&["env", "club", "set", &format!("DJANGO_SECRET_KEY={SECRET}")]));
            let mut outputs = vec![ok(&s.backstage(&["apply"]))];
            // The app has it.
            let (code, body) = get(80, "jazz.localhost", "/env?name=DJANGO_SECRET_KEY").unwrap();
            assert_eq!(code, 200, "{body}");
            assert!(body.contains(SECRET), "{body}");
            for args in [
                &["status", "--json"][..],
                &["plan", "--json"],
                &["env", "club", "list"],
                &["releases", "--json"],
            ] {
                let out = s.backstage(args);
                outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
                outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            for o in &outputs {
                assert!(!o.contains(SECRET), "a secret in an output: {o}");
            }
            // On disk: only in the store and the Sess' envdir, both under the state dir's
            // `secrets/`, root's and private; never in the Emperor's dir, nginx's, /run or a log.
            let found = files_holding(
                &[
                    "/etc/nginx",
                    "/etc/uwsgi-emperor",
                    "/run",
                    "/var/log",
                    "/var/lib/backstage",
                ],
                SECRET,
            );
            assert!(!found.is_empty(), "the store holds it");
            for f in &found {
                assert!(
                    f.starts_with("/var/lib/backstage/jazzclub/secrets"),
                    "a secret in `{}`",
                    f.display()
                );
                let meta = std::fs::metadata(f).unwrap();
                assert_eq!(meta.uid(), 0, "{}", f.display());
                assert_eq!(
                    meta.mode() & 0o077 & !0o040,
                    0,
                    "{} is {:o}",
                    f.display(),
                    meta.mode()
                );
            }
            // Media: the app (as `nobody`) writes an upload into its shared dir, nginx serves it.
            let wrote = s.backstage(&[
                "run",
                "club",
                "--",
                "python",
                "-c",
                "import os; open(os.path.join(os.environ['BACKSTAGE_MEDIA_ROOT'], 'set.txt'), 'w').write('round midnight')",
            ]);
            ok(&wrote);
            let upload = Path::new("/var/lib/backstage/jazzclub/shared/club/media/set.txt");
            assert_eq!(
                std::fs::metadata(upload).unwrap().uid(),
                65534,
                "written as the Sess' account"
            );
            let (code, body) = get(80, "jazz.localhost", "/media/set.txt").unwrap();
            assert_eq!((code, body.as_str()), (200, "round midnight"));
            let (code, _) = get(80, "jazz.localhost", "/media/.hidden").unwrap();
            assert_eq!(code, 403, "hidden files are denied");
        },
    );
}

/// The processes of every worker and cron job (their environment names a work vassal).
fn work_processes() -> Vec<u64> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|v| v.starts_with(b"BACKSTAGE_WORKER_ID="))
            })
        })
        .collect()
}

/// A process' real and effective uid.
fn uids_of(pid: u64) -> (u32, u32) {
    try_uids_of(pid).unwrap_or_else(|| panic!("pid {pid} is gone"))
}

/// A process' real and effective uid; `None` once it has exited.
fn try_uids_of(pid: u64) -> Option<(u32, u32)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let mut ids = line.split_whitespace().skip(1).map(|v| v.parse().unwrap());
    Some((ids.next().unwrap(), ids.next().unwrap()))
}

fn worker_pids(s: &Sandbox) -> (String, Vec<u64>) {
    // `status` exits 1 while a worker is not running: its JSON says so all the same.
    let out = s.backstage(&["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let w = &status["workers"][0];
    let pids = w["pids"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    (w["state"].as_str().unwrap_or_default().to_owned(), pids)
}

/// `note_task(token)` enqueued by a one-off command in the live release, as the Sess' account.
fn enqueue_as_the_sess(s: &Sandbox, token: &str) {
    ok(&s.backstage(&[
        "run",
        "club",
        "--",
        "python",
        "-c",
        &format!(
            "import django; django.setup(); from club.celery import app; \
             from music.tasks import note_task; note_task.delay({token:?})"
        ),
    ]));
}

fn wait_for_line(path: &Path, needle: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !std::fs::read_to_string(path).is_ok_and(|t| t.lines().any(|l| l.contains(needle))) {
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in `{}` within {within:?}: {}",
            path.display(),
            std::fs::read_to_string(path).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_worker_and_a_cron_job_run_as_the_sess_account_with_the_acts_secrets_and_come_back() {
    sandboxed(
        "a_worker_and_a_cron_job_run_as_the_sess_account_with_the_acts_secrets_and_come_back",
        |s| {
            const SECRET: &str = "system-worker-secret-77c3";
            s.make_emperor_root();
            // The example's worker on its filesystem broker, in the Act's shared dir.
            let shared = Path::new("/var/lib/backstage/jazzclub/shared/club");
            let tasks = shared.join("broker/tasks.log");
            let base = manifest("nobody", false, 1)
                .replace(
                    "shared = [\"db.sqlite3\"]",
                    "shared = [\"db.sqlite3\", \"broker\"]",
                )
                .replace(
                    "DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\" }",
                    &format!(
                        "DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\", CLUB_TASK_LOG = \"{}\" }}",
                        tasks.display()
                    ),
                );
            let with_work = format!(
                "{base}\n[acts.club.workers.celery]\ncommand = \"celery -A club.celery worker --loglevel INFO --concurrency 1\"\n\n[acts.club.cron.tick]\nschedule = \"* * * * *\"\ncommand = \"echo cron-uid=$(id -u) secret-length=${{#DJANGO_SECRET_KEY}}\"\n"
            );
            s.write_manifest(&with_work);
            ok(&s.backstage(&["env", "club", "set", &format!("DJANGO_SECRET_KEY={SECRET}")]));
            let started = Instant::now();
            ok(&s.backstage(&["apply"]));
            eprintln!("first apply with a worker: {:?}", started.elapsed());

            // The worker: the Sess' account, the Act's secret in its environment.
            let (state, pids) = worker_pids(s);
            assert_eq!(state, "running");
            assert!(!pids.is_empty());
            for p in &pids {
                assert_eq!(uids_of(*p), (65534, 65534), "worker pid {p}");
                let env = std::fs::read(format!("/proc/{p}/environ")).unwrap();
                let want = format!("DJANGO_SECRET_KEY={SECRET}");
                assert!(
                    env.split(|b| *b == 0).any(|v| v == want.as_bytes()),
                    "worker pid {p} lacks the secret"
                );
            }
            // Every process of the worker and the cron job's master, not only the worker.
            for p in work_processes() {
                assert_eq!(uids_of(p).1, 65534, "pid {p}");
            }
            // A task enqueued as the Sess' account (`backstage run`, not the view: the test venv's
            // Python may be another build than the one Debian's plugin embeds, whose `ssl` kombu
            // imports), done by the worker as that account, through the filesystem broker.
            enqueue_as_the_sess(s, "system");
            wait_for_line(&tasks, "system ", Duration::from_secs(30));
            assert_eq!(std::fs::metadata(&tasks).unwrap().uid(), 65534);

            // SIGKILL: it comes back, and takes tasks again.
            for p in &pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(i32::try_from(*p).unwrap()),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let killed = Instant::now();
            loop {
                let (state, now) = worker_pids(s);
                // A pid `status` named may exit before it is read (a restart still settling):
                // asked again.
                let uids: Option<Vec<(u32, u32)>> = now.iter().map(|p| try_uids_of(*p)).collect();
                if let Some(uids) = uids.filter(|_| {
                    state == "running" && !now.is_empty() && now.iter().all(|p| !pids.contains(p))
                }) {
                    for (p, ids) in now.iter().zip(uids) {
                        assert_eq!(ids, (65534, 65534), "restarted pid {p}");
                    }
                    break;
                }
                assert!(
                    killed.elapsed() < Duration::from_secs(30),
                    "the worker did not come back: {state} {now:?}"
                );
                std::thread::sleep(Duration::from_millis(300));
            }
            eprintln!("worker back after SIGKILL: {:?}", killed.elapsed());
            enqueue_as_the_sess(s, "back");
            wait_for_line(&tasks, "back ", Duration::from_secs(30));

            // The cron job's first run, at the next minute: as the Sess' account, with the
            // secret.
            let deadline = Instant::now() + Duration::from_secs(75);
            let want = format!("cron-uid=65534 secret-length={}", SECRET.len());
            loop {
                let log = String::from_utf8_lossy(
                    &s.backstage(&["logs", "tick", "--lines", "50"]).stdout,
                )
                .into_owned();
                if log.contains(&want) && log.contains("tick: exited with status 0") {
                    break;
                }
                assert!(Instant::now() < deadline, "no run of `tick`: {log}");
                std::thread::sleep(Duration::from_secs(1));
            }

            // Out of the manifest: stopped, no process left.
            s.write_manifest(&base);
            ok(&s.backstage(&["apply"]));
            assert_eq!(work_processes(), Vec::<u64>::new(), "after the apply");
            let (state, pids) = worker_pids(s);
            assert!(state.is_empty() && pids.is_empty(), "{state} {pids:?}");
        },
    );
}

#[test]
fn an_acme_venue_is_issued_and_renewed_under_debians_nginx_and_emperor() {
    sandboxed(
        "an_acme_venue_is_issued_and_renewed_under_debians_nginx_and_emperor",
        |s| {
            use std::os::unix::fs::PermissionsExt as _;
            use support::pebble::{Pebble, served_serial};
            let https = |root: &Path| {
                let out = Command::new("curl")
                    .args([
                        "-sS",
                        "--max-time",
                        "20",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                    ])
                    .arg("--cacert")
                    .arg(root)
                    .args(["--resolve", "jazz.localhost:443:127.0.0.1"])
                    .arg("https://jazz.localhost/")
                    .output()
                    .unwrap();
                ok(&out)
            };
            let plain = manifest("nobody", false, 1);
            // The stock Emperor runs as www-data: it could not run the renewal job as root.
            s.write_manifest(&format!(
                "{}{}",
                plain.replace(
                    "server_names = [\"jazz.localhost\"]\n",
                    "server_names = [\"jazz.localhost\"]\ntls = { acme = true }\n",
                ),
                "\n[acme]\ndirectory = \"https://127.0.0.1:1/dir\"\n"
            ));
            let refused = s.backstage(&["apply"]);
            assert!(!refused.status.success());
            assert!(
                stderr(&refused).contains("renew the ACME certificates"),
                "{}",
                stderr(&refused)
            );
            s.make_emperor_root();
            // Pebble validates on port 80, where Debian's nginx listens.
            let pebble = Pebble::start(80);
            let text = format!(
                "{}{}",
                plain.replace(
                    "server_names = [\"jazz.localhost\"]\n",
                    "server_names = [\"jazz.localhost\"]\ntls = { acme = true }\n",
                ),
                pebble.acme_table()
            );
            s.write_manifest(&text);
            let out = ok(&s.backstage(&["apply"]));
            assert!(out.contains("certificate for Venue `jazz`"), "{out}");
            let root = pebble.root();
            assert_eq!(https(&root), "200");
            // HTTP on 80 redirects to 443 (the system-mode default).
            let (code, _) = get(80, "jazz.localhost", "/").unwrap();
            assert_eq!(code, 301);

            // nginx's workers (www-data) read the pair at each handshake: the key is root's,
            // readable by nginx's group only.
            let acme = Path::new("/var/lib/backstage/jazzclub/acme");
            let key = std::fs::metadata(acme.join("jazz/live/key.pem")).unwrap();
            assert_eq!(key.permissions().mode() & 0o777, 0o640);
            assert_eq!(key.uid(), 0);
            let www_data = nix::unistd::Group::from_name("www-data").unwrap().unwrap();
            assert_eq!(key.gid(), www_data.gid.as_raw());
            let account = std::fs::read_dir(acme)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with("account-")
                })
                .unwrap();
            assert_eq!(
                std::fs::metadata(&account).unwrap().permissions().mode() & 0o777,
                0o600
            );

            // The renewal job runs under Debian's Emperor, as root.
            let job = "/etc/uwsgi-emperor/vassals/backstage.jazzclub.tls-renew.ini";
            let job_text = std::fs::read_to_string(job).expect("the renewal job's vassal");
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let ps = ok(&Command::new("ps")
                    .args(["-eo", "uid=,args="])
                    .output()
                    .unwrap());
                if let Some(line) = ps
                    .lines()
                    .find(|l| l.contains("backstage.jazzclub.tls-renew"))
                {
                    assert_eq!(line.split_whitespace().next(), Some("0"), "{line}");
                    break;
                }
                assert!(Instant::now() < deadline, "no renewal job running:\n{ps}");
                std::thread::sleep(Duration::from_millis(200));
            }
            // Its command succeeds, as uWSGI's cron would run it.
            let line = job_text
                .lines()
                .find(|l| l.starts_with("cron2 = "))
                .unwrap();
            let command = line.split_once(",unique=1 ").unwrap().1;
            let run = Command::new("/bin/sh")
                .args(["-c", command])
                .output()
                .unwrap();
            assert!(run.status.success(), "{run:?}");

            // A forced renewal: the new serial is served by www-data's workers, no reload.
            let before = served_serial(443, "jazz.localhost");
            let renewed = ok(&s.backstage(&["tls", "renew", "--force", "--json"]));
            let renewed: serde_json::Value = serde_json::from_str(&renewed).unwrap();
            assert_eq!(renewed["nginx_reloaded"], false, "{renewed}");
            let serial = renewed["issued"][0]["serial"]
                .as_str()
                .unwrap()
                .to_ascii_uppercase();
            assert_ne!(serial, before);
            assert_eq!(served_serial(443, "jazz.localhost"), serial);
            assert_eq!(https(&root), "200");
            let status = ok(&s.backstage(&["tls", "status"]));
            assert!(status.contains("valid"), "{status}");
        },
    );
}
