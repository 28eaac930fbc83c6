//! HTTPS from certificate files, against the real example, real uWSGI and real nginx: the TLS
//! listener speaks HTTP/2, sends HSTS when `hsts = true`, refuses a cipher outside Mozilla's
//! "intermediate" list, and the plain listener only redirects.
//! `up` and `status` probe the Gigs of a TLS Venue over TLS.

use std::path::Path;
use std::process::{Command, Output};

mod support;

use support::{Club, free_port, get, ok, openssl};

/// A self-signed P-256 certificate for the example's names, made by openssl.
fn self_signed(dir: &Path) {
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=jazz.localhost",
            "-addext",
            "subjectAltName=DNS:jazz.localhost,DNS:www.jazz.localhost",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
        ],
        dir,
    );
}

/// `curl` over HTTPS to the jazz Venue, trusting the test certificate; headers on stdout.
fn curl(dir: &Path, tls_port: u16, extra: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "-D", "-", "-o", "/dev/null"])
        .arg("--cacert")
        .arg(dir.join("cert.pem"))
        .arg("--resolve")
        .arg(format!("jazz.localhost:{tls_port}:127.0.0.1"))
        .args(extra)
        .arg(format!("https://jazz.localhost:{tls_port}/whoami"))
        .output()
        .expect("run curl (scripts/test-deps installs it)")
}

#[test]
fn https_speaks_http2_with_hsts_and_mozilla_intermediate_ciphers() {
    let club = Club::new();
    self_signed(&club.dir);
    let tls_port = free_port();
    let plain = format!(
        "server_names = [\"jazz.localhost\", \"www.jazz.localhost\"]\nlisten = [\"127.0.0.1:{}\"]\n",
        club.port
    );
    let text = club.text.replacen(
        &plain,
        &format!(
            "{plain}tls = {{ cert = \"cert.pem\", key = \"key.pem\", listen = [\"127.0.0.1:{tls_port}\"], hsts = true }}\n"
        ),
        1,
    );
    assert_ne!(text, club.text, "the jazz Venue gets TLS");
    club.write_manifest(&text);
    ok(&club.run(&["up"]));

    // `up` waited for each Gig over TLS (its plain listener only redirects); so does `status`.
    ok(&club.run(&["status"]));

    let headers = ok(&curl(&club.dir, tls_port, &["--http2"]));
    let first = headers.lines().next().unwrap_or_default();
    assert_eq!(first.trim(), "HTTP/2 200", "{headers}");
    assert!(
        headers
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000"),
        "{headers}"
    );

    // TLS 1.2 with a suite of the intermediate list is accepted; a CBC suite outside it is not.
    let gcm = curl(
        &club.dir,
        tls_port,
        &[
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
        ],
    );
    assert!(ok(&gcm).contains(" 200"), "TLS 1.2 with AES-GCM");
    let cbc = curl(
        &club.dir,
        tls_port,
        &["--tls-max", "1.2", "--ciphers", "ECDHE-ECDSA-AES128-SHA"],
    );
    assert!(
        !cbc.status.success(),
        "a CBC suite outside the intermediate list was accepted:\n{}",
        String::from_utf8_lossy(&cbc.stdout)
    );

    // Plain HTTP only redirects, to the TLS port, and carries no HSTS (browsers ignore it there).
    let (status, _) = get(club.port, "jazz.localhost", "/whoami").unwrap();
    assert_eq!(status, 301);
    let plain_headers = Command::new("curl")
        .args([
            "-sS",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-H",
            "Host: jazz.localhost",
        ])
        .arg(format!("http://127.0.0.1:{}/whoami", club.port))
        .output()
        .unwrap();
    let plain_headers = ok(&plain_headers).to_ascii_lowercase();
    assert!(
        plain_headers.contains(&format!(
            "location: https://jazz.localhost:{tls_port}/whoami"
        )),
        "{plain_headers}"
    );
    assert!(
        !plain_headers.contains("strict-transport-security"),
        "{plain_headers}"
    );
}
