//! TLS by ACME against a real ACME server: Pebble from Debian's packages, with
//! pebble-challtestsrv as its DNS (every name resolves to 127.0.0.1), on loopback ports, its
//! HTTP-01 port set to the Venue's plain port. The real example, real uWSGI, real nginx.

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;

use support::pebble::{Pebble, served_serial};
use support::{Club, free_port, get, ok};

/// The example with its jazz Venue on ACME (TLS on `tls_port`) and `[acme]` for `pebble`.
fn acme_manifest(club: &Club, pebble: &Pebble, tls_port: u16) -> String {
    let plain = format!(
        "server_names = [\"jazz.localhost\", \"www.jazz.localhost\"]\nlisten = [\"127.0.0.1:{}\"]\n",
        club.port
    );
    let mut text = club.text.replacen(
        &plain,
        &format!("{plain}tls = {{ acme = true, listen = [\"127.0.0.1:{tls_port}\"] }}\n"),
        1,
    );
    assert_ne!(text, club.text, "the jazz Venue gets ACME");
    text.push_str(&pebble.acme_table());
    text
}

/// `curl` over HTTPS to the jazz Venue, verifying against `root`: (status, HTTP version).
fn https(root: &Path, tls_port: u16, path: &str) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "-o", "/dev/null"])
        .args(["-w", "%{http_code} %{http_version}"])
        .arg("--cacert")
        .arg(root)
        .arg("--resolve")
        .arg(format!("jazz.localhost:{tls_port}:127.0.0.1"))
        .arg(format!("https://jazz.localhost:{tls_port}{path}"))
        .output()
        .expect("run curl")
}

/// Asks `/whoami` over HTTPS in a loop, on keep-alive connections (curl, 100 URLs a process):
/// (answered 200, failed) when `during` returns.
fn https_load<T>(root: &Path, tls_port: u16, during: impl FnOnce() -> T) -> (usize, usize, T) {
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, served, failed) = (stop.clone(), served.clone(), failed.clone());
        let root = root.to_owned();
        std::thread::spawn(move || {
            let url = format!("https://jazz.localhost:{tls_port}/whoami");
            while !stop.load(Ordering::Relaxed) {
                let mut c = Command::new("curl")
                    .args(["-s", "--max-time", "30", "-w", "%{http_code}\\n"])
                    .arg("--cacert")
                    .arg(&root)
                    .arg("--resolve")
                    .arg(format!("jazz.localhost:{tls_port}:127.0.0.1"))
                    // `-o` holds for one URL: one per URL.
                    .args((0..100).flat_map(|_| ["-o", "/dev/null", url.as_str()]))
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut answered = 0;
                for line in BufReader::new(c.stdout.take().unwrap()).lines() {
                    answered += 1;
                    if line.unwrap().trim() == "200" {
                        served.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = c.wait();
                // A transfer curl could not finish prints `000`; any it never reached counts too.
                failed.fetch_add(100 - answered.min(100), Ordering::Relaxed);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let result = during();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    (
        served.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        result,
    )
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("one JSON document")
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_acme_venue_is_issued_served_renewed_under_load_and_a_failing_ca_is_contained() {
    let club = Club::new();
    let mut pebble = Pebble::start(club.port);
    let tls_port = free_port();
    club.write_manifest(&acme_manifest(&club, &pebble, tls_port));
    ok(&club.run(&["check"]));

    // `up` brings the Venue live over plain HTTP, orders its certificate (Pebble fetches the
    // challenge from the Venue's own nginx), switches it to TLS and waits for each Gig over it.
    let started = Instant::now();
    let up = club.run(&["up"]);
    let up_text = ok(&up);
    let root = pebble.root();
    let answer = ok(&https(&root, tls_port, "/whoami"));
    eprintln!(
        "up -> first HTTPS 200 through a chain verified against Pebble's root: {} ms",
        started.elapsed().as_millis()
    );
    assert_eq!(answer, "200 2", "HTTP/2 200 over a verified chain");
    assert!(
        up_text.contains(&format!("https://jazz.localhost:{tls_port}/")),
        "{up_text}"
    );

    // Plain HTTP redirects; the challenge path is served (not redirected) on it.
    let (status, _) = get(club.port, "jazz.localhost", "/whoami").unwrap();
    assert_eq!(status, 301);
    let (status, _) = get(
        club.port,
        "jazz.localhost",
        "/.well-known/acme-challenge/none",
    )
    .unwrap();
    assert_eq!(
        status, 404,
        "the challenge location answers on the plain listener"
    );

    // `tls status --json`: Pebble's certificate, both names, five years (Pebble's validity).
    let status = json(&club.run(&["tls", "status", "--json"]));
    let certs = status["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 1, "{status}");
    let cert = &certs[0];
    assert_eq!(cert["venue"], "jazz");
    assert_eq!(cert["state"], "valid");
    assert_eq!(cert["acme"], true);
    assert_eq!(
        cert["names"],
        serde_json::json!(["jazz.localhost", "www.jazz.localhost"])
    );
    assert!(
        cert["issuer"].as_str().unwrap().contains("Pebble"),
        "{cert}"
    );
    assert!(cert["days_left"].as_i64().unwrap() > 300, "{cert}");
    let first_serial = cert["serial"].as_str().unwrap().to_ascii_uppercase();
    assert_eq!(served_serial(tls_port, "jazz.localhost"), first_serial);

    // The account and the key are private; the account is kept, not created again.
    let acme_dir = club.dir.join(".backstage/acme");
    let accounts: Vec<PathBuf> = std::fs::read_dir(&acme_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("account-")
        })
        .collect();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(mode(&accounts[0]), 0o600);
    assert_eq!(mode(&acme_dir.join("jazz/live/key.pem")), 0o600);
    let account = std::fs::read(&accounts[0]).unwrap();

    // Nothing due: `tls renew` orders nothing and says so.
    let kept = json(&club.run(&["tls", "renew", "--json"]));
    assert_eq!(kept["issued"], serde_json::json!([]), "{kept}");
    assert_eq!(kept["kept"][0]["venue"], "jazz", "{kept}");

    // The renewal job runs under the Emperor, twice a day, with the command `tls renew` takes.
    let job = club
        .dir
        .join(".backstage/vassals/backstage.jazzclub.tls-renew.ini");
    let job_text = std::fs::read_to_string(&job).expect("the renewal job's vassal");
    let lines: Vec<&str> = job_text
        .lines()
        .filter(|l| l.starts_with("cron2 = "))
        .collect();
    assert_eq!(lines.len(), 2, "{job_text}");
    assert!(lines[0].contains(" tls renew --quiet -f "), "{job_text}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok(&Command::new("ps").args(["-eo", "args"]).output().unwrap())
        .lines()
        .any(|l| l.starts_with("backstage.jazzclub.tls-renew"))
    {
        assert!(
            Instant::now() < deadline,
            "the renewal job's master is not running"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Its command, as uWSGI's cron would run it (`/bin/sh -c`), succeeds quietly.
    let command = lines[0].split_once(",unique=1 ").unwrap().1;
    let run = Command::new("/bin/sh")
        .args(["-c", command])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "",
        "nothing due: silent"
    );

    // `tls renew --force` under load: a new serial is served, no request fails, no reload.
    let (served, failed, renewed) = https_load(&root, tls_port, || {
        let mut reports = Vec::new();
        for _ in 0..3 {
            reports.push(json(&club.run(&["tls", "renew", "--force", "--json"])));
            std::thread::sleep(Duration::from_millis(300));
        }
        reports
    });
    eprintln!(
        "tls renew --force x3 under HTTPS load: {failed} failed of {}",
        served + failed
    );
    assert_eq!(failed, 0, "{failed} of {} requests failed", served + failed);
    assert!(served > 50, "the load ran ({served})");
    let last = renewed.last().unwrap();
    assert_eq!(last["issued"][0]["venue"], "jazz", "{last}");
    assert_eq!(last["issued"][0]["why"], "forced", "{last}");
    assert_eq!(last["nginx_reloaded"], false, "{last}");
    let new_serial = last["issued"][0]["serial"]
        .as_str()
        .unwrap()
        .to_ascii_uppercase();
    assert_ne!(new_serial, first_serial);
    assert_eq!(served_serial(tls_port, "jazz.localhost"), new_serial);
    assert_eq!(ok(&https(&root, tls_port, "/whoami")), "200 2");
    assert_eq!(
        std::fs::read(&accounts[0]).unwrap(),
        account,
        "the account was kept"
    );
    // The live pair and the one before it are kept; older ones are removed.
    let pairs = std::fs::read_dir(acme_dir.join("jazz"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_dir())
        .count();
    assert_eq!(pairs, 2);

    // The CA goes away; a new ACME Venue fails clearly, naming itself and why, and the
    // existing Venue keeps serving its certificate.
    pebble.stop_server();
    let mut text = std::fs::read_to_string(club.dir.join("backstage.toml")).unwrap();
    let blues = "server_names = [\"blues.localhost\"]\n";
    assert!(text.contains(blues));
    text = text.replacen(
        blues,
        &format!("{blues}tls = {{ acme = true, listen = [\"127.0.0.1:{tls_port}\"] }}\n"),
        1,
    );
    club.write_manifest(&text);
    let apply = club.run(&["apply"]);
    assert!(
        !apply.status.success(),
        "an order that cannot be made fails the apply"
    );
    let stderr = String::from_utf8_lossy(&apply.stderr);
    assert!(
        stderr.contains("ACME: Venue `blues`") && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert_eq!(ok(&https(&root, tls_port, "/whoami")), "200 2");
    assert_eq!(served_serial(tls_port, "jazz.localhost"), new_serial);
    // The new Venue serves plain HTTP (its closed page) until it has a certificate.
    let (status, _) = get(club.port, "blues.localhost", "/").unwrap();
    assert_eq!(status, 503);
    let status = club.run(&["tls", "status", "--json"]);
    assert!(
        !status.status.success(),
        "a missing certificate fails `tls status`"
    );
    let status: serde_json::Value =
        serde_json::from_slice(&status.stdout).expect("one JSON document");
    let blues_cert = status["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["venue"] == "blues")
        .unwrap()
        .clone();
    assert_eq!(blues_cert["state"], "missing", "{status}");

    // The CA back (a new Pebble: it has forgotten the account, which is made again): the
    // next apply issues the missing certificate.
    pebble.start_server();
    let root = pebble.root();
    let applied = ok(&club.run(&["apply"]));
    assert!(
        applied.contains("certificate for Venue `blues`"),
        "{applied}"
    );
    let blues = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&root)
        .arg("--resolve")
        .arg(format!("blues.localhost:{tls_port}:127.0.0.1"))
        .arg(format!("https://blues.localhost:{tls_port}/"))
        .output()
        .unwrap();
    assert_eq!(
        ok(&blues),
        "503",
        "the closed Venue, now over a verified chain"
    );
}

#[test]
fn a_refused_challenge_names_the_venue_and_the_cas_reason_and_plain_http_keeps_serving() {
    let club = Club::new();
    // Pebble validates on a port where nothing listens: every challenge fails.
    let pebble = Pebble::start(free_port());
    let tls_port = free_port();
    club.write_manifest(&acme_manifest(&club, &pebble, tls_port));
    let up = club.run(&["up"]);
    assert!(!up.status.success(), "up reports the failed order");
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(
        stderr.contains("ACME: Venue `jazz`: the CA refused the challenge for `"),
        "{stderr}"
    );
    assert!(
        stderr.contains("urn:ietf:params:acme:error:connection"),
        "{stderr}"
    );
    // The Venue is served over plain HTTP meanwhile (no redirect to a TLS listener it lacks).
    let (status, body) = get(club.port, "jazz.localhost", "/whoami").unwrap();
    assert_eq!(status, 200, "{body}");
    // Nothing half-made is left: no live pair, no challenge file.
    let acme_dir = club.dir.join(".backstage/acme");
    assert!(!acme_dir.join("jazz/live").exists());
    let challenges = std::fs::read_dir(acme_dir.join("challenges"))
        .unwrap()
        .count();
    assert_eq!(challenges, 0, "challenge files are removed");
}

#[test]
fn a_ca_that_requires_an_account_binding_gets_one_from_acme_eab() {
    // Pebble's documented example key: 64 base64url characters.
    const KID: &str = "kid-1";
    const KEY: &str = "zWNDZM6eQGHWpSRTPal5eIUYFTu7EajVIoguysqZ9wG44nMEtx3MUAsUDkMTQ12W";
    let club = Club::new();
    let pebble = Pebble::start_with(club.port, Some((KID, KEY)));
    let tls_port = free_port();
    let text = acme_manifest(&club, &pebble, tls_port);
    club.write_manifest(&text);
    let up = club.run(&["up"]);
    assert!(
        !up.status.success(),
        "no binding: the CA refuses the account"
    );
    let stderr = String::from_utf8_lossy(&up.stderr);
    assert!(
        stderr.contains("ACME: Venue `jazz`") && stderr.contains("externalAccountRequired"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY), "the MAC key is never printed");
    club.write_manifest(&text.replacen(
        "[acme]\n",
        &format!("[acme]\neab = {{ kid = \"{KID}\", hmac_key = \"{KEY}\" }}\n"),
        1,
    ));
    let applied = club.run(&["apply"]);
    let out = ok(&applied);
    assert!(out.contains("certificate for Venue `jazz`"), "{out}");
    assert!(!String::from_utf8_lossy(&applied.stderr).contains(KEY));
    assert_eq!(ok(&https(&pebble.root(), tls_port, "/whoami")), "200 2");
}
