//! A closed pipe on stdout or stderr never panics the command line, nor cuts an operation short
//! (`backstage plan --json | head -c 5`, `backstage apply 2>&1 | head -1`).

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

mod support;

use support::{copy_tree, free_port, workspace};

/// A pipe whose reading end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Stdio::from(writer)
}

/// Runs `backstage args` in `dir` with stdout a closed pipe, and stderr a closed pipe too when
/// `close_stderr`; returns the exit status and what stderr said otherwise.
fn run_closed(dir: &Path, args: &[&str], close_stderr: bool) -> (ExitStatus, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backstage"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(closed_pipe());
    cmd.stderr(if close_stderr {
        closed_pipe()
    } else {
        Stdio::piped()
    });
    let mut child = cmd.spawn().unwrap();
    // The Command holds the pipes' writing ends: drop it so only the child has them.
    drop(cmd);
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).unwrap();
    }
    (child.wait().unwrap(), stderr)
}

fn assert_quiet(status: ExitStatus, stderr: &str, expected: i32, what: &str) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{what}: {stderr}"
    );
    // `code()` is None when a signal (SIGPIPE) killed it; 101 is a panic.
    assert_eq!(status.code(), Some(expected), "{what}: {status:?} {stderr}");
}

#[test]
fn check_and_plan_exit_quietly_on_a_closed_stdout() {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&workspace().join("examples/jazzclub"), dir.path());
    for args in [
        &["check", "--json"][..],
        &["check"],
        &["plan", "--json"],
        &["plan"],
        &["render", "--out", "rendered"],
    ] {
        let (status, stderr) = run_closed(dir.path(), args, false);
        assert_quiet(status, &stderr, 0, &format!("{args:?}"));
        let (status, _) = run_closed(dir.path(), args, true);
        assert_quiet(status, "", 0, &format!("{args:?}, stderr closed too"));
    }
    // `render` carried on past its first unprintable line: it wrote every file a render with
    // somewhere to print writes.
    let out = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(["render", "--out", "printed"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let names = |d: &str| -> Vec<_> {
        let root = dir.path().join(d);
        let mut names: Vec<_> = support::walk(&root)
            .into_iter()
            .map(|p| p.strip_prefix(&root).unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let rendered = names("rendered");
    assert!(rendered.len() >= 4, "{rendered:?}");
    assert_eq!(rendered, names("printed"));
}

#[test]
fn problems_reported_to_a_closed_stderr_still_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("backstage.toml"),
        "[production]\nname = \"Jazz\"\nharikiri = 1\n",
    )
    .unwrap();
    for args in [&["check"][..], &["check", "--json"], &["plan", "--json"]] {
        let (status, _) = run_closed(dir.path(), args, true);
        assert_quiet(status, "", 1, &format!("{args:?}"));
    }
}

#[test]
fn an_apply_with_nowhere_to_print_still_applies() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Only a closed Venue: apply writes nginx files and runs `nginx -t`, no uWSGI needed.
    std::fs::write(
        dir.path().join("backstage.toml"),
        format!(
            "[production]\nname = \"pipes\"\n\n[venues.jazz]\nserver_names = [\"jazz.localhost\"]\nlisten = [\"127.0.0.1:{port}\"]\n"
        ),
    )
    .unwrap();
    let (status, _) = run_closed(dir.path(), &["apply"], true);
    assert_quiet(status, "", 0, "apply");
    // Everything was applied: nothing is left to change, and no journal is pending.
    let out = Command::new(env!("CARGO_BIN_EXE_backstage"))
        .args(["plan", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r#"{"changes":[]}"#,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
