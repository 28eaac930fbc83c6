//! Vassal placement without an Emperor: what lands in the vassal dir, and what never does.

use std::time::UNIX_EPOCH;

use backstage_core::files::FileError;
use backstage_core::{Manifest, Production};
use backstage_uwsgi::Error;
use backstage_uwsgi::stage_manager::{Placement, StageManager};

fn production(dir: &std::path::Path) -> Production {
    production_with(dir, 2)
}

fn production_with(dir: &std::path::Path, processes: u16) -> Production {
    let text = r#"
[production]
name = "jazzclub"

[acts.club]
root = "club"
wsgi = "club.wsgi:application"

[stages.local]
virtualenv = "venv"

[sess.club-a]
act = "club"
stage = "local"
processes = PROCESSES
"#
    .replace("PROCESSES", &processes.to_string());
    let path = dir.join("backstage.toml");
    std::fs::write(&path, &text).unwrap();
    Manifest::read(&path).unwrap().load().unwrap()
}

fn mtime_secs(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn start_reload_stop_move_only_our_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path());
    let sm = StageManager::new(&p);
    let copy = sm.wanted("club-a").unwrap();
    let file = copy.vassal.as_path();
    let id = copy
        .id
        .clone()
        .expect("a Sess on the default socket runs as a copy with an id");
    assert_eq!(
        file.file_name().unwrap().to_string_lossy(),
        format!("backstage.jazzclub.club-a.{id}.ini")
    );

    assert_eq!(sm.start("club-a").unwrap(), Placement::Created);
    // The Sess' socket path is a link to the copy's own socket.
    let link = p
        .layout
        .run_dir
        .as_path()
        .join("backstage.jazzclub.club-a.sock");
    let backstage_core::SessSocket::Unix(own) = &copy.socket else {
        panic!("a unix socket")
    };
    assert_eq!(
        std::fs::read_link(&link).unwrap_or_else(|e| panic!("{}: {e}", link.display())),
        own.as_path()
    );
    let first = mtime_secs(file);
    // Reloads in quick succession each move the mtime a whole second further.
    assert_eq!(sm.reload("club-a").unwrap(), Placement::Reloaded);
    let second = mtime_secs(file);
    assert!(second > first);
    assert_eq!(sm.reload("club-a").unwrap(), Placement::Reloaded);
    assert!(mtime_secs(file) > second);
    // An unchanged start touches nothing.
    let before = mtime_secs(file);
    assert_eq!(sm.start("club-a").unwrap(), Placement::Unchanged);
    assert_eq!(mtime_secs(file), before);
    // A changed manifest means another copy: start leaves the running one alone (apply
    // replaces it blue/green), and the link still points at it.
    let changed = production_with(dir.path(), 3);
    let changed_sm = StageManager::new(&changed);
    let new_copy = changed_sm.wanted("club-a").unwrap();
    assert_ne!(new_copy.id, copy.id);
    assert_eq!(changed_sm.start("club-a").unwrap(), Placement::Outdated);
    assert!(!new_copy.vassal.as_path().exists());
    assert_eq!(mtime_secs(file), before);
    assert_eq!(changed_sm.current("club-a").unwrap(), copy);
    assert_eq!(std::fs::read_link(&link).unwrap(), own.as_path());
    // Only the vassal itself is in the directory: no temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [file.file_name().unwrap()]);
    // Stop removes every copy, whichever settings it runs with.
    assert!(changed_sm.stop("club-a").unwrap());
    assert!(!file.exists());
    assert!(!changed_sm.stop("club-a").unwrap());

    // A file someone else put there is never replaced, touched or removed.
    std::fs::write(file, "[uwsgi]\nsocket = :9000\n").unwrap();
    let foreign_mtime = mtime_secs(file);
    for result in [
        sm.start("club-a").map(|_| ()),
        sm.reload("club-a").map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(Error::File(FileError::NotOurs { .. }))),
            "{result:?}"
        );
    }
    assert!(
        !sm.stop("club-a").unwrap(),
        "a foreign vassal is not a copy to stop"
    );
    assert_eq!(
        std::fs::read_to_string(file).unwrap(),
        "[uwsgi]\nsocket = :9000\n"
    );
    assert_eq!(mtime_secs(file), foreign_mtime);
}

#[test]
fn unknown_sess_names_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path());
    let err = StageManager::new(&p).start("club-b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "no Sess `club-b` in production `jazzclub`; did you mean `club-a`?"
    );
}
