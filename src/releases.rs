//! The Act Manager's commands: `deploy`, `releases`, `rollback`, `run`.

use std::process::ExitCode;

use crate::ManifestArg;
use crate::manager::{self, DeployOptions, DeployReport};
use crate::production::{HealthArgs, fail, load, show};

/// Arguments of `backstage deploy`.
#[derive(Debug, clap::Args)]
pub(crate) struct DeployArgs {
    /// The Acts to deploy, as named under `[acts.NAME]` [default: every Act]
    #[arg(value_name = "ACT")]
    acts: Vec<String>,
    /// The git commit, branch or tag to deploy [default: `HEAD`]; only for an Act whose root is
    /// in a git work tree (uncommitted edits are never deployed)
    #[arg(long = "ref", value_name = "REF")]
    reference: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    health: HealthArgs,
    #[command(flatten)]
    manifest: ManifestArg,
}

/// Arguments of `backstage releases`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReleasesArgs {
    /// Only this Act's releases [default: every Act's]
    #[arg(value_name = "ACT")]
    act: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    manifest: ManifestArg,
}

/// Arguments of `backstage rollback`.
#[derive(Debug, clap::Args)]
pub(crate) struct RollbackArgs {
    /// The Act to roll back
    #[arg(value_name = "ACT")]
    act: String,
    /// The kept release to go back to [default: the one before the live one]
    #[arg(long, value_name = "ID")]
    to: Option<String>,
    /// Print one JSON document on stdout instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    health: HealthArgs,
    #[command(flatten)]
    manifest: ManifestArg,
}

/// Arguments of `backstage run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The Act whose live release the command runs in
    #[arg(value_name = "ACT")]
    act: String,
    /// The command and its arguments, after `--`
    #[arg(value_name = "COMMAND", last = true, required = true)]
    command: Vec<String>,
    #[command(flatten)]
    manifest: ManifestArg,
}

fn report(report: &DeployReport, json: bool, verb: &str) {
    if json {
        outln!("{}", serde_json::to_string(report).expect("serializes"));
        return;
    }
    for a in &report.acts {
        outln!(
            "{verb} Act `{}`: release {} (revision {}) is live{}",
            a.act,
            a.release.id,
            short(&a.release.revision),
            a.previous
                .as_ref()
                .map(|p| format!(", replacing {p}"))
                .unwrap_or_default()
        );
    }
}

fn short(revision: &str) -> &str {
    &revision[..revision.len().min(12)]
}

pub(crate) fn deploy(args: &DeployArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let options = DeployOptions {
        apply: args.health.options(),
        reference: args.reference.clone(),
    };
    match manager::deploy(&production, &args.acts, &options, &mut show) {
        Ok(r) => {
            report(&r, args.json, "deployed");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, args.json),
    }
}

pub(crate) fn rollback(args: &RollbackArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    match manager::rollback(
        &production,
        &args.act,
        args.to.as_deref(),
        &args.health.options(),
        &mut show,
    ) {
        Ok(r) => {
            report(&r, args.json, "rolled back");
            if !args.json {
                errln!(
                    "note: migrations the newer release ran are not reversed; the database keeps its schema"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e, args.json),
    }
}

pub(crate) fn releases(args: &ReleasesArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let list = match manager::releases(&production, args.act.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(&e, args.json),
    };
    if args.json {
        outln!("{}", serde_json::json!({ "releases": list }));
        return ExitCode::SUCCESS;
    }
    if list.is_empty() {
        outln!("no releases yet: `backstage apply`, `up` or `deploy` builds the first");
        return ExitCode::SUCCESS;
    }
    let w = list.iter().map(|r| r.act.len()).max().unwrap_or(0);
    for r in &list {
        outln!(
            "{} {:<w$}  {}  {}  {}  release phase: {}",
            if r.live { "*" } else { " " },
            r.act,
            r.id,
            short(&r.revision),
            r.created,
            r.release_phase.as_str()
        );
    }
    outln!("(* live)");
    ExitCode::SUCCESS
}

pub(crate) fn run(args: &RunArgs) -> ExitCode {
    let Ok((_, production)) = load(&args.manifest) else {
        return ExitCode::FAILURE;
    };
    let mut cmd = match manager::command_in_release(&production, &args.act, &args.command) {
        Ok(c) => c,
        Err(e) => return fail(&e, false),
    };
    match cmd.status() {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt as _;
            // Killed by a signal: 128 + its number, the shell's convention.
            let code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Err(e) => {
            errln!("error: could not run `{}`: {e}", args.command[0]);
            ExitCode::from(127)
        }
    }
}
