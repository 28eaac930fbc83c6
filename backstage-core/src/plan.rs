//! `plan`: the files a Production implies, against the files of this Production on disk.
//!
//! Only files carrying this Production's marker count as "on disk"; anything else is foreign and
//! never touched. A managed file that differs from what the manifest implies is an update, and
//! when it also differs from what the last apply wrote, the reason says it was edited by hand.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::desired::{DesiredFile, FileKind};
use crate::files::{self, FileError};
use crate::model::Production;
use crate::work::RENEWAL;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A new file.
    Create,
    /// A file whose content changes.
    Update,
    /// A managed file nothing implies any more.
    Delete,
}

/// One change `apply` would make (an element of `plan --json`'s `changes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Create, update or delete.
    pub action: Action,
    /// What kind of file.
    pub kind: FileKind,
    /// The entry's name (`club-a`).
    pub name: String,
    /// The live path.
    pub file: PathBuf,
    /// Why: which manifest entry, or that the file was edited by hand.
    pub reason: String,
}

/// Every change, in apply order (creates and updates by kind, then deletes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The changes; empty when everything matches.
    pub changes: Vec<Change>,
}

impl Plan {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// What the last successful apply wrote: path → SHA-256 of the content. Kept in
/// `<state_dir>/applied.json` to tell a manifest change from a hand edit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    files: BTreeMap<PathBuf, String>,
}

impl Applied {
    fn path(production: &Production) -> PathBuf {
        production.layout.state_dir.as_path().join("applied.json")
    }

    /// Reads the record; empty when there is none (or it is unreadable: it only refines reasons).
    pub fn load(production: &Production) -> Applied {
        fs::read(Self::path(production))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records `desired` as applied.
    pub fn store(production: &Production, desired: &[DesiredFile]) -> Result<(), FileError> {
        let record = Applied {
            files: desired
                .iter()
                .map(|f| (f.path.clone(), digest(f.content.as_bytes())))
                .collect(),
        };
        let path = Self::path(production);
        let json = serde_json::to_vec_pretty(&record).expect("serializes");
        // Not a managed config file (no marker); private, as everything in the state dir that
        // describes a vassal.
        files::place(&path, &json, None, Some(files::Access::PRIVATE))
    }
}

fn digest(content: &[u8]) -> String {
    let hash = Sha256::digest(content);
    hash.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The directories a Production's managed files live in.
pub fn managed_dirs(production: &Production, desired: &[DesiredFile]) -> BTreeSet<PathBuf> {
    let mut dirs: BTreeSet<PathBuf> = desired
        .iter()
        .filter_map(|f| f.path.parent().map(Path::to_owned))
        .collect();
    dirs.insert(production.layout.vassal_dir.as_path().to_owned());
    dirs.insert(production.layout.nginx_dir.as_path().to_owned());
    dirs
}

/// The kind and name of a managed file found on disk, from its file name.
fn classify(production: &Production, path: &Path) -> (FileKind, String) {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("backstage.{}.", production.name);
    let stem = file.strip_prefix(&prefix).unwrap_or(&file);
    let ext = Path::new(stem)
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = stem
        .strip_suffix(&format!(".{ext}"))
        .unwrap_or(stem)
        .to_owned();
    if ext == "ini"
        && let Some(instance) = production.instance_of_vassal(path)
    {
        return (FileKind::Vassal, instance.sess.to_string());
    }
    if path == production.renewal_vassal().as_path() {
        return (FileKind::Renewal, RENEWAL.to_owned());
    }
    if let Some(work) = production.work_of_vassal(path) {
        return (FileKind::Worker, format!("{}.{}", work.act, work.name));
    }
    let kind = match ext.as_str() {
        "ini" => FileKind::Vassal,
        "html" => FileKind::Page,
        _ if file == "nginx.conf" => FileKind::NginxConf,
        _ => FileKind::Site,
    };
    (kind, name)
}

/// Compares `desired` with this Production's files on disk.
pub fn plan(production: &Production, desired: &[DesiredFile]) -> Result<Plan, FileError> {
    let applied = Applied::load(production);
    let wanted: BTreeMap<&Path, &DesiredFile> =
        desired.iter().map(|f| (f.path.as_path(), f)).collect();
    let mut changes = Vec::new();
    for f in desired {
        match files::read_if_exists(&f.path)? {
            None => changes.push(Change {
                action: Action::Create,
                kind: f.kind,
                name: f.name.clone(),
                file: f.path.clone(),
                reason: format!("new: `{}`", f.origin),
            }),
            Some(on_disk) if on_disk == f.content.as_bytes() => {}
            Some(on_disk) => {
                if !files::is_ours(&on_disk, &production.name) {
                    return Err(FileError::NotOurs {
                        path: f.path.clone(),
                        production: production.name.to_string(),
                    });
                }
                let hand_edited = applied
                    .files
                    .get(&f.path)
                    .is_some_and(|h| *h != digest(&on_disk));
                let reason = if hand_edited {
                    format!(
                        "edited by hand since the last apply; restoring what `{}` implies",
                        f.origin
                    )
                } else {
                    format!("`{}` changed", f.origin)
                };
                changes.push(Change {
                    action: Action::Update,
                    kind: f.kind,
                    name: f.name.clone(),
                    file: f.path.clone(),
                    reason,
                });
            }
        }
    }
    for dir in managed_dirs(production, desired) {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(FileError::Io {
                    action: "list",
                    path: dir,
                    source,
                });
            }
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .map(|e| e.path())
            .filter(|p| !wanted.contains_key(p.as_path()))
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        found.sort();
        for path in found {
            let Some(content) = files::read_if_exists(&path)? else {
                continue;
            };
            if !files::is_ours(&content, &production.name) {
                continue;
            }
            let (kind, name) = classify(production, &path);
            changes.push(Change {
                action: Action::Delete,
                kind,
                name,
                file: path,
                reason: "no longer in the manifest".to_owned(),
            });
        }
    }
    // A changed Sess on the default socket is a new copy beside the old one (blue/green).
    let replaced: BTreeSet<String> = changes
        .iter()
        .filter(|c| c.kind == FileKind::Vassal && c.action == Action::Delete)
        .map(|c| c.name.clone())
        .collect();
    for c in &mut changes {
        if c.kind == FileKind::Vassal && replaced.contains(&c.name) {
            match c.action {
                Action::Create => {
                    c.reason = format!(
                        "`sess.{}` changed: a new copy starts beside the running one and takes over its socket once it answers",
                        c.name
                    );
                }
                Action::Delete if production.sess.contains_key(c.name.as_str()) => {
                    c.reason = format!("the previous copy of `sess.{}`, retired once idle", c.name);
                }
                _ => {}
            }
        }
    }
    changes.sort_by(|a, b| {
        (a.action == Action::Delete, a.kind, &a.file).cmp(&(
            b.action == Action::Delete,
            b.kind,
            &b.file,
        ))
    });
    Ok(Plan { changes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Manifest;

    fn production(dir: &Path) -> Production {
        let text = "[production]\nname = \"jazz\"\n";
        Manifest::from_source(dir.join("backstage.toml"), dir.to_owned(), text.to_owned())
            .parse()
            .unwrap()
    }

    fn desired(p: &Production, name: &str, body: &str) -> DesiredFile {
        let slug = name.parse().unwrap();
        DesiredFile {
            kind: FileKind::Vassal,
            name: name.to_owned(),
            path: p.instance(&slug, None).vassal.as_path().to_owned(),
            content: format!("{}\n{body}\n", files::marker(&p.name)),
            origin: format!("sess.{name}"),
        }
    }

    #[test]
    fn create_update_delete_and_drift() {
        let dir = tempfile::tempdir().unwrap();
        let p = production(dir.path());
        let a = desired(&p, "a", "one");
        let b = desired(&p, "b", "one");
        let plan1 = plan(&p, &[a.clone(), b.clone()]).unwrap();
        assert_eq!(
            plan1.changes.iter().map(|c| c.action).collect::<Vec<_>>(),
            [Action::Create, Action::Create]
        );

        // Apply by hand, record it: the plan is empty.
        for f in [&a, &b] {
            files::write_atomic(&f.path, f.content.as_bytes(), &p.name).unwrap();
        }
        Applied::store(&p, &[a.clone(), b.clone()]).unwrap();
        assert!(plan(&p, &[a.clone(), b.clone()]).unwrap().is_empty());

        // A manifest change, a hand edit, a removal; a foreign file in the dir is ignored.
        let a2 = desired(&p, "a", "two");
        fs::write(&b.path, format!("{}\nhacked\n", files::marker(&p.name))).unwrap();
        fs::write(p.layout.vassal_dir.as_path().join("other.ini"), "[uwsgi]\n").unwrap();
        let c = plan(&p, &[a2.clone(), b.clone()]).unwrap().changes;
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].action, c[0].name.as_str()), (Action::Update, "a"));
        assert_eq!(c[0].reason, "`sess.a` changed");
        assert_eq!((c[1].action, c[1].name.as_str()), (Action::Update, "b"));
        assert!(c[1].reason.starts_with("edited by hand"), "{}", c[1].reason);

        let c = plan(&p, std::slice::from_ref(&a)).unwrap().changes;
        let del = c.iter().find(|c| c.action == Action::Delete).unwrap();
        assert_eq!((del.kind, del.name.as_str()), (FileKind::Vassal, "b"));
    }

    #[test]
    fn a_changed_copy_plans_as_a_new_copy_beside_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[production]\nname = \"jazz\"\n[acts.club]\nroot = \"club\"\n\
                    wsgi = \"club.wsgi:application\"\n[stages.local]\nvirtualenv = \"venv\"\n\
                    [sess.a]\nact = \"club\"\nstage = \"local\"\n";
        let p = Manifest::from_source(
            dir.path().join("backstage.toml"),
            dir.path().to_owned(),
            text.to_owned(),
        )
        .parse()
        .unwrap();
        let slug: crate::values::Slug = "a".parse().unwrap();
        let copy = |id: &str, body: &str| DesiredFile {
            kind: FileKind::Vassal,
            name: "a".to_owned(),
            path: p
                .instance(&slug, Some(&id.parse().unwrap()))
                .vassal
                .as_path()
                .to_owned(),
            content: format!("{}\n{body}\n", files::marker(&p.name)),
            origin: "sess.a".to_owned(),
        };
        let old = copy("00000001", "one");
        files::write_atomic(&old.path, old.content.as_bytes(), &p.name).unwrap();
        let c = plan(&p, &[copy("00000002", "two")]).unwrap().changes;
        assert_eq!(
            c.iter()
                .map(|c| (c.action, c.name.as_str()))
                .collect::<Vec<_>>(),
            [(Action::Create, "a"), (Action::Delete, "a")]
        );
        assert!(
            c[0].reason
                .contains("a new copy starts beside the running one"),
            "{}",
            c[0].reason
        );
        assert_eq!(c[1].file, old.path);
        assert!(c[1].reason.contains("previous copy"), "{}", c[1].reason);
    }

    #[test]
    fn a_foreign_file_in_the_way_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = production(dir.path());
        let a = desired(&p, "a", "one");
        fs::create_dir_all(a.path.parent().unwrap()).unwrap();
        fs::write(&a.path, "[uwsgi]\nhand = written\n").unwrap();
        assert!(matches!(plan(&p, &[a]), Err(FileError::NotOurs { .. })));
    }
}
