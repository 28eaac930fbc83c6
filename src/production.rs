//! The Production Manager's commands: `render`, `plan`, `apply`, `up`, `down`, `status`.

use std::path::PathBuf;
use std::process::ExitCode;

use backstage_core::{Manifest, Production};

use crate::ManifestArg;
use crate::check::{error_chain, read_manifest, render_problems};
use crate::manager::{self, ApplyOptions, Event, ManagerError};
use crate::output;

/// Arguments of `backstage render`.
#[derive(Debug, clap::Args)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Where to write the files (created when missing). Paths under the state dir keep their
    /// place relative to it; others keep their absolute path below DIR.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Arguments of commands that read the manifest and may print JSON.
#[derive(Debug, clap::Args)]
pub(crate) struct JsonArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
}

/// Arguments of `up` and `down`.
#[derive(Debug, clap::Args)]
pub(crate) struct LifeArgs {
    #[command(flatten)]
    manifest: ManifestArg,
}

/// How long a Sess has to answer.
#[derive(Debug, clap::Args)]
pub(crate) struct HealthArgs {
    /// Seconds each new or changed Sess has to answer a request before the apply is rolled back
    /// (Sess start a batch at a time, twice the cores, so this is per Sess, not for all of them)
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    health_timeout: u64,
}

impl HealthArgs {
    pub(crate) fn options(&self) -> ApplyOptions {
        ApplyOptions {
            health_timeout: std::time::Duration::from_secs(self.health_timeout),
            ..ApplyOptions::default()
        }
    }
}

/// Arguments of `apply`.
#[derive(Debug, clap::Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    base: JsonArgs,
    #[command(flatten)]
    health: HealthArgs,
}

/// Arguments of `up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    manifest: ManifestArg,
    #[command(flatten)]
    health: HealthArgs,
}

/// Loads and validates the manifest; on problems prints them as `check` does.
pub(crate) fn load(arg: &ManifestArg) -> Result<(Manifest, Production), ExitCode> {
    let manifest = read_manifest(arg).map_err(|failure| failure.code)?;
    match manifest.parse() {
        Ok(p) => Ok((manifest, p)),
        Err(problems) => {
            let renderer = annotate_snippets::Renderer::plain();
            errln!("{}", render_problems(&manifest, &problems, &renderer));
            errln!(
                "error: the manifest has {} problem{}; nothing was done (run `backstage check` after fixing)",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            Err(ExitCode::FAILURE)
        }
    }
}

pub(crate) fn fail(e: &ManagerError, json: bool) -> ExitCode {
    let message = error_chain(e);
    if json {
        outln!("{}", serde_json::json!({"error": message}));
    }
    errln!("error: {message}");
    if let ManagerError::Unhealthy {
        log_tail,
        sess,
        hint,
        ..
    } = e
    {
        if !log_tail.is_empty() {
            errln!("last lines of Sess `{sess}`'s log:");
            for l in log_tail {
                errln!("  | {l}");
            }
        }
        errln!("hint: {hint}");
    }
    if let ManagerError::WorkerFailed {
        log_tail, worker, ..
    } = e
        && !log_tail.is_empty()
    {
        errln!("last lines of worker `{worker}`'s log:");
        for l in log_tail {
            errln!("  | {l}");
        }
    }
    if let ManagerError::ReleasePhase { output, .. } = e
        && !output.is_empty()
    {
        errln!("its last lines of output:");
        for l in output {
            errln!("  | {l}");
        }
        errln!(
            "hint: fix it and commit, then run `backstage deploy` again; `backstage run ACT -- COMMAND` runs a command in the live release"
        );
    }
    ExitCode::FAILURE
}

pub(crate) fn show(event: Event) {
    match event {
        Event::Step(s) => errln!("==> {s}"),
        Event::Output(s) => errln!("    {s}"),
        Event::Skipped(s) => errln!("--  {s}"),
        other => errln!("    {other:?}"),
    }
}

pub(crate) fn render(args: &RenderArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::render_into(&production, &args.out) {
        Ok(files) => {
            output::out_lines(files.iter().map(|f| f.display()));
            errln!(
                "wrote {} files into `{}`; nothing live was touched",
                files.len(),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, false),
    }
}

pub(crate) fn plan(args: &JsonArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::plan(&production) {
        Ok(plan) if args.json => {
            outln!("{}", serde_json::json!({"changes": plan.changes}));
            ExitCode::SUCCESS
        }
        Ok(plan) if plan.is_empty() => {
            outln!("nothing to change: the live files match the manifest");
            ExitCode::SUCCESS
        }
        Ok(plan) => {
            let w = plan.changes.iter().map(|c| c.name.len()).max().unwrap_or(0);
            for c in &plan.changes {
                let action = serde_json::to_value(c.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                outln!(
                    "{action:<6}  {:<10}  {:<w$}  {}  ({})",
                    c.kind.to_string(),
                    c.name,
                    c.file.display(),
                    c.reason
                );
            }
            outln!(
                "{} change{}; `backstage apply` makes them",
                plan.changes.len(),
                if plan.changes.len() == 1 { "" } else { "s" }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, args.json),
    }
}

pub(crate) fn apply(all: &ApplyArgs) -> ExitCode {
    let args = &all.base;
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::apply(&production, &all.health.options(), &mut show) {
        Ok(report) if args.json => {
            outln!("{}", serde_json::to_string(&report).expect("serializes"));
            ExitCode::SUCCESS
        }
        Ok(report) if report.changes.is_empty() && report.certificates.is_empty() => {
            outln!("nothing to change: nothing was written, nothing reloaded");
            ExitCode::SUCCESS
        }
        Ok(report) => {
            for c in &report.certificates {
                outln!(
                    "certificate for Venue `{}`: serial {}, valid until {} (ordered in {} ms)",
                    c.venue,
                    c.serial,
                    c.not_after,
                    c.order_ms
                );
            }
            outln!(
                "applied {} change{}{}",
                report.changes.len(),
                if report.changes.len() == 1 { "" } else { "s" },
                if report.nginx_reloaded {
                    "; nginx reloaded"
                } else {
                    ""
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, args.json),
    }
}

pub(crate) fn up(args: &UpArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::up(&production, &args.health.options(), &mut show) {
        Ok(report) => {
            outln!("Production `{}` is live:", production.name);
            let w = report.gigs.iter().map(|g| g.name.len()).max().unwrap_or(0);
            for g in &report.gigs {
                outln!("  {:<w$}  {}", g.name, g.url);
            }
            outln!(
                "`backstage status` shows every Sess and Gig; `backstage down` stops everything."
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, false),
    }
}

pub(crate) fn down(args: &LifeArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::down(&production, &mut show) {
        Ok(()) => {
            outln!(
                "Production `{}` is down: no Emperor, Sess or nginx left running",
                production.name
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, false),
    }
}

pub(crate) fn status(args: &JsonArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::status(&production) {
        Ok(status) if args.json => {
            outln!("{}", serde_json::to_string(&status).expect("serializes"));
            status_code(&status.down())
        }
        Ok(status) => {
            let w = status
                .sess
                .iter()
                .map(|s| s.name.len())
                .chain(status.gigs.iter().map(|g| g.name.len()))
                .chain(status.acts.iter().map(|a| a.name.len()))
                .max()
                .unwrap_or(4);
            outln!(
                "{:<w$}  {:<26}  {:<12}  DEPLOYED",
                "ACT",
                "RELEASE",
                "REVISION"
            );
            for a in &status.acts {
                outln!(
                    "{:<w$}  {:<26}  {:<12}  {}",
                    a.name,
                    a.release.as_deref().unwrap_or("-"),
                    a.revision.as_deref().map_or("-", |r| &r[..r.len().min(12)]),
                    a.deployed_at.as_deref().unwrap_or("-")
                );
            }
            outln!();
            outln!(
                "{:<w$}  {:<8}  {:>7}  {:>9}  {:>9}",
                "SESS",
                "STATE",
                "WORKERS",
                "REQUESTS",
                "RSS MiB"
            );
            for s in &status.sess {
                #[allow(clippy::cast_precision_loss)]
                let rss = s.rss_bytes as f64 / 1_048_576.0;
                outln!(
                    "{:<w$}  {:<8}  {:>7}  {:>9}  {:>9.1}",
                    s.name,
                    s.state,
                    s.workers,
                    s.requests,
                    rss
                );
                if let Some(reason) = &s.reason {
                    outln!("{:<w$}  {reason}", "");
                }
            }
            outln!();
            outln!("{:<w$}  {:<6}  URL", "GIG", "HTTP");
            for g in &status.gigs {
                let code = g
                    .http_status
                    .map_or_else(|| "-".to_owned(), |c| c.to_string());
                outln!(
                    "{:<w$}  {code:<6}  {}{}",
                    g.name,
                    g.url,
                    g.error
                        .as_ref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                );
            }
            if !status.workers.is_empty() {
                outln!();
                // As wide as its longest `act.name`, so the columns line up.
                let w = status
                    .workers
                    .iter()
                    .map(|wk| wk.act.len() + 1 + wk.name.len())
                    .fold(w, usize::max);
                outln!("{:<w$}  {:<8}  {:<26}  PIDS", "WORKER", "STATE", "RELEASE");
                for wk in &status.workers {
                    let pids: Vec<String> = wk.pids.iter().map(ToString::to_string).collect();
                    outln!(
                        "{:<w$}  {:<8}  {:<26}  {}",
                        format!("{}.{}", wk.act, wk.name),
                        wk.state,
                        wk.release.as_deref().unwrap_or("-"),
                        pids.join(" ")
                    );
                }
            }
            if !status.cron.is_empty() {
                outln!();
                let w = status
                    .cron
                    .iter()
                    .map(|c| c.act.len() + 1 + c.name.len())
                    .fold(w, usize::max);
                outln!("{:<w$}  {:<16}  LAST RUN", "CRON", "SCHEDULE");
                for c in &status.cron {
                    let last = match &c.last_run {
                        None => "-".to_owned(),
                        Some(r) => match (r.seconds, r.status) {
                            (Some(secs), Some(code)) => {
                                format!("{}, exit status {code}, {secs} s", r.started)
                            }
                            _ => format!("{}, running", r.started),
                        },
                    };
                    outln!(
                        "{:<w$}  {:<16}  {last}",
                        format!("{}.{}", c.act, c.name),
                        c.schedule
                    );
                }
            }
            let down = status.down();
            if !down.is_empty() {
                errln!("");
                errln!("down: {}", down.join("; "));
                errln!(
                    "hint: a failed Sess' log (`backstage.<production>.<sess>.log` in the log dir) says why; `backstage up` or `backstage apply` starts what the manifest wants"
                );
            }
            status_code(&down)
        }
        Err(e) => fail(&e, args.json),
    }
}

/// `status`' exit code: 1 when something is down, so it can be a monitoring check.
fn status_code(down: &[String]) -> ExitCode {
    if down.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
