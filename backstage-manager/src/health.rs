//! Health checks: a copy must run and answer a real uwsgi request before anything routes to it.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

/// Waits until none of a reloaded copy's workers is one of `old_workers` (the Emperor has
/// reloaded it with the new configuration).
pub(super) fn wait_reloaded(
    production: &Production,
    copy: &SessInstance,
    old_workers: &[u32],
    timeout: Duration,
) -> Result<(), ManagerError> {
    let manager = StageManager::new(production);
    let deadline = Instant::now() + timeout;
    loop {
        if let SessState::Running { pids, .. } = manager.copy_state(copy, true)
            && !pids.is_empty()
            && pids.iter().all(|p| !old_workers.contains(p))
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ManagerError::Unhealthy {
                sess: copy.sess.to_string(),
                reason: format!(
                    "it did not come back with new workers within {}s of its new configuration",
                    timeout.as_secs()
                ),
                log_tail: log_tail(production.log_file(&copy.sess).as_path(), 15),
                hint: HINT_FIX_ACT,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Health-checks copies side by side; the first failure (in the given order) is the error.
pub(super) fn health_check_all(
    production: &Production,
    copies: &[SessInstance],
    timeout: Duration,
) -> Result<(), ManagerError> {
    std::thread::scope(|scope| {
        let checks: Vec<_> = copies
            .iter()
            .map(|copy| scope.spawn(move || health_check(production, copy, timeout)))
            .collect();
        checks
            .into_iter()
            .map(|c| c.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<Result<Vec<()>, _>>()
            .map(|_| ())
    })
}

/// Waits until a copy runs and answers a real uwsgi request on its own socket with a status
/// below 500.
pub(super) fn health_check(
    production: &Production,
    copy: &SessInstance,
    timeout: Duration,
) -> Result<(), ManagerError> {
    let manager = StageManager::new(production);
    let deadline = Instant::now() + timeout;
    let slug = &copy.sess;
    let log = production.log_file(slug);
    let unhealthy = |reason: String, hint: &'static str| {
        let tail = log_tail(log.as_path(), 15);
        // A vassal uWSGI refuses before it opens its log leaves its reason with the Emperor.
        let reason = if tail.is_empty() && production.mode == Mode::System {
            format!(
                "{reason}; uWSGI wrote nothing to `{log}`, so its reason is in the Emperor's log (`journalctl -u uwsgi-emperor`)"
            )
        } else {
            reason
        };
        ManagerError::Unhealthy {
            sess: slug.to_string(),
            reason,
            log_tail: tail,
            hint,
        }
    };
    match manager.wait_copy_running(copy, true, timeout) {
        SessState::Running { .. } => {}
        SessState::Failed { reason, .. } => {
            // A master that runs without answering yet is starting, not failing (a failed
            // app load ends it): the deadline was too short, or the Act slow to import.
            return Err(match manager.master_pid(copy) {
                Some(pid) if Instant::now() >= deadline => unhealthy(
                    format!(
                        "it was still starting when its {}s ran out ({reason}; its master, pid {pid}, runs)",
                        timeout.as_secs()
                    ),
                    HINT_SLOW_START,
                ),
                _ => unhealthy(reason, HINT_FIX_ACT),
            });
        }
        SessState::Stopped => return Err(unhealthy("it is not running".into(), HINT_FIX_ACT)),
    }
    let target = Target::from(&copy.socket);
    let host = host_for(production, slug);
    let health = production
        .sess
        .get(slug)
        .and_then(|s| production.acts.get(&s.act))
        .map(|a| a.health.clone())
        .unwrap_or_default();
    let path = health.path.as_str();
    let runtime = runtime()?;
    let mut last = String::from("no answer");
    let mut hint = HINT_FIX_ACT;
    // A Sess that answers, but wrongly, again and again will not get better by waiting.
    let mut wrong_answers = 0;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let client = Client::new(target.clone())
            .connect_timeout(Duration::from_secs(2))
            .read_timeout(Duration::from_secs(10))
            .deadline(left.clamp(Duration::from_secs(1), Duration::from_secs(10)));
        let answer = runtime.block_on(async {
            let r = client
                .send(Request::get(path).header("Host", host.clone()))
                .await?;
            let status = r.status();
            if health.accepts(status) {
                return Ok((status, Vec::new()));
            }
            // The first lines of a wrong answer say why (Django's error page, a traceback).
            let body = tokio::time::timeout(Duration::from_secs(2), r.bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            Ok::<_, backstage_uwsgi::Error>((status, first_lines(&body, 8)))
        });
        match answer {
            Ok((status, _)) if health.accepts(status) => return Ok(()),
            Ok((status, body)) => {
                wrong_answers += 1;
                last = format!("it answers `{path}` with HTTP {status}");
                if !body.is_empty() {
                    last.push_str(": ");
                    last.push_str(&body.join(" | "));
                }
                if status == 400 {
                    hint = HINT_ALLOWED_HOSTS;
                }
                if wrong_answers >= 3 {
                    break;
                }
            }
            Err(e) => {
                last = e.to_string();
                // Not the Act's doing: a running master whose socket file is gone.
                if let SessSocket::Unix(socket) = &copy.socket
                    && !socket.as_path().exists()
                    && let Some(pid) = manager.master_pid(copy)
                {
                    last = format!(
                        "its master (pid {pid}) runs, but its socket `{socket}` is gone: something removed it while the master ran"
                    );
                    hint = HINT_SOCKET_GONE;
                }
            }
        }
        // No answer yet: soon again (a refused connect costs microseconds, and a switch waits
        // on the first good answer). A wrong answer: give the app time to change its mind.
        std::thread::sleep(Duration::from_millis(if wrong_answers > 0 {
            200
        } else {
            50
        }));
    }
    Err(unhealthy(last, hint))
}

/// What to do when a Sess does not answer because of its Act.
pub(super) const HINT_FIX_ACT: &str =
    "fix the Act, then run `backstage apply` again; `backstage status` shows every Sess";
/// What to do when a Sess answers 400 (Django: the Host is not in `ALLOWED_HOSTS`).
pub(super) const HINT_ALLOWED_HOSTS: &str = "a 400 from Django means the Host is not in ALLOWED_HOSTS: let the settings read BACKSTAGE_ALLOWED_HOSTS (every Venue name of the Sess; see the README), or add the Venue's server names, then deploy again";
/// What to do when a Sess was still starting at its deadline.
pub(super) const HINT_SLOW_START: &str = "if the Act needs longer to start, give it more with `--health-timeout SECONDS`, then run `backstage apply` again";
/// What to do when a running copy's socket was removed.
pub(super) const HINT_SOCKET_GONE: &str =
    "the Act is not at fault; run `backstage apply` again, which starts the copy afresh";
/// What to do when nginx cannot reach a Sess' socket.
pub(super) const HINT_REACH: &str =
    "fix the permissions named above, then run `backstage apply` again";

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, ManagerError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ManagerError::Io {
            action: "start an async runtime for",
            path: PathBuf::from("health checks"),
            source,
        })
}

/// The first `n` non-empty lines of a body, each cut to 200 characters, markup-free enough to
/// read in a terminal.
pub(super) fn first_lines(body: &[u8], n: usize) -> Vec<String> {
    String::from_utf8_lossy(body)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(n)
        .map(|l| l.chars().take(200).collect())
        .collect()
}
