//! The Act Manager end to end: `deploy`, `releases`, `rollback` and `run` against real nginx,
//! a real uWSGI Emperor and the example's Django project (sqlite, migrations, static files),
//! with a client looping through nginx during every switch, counting failed requests.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Club, get, ok, under_load, walk};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn commit_all(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
}

/// The example with its directory a git work tree, everything committed.
fn git_club() -> Club {
    let club = Club::new();
    std::fs::write(club.dir.join(".gitignore"), ".backstage/\n__pycache__/\n").unwrap();
    git(&club.dir, &["init", "-q"]);
    commit_all(&club.dir, "the jazz club");
    club
}

fn write(club: &Club, rel: &str, text: &str) {
    let path = club.dir.join("club").join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn edit(club: &Club, rel: &str, from: &str, to: &str) {
    let path = club.dir.join("club").join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{rel} has no {from:?}");
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn home(club: &Club) -> String {
    let (status, body) = get(club.port, "jazz.localhost", "/").unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn tunes(club: &Club) -> serde_json::Value {
    let (status, body) = get(club.port, "jazz.localhost", "/tunes").unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn post_tune(club: &Club, title: &str) {
    use std::io::{Read, Write};
    let body = format!("title={title}");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", club.port)).unwrap();
    write!(
        s,
        "POST /tunes HTTP/1.0\r\nHost: jazz.localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
}

fn releases(club: &Club) -> Vec<serde_json::Value> {
    let out = ok(&club.run(&["releases", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["releases"].as_array().unwrap().clone()
}

fn live(list: &[serde_json::Value]) -> Vec<String> {
    list.iter()
        .filter(|r| r["live"] == true)
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_settled(club: &Club, when: &str) {
    let plan: serde_json::Value =
        serde_json::from_str(&ok(&club.run(&["plan", "--json"]))).unwrap();
    assert_eq!(plan, serde_json::json!({"changes": []}), "{when}: plan");
    ok(&club.run(&["status"]));
    let leftovers: Vec<_> = walk(&club.dir.join(".backstage/releases"))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(".build.") || n.starts_with(".current."))
        })
        .collect();
    assert!(leftovers.is_empty(), "{when}: {leftovers:?}");
}

#[test]
fn a_deploy_ships_committed_code_and_migrations_with_no_failed_request_and_rolls_back() {
    let club = git_club();
    ok(&club.run(&["up"]));
    let first = releases(&club);
    assert_eq!(first.len(), 1, "up built the first release: {first:?}");
    assert_eq!(first[0]["release_phase"], "ok", "{first:?}");
    assert_eq!(first[0]["live"], true);
    assert_eq!(
        first[0]["revision"].as_str().unwrap().len(),
        40,
        "a git sha"
    );
    assert!(home(&club).contains("So What"), "the seeded tunes");
    post_tune(&club, "Moanin");
    assert_eq!(tunes(&club)["tunes"]["Moanin"], 1);

    // An uncommitted edit never reaches users: the committed HEAD is live already.
    edit(
        &club,
        "music/templates/music/home.html",
        "<h1>",
        "<h1>UNCOMMITTED ",
    );
    let out = ok(&club.run(&["deploy"]));
    assert!(!out.contains("deployed"), "{out}");
    assert!(!home(&club).contains("UNCOMMITTED"));
    assert_eq!(releases(&club).len(), 1);
    git(&club.dir, &["checkout", "--", "."]);

    // A code change, a new static file, a stylesheet renamed, and a migration.
    edit(
        &club,
        "music/templates/music/home.html",
        "<h1>",
        "<h1>Second set: ",
    );
    edit(
        &club,
        "music/templates/music/home.html",
        "music/style.css",
        "music/style2.css",
    );
    std::fs::rename(
        club.dir.join("club/music/static/music/style.css"),
        club.dir.join("club/music/static/music/style2.css"),
    )
    .unwrap();
    write(&club, "music/static/music/new.css", "h2 { color: teal }\n");
    edit(
        &club,
        "music/models.py",
        "    requests = models.PositiveIntegerField(default=0)\n",
        "    requests = models.PositiveIntegerField(default=0)\n    mood = models.CharField(max_length=20, default=\"cool\")\n",
    );
    edit(
        &club,
        "music/views.py",
        "{t.title: t.requests for t in Tune.objects.all()}",
        "{t.title: t.requests for t in Tune.objects.all()}, \"moods\": {t.title: t.mood for t in Tune.objects.all()}",
    );
    write(
        &club,
        "music/migrations/0003_mood.py",
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    \
         dependencies = [(\"music\", \"0002_flyer\")]\n    operations = [\n        \
         migrations.AddField(\"tune\", \"mood\", models.CharField(max_length=20, default=\"cool\")),\n    ]\n",
    );
    commit_all(&club.dir, "second set");
    let (served, failed, out) = under_load(club.port, || club.run(&["deploy"]));
    let err = ok(&out) + &stderr(&out);
    assert!(served > 0);
    assert_eq!(
        failed, 0,
        "requests failed during the deploy ({served} served)"
    );
    let migrate = err.find("Applying music.0003_mood").expect(&err);
    let switch = err.find("switching to the new release").expect(&err);
    assert!(
        migrate < switch,
        "the migration ran before the switch: {err}"
    );
    assert!(home(&club).contains("Second set: "));
    let t = tunes(&club);
    assert_eq!(t["tunes"]["Moanin"], 1, "the database was kept: {t}");
    assert_eq!(t["moods"]["Moanin"], "cool", "the migration ran: {t}");
    let (status, css) = get(club.port, "jazz.localhost", "/static/music/new.css").unwrap();
    assert_eq!((status, css.as_str()), (200, "h2 { color: teal }\n"));
    // The previous release's pages still find their assets.
    let (status, _) = get(club.port, "jazz.localhost", "/static/music/style.css").unwrap();
    assert_eq!(
        status, 200,
        "the previous release's stylesheet is the fallback"
    );
    let (status, _) = get(club.port, "jazz.localhost", "/static/music/nonesuch.css").unwrap();
    assert_eq!(status, 404);

    let list = releases(&club);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(
        live(&list),
        vec![list[1]["id"].as_str().unwrap().to_owned()]
    );
    assert_eq!(list[1]["release_phase"], "ok");
    assert_settled(&club, "after the deploy");
    let status: serde_json::Value =
        serde_json::from_str(&ok(&club.run(&["status", "--json"]))).unwrap();
    assert_eq!(status["acts"][0]["name"], "club", "{status}");
    assert_eq!(status["acts"][0]["release"], list[1]["id"], "{status}");
    assert_eq!(
        status["acts"][0]["revision"], list[1]["revision"],
        "{status}"
    );
    assert!(
        status["acts"][0]["deployed_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert!(
        status["sess"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["release"] == list[1]["id"]),
        "{status}"
    );

    // One-off commands run in the live release, their exit code passed through.
    let out = ok(&club.run(&[
        "run",
        "club",
        "--",
        "python",
        "manage.py",
        "showmigrations",
        "music",
    ]));
    assert!(out.contains("[X] 0003_mood"), "{out}");
    let out = club.run(&["run", "club", "--", "sh", "-c", "pwd; exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let pwd = String::from_utf8_lossy(&out.stdout);
    assert!(
        pwd.trim().ends_with(list[1]["id"].as_str().unwrap()),
        "{pwd}"
    );

    // Rollback: the previous code serves again, no request fails, the schema stays.
    let (served, failed, out) = under_load(club.port, || club.run(&["rollback", "club"]));
    let err = ok(&out) + &stderr(&out);
    assert!(served > 0);
    assert_eq!(
        failed, 0,
        "requests failed during the rollback ({served} served)"
    );
    assert!(
        err.contains("migrations the newer release ran are not reversed"),
        "{err}"
    );
    assert!(!home(&club).contains("Second set"));
    assert_eq!(tunes(&club)["tunes"]["Moanin"], 1);
    let list = releases(&club);
    assert_eq!(
        live(&list),
        vec![list[0]["id"].as_str().unwrap().to_owned()]
    );
    assert_settled(&club, "after the rollback");

    // And forward again to a named release.
    let second = list[1]["id"].as_str().unwrap().to_owned();
    ok(&club.run(&["rollback", "club", "--to", &second]));
    assert!(home(&club).contains("Second set: "));
    let out = club.run(&["rollback", "club", "--to", "20000101T000000Z-nonesuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no release `20000101T000000Z-nonesuch`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn broken_releases_are_refused_before_any_switch_with_no_failed_request() {
    let club = Club::new();
    ok(&club.run(&["up"]));
    let before = home(&club);

    // A SyntaxError: Django's check fails in the new release, in seconds, with the traceback.
    edit(
        &club,
        "music/views.py",
        "def home(request):",
        "def home(request) oops:",
    );
    let started = Instant::now();
    let (served, failed, out) = under_load(club.port, || club.run(&["deploy"]));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("SyntaxError"), "{err}");
    assert!(err.contains("`manage.py check` failed"), "{err}");
    assert!(!err.contains("starting Sess"), "no Sess started: {err}");
    assert_eq!(
        failed, 0,
        "requests failed during a refused deploy ({served} served)"
    );
    assert_eq!(home(&club), before);
    eprintln!("a SyntaxError was refused in {took:?}");
    edit(
        &club,
        "music/views.py",
        "def home(request) oops:",
        "def home(request):",
    );

    // A failing migration: the release phase fails, nothing switches.
    write(
        &club,
        "music/migrations/0003_broken.py",
        "from django.db import migrations\n\n\ndef boom(apps, schema_editor):\n    \
         raise RuntimeError(\"the migration cannot run\")\n\n\n\
         class Migration(migrations.Migration):\n    dependencies = [(\"music\", \"0002_flyer\")]\n    \
         operations = [migrations.RunPython(boom)]\n",
    );
    edit(
        &club,
        "music/templates/music/home.html",
        "<h1>",
        "<h1>Never served: ",
    );
    let (served, failed, out) = under_load(club.port, || club.run(&["deploy"]));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("RuntimeError: the migration cannot run"),
        "{err}"
    );
    assert!(
        err.contains("`python manage.py migrate --noinput` failed"),
        "{err}"
    );
    assert_eq!(
        failed, 0,
        "requests failed during a refused deploy ({served} served)"
    );
    assert_eq!(home(&club), before);
    let list = releases(&club);
    assert_eq!(live(&list).len(), 1);
    let phases: Vec<&str> = list
        .iter()
        .map(|r| r["release_phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases.iter().filter(|p| **p == "failed").count(),
        2,
        "{phases:?}"
    );
    assert_settled(&club, "after two refused deploys");
    // A failed release is never a rollback target.
    let failed_id = list
        .iter()
        .find(|r| r["release_phase"] == "failed")
        .and_then(|r| r["id"].as_str())
        .unwrap()
        .to_owned();
    let out = club.run(&["rollback", "club", "--to", &failed_id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("failed its release phase"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn killed_and_concurrent_deploys_converge_and_old_releases_are_pruned() {
    let club = Club::new();
    let text = club.text.replace("keep_releases = 5", "keep_releases = 2");
    assert_ne!(text, club.text);
    club.write_manifest(&text);
    ok(&club.run(&["up"]));

    // Two deploys at once: one waits for the other; both succeed, one release is live.
    edit(
        &club,
        "music/templates/music/home.html",
        "<h1>",
        "<h1>Take 1: ",
    );
    let a = std::process::Command::new(env!("CARGO_BIN_EXE_backstage"))
        .arg("deploy")
        .current_dir(&club.dir)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let b = club.run(&["deploy"]);
    let a = a.wait_with_output().unwrap();
    assert!(a.status.success());
    ok(&b);
    assert!(home(&club).contains("Take 1: "));
    assert_eq!(live(&releases(&club)).len(), 1);
    assert_settled(&club, "after two deploys at once");

    // A deploy killed during its switch: the next deploy converges.
    edit(
        &club,
        "music/templates/music/home.html",
        "Take 1: ",
        "Take 2: ",
    );
    let mut killed = std::process::Command::new(env!("CARGO_BIN_EXE_backstage"))
        .arg("deploy")
        .current_dir(&club.dir)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Kill it once it has started the new copies.
    let mut seen = String::new();
    {
        use std::io::BufRead;
        let reader = std::io::BufReader::new(killed.stderr.take().unwrap());
        for line in reader.lines() {
            let line = line.unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("starting Sess") {
                break;
            }
        }
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(seen.contains("starting Sess"), "{seen}");
    let (served, failed, out) = under_load(club.port, || club.run(&["deploy"]));
    ok(&out);
    assert_eq!(failed, 0, "requests failed converging ({served} served)");
    assert!(home(&club).contains("Take 2: "));
    assert_settled(&club, "after a killed deploy and a re-run");

    // One more: with keep_releases = 2 only the live one and the one before it remain.
    edit(
        &club,
        "music/templates/music/home.html",
        "Take 2: ",
        "Take 3: ",
    );
    ok(&club.run(&["deploy"]));
    let list = releases(&club);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[1]["live"], true);
    assert!(home(&club).contains("Take 3: "));
    let kept = std::fs::read_dir(club.dir.join(".backstage/releases/club"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .count();
    assert_eq!(kept, 2, "pruned on disk");
}

fn prefix(club: &Club) -> String {
    let (status, body) = get(club.port, "jazz.localhost", "/whoami").unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["prefix"].as_str().unwrap().to_owned()
}

#[test]
fn a_release_with_new_requirements_gets_its_own_environment_and_the_stage_is_left_alone() {
    let club = git_club();
    ok(&club.run(&["up"]));
    // The tests' Stage is the test virtualenv (see `Club::new`).
    let stage = support::test_venv();
    let stage_python = stage.join("bin/python");
    assert_eq!(
        Path::new(&prefix(&club)),
        stage,
        "the first release runs on the Stage"
    );

    // A new requirement: the release gets its own environment, built beside the running copy,
    // which keeps importing from the Stage until the switch.
    let requirements = club.dir.join("club/requirements.txt");
    let text = std::fs::read_to_string(&requirements).unwrap();
    std::fs::write(&requirements, format!("{text}tabulate==0.9.0\n")).unwrap();
    commit_all(&club.dir, "tabulate");
    // What the Stage has installed (other tests share it): the deploy must not change it.
    let freeze = || {
        let out = Command::new(&stage_python)
            .args(["-m", "pip", "freeze", "--all"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let stage_before = freeze();
    let (served, failed, out) = under_load(club.port, || club.run(&["deploy"]));
    ok(&out);
    assert_eq!(
        failed, 0,
        "requests failed across the deploy ({served} served)"
    );
    assert!(
        stderr(&out).contains("its own environment"),
        "{}",
        stderr(&out)
    );
    let env = PathBuf::from(prefix(&club));
    assert!(
        env.starts_with(club.dir.join(".backstage/envs")),
        "the new release imports from its environment: {}",
        env.display()
    );
    let version = ok(&club.run(&[
        "run",
        "club",
        "--",
        "python",
        "-c",
        "import tabulate; print(tabulate.__version__)",
    ]));
    assert_eq!(version.trim(), "0.9.0");
    assert_eq!(
        freeze(),
        stage_before,
        "the deploy changed what the Stage has installed"
    );
    let list = releases(&club);
    assert_eq!(list.len(), 2);
    assert_settled(&club, "after a deploy with its own environment");

    // Back: the previous release imports from the Stage again; no pip, no rebuild.
    let (served, failed, out) = under_load(club.port, || club.run(&["rollback", "club"]));
    ok(&out);
    assert_eq!(
        failed, 0,
        "requests failed across the rollback ({served} served)"
    );
    assert!(!stderr(&out).contains("pip"), "{}", stderr(&out));
    assert_eq!(Path::new(&prefix(&club)), stage);
    assert_settled(&club, "after rolling back to the Stage's environment");

    // Forward again with the same requirements: the environment is reused without pip.
    edit(
        &club,
        "music/templates/music/home.html",
        "<h1>",
        "<h1>Six: ",
    );
    commit_all(&club.dir, "a template");
    let out = club.run(&["deploy", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    let said = stderr(&out);
    assert!(said.contains("has these requirements already"), "{said}");
    assert!(!said.contains("-m pip install"), "pip ran again: {said}");
    // nginx serves static files through the `current` link: a switch of release changes no
    // nginx file, so nginx is not reloaded (no reload race on a keep-alive connection).
    assert_eq!(report["apply"]["nginx_reloaded"], false, "{report}");
    assert_eq!(
        PathBuf::from(prefix(&club)),
        env,
        "one environment per requirements"
    );
    assert!(home(&club).contains("Six: "));
    assert_settled(&club, "after a second deploy on the same environment");
}
