//! System mode: the links in `sites-enabled` that make nginx load Backstage's sites.

use std::path::{Path, PathBuf};

use backstage_core::{Production, files};

use crate::error::{Error, io_err};

/// Where the enabling link of the site file `site` goes: the same name in the enabled-sites
/// directory. `None` in user mode (its `nginx.conf` includes the sites by name).
pub fn enabled_link(production: &Production, site: &Path) -> Option<PathBuf> {
    let dir = production.layout.nginx_enabled_dir.as_ref()?;
    Some(dir.as_path().join(site.file_name()?))
}

/// Links `link` to `site` atomically (a temporary link renamed over it). `Ok(false)` when the
/// link already points there. Refuses to replace anything that is not a link to one of
/// `production`'s files.
pub fn enable_site(production: &Production, site: &Path, link: &Path) -> Result<bool, Error> {
    if let Ok(meta) = std::fs::symlink_metadata(link) {
        let current = std::fs::read_link(link).ok();
        if current.as_deref() == Some(site) {
            return Ok(false);
        }
        let ours = meta.file_type().is_symlink()
            && std::fs::read(link).is_ok_and(|b| files::is_ours(&b, &production.name));
        if !ours {
            return Err(not_ours(link, production));
        }
    }
    let dir = link.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let tmp = files::temp_name(link);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(site, &tmp).map_err(io_err("create link", &tmp))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("rename", link)(e));
    }
    files::sync_dir(dir).map_err(|e| Error::Io {
        action: "fsync",
        path: dir.to_owned(),
        source: std::io::Error::other(e),
    })?;
    Ok(true)
}

/// Removes the enabling link `link` if it is a link to one of `production`'s files (or a
/// dangling link to where one was). `Ok(false)` when there was none.
pub fn disable_site(production: &Production, link: &Path) -> Result<bool, Error> {
    let Ok(meta) = std::fs::symlink_metadata(link) else {
        return Ok(false);
    };
    let ours = meta.file_type().is_symlink()
        && match std::fs::read(link) {
            Ok(b) => files::is_ours(&b, &production.name),
            // Dangling: its target was removed; ours if it pointed into our sites directory.
            Err(_) => std::fs::read_link(link)
                .is_ok_and(|t| t.parent() == Some(production.layout.nginx_dir.as_path())),
        };
    if !ours {
        return Err(not_ours(link, production));
    }
    std::fs::remove_file(link).map_err(io_err("remove", link))?;
    Ok(true)
}

fn not_ours(link: &Path, production: &Production) -> Error {
    Error::Io {
        action: "replace",
        path: link.to_owned(),
        source: std::io::Error::other(format!(
            "it is not a link to a file of Backstage production `{}`",
            production.name
        )),
    }
}
