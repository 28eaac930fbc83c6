//! `backstage logs` against the example Production running for real (uWSGI Emperor, nginx,
//! Django): a request's lines appear from the Sess and from nginx; `--follow` shows a line
//! written after it started, and goes on after an apply replaced the Sess blue/green; an
//! unknown name is refused with the closest one.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod support;

use support::{Club, get, ok, vassals};

/// Waits until a line containing `needle` arrives, up to 30 s.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            let found = line.contains(needle);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!(
        "no line with `{needle}` from `logs --follow`; saw:\n{}",
        seen.join("\n")
    );
}

#[test]
fn logs_of_a_running_production() {
    let club = Club::new();
    ok(&club.run(&["up"]));
    let (status, _) = get(club.port, "jazz.localhost", "/whoami?first-request").unwrap();
    assert_eq!(status, 200);

    // The Gig's view: its Sess' uWSGI line and nginx's access line (with the Venue's Host).
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = ok(&club.run(&["logs", "jazz-home", "--lines", "200"]));
        let seen = out
            .lines()
            .filter(|l| l.contains("/whoami?first-request"))
            .count();
        if seen >= 2 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let request_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("/whoami?first-request"))
        .collect();
    assert!(
        request_lines
            .iter()
            .any(|l| l.trim_start().starts_with("nginx:access |")),
        "{out}"
    );
    assert!(
        request_lines
            .iter()
            .any(|l| l.trim_start().starts_with("club-a |")
                || l.trim_start().starts_with("club-b |")),
        "{out}"
    );
    // A Sess the request did not reach shows neither its line nor nginx's.
    let late = ok(&club.run(&["logs", "club-late", "--lines", "200"]));
    assert!(
        !late.contains("first-request") && !late.contains("nginx:"),
        "{late}"
    );

    // --json: one object per line, with a parsed time on the request lines.
    let json = ok(&club.run(&["logs", "nginx", "--json", "--lines", "50"]));
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let hit = objects
        .iter()
        .find(|o| {
            o["line"]
                .as_str()
                .is_some_and(|l| l.contains("first-request"))
        })
        .unwrap_or_else(|| panic!("{json}"));
    assert_eq!(hit["source"], "nginx:access");
    assert!(
        hit["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{hit}"
    );

    // --follow sees a line written after it started, and goes on after the Sess is replaced.
    let mut follow = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(["logs", "club-a", "club-b", "--follow", "--lines", "0"])
        .current_dir(&club.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    std::thread::sleep(Duration::from_millis(500));
    get(club.port, "jazz.localhost", "/whoami?while-following").unwrap();
    wait_for(&lines, "while-following", &mut seen);

    let before = vassals(&club.dir, "club-a");
    club.write_manifest(&club.text.replace("processes = 2", "processes = 3"));
    ok(&club.run(&["apply"]));
    assert_ne!(vassals(&club.dir, "club-a"), before, "club-a was replaced");
    get(club.port, "jazz.localhost", "/whoami?after-replacement").unwrap();
    wait_for(&lines, "after-replacement", &mut seen);

    follow.kill().unwrap();
    follow.wait().unwrap();
    reader.join().unwrap();
}

#[test]
fn an_unknown_name_is_refused_with_the_closest() {
    let club = Club::new();
    let out = club.run(&["logs", "jazz-hom"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean `jazz-home`?"), "{err}");
}
