//! `backstage sess start|stop|reload NAME`: one Sess through the uWSGI Emperor.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use backstage_core::{Mode, Production};
use backstage_uwsgi::emperor::Emperor;
use backstage_uwsgi::stage_manager::{Placement, SessState, StageManager};

use crate::ManifestArg;
use crate::check::{error_chain, read_manifest};

/// How long to wait for a Sess to come up, reload or go.
const WAIT: Duration = Duration::from_secs(30);

/// Arguments of `backstage sess`.
#[derive(Debug, clap::Args)]
pub(crate) struct SessArgs {
    #[command(subcommand)]
    action: SessAction,
}

#[derive(Debug, clap::Subcommand)]
enum SessAction {
    /// Place the Sess' vassal file; the Emperor starts it. Waits until it serves.
    Start(SessTarget),
    /// Remove the Sess' vassal file; the Emperor stops it. Waits until its processes are gone.
    Stop(SessTarget),
    /// Restart the Sess on its live release the blue/green way: a new copy starts beside the
    /// running one and must answer its health check before it takes the traffic; the old one
    /// drains and stops. (A Sess on a TCP address is reloaded in place, gracefully.)
    Reload(SessTarget),
}

#[derive(Debug, clap::Args)]
struct SessTarget {
    /// The Sess, as named under `[sess.NAME]` in the manifest
    name: String,
    #[command(flatten)]
    manifest: ManifestArg,
}

pub(crate) fn run(args: &SessArgs) -> ExitCode {
    let target = match &args.action {
        SessAction::Start(t) | SessAction::Stop(t) | SessAction::Reload(t) => t,
    };
    let production = match read_manifest(&target.manifest)
        .map_err(|f| f.code)
        .and_then(|m| {
            m.load().map_err(|e| {
                errln!("error: {}", error_chain(&e));
                errln!("hint: `backstage check` lists every problem");
                ExitCode::FAILURE
            })
        }) {
        Ok(p) => p,
        Err(code) => return code,
    };
    // System mode: the vassals as the server's Emperor and nginx need them (their copies'
    // names depend on it).
    let production =
        match crate::manager::resolve(&production, &backstage_nginx::NginxBinary::from_env()) {
            Ok((p, _)) => p.into_owned(),
            Err(e) => {
                errln!("error: {}", error_chain(&e));
                return ExitCode::FAILURE;
            }
        };
    match act(&production, &args.action, &target.name) {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn act(
    production: &Production,
    action: &SessAction,
    name: &str,
) -> Result<ExitCode, backstage_uwsgi::Error> {
    let sm = StageManager::new(production);
    // System mode: the system's Emperor serves the vassal dir; user mode: ours, if `up` ran.
    let emperor_running = match production.mode {
        Mode::System => true,
        Mode::User => Emperor::for_production(production)?.is_running(),
    };
    let file = sm.wanted(name)?.vassal;
    match action {
        SessAction::Start(_) => {
            let placement = sm.start(name)?;
            if placement == Placement::Outdated {
                let running = sm.current(name)?.vassal;
                outln!(
                    "{name}: a copy with earlier settings runs from `{running}`; `backstage apply` replaces it without dropping a request"
                );
            } else {
                outln!(
                    "{name}: vassal {} `{file}`",
                    match placement {
                        Placement::Created => "placed",
                        Placement::Reloaded => "updated",
                        _ => "already in place",
                    }
                );
            }
            if !emperor_running {
                return Ok(not_running_note());
            }
            Ok(report(name, &sm.wait_running(name, true, WAIT)?))
        }
        SessAction::Reload(_) if emperor_running => {
            // Blue/green: a new copy on the live release answers before it takes over.
            match crate::manager::restart(
                production,
                name,
                &crate::manager::ApplyOptions::default(),
                &mut crate::production::show,
            ) {
                Ok(_) => Ok(report(name, &sm.state(name, true)?)),
                Err(e) => {
                    errln!("error: {}", error_chain(&e));
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        SessAction::Reload(_) => {
            let before = pids(&sm.state(name, emperor_running)?);
            let file = sm.current(name)?.vassal;
            sm.reload(name)?;
            outln!("{name}: vassal `{file}` touched; the Emperor reloads it");
            if !emperor_running {
                return Ok(not_running_note());
            }
            let deadline = Instant::now() + WAIT;
            loop {
                let state = sm.wait_running(name, true, WAIT)?;
                let replaced = pids(&state).iter().all(|p| !before.contains(p));
                if !matches!(state, SessState::Running { .. })
                    || replaced
                    || Instant::now() > deadline
                {
                    return Ok(report(name, &state));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        SessAction::Stop(_) => {
            if !sm.stop(name)? {
                outln!("{name}: not placed; nothing to stop");
                return Ok(ExitCode::SUCCESS);
            }
            outln!("{name}: vassal removed; the Emperor stops it");
            if emperor_running {
                sm.wait_stopped(name, WAIT)?;
                outln!("{name}: stopped");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn pids(state: &SessState) -> Vec<u32> {
    match state {
        SessState::Running { pids, .. } => pids.clone(),
        _ => Vec::new(),
    }
}

fn not_running_note() -> ExitCode {
    outln!("note: the Emperor is not running; `backstage up` starts it and every placed Sess");
    ExitCode::SUCCESS
}

fn report(name: &str, state: &SessState) -> ExitCode {
    match state {
        SessState::Running {
            workers,
            requests,
            rss_bytes,
            ..
        } => {
            outln!(
                "{name}: running, {workers} worker{}, {requests} requests, {} MiB",
                if *workers == 1 { "" } else { "s" },
                rss_bytes / (1024 * 1024)
            );
            ExitCode::SUCCESS
        }
        SessState::Stopped => {
            outln!("{name}: stopped");
            ExitCode::SUCCESS
        }
        SessState::Failed { reason, log_tail } => {
            errln!("error: {name} failed: {reason}");
            for line in log_tail {
                errln!("  | {line}");
            }
            errln!("hint: fix the cause, then `backstage sess reload {name}`");
            ExitCode::FAILURE
        }
    }
}
