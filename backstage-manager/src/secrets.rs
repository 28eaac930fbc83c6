//! Secrets: `backstage env ACT set|unset|list`, loading an Act's secrets (its `env_file`, then
//! the store) into the Production, and the private envdirs its Sess read at start.
//!
//! A secret's value goes to three places only: the 0600 store, the envdir of each Sess (mode
//! 0600, or in system mode `root:<the Sess' group> 0640` in a `0750` directory, so uWSGI reads
//! it again when it reloads after dropping root) and the environment of a release-phase or
//! `backstage run` process. Vassals name the envdir, whose name carries a salted digest of the
//! values: a changed secret is a changed Sess, replaced blue/green by the next apply.

// The pieces of the Production Manager share its imports and helpers.
#[allow(clippy::wildcard_imports)]
use super::*;

use std::collections::BTreeMap;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};

use backstage_core::secrets::{self, SecretStore, SecretValue, Secrets, SecretsError};
use backstage_core::values::EnvKey;

/// The store of `act`'s secrets (`<state_dir>/secrets/<act>.env`).
fn store(production: &Production, act: &Slug) -> SecretStore {
    SecretStore::new(production.layout.state_dir.as_path(), act.as_str())
}

fn secrets_err(act: &Slug) -> impl FnOnce(SecretsError) -> ManagerError {
    let act = act.to_string();
    move |source| ManagerError::Secrets { act, source }
}

fn act_of(production: &Production, act: &str) -> Result<Slug, ManagerError> {
    production
        .acts
        .keys()
        .find(|a| a.as_str() == act)
        .cloned()
        .ok_or_else(|| ManagerError::UnknownAct {
            name: act.to_owned(),
            known: production.acts.keys().map(ToString::to_string).collect(),
        })
}

/// `backstage env ACT set KEY=VALUE`: stores a secret (effective at the next apply).
pub fn env_set(
    production: &Production,
    act: &str,
    key: &str,
    value: &str,
) -> Result<(), ManagerError> {
    let name = act_of(production, act)?;
    let key = parse_key(key)?;
    let value = SecretValue::new(value.to_owned()).map_err(|why| ManagerError::BadSecret {
        key: key.to_string(),
        why,
    })?;
    store(production, &name)
        .set(key, value)
        .map_err(secrets_err(&name))
}

/// `backstage env ACT unset KEY`: `false` when the store did not have it.
pub fn env_unset(production: &Production, act: &str, key: &str) -> Result<bool, ManagerError> {
    let name = act_of(production, act)?;
    let key = parse_key(key)?;
    store(production, &name)
        .unset(&key)
        .map_err(secrets_err(&name))
}

/// Where one secret key comes from.
#[derive(Debug, Clone, Serialize)]
pub struct SecretKey {
    /// The variable.
    pub key: String,
    /// `store` (`backstage env set`) or `env_file`.
    pub source: &'static str,
}

/// `backstage env ACT list`: the keys of `act`'s secrets and where each comes from (the store
/// wins over the `env_file`); never a value.
pub fn env_list(production: &Production, act: &str) -> Result<Vec<SecretKey>, ManagerError> {
    let name = act_of(production, act)?;
    let mut out: BTreeMap<String, &'static str> = BTreeMap::new();
    if let Some(file) = &production.acts[&name].env_file {
        for k in secrets::read_dotenv(file.as_path())
            .map_err(secrets_err(&name))?
            .into_keys()
        {
            out.insert(k.to_string(), "env_file");
        }
    }
    for k in store(production, &name)
        .load()
        .map_err(secrets_err(&name))?
        .into_keys()
    {
        out.insert(k.to_string(), "store");
    }
    Ok(out
        .into_iter()
        .map(|(key, source)| SecretKey { key, source })
        .collect())
}

fn parse_key(key: &str) -> Result<EnvKey, ManagerError> {
    key.parse::<EnvKey>()
        .map_err(|e| ManagerError::BadSecretKey {
            key: key.chars().take(40).collect(),
            why: e.to_string(),
        })
}

/// `production` with each Act's secrets loaded (its `env_file`, overridden by the store);
/// `None` when no Act has any.
pub(super) fn with_secrets(production: &Production) -> Result<Option<Production>, ManagerError> {
    let mut out: Option<Production> = None;
    let mut salt = None;
    let stored = backstage_core::files::names_in(&secrets::secrets_dir(
        production.layout.state_dir.as_path(),
    ));
    for (name, act) in &production.acts {
        let mut values = BTreeMap::new();
        if let Some(file) = &act.env_file {
            values.extend(secrets::read_dotenv(file.as_path()).map_err(secrets_err(name))?);
        }
        let store = store(production, name);
        if stored
            .as_ref()
            .is_none_or(|names| store.path().file_name().is_some_and(|f| names.contains(f)))
        {
            values.extend(store.load().map_err(secrets_err(name))?);
        }
        if values.is_empty() {
            continue;
        }
        let salt = match &salt {
            Some(s) => s,
            None => salt.insert(
                secrets::salt(production.layout.state_dir.as_path()).map_err(secrets_err(name))?,
            ),
        };
        out.get_or_insert_with(|| production.clone())
            .acts
            .get_mut(name)
            .expect("the Act is there")
            .secrets = Secrets::with_id(values, salt);
    }
    Ok(out)
}

/// Writes the envdir of every Sess whose Act has secrets (when missing: its name changes with
/// the values), before the Sess start: one file per variable, private to the Sess' account.
pub(super) fn write_envdirs(production: &Production) -> Result<(), ManagerError> {
    for (name, sess) in &production.sess {
        let Some(dir) = production.envdir_of(name) else {
            continue;
        };
        let dir = dir.as_path();
        if dir.is_dir() {
            continue;
        }
        let act = &production.acts[&sess.act];
        let owner = account_of(production, sess);
        let tmp = backstage_core::files::temp_name(dir);
        let _ = fs::remove_dir_all(&tmp);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| ManagerError::Io {
                action,
                path,
                source,
            }
        };
        let (dir_mode, file_mode) = if owner.is_some() {
            (0o750, 0o640)
        } else {
            (0o700, 0o600)
        };
        fs::DirBuilder::new()
            .mode(dir_mode)
            .create(&tmp)
            .map_err(io("create", &tmp))?;
        for (key, value) in &act.secrets.values {
            if value.expose().is_empty() {
                continue;
            }
            let file = tmp.join(key.as_str());
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(file_mode)
                .open(&file)
                .map_err(io("create", &file))?;
            std::io::Write::write_all(&mut f, value.expose().as_bytes())
                .map_err(io("write", &file))?;
            if let Some(gid) = owner {
                nix::unistd::chown(&file, None, Some(gid))
                    .map_err(|e| io("change the owner of", &file)(e.into()))?;
            }
        }
        if let Some(gid) = owner {
            nix::unistd::chown(&tmp, None, Some(gid))
                .map_err(|e| io("change the owner of", &tmp)(e.into()))?;
        }
        fs::set_permissions(&tmp, fs::Permissions::from_mode(dir_mode))
            .map_err(io("set the mode of", &tmp))?;
        fs::rename(&tmp, dir).map_err(io("rename", dir))?;
    }
    Ok(())
}

/// System mode: the group a Sess' envdir belongs to (its `gid`, else its `uid`'s group); `None`
/// in user mode or for a Sess that runs as root.
fn account_of(production: &Production, sess: &Sess) -> Option<nix::unistd::Gid> {
    if production.mode != Mode::System {
        return None;
    }
    if let Some(g) = &sess.tuning.gid
        && let Ok(Some(group)) = nix::unistd::Group::from_name(g.as_str())
    {
        return Some(group.gid);
    }
    let uid = sess.tuning.uid.as_ref()?;
    let user = nix::unistd::User::from_name(uid.as_str()).ok().flatten()?;
    (!user.uid.is_root()).then_some(user.gid)
}

/// Removes the envdirs of this Production that no vassal in the vassal dir names any more.
pub(super) fn sweep_envdirs(production: &Production) {
    let dir = secrets::secrets_dir(production.layout.state_dir.as_path());
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    let prefix = format!("backstage.{}.", production.name);
    let named: Vec<String> = fs::read_dir(production.layout.vassal_dir.as_path())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .collect();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        // A temp dir a killed apply left (`.<name>.<pid>.tmp`) goes too.
        let name = file.strip_prefix('.').unwrap_or(&file);
        let ext = Path::new(&file).extension().and_then(|x| x.to_str());
        let ours = name.starts_with(&prefix) && matches!(ext, Some("env" | "tmp"));
        if !ours || !e.path().is_dir() {
            continue;
        }
        let path = e.path().to_string_lossy().into_owned();
        if !named.iter().any(|v| v.contains(&path)) {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Who may read a vassal (it holds the Act's `env`): its owner, root; in system mode also the
/// Emperor's group when the Emperor runs as another account (Debian's stock `www-data`).
pub(super) fn vassal_access(host: Option<&Host>) -> backstage_core::files::Access {
    match host.and_then(|h| h.emperor.as_ref()) {
        Some(e) if e.uid != 0 => backstage_core::files::Access {
            mode: 0o640,
            group: Some(e.gid),
        },
        _ => backstage_core::files::Access::PRIVATE,
    }
}
