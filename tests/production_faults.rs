//! The Production Manager under faults, through the real things (uWSGI Emperor, nginx, Django):
//! an apply killed with SIGKILL in each of its phases and run again, two applies at once, an
//! nginx configuration nginx rejects, and `up`/`down` run twice.
//!
//! The change applied is slow on purpose: a new Sess whose WSGI module takes 1.5 s to import,
//! so that every phase lasts long enough to be interrupted. The phases are recognised by the
//! progress lines `apply` prints on stderr; the process is killed right after seeing one.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::{Club, get, ok, vassals, walk};

/// The example, minus the `club-late` Sess and its Gig, plus a slow Sess booked at `/slow`.
fn changed(base: &str) -> String {
    let late = base.find("[sess.club-late]").unwrap();
    let venues = base.find("[venues.jazz]").unwrap();
    let gig = base.find("[gigs.jazz-late]").unwrap();
    let mut text = format!("{}{}", &base[..late], &base[venues..gig]);
    text.push_str(
        "[acts.slow]\nroot = \"club\"\nwsgi = \"slow_wsgi:application\"\n\
         settings = \"club.settings\"\n\
         release = [\"python manage.py migrate --noinput\"]\nshared = [\"db.sqlite3\"]\n\
         env = { DJANGO_DEBUG = \"0\", DJANGO_ALLOWED_HOSTS = \".localhost,127.0.0.1\" }\n\n\
         [sess.slow-a]\nact = \"slow\"\nstage = \"local\"\nprocesses = 1\n\n\
         [gigs.jazz-slow]\nvenue = \"jazz\"\nsess = [\"slow-a\"]\npath = \"/slow\"\n",
    );
    text
}

/// A Club whose `slow` Act is available, live.
fn live_club() -> Club {
    let club = Club::new();
    std::fs::write(
        club.dir.join("club/slow_wsgi.py"),
        "import time\n\ntime.sleep(1.5)\n\nfrom club.wsgi import application  # noqa: E402\n",
    )
    .unwrap();
    ok(&club.run(&["up"]));
    club
}

/// The sess a Gig's `/whoami` answers from, through nginx.
fn whoami(club: &Club, path: &str) -> (u16, String) {
    let (status, body) = get(club.port, "jazz.localhost", path).unwrap();
    let sess = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["sess"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, sess)
}

/// The live files are what the manifest implies, no journal or temp file is left, every Sess
/// runs and every Gig answers 200 through nginx.
fn assert_consistent(club: &Club, when: &str) {
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&club.run(&["plan", "--json"]))).unwrap();
    assert_eq!(plan, serde_json::json!({"changes": []}), "{when}: plan");
    let state = club.dir.join(".backstage");
    assert!(!state.join("journal").exists(), "{when}: journal left");
    let temps: Vec<_> = walk(&state)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .collect();
    assert!(temps.is_empty(), "{when}: temp files left: {temps:?}");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&club.run(&["status", "--json"]))).unwrap();
    for s in status["sess"].as_array().unwrap() {
        assert_eq!(s["state"], "running", "{when}: {s}");
    }
    for g in status["gigs"].as_array().unwrap() {
        assert_eq!(g["http_status"], 200, "{when}: {g}");
    }
}

/// The example as written: `/late` is the late Sess, `/slow` is not routed anywhere of its own.
fn assert_base(club: &Club, when: &str) {
    assert_consistent(club, when);
    assert_eq!(
        whoami(club, "/late/whoami"),
        (200, "club-late".into()),
        "{when}"
    );
    assert_eq!(whoami(club, "/slow/whoami").0, 404, "{when}: /slow routed");
}

/// The changed manifest: `/slow` is the slow Sess, `/late` is gone.
fn assert_changed(club: &Club, when: &str) {
    assert_consistent(club, when);
    assert_eq!(
        whoami(club, "/slow/whoami"),
        (200, "slow-a".into()),
        "{when}"
    );
    assert!(
        vassals(&club.dir, "club-late").is_empty(),
        "{when}: club-late retired"
    );
}

/// Starts `backstage apply`, SIGKILLs it right after it prints a line containing `marker`.
fn apply_killed_after(club: &Club, marker: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .arg("apply")
        .current_dir(&club.dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        let hit = line.contains(marker);
        seen.push(line);
        if hit {
            child.kill().unwrap();
            child.wait().unwrap();
            return;
        }
    }
    panic!(
        "apply ended ({:?}) without printing `{marker}`:\n{}",
        child.wait().unwrap(),
        seen.join("\n")
    );
}

#[test]
fn an_apply_killed_in_any_phase_is_completed_or_undone_by_the_next() {
    let club = live_club();
    let base = club.text.clone();
    let change = changed(&base);
    let markers = [
        "==> starting Sess `slow-a`",
        "==> waiting for Sess `slow-a` to answer",
        "==> reloading nginx",
        "==> retiring Sess `club-late`",
    ];
    for marker in markers {
        club.write_manifest(&change);
        apply_killed_after(&club, marker);
        let out = ok(&club.run(&["apply"]));
        assert!(out.contains("applied"), "{out}");
        assert_changed(&club, &format!("killed after `{marker}`, applied again"));

        club.write_manifest(&base);
        ok(&club.run(&["apply"]));
        assert_base(&club, &format!("back from `{marker}`"));
    }
    // Killed once nginx runs the new configuration, then the manifest is reverted: the rollback
    // alone must bring nginx back to the files it restored.
    club.write_manifest(&change);
    apply_killed_after(&club, "==> retiring Sess `club-late`");
    club.write_manifest(&base);
    let out = ok(&club.run(&["apply"]));
    assert!(out.contains("nothing to change"), "{out}");
    assert_base(&club, "killed after nginx switched, manifest reverted");
}

#[test]
fn concurrent_applies_a_rejected_nginx_config_and_twice_up_and_down() {
    let club = live_club();
    let base = club.text.clone();

    // `up` again: the URLs, and nothing changed.
    let [vassal] = vassals(&club.dir, "club-a").try_into().unwrap();
    let before = std::fs::metadata(&vassal).unwrap().modified().unwrap();
    let out = ok(&club.run(&["up"]));
    assert!(
        out.contains(&format!("http://jazz.localhost:{}/late/", club.port)),
        "{out}"
    );
    assert_eq!(
        std::fs::metadata(&vassal).unwrap().modified().unwrap(),
        before
    );
    assert_base(&club, "up twice");

    // Two applies at once: one waits for the other's lock, then finds nothing to change.
    club.write_manifest(&changed(&base));
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_backstage"))
            .arg("apply")
            .current_dir(&club.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs: Vec<String> = [a, b]
        .into_iter()
        .map(|c| ok(&c.wait_with_output().unwrap()))
        .collect();
    let mut outs: Vec<&str> = outs.iter().map(|o| o.split(' ').next().unwrap()).collect();
    outs.sort_unstable();
    assert_eq!(
        outs,
        ["applied", "nothing"],
        "one applies, one has nothing left"
    );
    assert_changed(&club, "two applies at once");
    club.write_manifest(&base);
    ok(&club.run(&["apply"]));

    // A certificate nginx cannot load: apply fails with nginx's words, nothing live changes.
    let live: Vec<(std::path::PathBuf, Vec<u8>)> = walk(&club.dir.join(".backstage"))
        .into_iter()
        .filter(|p| {
            p.is_file()
                && (p.to_string_lossy().contains("/vassals/")
                    || p.extension().is_some_and(|e| e == "conf"))
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    assert!(live.len() > 3, "{live:?}");
    let tls = base.replace(
        "[venues.jazz]\n",
        "[venues.jazz]\ntls = { cert = \"/nonexistent/jazz.pem\", key = \"/nonexistent/jazz.key\" }\n",
    );
    club.write_manifest(&tls);
    let out = club.run(&["apply"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/nonexistent/jazz.pem"),
        "nginx's message: {err}"
    );
    assert!(
        err.contains("nginx rejects the configuration of `venues.jazz`"),
        "the Venue is named: {err}"
    );
    for (path, bytes) in &live {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "`{}` changed",
            path.display()
        );
    }
    club.write_manifest(&base);
    assert_base(&club, "after the rejected nginx config");

    // down twice: the second finds nothing to stop.
    ok(&club.run(&["down"]));
    assert!(get(club.port, "jazz.localhost", "/").is_err());
    let out = ok(&club.run(&["down"]));
    assert!(out.contains("is down"), "{out}");

    // up after down: the vassals `down` left are taken out and put back by apply, a batch at a
    // time (the Emperor would otherwise start them all at once), the same files as before.
    let placed: Vec<(std::path::PathBuf, Vec<u8>)> = walk(&club.dir.join(".backstage/vassals"))
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    // The three Sess', the example's cron job's and its worker's.
    let kind = |p: &std::path::Path, k: &str| p.to_string_lossy().contains(k);
    assert_eq!(placed.len(), 5, "{placed:?}");
    for k in [".cron.", ".worker."] {
        assert_eq!(
            placed.iter().filter(|(p, _)| kind(p, k)).count(),
            1,
            "{k}: {placed:?}"
        );
    }
    let out = club.run(&["up"]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    // The Sess' (which would all start at once); the cron job's and the worker's stay.
    assert!(err.contains("took 3 placed vassals out"), "{err}");
    for (path, bytes) in &placed {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }
    assert_base(&club, "up after down");
    ok(&club.run(&["down"]));
}

/// The example with `processes = 3` on one Sess (a new copy of it), whose master takes two
/// seconds before loading the app, so a one-second health check always finds it starting.
fn more_processes(base: &str, sess: &str) -> String {
    let header = format!("[sess.{sess}]\n");
    let start = base.find(&header).unwrap() + header.len();
    let end = start + base[start..].find("\n\n").unwrap();
    let mut table = String::new();
    for line in base[start..end]
        .lines()
        .filter(|l| !l.starts_with("processes"))
    {
        table.push_str(line);
        table.push('\n');
    }
    format!(
        "{}{table}processes = 3\nextra = {{ \"exec-pre-app\" = \"sleep 2\" }}{}",
        &base[..start],
        &base[end..]
    )
}

/// The masters of a Sess' copies: the Emperor's children whose command line names the Sess
/// (`backstage.jazzclub.<sess> uWSGI master`, or `uwsgi --ini backstage.jazzclub.<sess>.<id>.ini`
/// before the process name applies).
fn masters(club: &Club, sess: &str) -> Vec<u32> {
    let emperor = std::fs::read_to_string(club.dir.join(".backstage/run/emperor.pid")).unwrap();
    let emperor: u32 = emperor.trim().parse().unwrap();
    let name = format!("backstage.jazzclub.{sess}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            let mut fields = after.split_whitespace();
            let state = fields.next().unwrap_or("Z");
            let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            ppid == emperor
                && state != "Z"
                && (cmdline.starts_with(&format!("{name} "))
                    || cmdline.contains(&format!("{name}.")))
        })
        .collect()
}

/// The last 30 lines of a log, for a failure's message.
fn log_end(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[test]
fn an_apply_right_after_one_that_failed_its_health_check_succeeds() {
    let club = live_club();
    let base = club.text.clone();
    club.write_manifest(&more_processes(&base, "club-a"));
    let out = club.run(&["apply", "--health-timeout", "1"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Sess `club-a` did not become healthy"),
        "{err}"
    );
    // At once: the rolled-back copy's master may still be starting. It must be waited for,
    // and its socket and pid file left alone, not taken for leftovers.
    let out = club.run(&["apply"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the apply after: {err}\nthe Emperor's log ends:\n{}",
        log_end(&club.dir.join(".backstage/log/emperor.log"))
    );
    assert!(!err.contains("fix the Act"), "{err}");
    assert_eq!(vassals(&club.dir, "club-a").len(), 1, "one copy placed");
    assert_consistent(&club, "after a failed health check, applied again");
    assert_eq!(masters(&club, "club-a").len(), 1, "one master of club-a");
}

#[test]
fn a_reapply_after_a_kill_past_the_commit_waits_for_the_previous_copy() {
    let club = live_club();
    let base = club.text.clone();
    club.write_manifest(&more_processes(&base, "club-b"));
    // Killed once the journal is committed: the previous copy's vassal is gone, its master not yet.
    apply_killed_after(
        &club,
        "==> waiting for the previous copy of Sess `club-b` to stop",
    );
    let out = club.run(&["apply"]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Reported done only once the previous copy's master is gone.
    assert_eq!(
        masters(&club, "club-b").len(),
        1,
        "one master of club-b: {err}"
    );
    assert_consistent(&club, "killed past the commit, applied again");
}

#[test]
fn an_apply_removes_what_dead_copies_left_and_nothing_live() {
    let club = live_club();
    let run = club.dir.join(".backstage/run");
    // What a copy stopped without `vacuum` leaves: its socket, stats socket, FIFO, pid file.
    let stem = "backstage.jazzclub.club-a.deadbeef";
    for suffix in [".sock", ".stats.sock"] {
        let path = run.join(format!("{stem}{suffix}"));
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
    }
    nix::unistd::mkfifo(
        &run.join(format!("{stem}.fifo")),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    std::fs::write(run.join(format!("{stem}.pid")), "999999\n").unwrap();
    let live_before: Vec<_> = walk(&run)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("deadbeef"))
        .collect();

    ok(&club.run(&["apply"]));
    let left: Vec<_> = walk(&run)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("deadbeef"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    // Every live copy's file and every socket link is where it was, and the Gig answers.
    for p in &live_before {
        assert!(
            std::fs::symlink_metadata(p).is_ok(),
            "`{}` was removed",
            p.display()
        );
    }
    assert_eq!(whoami(&club, "/whoami").0, 200);
}
