//! What a Sess' state believes, against fake masters and stats sockets written here: a stats
//! document is believed only as far as the processes behind it go, and a Sess being replaced
//! is what its serving copy is.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use backstage_core::{Manifest, Production};
use backstage_uwsgi::stage_manager::{SessState, StageManager};

fn production(dir: &Path, processes: u16) -> Production {
    let text = format!(
        "[production]\nname = \"jazzclub\"\n\n[acts.club]\nroot = \"club\"\n\
         wsgi = \"club.wsgi:application\"\n\n[stages.local]\nvirtualenv = \"venv\"\n\n\
         [sess.club-a]\nact = \"club\"\nstage = \"local\"\nprocesses = {processes}\n"
    );
    let path = dir.join("backstage.toml");
    std::fs::write(&path, text).unwrap();
    Manifest::read(&path).unwrap().load().unwrap()
}

/// A stand-in for a copy's master: a process started as `uwsgi --ini <vassal>` with two
/// children (its "workers"); returns it and the children's pids.
struct FakeMaster {
    child: Child,
    workers: Vec<u32>,
}

impl FakeMaster {
    fn start(vassal: &Path) -> FakeMaster {
        let name = vassal.file_name().unwrap().to_string_lossy().into_owned();
        let mut child = Command::new("/bin/sh")
            .arg0("uwsgi")
            .args([
                "-c",
                "sleep 60 & echo $!; sleep 60 & echo $!; wait",
                "--ini",
                &name,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let workers = (0..2)
            .map(|_| lines.next().unwrap().unwrap().trim().parse().unwrap())
            .collect();
        FakeMaster { child, workers }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = Command::new("kill").arg(w.to_string()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stats socket serving `doc` to every connection.
fn serve_stats(path: &Path, doc: Arc<Vec<u8>>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listener = UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let doc = doc.clone();
            std::thread::spawn(move || {
                let _ = conn.write_all(&doc);
            });
        }
    });
}

/// A stats document: the given workers, then 700,000 more with pid 1 and 1 MB of RSS each
/// (700 GB if believed).
fn lying_stats(workers: &[u32]) -> Arc<Vec<u8>> {
    let mut doc = String::from("{\"version\":\"2.0.31\",\"pid\":1,\"workers\":[");
    for (i, pid) in workers.iter().enumerate() {
        write!(
            doc,
            "{{\"id\":{},\"pid\":{pid},\"requests\":3,\"status\":\"idle\"}},",
            i + 1
        )
        .unwrap();
    }
    let liar = "{\"pid\":1,\"rss\":999999}";
    for i in 0..700_000 {
        if i > 0 {
            doc.push(',');
        }
        doc.push_str(liar);
    }
    doc.push_str("]}");
    assert!(doc.len() < backstage_uwsgi::stats::MAX_STATS_LEN);
    Arc::new(doc.into_bytes())
}

/// A state in a few words (a Debug of a lying one would list 700,000 pids).
fn summary(state: &SessState) -> String {
    match state {
        SessState::Running { workers, .. } => format!("running with {workers} workers"),
        other => other.name().to_owned(),
    }
}

#[test]
fn a_stats_document_is_believed_only_as_far_as_the_processes_go() {
    for processes in [2u16, 1] {
        let dir = tempfile::tempdir().unwrap();
        let p = production(dir.path(), processes);
        let manager = StageManager::new(&p);
        manager.start("club-a").unwrap();
        let copy = manager.wanted("club-a").unwrap();
        let master = FakeMaster::start(copy.vassal.as_path());
        std::fs::create_dir_all(copy.pid_file.as_path().parent().unwrap()).unwrap();
        std::fs::write(copy.pid_file.as_path(), format!("{}\n", master.pid())).unwrap();
        serve_stats(copy.stats.as_path(), lying_stats(&master.workers));

        match manager.state("club-a", true).unwrap() {
            SessState::Running {
                workers,
                requests,
                rss_bytes,
                pids,
            } => {
                assert_eq!(workers, u32::from(processes), "processes = {processes}");
                assert_eq!(requests, 3 * u64::from(processes));
                // Two `sleep`s: a few MiB, not the liars' 7.7 TB.
                assert!(rss_bytes < 1 << 30, "{rss_bytes}");
                assert!(pids.iter().all(|p| master.workers.contains(p)), "{pids:?}");
            }
            other => panic!("processes = {processes}: {}", summary(&other)),
        }
    }
}

#[test]
fn workers_that_are_not_the_masters_children_do_not_count() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path(), 2);
    let manager = StageManager::new(&p);
    manager.start("club-a").unwrap();
    let copy = manager.wanted("club-a").unwrap();
    let master = FakeMaster::start(copy.vassal.as_path());
    // Only pid 1, 700,000 times, and this test's own pid: none is the master's child.
    let mut liars = lying_stats(&[std::process::id()]);
    serve_stats(copy.stats.as_path(), std::mem::take(&mut liars));
    let state = manager.state("club-a", true).unwrap();
    assert_eq!(state.name(), "failed", "{}", summary(&state));
    drop(master);

    // No master at all: nothing a stats socket says is believed.
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path(), 2);
    let manager = StageManager::new(&p);
    manager.start("club-a").unwrap();
    let copy = manager.wanted("club-a").unwrap();
    serve_stats(copy.stats.as_path(), lying_stats(&[]));
    assert_eq!(manager.state("club-a", true).unwrap().name(), "failed");
}

#[test]
fn a_sess_being_replaced_is_what_its_serving_copy_is() {
    let dir = tempfile::tempdir().unwrap();
    let p = production(dir.path(), 2);
    let manager = StageManager::new(&p);
    manager.start("club-a").unwrap();
    let wanted = manager.wanted("club-a").unwrap();
    // The copy serving until now: another id, its vassal placed, its socket linked.
    let previous = p.instance(&wanted.sess, Some(&"0badc0de".parse().unwrap()));
    let content = std::fs::read(wanted.vassal.as_path()).unwrap();
    backstage_core::files::write_atomic(previous.vassal.as_path(), &content, &p.name).unwrap();
    manager.link(&previous).unwrap();
    let master = FakeMaster::start(previous.vassal.as_path());
    std::fs::write(previous.pid_file.as_path(), format!("{}\n", master.pid())).unwrap();
    serve_stats(previous.stats.as_path(), lying_stats(&master.workers));
    // The wanted copy is still starting: it does not answer yet.
    assert_eq!(manager.copy_state(&wanted, true).name(), "failed");
    let state = manager.state("club-a", true).unwrap();
    assert!(
        matches!(state, SessState::Running { workers: 2, .. }),
        "{}",
        summary(&state)
    );

    // Once the link moves to the wanted copy, the Sess is what that one is.
    manager.link(&wanted).unwrap();
    assert_eq!(manager.state("club-a", true).unwrap().name(), "failed");
}
