//! The environments of releases: a release whose requirements differ from what its Stage
//! installed gets a virtualenv of its own (`<state_dir>/envs/<stage>-<digest>`), built beside
//! the running copies, shared by every release with the same requirements, and removed once no
//! kept release names it. See `deploy` for when they are built.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

use std::collections::BTreeSet;

use backstage_core::Act;
use backstage_core::values::ConfPath;

use super::deploy::{lead_sess, store_of};

/// Where the environments of releases whose requirements differ from their Stage's live.
fn environments_dir(production: &Production) -> PathBuf {
    production.layout.state_dir.as_path().join("envs")
}

/// The environment a new release of `name` (`act`, moved into the release) imports from:
/// none when its requirements are its Stage's (or its Stage was never installed: the first
/// install brings them), else `<state_dir>/envs/<stage>-<digest>`, one per Stage and
/// requirements content, shared by every release that has them. An Act whose Sess play on
/// several Stages keeps none (an environment belongs to one interpreter): its Stages get the
/// requirements, as before releases had environments.
pub(super) fn environment_of(
    production: &Production,
    name: &Slug,
    act: &Act,
) -> Result<Option<ConfPath>, ManagerError> {
    use sha2::Digest as _;
    let Some(requirements) = &act.requirements else {
        return Ok(None);
    };
    let stages: BTreeSet<&Slug> = production
        .sess
        .values()
        .filter(|s| &s.act == name)
        .map(|s| &s.stage)
        .collect();
    let [stage] = stages.into_iter().collect::<Vec<_>>()[..] else {
        return Ok(None);
    };
    match stage_set::has_installed(production, stage, requirements.as_path())? {
        None | Some(true) => return Ok(None),
        Some(false) => {}
    }
    let text = fs::read(requirements.as_path()).map_err(|source| ManagerError::Io {
        action: "read",
        path: requirements.as_path().to_owned(),
        source,
    })?;
    let python = production.stages[stage]
        .virtualenv
        .as_path()
        .join("bin/python");
    let mut digest = sha2::Sha256::new();
    digest.update(python.as_os_str().as_encoded_bytes());
    digest.update(b"\0");
    digest.update(&text);
    let hex = digest.finalize()[..8]
        .iter()
        .fold(String::with_capacity(16), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
    let dir = environments_dir(production).join(format!("{stage}-{hex}"));
    Ok(dir.to_str().and_then(|d| d.parse().ok()))
}

/// Builds (or reuses) the environment of `name`'s new release, if it has one.
pub(super) fn build_environment(
    production: &Production,
    name: &Slug,
    progress: &mut dyn FnMut(Event),
) -> Result<(), ManagerError> {
    let act = &production.acts[name];
    let (Some(dir), Some(requirements), Some((_, sess))) = (
        &act.environment,
        &act.requirements,
        lead_sess(production, name),
    ) else {
        return Ok(());
    };
    let python = production.stages[&sess.stage]
        .virtualenv
        .as_path()
        .join("bin/python");
    progress(Event::Step(format!(
        "Act `{name}`: its requirements changed; the release gets its own environment (the \
         running copies keep theirs)"
    )));
    stage_set::build_environment(
        &python,
        requirements.as_path(),
        dir.as_path(),
        &mut stage_progress(progress),
    )?;
    Ok(())
}

/// Removes every environment no kept release of any Act imports from. Best effort: an
/// environment left behind costs disk only.
pub(super) fn prune_environments(production: &Production, progress: &mut dyn FnMut(Event)) {
    let dir = environments_dir(production);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    let mut used = BTreeSet::new();
    for name in production.acts.keys() {
        for r in store_of(production, name).list().unwrap_or_default() {
            used.extend(r.environment);
        }
    }
    for entry in entries.flatten() {
        let path = entry.path();
        if !used.contains(&path) && fs::remove_dir_all(&path).is_ok() {
            progress(Event::Step(format!(
                "removed environment `{}`: no kept release imports from it",
                path.display()
            )));
        }
    }
}
