//! Workers and cron jobs end to end (SPEC §10): the example's Celery worker under the real
//! uWSGI Emperor, against a real Redis (Debian's `redis-server`, on a free loopback port), with
//! tasks enqueued from a Django view through nginx.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{Club, get, ok, pid_alive};

/// A Redis of the test's own, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let port = support::free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/test-deps installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example's Celery command (its `[acts.club.workers.celery]` table, the file's last).
const CELERY: &str = "command = \"celery -A club.celery worker --loglevel INFO --concurrency 2\"";

/// The example with its worker and a cron job, the broker on `redis`, tasks noted in the
/// returned file.
fn club_with_worker(redis: &Redis, cron: &str) -> (Club, PathBuf) {
    let club = Club::new();
    let tasks = club.dir.join("tasks.log");
    assert!(club.text.contains(CELERY), "the example's worker changed");
    let text = club
        .text
        .replace(
            "env = { DJANGO_DEBUG = \"0\", DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\" }",
            &format!(
                "env = {{ DJANGO_DEBUG = \"0\", DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\", CELERY_BROKER_URL = \"redis://127.0.0.1:{}/0\", CLUB_TASK_LOG = \"{}\" }}",
                redis.port,
                tasks.display()
            ),
        )
        .replace(CELERY, &format!("{CELERY}\nstop_timeout = 20"));
    club.write_manifest(&format!("{text}{cron}"));
    (club, tasks)
}

fn enqueue(club: &Club, token: &str, sleep: f64) {
    let (status, body) = get(
        club.port,
        "jazz.localhost",
        &format!("/enqueue?token={token}&sleep={sleep}"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
}

/// The tasks done: token → the release directories that ran it.
fn done(tasks: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(tasks)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(' ');
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

fn wait_done(tasks: &Path, tokens: &[String], within: Duration) -> Vec<(String, String)> {
    let deadline = Instant::now() + within;
    loop {
        let d = done(tasks);
        let have: BTreeSet<&str> = d.iter().map(|(t, _)| t.as_str()).collect();
        if tokens.iter().all(|t| have.contains(t.as_str())) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "not done in {within:?}: {:?}",
            tokens
                .iter()
                .filter(|t| !have.contains(t.as_str()))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(club: &Club) -> serde_json::Value {
    let out = club.run(&["status", "--json"]);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn worker(club: &Club) -> serde_json::Value {
    status(club)["workers"][0].clone()
}

fn pids(w: &serde_json::Value) -> Vec<u64> {
    w["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap())
        .collect()
}

/// Every process of this test's workers: its environment names the test's task log.
fn worker_processes(tasks: &Path) -> Vec<u64> {
    let mark = format!("CLUB_TASK_LOG={}", tasks.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u64>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == mark.as_bytes()))
        })
        // Not the Sess' uWSGI workers (they have the same environment): only the workers'.
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ")).is_ok_and(|env| {
                env.split(|b| *b == 0)
                    .any(|v| v.starts_with(b"BACKSTAGE_WORKER_ID="))
            })
        })
        .collect()
}

/// 40 tasks enqueued from the view before, during and after a deploy that changes the
/// release: all done, those enqueued after the switch by the new release, and only the new
/// release's worker left running.
fn tasks_across_a_deploy(club: &Club, tasks: &Path, first_release: &str, broker: &str) {
    std::fs::write(club.dir.join("club/music/version.py"), "VERSION = 2\n").unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let enqueuer = {
        let (port, stop) = (club.port, stop.clone());
        std::thread::spawn(move || {
            let mut sent = Vec::new();
            let mut i = 0;
            while i < 30 && !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let token = format!("t{i}");
                let (status, body) = get(
                    port,
                    "jazz.localhost",
                    &format!("/enqueue?token={token}&sleep=0.3"),
                )
                .unwrap();
                assert_eq!(status, 200, "{body}");
                sent.push(token);
                i += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let out = club.run(&["deploy"]);
    let deploy_took = started.elapsed();
    ok(&out);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut sent = enqueuer.join().unwrap();
    let w = worker(club);
    let new_release = w["release"].as_str().unwrap().to_owned();
    assert_ne!(new_release, first_release, "{w}");
    let mut after = Vec::new();
    for i in 0..(40 - sent.len()) {
        let token = format!("a{i}");
        enqueue(club, &token, 0.0);
        after.push(token.clone());
        sent.push(token);
    }
    let d = wait_done(tasks, &sent, Duration::from_secs(120));
    for (token, release) in &d {
        if after.contains(token) {
            assert!(release.ends_with(&new_release), "{token} ran in {release}");
        }
    }
    eprintln!(
        "{broker}: deploy with a worker took {deploy_took:?}; {} tasks, all done",
        sent.len()
    );
    // Only the new release's worker runs.
    let running = worker_processes(tasks);
    for p in &running {
        let cwd = std::fs::read_link(format!("/proc/{p}/cwd")).unwrap_or_default();
        assert!(
            cwd.ends_with(&new_release),
            "pid {p} runs in {}",
            cwd.display()
        );
    }
}

#[test]
fn a_worker_runs_tasks_across_deploys_comes_back_when_killed_and_stops_with_down() {
    let redis = Redis::start();
    let (club, tasks) = club_with_worker(&redis, "");
    ok(&club.run(&["check"]));
    ok(&club.run(&["up"]));
    let w = worker(&club);
    assert_eq!(w["name"], "celery");
    assert_eq!(w["act"], "club");
    assert_eq!(w["state"], "running", "{w}");
    assert!(!pids(&w).is_empty(), "{w}");
    let first_release = w["release"].as_str().unwrap().to_owned();

    // A task enqueued from a view runs in the worker, in the live release.
    enqueue(&club, "hello", 0.0);
    let d = wait_done(&tasks, &["hello".to_owned()], Duration::from_secs(60));
    assert!(d[0].1.ends_with(&first_release), "{d:?}");

    tasks_across_a_deploy(&club, &tasks, &first_release, "redis");

    // A worker killed with SIGKILL comes back.
    let before = pids(&worker(&club));
    for p in &before {
        let _ = Command::new("kill").args(["-9", &p.to_string()]).status();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let w = worker(&club);
        let now = pids(&w);
        if w["state"] == "running" && !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not come back: {w}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    enqueue(&club, "back", 0.0);
    wait_done(&tasks, &["back".to_owned()], Duration::from_secs(60));

    // `down` leaves no worker process.
    let last = pids(&worker(&club));
    ok(&club.run(&["down"]));
    for p in &last {
        assert!(!pid_alive(*p), "worker pid {p} outlived down");
    }
    assert_eq!(worker_processes(&tasks), Vec::<u64>::new(), "after down");
}

/// The example's own broker: with no `CELERY_BROKER_URL`, its settings pick kombu's
/// filesystem transport, messages in the Act's shared `broker` dir. No server runs.
#[test]
fn the_examples_worker_runs_tasks_from_a_view_through_its_filesystem_broker() {
    let club = Club::new();
    let tasks = club.dir.join("tasks.log");
    // Only a place for the task to note what it did; the broker is the example's.
    let text = club.text.replace(
        "env = { DJANGO_DEBUG = \"0\", DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\" }",
        &format!(
            "env = {{ DJANGO_DEBUG = \"0\", DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\", CLUB_TASK_LOG = \"{}\" }}",
            tasks.display()
        ),
    );
    assert!(!text.contains("CELERY_BROKER_URL ="), "{text}");
    club.write_manifest(&text);
    ok(&club.run(&["up"]));
    let w = worker(&club);
    assert_eq!(w["state"], "running", "{w}");
    let first_release = w["release"].as_str().unwrap().to_owned();
    let log = ok(&club.run(&["logs", "celery", "--lines", "200"]));
    assert!(log.contains("transport:   filesystem://"), "{log}");

    enqueue(&club, "hello", 0.0);
    let d = wait_done(&tasks, &["hello".to_owned()], Duration::from_secs(60));
    assert!(d[0].1.ends_with(&first_release), "{d:?}");
    // The messages are files in the shared dir, claimed into `processed/`.
    let broker = club.dir.join(".backstage/shared/club/broker");
    let processed = std::fs::read_dir(broker.join("processed")).unwrap().count();
    assert_eq!(processed, 1, "one message claimed");

    tasks_across_a_deploy(&club, &tasks, &first_release, "filesystem broker");
    // Nothing left queued, every message claimed once.
    let queued: Vec<_> = std::fs::read_dir(&broker)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().ends_with(".msg"))
        .collect();
    assert_eq!(
        queued,
        Vec::<std::ffi::OsString>::new(),
        "left in the queue"
    );
    // A message a stopping worker had prefetched but not started goes back to the queue (a new
    // file), and is claimed again.
    let processed = std::fs::read_dir(broker.join("processed")).unwrap().count();
    assert!(processed >= 41, "{processed} messages claimed for 41 tasks");
    eprintln!("filesystem broker: {processed} messages claimed for 41 tasks");
    let d = done(&tasks);
    let tokens: BTreeSet<&str> = d.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tokens.len(), d.len(), "no task ran twice: {d:?}");

    ok(&club.run(&["down"]));
    assert_eq!(worker_processes(&tasks), Vec::<u64>::new(), "after down");
}

#[test]
fn a_bad_schedule_names_its_field_and_a_worker_that_exits_at_once_fails_the_apply() {
    let redis = Redis::start();
    let (club, _) = club_with_worker(
        &redis,
        "\n[acts.club.cron.tick]\nschedule = \"0 25 * * *\"\ncommand = \"true\"\n",
    );
    let out = club.run(&["check"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid schedule: hour `25`"), "{err}");

    let text = std::fs::read_to_string(club.dir.join("backstage.toml"))
        .unwrap()
        .replace("schedule = \"0 25 * * *\"", "schedule = \"17 3 * * *\"")
        .replace(CELERY, "command = \"echo the worker gives up; exit 3\"");
    club.write_manifest(&text);
    ok(&club.run(&["check"]));
    let out = club.run(&["up"]);
    assert!(!out.status.success(), "up with a failing worker succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("worker `celery` of Act `club` failed"),
        "{err}"
    );
    assert!(err.contains("the worker gives up"), "{err}");
    let w = worker(&club);
    assert_ne!(w["state"], "running", "{w}");
}

#[test]
fn a_cron_job_runs_every_minute_and_never_twice_at_once() {
    let redis = Redis::start();
    let (club, tasks) = club_with_worker(
        &redis,
        "\n[acts.club.cron.tick]\nschedule = \"* * * * *\"\ncommand = \"echo tick >> $CLUB_TASK_LOG.cron; sleep 65\"\n",
    );
    ok(&club.run(&["up"]));
    let cron_log = PathBuf::from(format!("{}.cron", tasks.display()));
    // The first run, at the next minute.
    let deadline = Instant::now() + Duration::from_secs(70);
    while !cron_log.exists() {
        assert!(Instant::now() < deadline, "the job never ran");
        std::thread::sleep(Duration::from_millis(500));
    }
    let s = status(&club);
    // The example's own nightly job is listed beside it.
    let job = s["cron"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == "tick"))
        .unwrap_or_else(|| panic!("no `tick` job: {s}"));
    assert_eq!(job["name"], "tick", "{s}");
    assert_eq!(job["scheduled"], true, "{s}");
    assert!(job["last_run"]["started"].is_string(), "{s}");
    assert!(job["last_run"]["finished"].is_null(), "still running: {s}");
    // The next minute comes while it still runs: the next run waits for it to end (uWSGI's
    // `unique`), so runs follow each other and never overlap.
    let logs = || ok(&club.run(&["logs", "tick", "--lines", "400"]));
    let runs = |log: &str| -> Vec<&'static str> {
        log.lines()
            .filter_map(|l| {
                if l.contains("[backstage-cron] tick: started") {
                    Some("started")
                } else if l.contains("[backstage-cron] tick: exited with status 0") {
                    Some("exited")
                } else if l.contains("[backstage-cron] tick: skipped") {
                    Some("skipped")
                } else {
                    None
                }
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(80);
    loop {
        let log = logs();
        let r = runs(&log);
        if r.iter().filter(|x| **x == "started").count() >= 2 {
            assert_eq!(
                r.iter()
                    .filter(|x| **x != "skipped")
                    .take(3)
                    .copied()
                    .collect::<Vec<_>>(),
                ["started", "exited", "started"],
                "{log}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no second run: {log}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let ticks = std::fs::read_to_string(&cron_log).unwrap();
    assert_eq!(ticks.lines().count(), 2, "{ticks}");
    let s = status(&club);
    let tick = s["cron"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["name"] == "tick"))
        .unwrap_or_else(|| panic!("no `tick` job: {s}"));
    assert_eq!(tick["last_run"]["finished"], serde_json::Value::Null, "{s}");
    ok(&club.run(&["down"]));
}
