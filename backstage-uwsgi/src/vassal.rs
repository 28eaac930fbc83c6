//! Vassal rendering: one uWSGI `.ini` per Sess, from validated types only.
//!
//! uWSGI reads every ini value through four expansions: `%X` magic variables while parsing the
//! file, then, on the whole option set, `$(ENV)`, `@(file)` and `%(option)` (see uWSGI's
//! `core/ini.c` and `uwsgi_apply_config_pass` in `core/utils.c`). The writer defuses them so
//! every value reads back literally: each `%` is written `%%`, and a `(` right after `$` or `@`
//! is written as the placeholder `%(backstage-lp)`, which uWSGI's last pass turns into `(`
//! after the `$` and `@` passes are over. `%(` itself has no escape; core's `IniValue` rejects it.

use std::borrow::Cow;
use std::fmt::Write as _;

use rayon::prelude::*;

use backstage_core::values::{ConfPath, InstanceId, Slug};
use backstage_core::{
    DEFAULT_HARAKIRI, DesiredFile, FileKind, Mode, Production, Sess, SessInstance, SessSocket,
    files,
};

use crate::error::Error;

/// uWSGI's request buffer unless the Sess says otherwise: the largest request head nginx
/// accepts (`large_client_header_buffers 4 8k`: 32 KiB) fits, so a large cookie gets a 200,
/// never a 502.
pub const DEFAULT_BUFFER_SIZE: u16 = 32768;
/// Requests a worker serves before it is recycled, unless the Sess says otherwise.
pub const DEFAULT_MAX_REQUESTS: u32 = 5000;
/// Seconds a worker lives at most (one hour), and the spread between workers (worker `n` lives
/// `n ×` that longer), so a Sess' workers never restart all at once. (No `max-requests-delta`:
/// Debian's uWSGI 2.0.21 lacks it.)
const MAX_WORKER_LIFETIME: u32 = 3600;
const MAX_WORKER_LIFETIME_DELTA: u32 = 30;

/// The placeholder that stands for `(` where uWSGI would otherwise expand `$(…)` or `@(…)`.
pub(crate) const LEFT_PAREN_PLACEHOLDER: &str = "backstage-lp";

/// Renders the vassal files of every Sess of the Production.
pub fn render_vassals(production: &Production) -> Result<Vec<DesiredFile>, Error> {
    let hosts = production.hosts_by_sess();
    let unbooked = (Vec::new(), Vec::new());
    let sess: Vec<_> = production.sess.iter().collect();
    // Vassals are independent of each other: rendered on every core, kept in Sess order.
    sess.par_iter()
        .map(|(name, sess)| {
            let parts = Parts::of(production, name, sess, hosts.get(name).unwrap_or(&unbooked))?;
            let (instance, content) = parts.instance_and_content(production)?;
            Ok(desired_file(&instance, content))
        })
        .collect()
}

/// Finds a Sess by name, or names the closest one in the error.
pub fn find_sess<'p>(
    production: &'p Production,
    name: &str,
) -> Result<(&'p Slug, &'p Sess), Error> {
    production
        .sess
        .get_key_value(name)
        .ok_or_else(|| Error::UnknownSess {
            name: name.to_owned(),
            production: production.name.to_string(),
            suggestion: backstage_core::suggest(name, production.sess.keys().map(Slug::as_str))
                .map(str::to_owned),
        })
}

/// Renders the vassal file of one Sess: the copy the manifest implies (see [`instance`]).
pub fn render_vassal(production: &Production, name: &Slug) -> Result<DesiredFile, Error> {
    let (instance, content) = Parts::of_sess(production, name)?.instance_and_content(production)?;
    Ok(desired_file(&instance, content))
}

fn desired_file(instance: &SessInstance, content: String) -> DesiredFile {
    DesiredFile {
        kind: FileKind::Vassal,
        name: instance.sess.to_string(),
        path: instance.vassal.as_path().to_owned(),
        content,
        origin: format!("sess.{}", instance.sess),
    }
}

/// The copy of a Sess the manifest implies. A Sess on the default socket gets an id from its
/// vassal's content rendered without one, so the id changes exactly when the vassal would.
pub fn instance(production: &Production, name: &Slug) -> Result<SessInstance, Error> {
    Ok(Parts::of_sess(production, name)?
        .instance_and_content(production)?
        .0)
}

/// A vassal in three parts: the lines every copy of the Sess shares around the lines naming
/// the copy's own files (socket, stats, FIFO, pid file). The shared parts are rendered once;
/// only the copy's lines are rendered twice (without the id, to hash, then with it).
struct Parts<'p> {
    name: &'p Slug,
    sess: &'p Sess,
    head: String,
    tail: String,
    needs_placeholder: bool,
}

impl<'p> Parts<'p> {
    fn of_sess(production: &'p Production, name: &Slug) -> Result<Self, Error> {
        let (name, sess) = find_sess(production, name.as_str())?;
        Self::of(production, name, sess, &production.hosts_of(name))
    }

    fn of(
        production: &'p Production,
        name: &'p Slug,
        sess: &'p Sess,
        (hosts, origins): &(Vec<String>, Vec<String>),
    ) -> Result<Self, Error> {
        let act = &production.acts[&sess.act];
        let stage = &production.stages[&sess.stage];
        let mut w = IniWriter::new(name.as_str());
        w.set("strict", "true")?;
        if sess.restarts > 0 {
            // `backstage sess reload`: a new copy, started beside the running one.
            let _ = writeln!(w.body, "# restart {}", sess.restarts);
        }
        // A plugin build (Debian's uwsgi-core) knows no Python option until its plugin is loaded;
        // `need-plugin` makes a missing plugin fatal, with uWSGI's own message in the log.
        for plugin in production.uwsgi_plugins.iter().flatten() {
            w.set("need-plugin", plugin.as_str())?;
        }
        w.set("master", "true")?;
        // Removes the sockets, pidfile and FIFO on exit, so a stale socket never looks alive.
        w.set("vacuum", "true")?;
        // A Sess whose app fails to import exits (and shows as failed) instead of serving 500s.
        w.set("need-app", "true")?;
        // uWSGI 2.0 reloads on SIGTERM; a stop must stop.
        w.set("die-on-term", "true")?;
        // Django runs one application per process; sub-interpreters only cost memory.
        w.set("single-interpreter", "true")?;
        // No `memory-report`: it reads /proc/self/statm after every request (about 9 % of the
        // example's throughput); `backstage status` reads the workers' memory from /proc instead.

        // Names the processes after the Sess, so `ps` shows whose they are.
        let procname = production.generated_name(name, "");
        w.set("procname-prefix-spaced", procname.as_str())?;
        w.set("chdir", act.root.as_str())?;
        w.set("pythonpath", act.root.as_str())?;
        w.set("module", &act.wsgi.to_string())?;
        w.set("virtualenv", act.virtualenv(stage).as_str())?;
        w.set("processes", &sess.processes.to_string())?;
        w.set("threads", &sess.threads.to_string())?;
        let head = std::mem::take(&mut w.body);

        w.path("logto", &production.log_file(name))?;
        w.env("BACKSTAGE_PRODUCTION", production.name.as_str())?;
        w.env("BACKSTAGE_SESS", name.as_str())?;
        // What Django's ALLOWED_HOSTS and CSRF_TRUSTED_ORIGINS need, from the Venues booking it.
        w.env("BACKSTAGE_ALLOWED_HOSTS", &hosts.join(","))?;
        w.env("BACKSTAGE_CSRF_TRUSTED_ORIGINS", &origins.join(","))?;
        act_environment(&mut w, production, &sess.act, act, name)?;
        // Python threads (APM and error-reporting SDKs start their own) run only with the GIL
        // released between requests.
        w.set("enable-threads", "true")?;
        // A client gone mid-answer is routine, not an error worth a log line or an exception.
        w.set("ignore-sigpipe", "true")?;
        w.set("ignore-write-errors", "true")?;
        w.set("disable-write-exception", "true")?;
        let t = &sess.tuning;
        w.set(
            "harakiri",
            &t.harakiri.unwrap_or(DEFAULT_HARAKIRI).to_string(),
        )?;
        // Workers are recycled now and then, so a leak in the app grows no further.
        w.set(
            "max-requests",
            &t.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS).to_string(),
        )?;
        w.set("max-worker-lifetime", &MAX_WORKER_LIFETIME.to_string())?;
        w.set(
            "max-worker-lifetime-delta",
            &MAX_WORKER_LIFETIME_DELTA.to_string(),
        )?;
        w.set(
            "buffer-size",
            &t.buffer_size.unwrap_or(DEFAULT_BUFFER_SIZE).to_string(),
        )?;
        if let Some(v) = t.listen {
            w.set("listen", &v.to_string())?;
        }
        if let Some(v) = &t.uid {
            w.set("uid", v.as_str())?;
        }
        if let Some(v) = &t.gid {
            w.set("gid", v.as_str())?;
        }
        for (key, value) in &t.extra {
            w.set(key.as_str(), value.as_str())?;
        }
        Ok(Parts {
            name,
            sess,
            head,
            tail: w.body,
            needs_placeholder: w.needs_placeholder,
        })
    }

    /// The copy the manifest implies (see [`instance`]), and its vassal.
    fn instance_and_content(
        &self,
        production: &Production,
    ) -> Result<(SessInstance, String), Error> {
        let bare = production.instance(self.name, None);
        let content = self.content(production, &bare)?;
        if !production.has_default_socket(self.name) {
            return Ok((bare, content));
        }
        let id = InstanceId::of_content(content.as_bytes());
        let instance = production.instance(self.name, Some(&id));
        let content = self.content(production, &instance)?;
        Ok((instance, content))
    }

    /// The whole vassal of one copy.
    fn content(&self, production: &Production, instance: &SessInstance) -> Result<String, Error> {
        let mut w = IniWriter::new(self.name.as_str());
        match &instance.socket {
            SessSocket::Unix(path) => {
                w.path("socket", path)?;
                // Never world-writable: nginx reaches it through its group in system mode; in
                // user mode nginx runs as the same user as the Sess.
                let mode = match production.mode {
                    Mode::User => "600",
                    Mode::System => "660",
                };
                w.set("chmod-socket", mode)?;
                // System mode: the socket belongs to the Sess' account and nginx's group.
                if let (Mode::System, Some(group)) = (production.mode, &production.nginx_group) {
                    let owner = self.sess.tuning.uid.as_ref().map_or("root", |u| u.as_str());
                    w.set("chown-socket", &format!("{owner}:{group}"))?;
                }
            }
            SessSocket::Tcp(addr) => w.set("socket", &addr.to_string())?,
        }
        w.path("stats", &instance.stats)?;
        w.path("master-fifo", &instance.fifo)?;
        w.path("pidfile", &instance.pid_file)?;

        let marker = files::marker(&production.name);
        let mut content = String::with_capacity(
            marker.len() + 64 + self.head.len() + w.body.len() + self.tail.len(),
        );
        content.push_str(&marker);
        content.push_str("\n[uwsgi]\n");
        if self.needs_placeholder || w.needs_placeholder {
            // Defined once, used by the writer's escape of `$(` and `@(` (see the module docs).
            let _ = writeln!(content, "set-placeholder = {LEFT_PAREN_PLACEHOLDER}=(");
        }
        content.push_str(&self.head);
        content.push_str(&w.body);
        content.push_str(&self.tail);
        Ok(content)
    }
}

/// What the code of Act `act_name` is told, in a vassal of Sess `sess` (or, for a worker or
/// cron job, of the Act's lead Sess): its settings module, its uploads, the manifest's `env`,
/// its empty secrets, and the private envdir holding the others.
pub(crate) fn act_environment(
    w: &mut IniWriter<'_>,
    production: &Production,
    act_name: &Slug,
    act: &backstage_core::Act,
    sess: &Slug,
) -> Result<(), Error> {
    if let Some(settings) = &act.settings {
        w.env("DJANGO_SETTINGS_MODULE", settings.as_str())?;
    }
    if let (Some(media), Some(dir)) = (&act.media, production.media_dir(act_name)) {
        w.env("BACKSTAGE_MEDIA_ROOT", dir.as_str())?;
        w.env("BACKSTAGE_MEDIA_URL", media.prefix.as_str())?;
    }
    for (key, value) in &act.env {
        w.env(key.as_str(), value.as_str())?;
    }
    // Secrets: an empty one is no secret and goes here (an empty envdir file would unset
    // it); the others are read raw from a private envdir at start, named only here.
    for (key, value) in &act.secrets.values {
        if value.expose().is_empty() {
            w.env(key.as_str(), "")?;
        }
    }
    if let Some(dir) = production.envdir_of(sess) {
        w.path("envdir", &dir)?;
    }
    Ok(())
}

pub(crate) struct IniWriter<'a> {
    sess: &'a str,
    pub(crate) body: String,
    pub(crate) needs_placeholder: bool,
}

impl<'a> IniWriter<'a> {
    pub(crate) fn new(sess: &'a str) -> Self {
        IniWriter {
            sess,
            body: String::with_capacity(1024),
            needs_placeholder: false,
        }
    }

    pub(crate) fn set(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let text = self.escape(key, value)?;
        for part in [key, " = ", &text, "\n"] {
            self.body.push_str(part);
        }
        Ok(())
    }

    pub(crate) fn path(&mut self, key: &str, value: &ConfPath) -> Result<(), Error> {
        self.set(key, value.as_str())
    }

    pub(crate) fn env(&mut self, key: &str, value: &str) -> Result<(), Error> {
        self.set("env", &format!("{key}={value}"))
    }

    fn escape<'v>(&mut self, key: &str, value: &'v str) -> Result<Cow<'v, str>, Error> {
        let unrepresentable = |why| Error::Unrepresentable {
            sess: self.sess.to_owned(),
            key: key.to_owned(),
            why,
        };
        if value.contains("%(") {
            return Err(unrepresentable(
                "uWSGI expands `%(name)` placeholders and has no escape for them",
            ));
        }
        if value.contains(['\n', '\r', '\0']) {
            return Err(unrepresentable(
                "a line break would inject ini configuration",
            ));
        }
        if value.trim() != value {
            return Err(unrepresentable(
                "uWSGI's ini reader strips leading and trailing whitespace",
            ));
        }
        if !value.contains(['%', '(']) {
            return Ok(Cow::Borrowed(value));
        }
        let mut out = String::with_capacity(value.len() + 8);
        let mut prev = None;
        for ch in value.chars() {
            match ch {
                '%' => out.push_str("%%"),
                '(' if matches!(prev, Some('$' | '@')) => {
                    let _ = write!(out, "%%({LEFT_PAREN_PLACEHOLDER})");
                    self.needs_placeholder = true;
                }
                _ => out.push(ch),
            }
            prev = Some(ch);
        }
        Ok(Cow::Owned(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> IniWriter<'static> {
        IniWriter {
            sess: "a",
            body: String::new(),
            needs_placeholder: false,
        }
    }

    #[test]
    fn escapes_percent_and_expansions() {
        let mut w = writer();
        assert_eq!(w.escape("k", "100% off").unwrap(), "100%% off");
        assert!(!w.needs_placeholder);
        assert_eq!(
            w.escape("k", "$(HOME) @(/etc/shadow) $$(X) (ok)").unwrap(),
            "$%%(backstage-lp)HOME) @%%(backstage-lp)/etc/shadow) $$%%(backstage-lp)X) (ok)"
        );
        assert!(w.needs_placeholder);
        assert!(w.escape("k", "%(socket)").is_err());
        assert!(w.escape("k", " x").is_err());
    }
}
