//! TLS by ACME (SPEC §11): certificates for `tls = { acme = true }` Venues, obtained with an
//! HTTP-01 challenge that the Venue's own nginx answers, and renewed before they expire.
//!
//! The protocol is spoken by `instant-acme`. What Backstage adds is the part a server needs:
//! - **Where things live.** Under `<state_dir>/acme/`: the account (`account-<hash>.json`, one
//!   per directory URL, created once, mode 0600), `challenges/` (served by nginx at
//!   `/.well-known/acme-challenge/` on every plain listener of an ACME Venue), and per Venue
//!   one directory per issued certificate (`<venue>/<serial>/fullchain.pem` and `key.pem`,
//!   the key 0600) with `live`, a link to the one nginx serves.
//! - **Atomic switches, no reload.** A new certificate is written complete into its own
//!   directory, checked (its names are the Venue's, its key is the certificate's), and only
//!   then does the `live` link move (a rename). nginx names the pair through a variable, so it
//!   reads it at each TLS handshake: the next connection gets the new certificate, and no
//!   reload closes keep-alive connections under clients' feet. A certificate near expiry keeps
//!   being served until its successor is live.
//! - **Containment.** Each Venue is ordered on its own; a failure (the CA unreachable, a
//!   challenge refused, a rate limit) names the Venue and the CA's reason, and the other Venues
//!   go on. An ACME Venue with no certificate yet is served over plain HTTP (no redirect) until
//!   it has one.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};

use instant_acme::Account;

mod certificate;
mod protocol;

pub use certificate::{CertificateStatus, Leaf, tls_status};
use certificate::{check_key_matches, rfc3339};
use protocol::{account, order};

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// A certificate is renewed when it expires within this many days.
pub const RENEW_WITHIN_DAYS: i64 = 30;

/// The ACME problem type of an account the CA does not know (RFC 8555 §7.3.1).
const ACCOUNT_GONE: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// How long one Venue's order may take, from the account to the certificate.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// The program the renewal job runs `tls renew` with: `BACKSTAGE_BIN` when set, else this
/// process' own program when it is `backstage`, else (Backstage called from Python) this
/// interpreter with `-m backstage`, else `backstage` from `PATH`.
pub fn renew_program() -> Vec<String> {
    if let Some(bin) = std::env::var_os("BACKSTAGE_BIN").and_then(|b| b.into_string().ok()) {
        return vec![bin];
    }
    if let Some(exe) = std::env::current_exe()
        .ok()
        .and_then(|e| e.into_os_string().into_string().ok())
    {
        let name = Path::new(&exe)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with("backstage") {
            return vec![exe];
        }
        if name.starts_with("python") {
            return vec![exe, "-m".to_owned(), "backstage".to_owned()];
        }
    }
    vec!["backstage".to_owned()]
}

/// How `tls renew` runs.
#[derive(Debug, Clone, Default)]
pub struct RenewOptions {
    /// Renew every ACME certificate, due or not.
    pub force: bool,
    /// Only these Venues (empty: every ACME Venue).
    pub venues: Vec<Slug>,
    /// Only what the manifest changed: a missing certificate, or one whose names are no longer
    /// the Venue's (what `apply` orders; expiry is the renewal job's).
    pub changed_only: bool,
}

/// One certificate made live.
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    /// The Venue.
    pub venue: String,
    /// The new certificate's serial (hex).
    pub serial: String,
    /// When it expires (RFC 3339).
    pub not_after: String,
    /// Why it was ordered: `missing`, `names` (the Venue's names changed), `expiring`, `forced`.
    pub why: &'static str,
    /// How long the order took, from the account to the certificate, in milliseconds.
    pub order_ms: u64,
}

/// A certificate left as it is.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    /// The Venue.
    pub venue: String,
    /// Days until it expires.
    pub days_left: i64,
}

/// A Venue whose order failed; what it served before it still serves.
#[derive(Debug, Clone, Serialize)]
pub struct AcmeFailure {
    /// The Venue.
    pub venue: String,
    /// The CA's reason, or what went wrong here.
    pub reason: String,
}

/// What `tls renew` (or an apply's first issuance) did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RenewReport {
    /// Certificates made live.
    pub issued: Vec<Issued>,
    /// Certificates not due.
    pub kept: Vec<Kept>,
    /// Venues whose order failed.
    pub failed: Vec<AcmeFailure>,
    /// Whether nginx was reloaded.
    pub nginx_reloaded: bool,
    /// The site changes that switched Venues with their first certificate to TLS.
    #[serde(skip)]
    pub changes: Vec<core_plan::Change>,
}

impl RenewReport {
    /// The first failure as an error, if any.
    pub fn error(&self) -> Option<ManagerError> {
        self.failed.first().map(|f| ManagerError::Acme {
            venue: f.venue.clone(),
            reason: f.reason.clone(),
            others: self.failed.len() - 1,
        })
    }
}

/// `tls renew`: orders what is missing, no longer matches the Venue's names, or expires within
/// [`RENEW_WITHIN_DAYS`] (everything with `force`), makes each new certificate live and reloads
/// nginx once. Failures are reported per Venue in the report, not as an error.
pub fn renew(
    production: &Production,
    apply: &ApplyOptions,
    options: &RenewOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<RenewReport, ManagerError> {
    for v in &options.venues {
        match production.venues.get(v) {
            Some(venue) if venue.is_acme() => {}
            Some(_) => {
                return Err(ManagerError::NotAcme {
                    venue: v.to_string(),
                });
            }
            None => {
                return Err(ManagerError::NoSuchVenue {
                    venue: v.to_string(),
                    suggestion: backstage_core::suggest(
                        v.as_str(),
                        production.venues.keys().map(Slug::as_str),
                    )
                    .map(str::to_owned),
                });
            }
        }
    }
    let manifest = production;
    let (production, host) = resolve(production, &apply.nginx)?;
    let host = host.as_ref();
    let _lock = take_lock(&production, apply.lock_wait, progress)?;
    let production = fresh(manifest, &production, host, progress)?;
    renew_locked(manifest, &production, host, apply, options, progress)
}

/// [`renew`] under the apply lock, on the resolved Production. A Venue issued its first
/// certificate is switched to TLS by an apply of its site.
pub(super) fn renew_locked(
    manifest: &Production,
    production: &Production,
    host: Option<&Host>,
    apply: &ApplyOptions,
    options: &RenewOptions,
    progress: &mut dyn FnMut(Event),
) -> Result<RenewReport, ManagerError> {
    let mut report = RenewReport::default();
    let Some(acme) = &production.acme else {
        return Ok(report);
    };
    let now = jiff::Timestamp::now().as_second();
    let mut due = Vec::new();
    for (name, venue) in &production.venues {
        let Some(tls) = venue.tls.as_ref().filter(|t| t.acme) else {
            continue;
        };
        if !options.venues.is_empty() && !options.venues.contains(name) {
            continue;
        }
        let current = fs::read(tls.cert.as_path())
            .ok()
            .and_then(|pem| Leaf::parse(&pem).ok());
        let why = match &current {
            None => Some("missing"),
            Some(leaf) if !leaf.covers(venue) => Some("names"),
            Some(_) if options.changed_only => None,
            Some(leaf) if leaf.days_left(now) < RENEW_WITHIN_DAYS => Some("expiring"),
            Some(_) if options.force => Some("forced"),
            Some(_) => None,
        };
        match why {
            Some(why) => due.push((name, venue, why, current)),
            None => report.kept.push(Kept {
                venue: name.to_string(),
                days_left: current.map_or(0, |l| l.days_left(now)),
            }),
        }
    }
    if due.is_empty() {
        return Ok(report);
    }
    if !nginx_serving(production, host) {
        for (name, _, _, _) in &due {
            report.failed.push(AcmeFailure {
                venue: name.to_string(),
                reason: "nginx is not running, so nothing can answer the CA's HTTP-01 challenge (start it: `backstage up`, or `systemctl start nginx`)".to_owned(),
            });
        }
        return Ok(report);
    }
    let rt = runtime()?;
    let mut account = match rt.block_on(account(production, acme, false, progress)) {
        Ok(a) => a,
        Err(reason) => {
            for (name, _, _, _) in &due {
                report.failed.push(AcmeFailure {
                    venue: name.to_string(),
                    reason: reason.clone(),
                });
            }
            return Ok(report);
        }
    };
    let mut first = false;
    for (name, venue, why, current) in due {
        progress(Event::Step(format!(
            "ordering a certificate for Venue `{name}` ({}) from {}",
            venue
                .server_names
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            acme.directory
        )));
        let started = Instant::now();
        let attempt = |account: &Account| {
            rt.block_on(async {
                match tokio::time::timeout(ORDER_TIMEOUT, order(production, account, venue)).await {
                    Ok(r) => r,
                    Err(_) => Err(format!(
                        "the order did not complete in {} s",
                        ORDER_TIMEOUT.as_secs()
                    )),
                }
            })
        };
        let mut ordered = attempt(&account);
        // The CA forgot the account (deactivated, or a test CA restarted): a new one, once.
        if matches!(&ordered, Err(e) if e.contains(ACCOUNT_GONE)) {
            progress(Event::Step(format!(
                "the CA no longer knows the stored account; creating a new one at {}",
                acme.directory
            )));
            match rt.block_on(super::acme::account(production, acme, true, progress)) {
                Ok(a) => {
                    account = a;
                    ordered = attempt(&account);
                }
                Err(e) => ordered = Err(e),
            }
        }
        let result = ordered.and_then(|(chain, key)| {
            let leaf = Leaf::parse(chain.as_bytes())
                .map_err(|e| format!("the CA's certificate is unusable: {e}"))?;
            if !leaf.covers(venue) {
                return Err(format!(
                    "the CA's certificate names {}, not the Venue's names",
                    leaf.names.join(", ")
                ));
            }
            check_key_matches(&key, &leaf)?;
            store(production, name, &leaf, &chain, &key)?;
            Ok(leaf)
        });
        match result {
            Ok(leaf) => {
                progress(Event::Step(format!(
                    "Venue `{name}`: certificate {} live, valid until {}",
                    leaf.serial,
                    rfc3339(leaf.not_after)
                )));
                first |= current.is_none();
                report.issued.push(Issued {
                    venue: name.to_string(),
                    serial: leaf.serial.clone(),
                    not_after: rfc3339(leaf.not_after),
                    why,
                    order_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            Err(reason) => {
                progress(Event::Step(format!("Venue `{name}`: {reason}")));
                report.failed.push(AcmeFailure {
                    venue: name.to_string(),
                    reason,
                });
            }
        }
    }
    if report.issued.is_empty() {
        return Ok(report);
    }
    if first {
        // A Venue with its first certificate changes its site (TLS servers, the redirect):
        // an apply writes it, validated, and reloads nginx.
        let production = fresh(manifest, production, host, progress)?;
        let applied = apply_locked(&production, host, apply, &[], progress)?;
        report.nginx_reloaded = applied.nginx_reloaded;
        report.changes = applied.changes;
        return Ok(report);
    }
    // Renewals change no nginx file and need no reload: nginx reads the live pair at each
    // handshake, and the pair was checked (names, key) before its link moved.
    Ok(report)
}

/// After an apply (or `up`) has the plain ACME Venues live: each one's first certificate is
/// ordered, and its site switched to TLS. A failure names the Venue and the CA's reason, after
/// everything else was applied (the Venue keeps serving plain HTTP).
pub(super) fn first_certificates(
    manifest: &Production,
    resolved: &Production,
    host: Option<&Host>,
    options: &ApplyOptions,
    report: &mut ApplyReport,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    if !manifest.venues.values().any(backstage_core::Venue::is_acme) {
        return Ok(());
    }
    // Read afresh: the apply just moved releases and wrote what the state dir holds.
    let production = fresh(manifest, resolved, host, progress)?;
    if !nginx_serving(&production, host) {
        if production
            .venues
            .values()
            .any(|v| v.tls.as_ref().is_some_and(|t| t.pending))
        {
            progress(Event::Skipped(
                "ACME certificates are ordered once nginx runs (`backstage up`; system mode: `systemctl start nginx`, then `backstage apply`)".into(),
            ));
        }
        return Ok(());
    }
    let renew = RenewOptions {
        changed_only: true,
        ..RenewOptions::default()
    };
    let issued = renew_locked(manifest, &production, host, options, &renew, progress)?;
    report.nginx_reloaded |= issued.nginx_reloaded;
    report.certificates.clone_from(&issued.issued);
    report.changes.extend(issued.changes.iter().cloned());
    match issued.error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Whether an nginx runs that serves this Production's sites.
pub(super) fn nginx_serving(production: &Production, host: Option<&Host>) -> bool {
    match host {
        Some(h) => h.nginx.running_master().is_some(),
        None => nginx_running(production),
    }
}

/// Marks each ACME Venue whose live certificate is not there yet as pending (served over plain
/// HTTP until it is issued).
pub(super) fn mark_pending(production: &Production) -> Option<Production> {
    let missing: Vec<Slug> = production
        .venues
        .iter()
        .filter(|(_, v)| {
            v.tls
                .as_ref()
                .is_some_and(|t| t.acme && !(t.cert.as_path().exists() && t.key.as_path().exists()))
        })
        .map(|(n, _)| n.clone())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut p = production.clone();
    for n in missing {
        if let Some(t) = p.venues.get_mut(&n).and_then(|v| v.tls.as_mut()) {
            t.pending = true;
        }
    }
    Some(p)
}

fn acme_io(action: &str, path: &Path, e: &std::io::Error) -> String {
    format!("failed to {action} `{}`: {e}", path.display())
}

/// Creates `dir` (and its parents) with `mode`, and sets `mode` on it.
fn ensure_dir(dir: &Path, mode: u32) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|e| acme_io("create", dir, &e))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(|e| acme_io("set the mode of", dir, &e))
}

/// Writes `content` to `path` atomically with `mode` (and `group`), through
/// [`backstage_core::files::place`].
fn write_atomic(path: &Path, content: &[u8], mode: u32, group: Option<u32>) -> Result<(), String> {
    backstage_core::files::place(
        path,
        content,
        None,
        Some(backstage_core::files::Access { mode, group }),
    )
    .map_err(|e| e.to_string())
}

/// Writes a new pair into its own directory and moves the Venue's `live` link to it. Keeps
/// the previous pair, removes older ones.
fn store(
    production: &Production,
    venue: &Slug,
    leaf: &Leaf,
    chain: &str,
    key: &str,
) -> Result<(), String> {
    // nginx's workers read the pair at each handshake: in system mode they run as nginx's
    // account, so its group may read the key (0640); nobody else may.
    let group = match (production.mode, &production.nginx_group) {
        (Mode::System, Some(g)) => nix::unistd::Group::from_name(g.as_str())
            .ok()
            .flatten()
            .map(|g| g.gid.as_raw()),
        _ => None,
    };
    let (dir_mode, key_mode) = if group.is_some() {
        (0o750, 0o640)
    } else {
        (0o700, 0o600)
    };
    let give = |path: &Path| -> Result<(), String> {
        if let Some(gid) = group {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(|e| {
                format!("failed to give `{}` to nginx's group: {e}", path.display())
            })?;
        }
        Ok(())
    };
    let dir = Production::acme_venue_dir(&production.layout, venue);
    ensure_dir(dir.as_path(), dir_mode)?;
    give(dir.as_path())?;
    let version = dir.as_path().join(&leaf.serial);
    ensure_dir(&version, dir_mode)?;
    give(&version)?;
    write_atomic(&version.join("key.pem"), key.as_bytes(), key_mode, group)?;
    write_atomic(
        &version.join("fullchain.pem"),
        chain.as_bytes(),
        0o644,
        None,
    )?;
    let live = Production::acme_live_dir(&production.layout, venue);
    let previous = fs::read_link(live.as_path()).ok();
    point_live(production, venue, Path::new(&leaf.serial))?;
    // The previous pair stays (a rollback of the link); older ones go.
    if let Ok(entries) = fs::read_dir(dir.as_path()) {
        for e in entries.flatten() {
            let name = e.file_name();
            let keep = name == "live"
                || Path::new(&name) == Path::new(&leaf.serial)
                || previous.as_deref() == Some(Path::new(&name));
            if !keep && e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// Moves a Venue's `live` link to `target` (relative, inside its directory) with a rename.
fn point_live(production: &Production, venue: &Slug, target: &Path) -> Result<(), String> {
    let live = Production::acme_live_dir(&production.layout, venue);
    let live = live.as_path();
    let tmp = live.with_extension("new");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| acme_io("link", &tmp, &e))?;
    fs::rename(&tmp, live).map_err(|e| acme_io("move", live, &e))
}
