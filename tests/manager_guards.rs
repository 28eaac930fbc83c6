//! The Production Manager's guards that need no uWSGI: `up` and `down` take the apply lock (and
//! say whom they wait for), and `apply` refuses a state dir that became a symlink out of the
//! manifest's directory after `check`.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use backstage::manager::{self, ApplyOptions, Event, ManagerError};
use backstage_core::journal::{ApplyLock, JournalError};
use backstage_core::{Manifest, Production};

/// A user-mode Production with one closed Venue, in `dir`.
fn production(dir: &Path) -> Production {
    let path = dir.join("backstage.toml");
    std::fs::write(
        &path,
        "[production]\nname = \"guards\"\n\n[venues.jazz]\nserver_names = [\"jazz.localhost\"]\nlisten = [\"127.0.0.1:1\"]\n",
    )
    .unwrap();
    Manifest::read(&path).unwrap().load().unwrap()
}

fn steps(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Step(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn waiting_for_me() -> String {
    format!(
        "waiting for another apply (pid {}) to finish",
        std::process::id()
    )
}

#[test]
fn down_waits_for_the_apply_lock_and_says_whom_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path());
    let held = ApplyLock::acquire(p.layout.state_dir.as_path(), &p.name, Duration::ZERO).unwrap();
    let (tx, rx) = mpsc::channel();
    let down = std::thread::spawn(move || {
        let mut events = Vec::new();
        let result = manager::down(&p, &mut |e| events.push(e));
        tx.send((result.map_err(|e| e.to_string()), events))
            .unwrap();
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(800)).is_err(),
        "down finished while an apply held the lock"
    );
    drop(held);
    let (result, events) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    down.join().unwrap();
    result.unwrap();
    assert_eq!(
        steps(&events).first(),
        Some(&waiting_for_me()),
        "{events:?}"
    );
}

#[test]
fn up_takes_the_lock_before_it_does_anything() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path());
    let _held = ApplyLock::acquire(p.layout.state_dir.as_path(), &p.name, Duration::ZERO).unwrap();
    let options = ApplyOptions {
        lock_wait: Duration::from_millis(300),
        ..ApplyOptions::default()
    };
    let mut events = Vec::new();
    let err = manager::up(&p, &options, &mut |e| events.push(e)).unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Journal(JournalError::Locked { holder: Some(pid), .. }) if *pid == std::process::id()
        ),
        "{err:?}"
    );
    assert_eq!(steps(&events), [waiting_for_me()]);
    // Nothing was created before the lock was had.
    assert!(!p.layout.run_dir.as_path().exists());
    assert!(!p.layout.log_dir.as_path().exists());
    assert!(!p.layout.nginx_dir.as_path().exists());
}

#[test]
fn apply_refuses_a_state_dir_linked_outside_after_check() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let p = production(dir.path());
    std::os::unix::fs::symlink(outside.path(), dir.path().join(".backstage")).unwrap();
    let err = manager::apply(&p, &ApplyOptions::default(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            &err,
            ManagerError::Journal(JournalError::Escapes {
                key: "state_dir",
                ..
            })
        ),
        "{err:?}"
    );
    // Not even the lock was created in the link's target.
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "apply wrote outside the manifest's directory"
    );
    // `down` refuses it the same way.
    assert!(matches!(
        manager::down(&p, &mut |_| {}),
        Err(ManagerError::Journal(JournalError::Escapes { .. }))
    ));
}

#[test]
fn apply_removes_temp_files_a_killed_write_left() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path());
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let vassals = p.layout.vassal_dir.as_path();
    std::fs::create_dir_all(vassals).unwrap();
    let leftover = vassals.join(format!(".backstage.guards.club-a.ini.{dead}.tmp"));
    let foreign = vassals.join(format!(".backstage.other.club-a.ini.{dead}.tmp"));
    std::fs::write(&leftover, "half a vassal").unwrap();
    std::fs::write(&foreign, "not ours").unwrap();
    let mut events = Vec::new();
    manager::apply(&p, &ApplyOptions::default(), &mut |e| events.push(e)).unwrap();
    assert!(!leftover.exists());
    assert!(foreign.exists());
    assert!(
        steps(&events).contains(&format!(
            "removed `{}`, left by an interrupted write",
            leftover.display()
        )),
        "{events:?}"
    );
}
