//! `backstage dns plan|apply`: the Producer, DNS for every Venue through PowerDNS.

use std::process::ExitCode;

use backstage_producer::{Action, Change, Kind, Plan};

use crate::ManifestArg;
use crate::check::{error_chain, read_manifest, render_problems};

/// Arguments of `backstage dns`.
#[derive(Debug, clap::Args)]
pub(crate) struct DnsArgs {
    #[command(subcommand)]
    command: DnsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum DnsCommand {
    /// Show what `dns apply` would change in PowerDNS; changes nothing.
    ///
    /// Reads `[producer]` (the PowerDNS API, its key, the addresses) and every Venue's server
    /// names, asks PowerDNS what it has, and lists the zones to create and the A/AAAA records to
    /// create, update or delete. Exit 0 when the plan could be made (even when it is empty),
    /// 1 on any failure: PowerDNS unreachable, key refused, a zone or record owned by someone
    /// else.
    Plan(DnsOpts),
    /// Make PowerDNS match the manifest; never touches records someone else made.
    ///
    /// Creates the missing zones, sets each Venue name's A/AAAA records, and removes the records
    /// this Production made for names no longer in the manifest. Records Backstage did not make
    /// are never changed or removed. Running it twice changes nothing the second time. Exit 0 on
    /// success, 1 on failure (checks run before any change; a re-run finishes a partial apply).
    Apply(DnsOpts),
}

#[derive(Debug, clap::Args)]
struct DnsOpts {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Print one JSON document: `{"changes": [{"action", "kind", "name", "zone", "type", "ttl",
    /// "content", "previous", "venue"}]}` (record fields only where they apply); on failure
    /// `{"error": "..."}`
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &DnsArgs) -> ExitCode {
    let (opts, apply) = match &args.command {
        DnsCommand::Plan(o) => (o, false),
        DnsCommand::Apply(o) => (o, true),
    };
    match run_inner(opts, apply) {
        Ok(plan) => {
            if opts.json {
                outln!(
                    "{}",
                    serde_json::to_string(&plan).expect("a plan serialises")
                );
            } else {
                for change in &plan.changes {
                    outln!("{}", describe(change));
                }
                let n = plan.changes.len();
                let s = if n == 1 { "" } else { "s" };
                match (n, apply) {
                    (0, _) => outln!("dns: up to date; nothing to change"),
                    (_, false) => outln!("dns: {n} change{s} to make; run `backstage dns apply`"),
                    (_, true) => outln!("dns: {n} change{s} applied"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            if opts.json {
                outln!("{}", serde_json::json!({ "error": message }));
            }
            ExitCode::FAILURE
        }
    }
}

/// Plans, and applies when asked; failures are reported on stderr and returned as text.
fn run_inner(opts: &DnsOpts, apply: bool) -> Result<Plan, String> {
    let manifest = read_manifest(&opts.manifest).map_err(|failure| failure.message)?;
    let production = manifest.parse().map_err(|problems| {
        let renderer = annotate_snippets::Renderer::plain();
        let report = render_problems(&manifest, &problems, &renderer);
        errln!("{}", report.strip_suffix('\n').unwrap_or(&report));
        let message = format!(
            "`{}` has {} problem(s); nothing was changed",
            manifest.path().display(),
            problems.len()
        );
        errln!("error: {message}");
        message
    })?;
    let fail = |e: backstage_producer::Error| {
        let message = error_chain(&e);
        errln!("error: {message}");
        message
    };
    let Some(producer) = production.producer.as_ref() else {
        let e = backstage_producer::Error::NoProducer;
        errln!("hint: add `[producer]` with `api_url`, `api_key_env` and `address`");
        return Err(fail(e));
    };
    if matches!(producer.api_key, backstage_core::ApiKey::Inline(_)) {
        errln!(
            "warning: `producer.api_key` keeps the PowerDNS key in the manifest; prefer `api_key_env`"
        );
    }
    let pdns = backstage_producer::client(producer).map_err(fail)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            let message = format!("cannot start the async runtime: {e}");
            errln!("error: {message}");
            message
        })?;
    runtime.block_on(async {
        let plan = backstage_producer::plan(&production, &pdns)
            .await
            .map_err(fail)?;
        if apply {
            backstage_producer::apply(&plan, &pdns)
                .await
                .map_err(fail)?;
        }
        Ok(plan)
    })
}

/// One line per change: `create record jazz.example.com. A 192.0.2.1 (ttl 300, venue jazz)`.
fn describe(c: &Change) -> String {
    let action = match c.action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    if c.kind == Kind::Zone {
        return format!("{action} zone   {}", c.name);
    }
    let rtype = c.rtype.unwrap_or("?");
    let records = match c.action {
        Action::Create => c.content.join(" "),
        Action::Update => format!("{} -> {}", c.previous.join(" "), c.content.join(" ")),
        Action::Delete => c.previous.join(" "),
    };
    match (c.ttl, &c.venue) {
        (Some(ttl), Some(venue)) => {
            format!(
                "{action} record {} {rtype} {records} (ttl {ttl}, venue {venue})",
                c.name
            )
        }
        _ => format!("{action} record {} {rtype} {records}", c.name),
    }
}
