//! `backstage tls status|renew`: the Venues' certificates, and ACME renewals.

use std::process::ExitCode;

use backstage_core::values::Slug;

use crate::ManifestArg;
use crate::manager::acme::{self, RenewOptions};
use crate::production::{HealthArgs, fail, load, show};

/// Arguments of `backstage tls`.
#[derive(Debug, clap::Args)]
pub(crate) struct TlsArgs {
    #[command(subcommand)]
    command: TlsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TlsCommand {
    /// Each TLS Venue's certificate: issuer, names, expiry, days left; changes nothing.
    ///
    /// Reads the certificate nginx serves for every Venue with `tls` (for `acme = true` the
    /// live one under the state dir). Exit 0 when every certificate is there and valid for more
    /// than 30 days, 1 when one is missing, unreadable, expired or due for renewal.
    Status(StatusArgs),
    /// Renew the ACME certificates that expire within 30 days (every one with `--force`).
    ///
    /// Orders each due certificate from `[acme] directory` with an HTTP-01 challenge answered
    /// by the Venue's own nginx, checks it (its names, its key), makes it live and reloads nginx
    /// once: requests in flight are not dropped. A certificate that is not due is left alone,
    /// so running it twice a day is cheap; `apply` installs a job that does just that. A Venue
    /// whose order fails keeps serving its current certificate, and the others go on. Exit 0
    /// when nothing failed, 1 otherwise.
    Renew(RenewArgs),
}

#[derive(Debug, clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Print one JSON document: `{"certificates": [{"venue", "acme", "state", "names",
    /// "issuer", "serial", "not_after", "days_left", "file", "error"}]}`
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RenewArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Renew every ACME certificate, due or not
    #[arg(long)]
    force: bool,
    /// Only these Venues (default: every Venue with `tls = { acme = true }`)
    #[arg(value_name = "VENUE")]
    venues: Vec<Slug>,
    /// Print one JSON document: `{"issued": [{"venue", "serial", "not_after", "why",
    /// "order_ms"}], "kept": [{"venue", "days_left"}], "failed": [{"venue", "reason"}],
    /// "nginx_reloaded"}`
    #[arg(long)]
    json: bool,
    /// Print nothing when nothing was due and nothing failed (for cron)
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    health: HealthArgs,
}

pub(crate) fn run(args: &TlsArgs) -> ExitCode {
    match &args.command {
        TlsCommand::Status(a) => status(a),
        TlsCommand::Renew(a) => renew(a),
    }
}

fn status(args: &StatusArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let certs = acme::tls_status(&production);
    let healthy = certs
        .iter()
        .all(|c| c.state == "valid" && c.days_left.unwrap_or(0) >= acme::RENEW_WITHIN_DAYS);
    if args.json {
        outln!("{}", serde_json::json!({ "certificates": certs }));
    } else if certs.is_empty() {
        outln!("no Venue has `tls`");
    } else {
        let w = certs
            .iter()
            .map(|c| c.venue.len())
            .max()
            .unwrap_or(5)
            .max(5);
        outln!(
            "{:<w$}  {:<10}  {:>9}  {:<20}  {:<4}  NAMES / ISSUER",
            "VENUE",
            "STATE",
            "DAYS LEFT",
            "NOT AFTER",
            "ACME"
        );
        for c in &certs {
            outln!(
                "{:<w$}  {:<10}  {:>9}  {:<20}  {:<4}  {}{}",
                c.venue,
                c.state,
                c.days_left
                    .map_or_else(|| "-".to_owned(), |d| d.to_string()),
                c.not_after.as_deref().unwrap_or("-"),
                if c.acme { "yes" } else { "no" },
                c.names.join(", "),
                match (&c.issuer, &c.error) {
                    (_, Some(e)) => format!("  ({e})"),
                    (Some(i), None) => format!("  ({i})"),
                    (None, None) => "  (not issued yet: `backstage apply` orders it)".to_owned(),
                }
            );
        }
    }
    if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn renew(args: &RenewArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let options = RenewOptions {
        force: args.force,
        venues: args.venues.clone(),
        changed_only: false,
    };
    let quiet = args.quiet;
    let mut progress = |e| {
        if !quiet {
            show(e);
        }
    };
    let report = match acme::renew(&production, &args.health.options(), &options, &mut progress) {
        Ok(r) => r,
        Err(e) => return fail(&e, args.json),
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string(&report).expect("a report serialises")
        );
    } else {
        for i in &report.issued {
            outln!(
                "renewed  {}  serial {}  valid until {}  ({}, {} ms)",
                i.venue,
                i.serial,
                i.not_after,
                i.why,
                i.order_ms
            );
        }
        if !quiet {
            for k in &report.kept {
                outln!("kept     {}  {} days left", k.venue, k.days_left);
            }
        }
        for f in &report.failed {
            errln!("error: Venue `{}`: {}", f.venue, f.reason);
        }
    }
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        if !args.json {
            errln!("the Venues that failed keep serving the certificate they had");
        }
        ExitCode::FAILURE
    }
}
