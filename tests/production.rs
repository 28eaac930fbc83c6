//! The example Production, end to end through the real things: `backstage up` builds the Stage,
//! starts a real uWSGI Emperor and a real nginx on a free loopback port, and serves the real
//! Django project; then status, idempotent apply, an unhealthy Sess, a re-booking under load,
//! and `down` leaving nothing behind.

use std::path::PathBuf;
use std::process::Command;

mod support;

use support::{Club, backstage, get, ok, pid_alive, under_load, vassals, walk};

#[test]
fn the_example_production_lives_and_dies() {
    let club = Club::new();
    let (dir, port, text) = (club.dir.clone(), club.port, club.text.clone());
    let manifest = dir.join("backstage.toml");

    // up: every Gig answers, and the URLs are printed.
    let out = ok(&backstage(&dir, &["up"]));
    assert!(
        out.contains(&format!("http://jazz.localhost:{port}/late/")),
        "{out}"
    );

    let (status, body) = get(port, "jazz.localhost", "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("The Jazz Club"), "{body}");
    let (status, body) = get(port, "jazz.localhost", "/late/whoami").unwrap();
    assert_eq!(status, 200);
    let who: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (who["sess"].as_str(), who["script_name"].as_str()),
        (Some("club-late"), Some("/late"))
    );
    let (status, body) = get(port, "jazz.localhost", "/static/music/style.css").unwrap();
    assert_eq!(status, 200);
    assert!(
        body.contains("font-family"),
        "static file served by nginx: {body}"
    );
    assert_eq!(
        get(port, "blues.localhost", "/").unwrap().0,
        503,
        "the closed Venue"
    );
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let (_, body) = get(port, "jazz.localhost", "/whoami").unwrap();
        let who: serde_json::Value = serde_json::from_str(&body).unwrap();
        seen.insert(who["sess"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["club-a", "club-b"],
        "both Sess of the load-balanced Gig"
    );

    // status --json: every Sess running, every Gig 200.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&backstage(&dir, &["status", "--json"]))).unwrap();
    let sess = status["sess"].as_array().unwrap();
    assert_eq!(sess.len(), 3);
    for s in sess {
        assert_eq!(s["state"], "running", "{s}");
        assert!(
            s["workers"].as_u64().unwrap() >= 1 && s["rss_bytes"].as_u64().unwrap() > 0,
            "{s}"
        );
    }
    for g in status["gigs"].as_array().unwrap() {
        assert_eq!(g["http_status"], 200, "{g}");
    }
    let pids: Vec<u64> = Command::new("pgrep")
        .args(["-f", &dir.to_string_lossy()])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect()
        })
        .unwrap();
    assert!(
        !pids.is_empty(),
        "the Emperor and nginx run with paths under the Production's dir"
    );

    // A second apply changes nothing: empty plan, no file touched.
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&backstage(&dir, &["plan", "--json"]))).unwrap();
    assert_eq!(plan, serde_json::json!({"changes": []}));
    let [vassal] = vassals(&dir, "club-a").try_into().unwrap();
    let before = std::fs::metadata(&vassal).unwrap().modified().unwrap();
    let out = ok(&backstage(&dir, &["apply"]));
    assert!(out.contains("nothing to change"), "{out}");
    assert_eq!(
        std::fs::metadata(&vassal).unwrap().modified().unwrap(),
        before
    );

    // An Act that cannot start: Django's own check fails in its new release, before any Sess
    // of it starts, with the traceback; nothing is switched.
    let broken = format!(
        "{text}\n[acts.broken]\nroot = \"club\"\nwsgi = \"club.wsgi:application\"\nsettings = \"club.nosuchsettings\"\n\n\
         [sess.broken-a]\nact = \"broken\"\nstage = \"local\"\nprocesses = 1\n\n\
         [gigs.jazz-broken]\nvenue = \"jazz\"\nsess = [\"broken-a\"]\npath = \"/broken\"\n"
    );
    std::fs::write(&manifest, &broken).unwrap();
    let out = backstage(&dir, &["apply"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("of Act `broken` cannot go live: `manage.py check` failed"),
        "{err}"
    );
    assert!(
        err.contains("No module named 'club.nosuchsettings'"),
        "the traceback names the cause: {err}"
    );
    assert!(vassals(&dir, "broken-a").is_empty(), "rolled back");
    assert_eq!(
        get(port, "jazz.localhost", "/").unwrap().0,
        200,
        "the old Gig keeps serving"
    );
    assert_eq!(
        get(port, "jazz.localhost", "/broken/").unwrap().0,
        404,
        "nginx was not switched"
    );

    // Change both Sess of the home Gig while clients loop: each starts a new copy beside the
    // running one, which keeps serving until the new one answers; no request fails.
    std::fs::write(&manifest, &text).unwrap();
    let old_pids = whoami_pids(port, 20);
    let old_copies = [vassals(&dir, "club-a"), vassals(&dir, "club-b")];
    let changed = text.replace("processes = 2", "processes = 3");
    std::fs::write(&manifest, &changed).unwrap();
    let plan = ok(&backstage(&dir, &["plan"]));
    assert!(
        plan.contains("a new copy starts beside the running one"),
        "{plan}"
    );
    let (served, failed, _) = under_load(port, || ok(&backstage(&dir, &["apply"])));
    assert!(served > 0);
    assert_eq!(failed, 0, "requests failed while the Sess were replaced");
    let new_pids = whoami_pids(port, 20);
    assert!(
        new_pids.is_disjoint(&old_pids),
        "the new copies answer: {new_pids:?} vs {old_pids:?}"
    );
    for (sess, old) in ["club-a", "club-b"].into_iter().zip(old_copies) {
        let now = vassals(&dir, sess);
        assert_eq!(now.len(), 1, "{sess}: one copy left: {now:?}");
        assert_ne!(now, old, "{sess}: the previous copy is retired");
        let vassal = std::fs::read_to_string(&now[0]).unwrap();
        assert!(vassal.contains("\nprocesses = 3\n"), "{vassal}");
    }
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&backstage(&dir, &["plan", "--json"]))).unwrap();
    assert_eq!(plan, serde_json::json!({"changes": []}));

    // A broken change to a Sess that serves: its new copy never answers, the running copy is
    // never touched, and not one request fails.
    let broken_change = changed.replacen(
        "[sess.club-a]\nact = \"club\"",
        "[acts.broken]\nroot = \"club\"\nwsgi = \"club.nosuchwsgi:application\"\n\
         \n[sess.club-a]\nact = \"broken\"",
        1,
    );
    assert_ne!(broken_change, changed);
    std::fs::write(&manifest, &broken_change).unwrap();
    let before = vassals(&dir, "club-a");
    let workers_before = procs("backstage.jazzclub.club-");
    let (served, failed, out) = under_load(port, || backstage(&dir, &["apply"]));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Sess `club-a` did not become healthy"),
        "{err}"
    );
    assert!(
        err.contains("nosuchwsgi"),
        "the log tail names the cause: {err}"
    );
    assert!(served > 0);
    assert_eq!(failed, 0, "requests failed during a broken change");
    assert_eq!(vassals(&dir, "club-a"), before, "the running copy stays");
    let after = whoami_pids(port, 20);
    assert!(
        after.is_subset(&workers_before),
        "the same workers serve after the failed change: {after:?} vs {workers_before:?}"
    );

    // Re-book the home Gig to the late Sess while a client loops: no request fails.
    let start = text.find("[sess.club-a]").unwrap();
    let end = text.find("[sess.club-late]").unwrap();
    let rebooked = format!("{}{}", &text[..start], &text[end..])
        .replace("sess = [\"club-a\", \"club-b\"]", "sess = [\"club-late\"]");
    std::fs::write(&manifest, rebooked).unwrap();
    let (served, failed, _) = under_load(port, || ok(&backstage(&dir, &["apply"])));
    assert!(served > 0);
    assert_eq!(failed, 0, "requests failed during the re-booking");
    let (_, body) = get(port, "jazz.localhost", "/whoami").unwrap();
    assert!(body.contains("club-late"), "{body}");
    assert!(
        vassals(&dir, "club-a").is_empty(),
        "retired after the switch"
    );
    assert!(
        std::fs::symlink_metadata(dir.join(".backstage/run/backstage.jazzclub.club-a.sock"))
            .is_err(),
        "a retired Sess' socket link is gone"
    );

    // down: nothing left running, no socket or pid file left behind.
    let out = ok(&backstage(&dir, &["down"]));
    assert!(out.contains("is down"), "{out}");
    for pid in pids {
        assert!(!pid_alive(pid), "process {pid} still runs after down");
    }
    let leftovers: Vec<PathBuf> = walk(&dir.join(".backstage/run"))
        .into_iter()
        .filter(|p| {
            use std::os::unix::fs::FileTypeExt;
            let t = std::fs::symlink_metadata(p).unwrap().file_type();
            t.is_socket()
                || t.is_fifo()
                || t.is_symlink()
                || p.extension().is_some_and(|e| e == "pid")
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    assert!(
        get(port, "jazz.localhost", "/").is_err(),
        "nginx still answers"
    );
    ok(&backstage(&dir, &["down"]));
}

/// The worker pids `/whoami` of the home Gig answers from, over `n` requests.
fn whoami_pids(port: u16, n: usize) -> std::collections::BTreeSet<u64> {
    (0..n)
        .map(|_| {
            let (status, body) = get(port, "jazz.localhost", "/whoami").unwrap();
            assert_eq!(status, 200, "{body}");
            let who: serde_json::Value = serde_json::from_str(&body).unwrap();
            who["pid"].as_u64().unwrap()
        })
        .collect()
}

/// The pids of processes whose command line contains `pattern`.
fn procs(pattern: &str) -> std::collections::BTreeSet<u64> {
    let out = Command::new("pgrep")
        .args(["-f", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}
