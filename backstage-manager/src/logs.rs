//! The logs of a Production: where they are, what time each line says, and all of them
//! interleaved by time, read once ([`Logs::tail`]) or followed ([`Logs::poll`]).
//!
//! Where the lines come from:
//!
//! | source | user mode | system mode |
//! |---|---|---|
//! | a Sess (every copy of it) | `<state_dir>/log/backstage.<production>.<sess>.log` | `/var/log/backstage/<production>/…` (the vassal's `logto`) |
//! | `nginx:access`, `nginx:error` | the Production's own nginx (`<state_dir>/log/nginx/`) | the server's nginx: the `access_log` and `error_log` of its `nginx.conf`, else Debian's `/var/log/nginx/` |
//!
//! A worker or cron job (`[acts.*.workers]`, `[acts.*.cron]`, SPEC §10) has a uWSGI log of its
//! own (`backstage.<production>.<worker|cron>.<act>.<name>.log`), named by its name or
//! `<act>.<name>`; an Act's sources include its workers' and cron jobs'.
//!
//! Each format has its own clock: uWSGI writes `[Tue Dec  2 06:30:00 2025]` (local time) in its
//! request lines and banners, nginx's access log `[02/Dec/2025:06:30:00 +0000]`, its error
//! log `2025/12/02 06:30:00` (local time) at the start. [`parse_time`] reads all three; a line
//! with none (a traceback, a banner) keeps its place after the line before it.
//!
//! A Gig's nginx lines are those of its Venue's names: the user-mode access log ends each line
//! with the request's `"$host"` (Backstage's `backstage` log format), the error log names it
//! (`server: …`, `host: "…"`). Debian's combined access format names no host, so in system
//! mode only `nginx` shows the access lines.
//!
//! ```no_run
//! # fn demo(production: &backstage_core::Production) -> Result<(), backstage_manager::ManagerError> {
//! use backstage_manager::logs::Logs;
//! let mut logs = Logs::open(production, &["club-a".to_owned()])?;
//! for line in logs.tail(20) {
//!     println!("{} {}", line.source, line.text);
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backstage_core::values::Slug;
use backstage_core::{Mode, Production};
use backstage_nginx::UserNginx;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::ManagerError;

/// A line longer than this is cut into pieces of this size (a log is not trusted to end its
/// lines).
pub const MAX_LINE: usize = 64 * 1024;

/// What kind of log a source is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SourceKind {
    /// A Sess' uWSGI log, shared by its copies.
    Sess,
    /// nginx's access log.
    NginxAccess,
    /// nginx's error log.
    NginxError,
}

/// One log file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// How its lines are labelled: the Sess' name, `nginx:access` or `nginx:error`.
    pub name: Arc<str>,
    /// The file.
    pub path: PathBuf,
    /// What it is.
    pub kind: SourceKind,
    /// For nginx's logs: only the lines of requests to these names (a Gig's Venue); `None` for
    /// every line.
    pub hosts: Option<Vec<String>>,
}

impl Source {
    /// Whether `line` (its first line, for a record of several) is one this source shows.
    fn shows(&self, line: &str) -> bool {
        let Some(hosts) = &self.hosts else {
            return true;
        };
        let host = match self.kind {
            SourceKind::NginxAccess => access_host(line),
            SourceKind::NginxError => error_host(line),
            SourceKind::Sess => return true,
        };
        host.is_some_and(|h| hosts.iter().any(|name| host_matches(name, h)))
    }
}

/// One line of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its source's name.
    pub source: Arc<str>,
    /// The time the line itself says, if it says one.
    pub time: Option<Timestamp>,
    /// The line, without its line break (bytes that are not UTF-8 replaced).
    pub text: String,
}

/// The names `logs` accepts: every Sess, Act and Gig, and `nginx`.
pub fn known_names(production: &Production) -> Vec<String> {
    let mut names: Vec<String> = production
        .sess
        .keys()
        .chain(production.acts.keys())
        .chain(production.gigs.keys())
        .map(ToString::to_string)
        .collect();
    names.extend(work_logs(production).into_iter().map(|(n, _, _, _)| n));
    names.push("nginx".to_owned());
    names.sort();
    names.dedup();
    names
}

/// The sources of `names` (none: everything): a Sess' log; an Act's Sess; a Gig's Sess and its
/// Venue's nginx lines; `nginx`'s access and error logs. A name that is none of these is an
/// error naming the closest one.
pub fn sources(production: &Production, names: &[String]) -> Result<Vec<Source>, ManagerError> {
    let mut sess: Vec<&Slug> = Vec::new();
    let work = work_logs(production);
    let mut work_wanted: Vec<usize> = Vec::new();
    // nginx: None = not asked for; Some(None) = every line; Some(Some(names)) = those hosts.
    let mut nginx: Option<Option<Vec<String>>> = None;
    let everything = names.is_empty();
    if everything {
        sess.extend(production.sess.keys());
        work_wanted.extend(0..work.len());
        nginx = Some(None);
    }
    for name in names {
        let mut found = false;
        if name == "nginx" {
            nginx = Some(None);
            found = true;
        }
        if let Some((slug, _)) = production.sess.get_key_value(name.as_str()) {
            sess.push(slug);
            found = true;
        }
        for (i, (label, act, plain, _)) in work.iter().enumerate() {
            if label == name || plain == name || act == name {
                work_wanted.push(i);
                found = true;
            }
        }
        if production.acts.contains_key(name.as_str()) {
            sess.extend(
                production
                    .sess
                    .iter()
                    .filter(|(_, s)| s.act.as_str() == name)
                    .map(|(k, _)| k),
            );
            found = true;
        }
        if let Some(gig) = production.gigs.get(name.as_str()) {
            sess.extend(gig.sess.iter().map(|(s, _)| s));
            let names = production
                .venues
                .get(&gig.venue)
                .map(|v| {
                    v.server_names
                        .iter()
                        .map(|n| n.as_str().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            nginx = Some(match nginx {
                Some(None) => None,
                Some(Some(mut hosts)) => {
                    hosts.extend::<Vec<String>>(names);
                    Some(hosts)
                }
                None => Some(names),
            });
            found = true;
        }
        if !found {
            let known = known_names(production);
            let suggestion =
                backstage_core::suggest(name, known.iter().map(String::as_str)).map(str::to_owned);
            return Err(ManagerError::UnknownLogName {
                name: name.clone(),
                suggestion,
            });
        }
    }
    sess.sort();
    sess.dedup();
    let mut out: Vec<Source> = sess
        .into_iter()
        .map(|s| Source {
            name: Arc::from(s.as_str()),
            path: production.log_file(s).as_path().to_owned(),
            kind: SourceKind::Sess,
            hosts: None,
        })
        .collect();
    work_wanted.sort_unstable();
    work_wanted.dedup();
    for i in work_wanted {
        let (label, _, _, path) = &work[i];
        out.push(Source {
            name: Arc::from(label.as_str()),
            path: path.clone(),
            kind: SourceKind::Sess,
            hosts: None,
        });
    }
    if let Some(hosts) = nginx {
        let (access, error) = nginx_logs(production);
        for (name, path, kind) in [
            ("nginx:access", access, SourceKind::NginxAccess),
            ("nginx:error", error, SourceKind::NginxError),
        ] {
            out.push(Source {
                name: Arc::from(name),
                path,
                kind,
                hosts: hosts.clone(),
            });
        }
    }
    Ok(out)
}

/// Every worker and cron job: (`<act>.<name>`, its Act, its name, its log).
fn work_logs(production: &Production) -> Vec<(String, String, String, PathBuf)> {
    use backstage_core::work::WorkKind;
    let mut out = Vec::new();
    for (a, act) in &production.acts {
        let all = act
            .workers
            .keys()
            .map(|n| (WorkKind::Worker, n))
            .chain(act.cron.keys().map(|n| (WorkKind::Cron, n)));
        for (kind, n) in all {
            out.push((
                format!("{a}.{n}"),
                a.to_string(),
                n.to_string(),
                production.work_log(kind, a, n).as_path().to_owned(),
            ));
        }
    }
    out
}

/// nginx's access and error logs: the Production's own nginx in user mode, the server's in
/// system mode.
fn nginx_logs(production: &Production) -> (PathBuf, PathBuf) {
    if production.mode == Mode::User {
        let nginx = UserNginx::of(production);
        return (nginx.access_log, nginx.error_log);
    }
    let conf = production.layout.nginx_conf.as_ref().map_or_else(
        || PathBuf::from("/etc/nginx/nginx.conf"),
        |c| c.as_path().to_owned(),
    );
    let text = std::fs::read_to_string(&conf).unwrap_or_default();
    (
        conf_log(&text, "access_log").unwrap_or_else(|| "/var/log/nginx/access.log".into()),
        conf_log(&text, "error_log").unwrap_or_else(|| "/var/log/nginx/error.log".into()),
    )
}

/// The file of the first `directive` (`access_log`, `error_log`) in an nginx.conf that names
/// one (not `off`, `syslog:…` or `stderr`).
fn conf_log(conf: &str, directive: &str) -> Option<PathBuf> {
    conf.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.strip_prefix(directive))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|arg| arg.trim_end_matches(';').trim_matches(['"', '\'']))
        .find(|arg| arg.starts_with('/') && !arg.starts_with("/dev/"))
        .map(PathBuf::from)
}

/// The host of an access-log line in Backstage's `backstage` format (combined, then
/// `"$host"`): its fourth quoted field.
pub fn access_host(line: &str) -> Option<&str> {
    let fields: Vec<&str> = line.split('"').collect();
    (fields.len() == 9).then(|| fields[7])
}

/// The host an nginx error-log line names: `host: "…"`, else `server: …,`.
pub fn error_host(line: &str) -> Option<&str> {
    if let Some((_, rest)) = line.split_once(", host: \"") {
        return rest.split('"').next();
    }
    let (_, rest) = line.split_once(", server: ")?;
    rest.split(',').next()
}

/// Whether `host` (from a request, maybe with `:port`) is `name` (a Venue's server name,
/// maybe `*.example.com`).
fn host_matches(name: &str, host: &str) -> bool {
    // `name:8080` and `[::1]:8080` lose their port; a bare `::1` has none.
    let host = match host.rsplit_once(':') {
        Some((h, port))
            if !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (h.ends_with(']') || !h.contains(':')) =>
        {
            h
        }
        _ => host,
    };
    match name.strip_prefix("*.") {
        Some(domain) => host.len().checked_sub(domain.len() + 1).is_some_and(|cut| {
            host.is_char_boundary(cut) && host[cut..].eq_ignore_ascii_case(&format!(".{domain}"))
        }),
        None => host.eq_ignore_ascii_case(name),
    }
}

/// The time a log line says, if it says one: uWSGI's `[Tue Dec  2 06:30:00 2025]` (local time,
/// anywhere in the line), nginx's access-log `[02/Dec/2025:06:30:00 +0000]`, nginx's error-log
/// `2025/12/02 06:30:00` (local time, at the start). `tz` is the local time zone.
pub fn parse_time(line: &str, tz: &TimeZone) -> Option<Timestamp> {
    use jiff::fmt::strtime;
    let local = |dt: jiff::civil::DateTime| tz.to_ambiguous_timestamp(dt).compatible().ok();
    // nginx's error log: "2025/12/02 06:30:00 [error] …"
    if let Some(head) = line.get(..19)
        && head.as_bytes()[4] == b'/'
        && let Ok(dt) = strtime::parse("%Y/%m/%d %H:%M:%S", head).and_then(|t| t.to_datetime())
    {
        return local(dt);
    }
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(']') else {
            break;
        };
        let inside = &rest[..close];
        match inside.len() {
            // nginx's access log: "02/Dec/2025:06:30:00 +0000"
            26 => {
                if let Ok(t) =
                    strtime::parse("%d/%b/%Y:%H:%M:%S %z", inside).and_then(|t| t.to_timestamp())
                {
                    return Some(t);
                }
            }
            // uWSGI (C's asctime): "Tue Dec  2 06:30:00 2025"
            24 => {
                if let Ok(dt) =
                    strtime::parse("%a %b %e %H:%M:%S %Y", inside).and_then(|t| t.to_datetime())
                {
                    return local(dt);
                }
            }
            _ => {}
        }
    }
    None
}

/// A log file being read: where it stands, and the file it is (replaced when rotated).
#[derive(Debug)]
struct Tracked {
    source: Source,
    file: Option<File>,
    /// (device, inode) of `file`.
    identity: Option<(u64, u64)>,
    /// How far `file` has been read.
    offset: u64,
    /// The end of a line not finished yet.
    partial: Vec<u8>,
    /// Whether the line before the next one was shown (a line without a time follows it).
    shown: bool,
}

impl Tracked {
    fn open(source: Source) -> Result<Self, ManagerError> {
        let mut t = Tracked {
            source,
            file: None,
            identity: None,
            offset: 0,
            partial: Vec::new(),
            shown: true,
        };
        match File::open(&t.source.path) {
            Ok(f) => {
                let meta = f.metadata().map_err(io_err("read", &t.source.path))?;
                t.identity = Some((meta.dev(), meta.ino()));
                t.offset = meta.len();
                t.file = Some(f);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open", &t.source.path)(e)),
        }
        Ok(t)
    }

    /// Up to `n` of the last lines before the point it was opened at.
    fn tail(&self, n: usize) -> Vec<Vec<u8>> {
        let Some(file) = &self.file else {
            return Vec::new();
        };
        // A filtered source shows only some of its lines: look further back for n of them.
        let n = if self.source.hosts.is_some() {
            n.saturating_mul(20)
        } else {
            n
        };
        read_tail(file, self.offset, n).unwrap_or_default()
    }

    /// Lines appended since the last read; follows a replaced (rotated, re-created) file
    /// after reading the old one to its end, and starts over when the file was truncated.
    fn read_new(&mut self) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        self.read_appended(&mut lines);
        if let Ok(meta) = std::fs::metadata(&self.source.path) {
            let identity = (meta.dev(), meta.ino());
            if self.identity != Some(identity) {
                if let Ok(f) = File::open(&self.source.path) {
                    self.finish_partial(&mut lines);
                    self.file = Some(f);
                    self.identity = Some(identity);
                    self.offset = 0;
                    self.read_appended(&mut lines);
                }
            } else if meta.len() < self.offset {
                self.offset = 0;
                self.partial.clear();
                self.read_appended(&mut lines);
            }
        }
        lines
    }

    fn read_appended(&mut self, lines: &mut Vec<Vec<u8>>) {
        let Some(file) = &mut self.file else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = Vec::new();
        // A bounded read per poll: a huge burst is read over several polls.
        let Ok(read) = file.take(8 * 1024 * 1024).read_to_end(&mut buf) else {
            return;
        };
        self.offset += read as u64;
        let mut rest = &buf[..];
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            self.partial.extend_from_slice(&rest[..nl]);
            lines.push(std::mem::take(&mut self.partial));
            rest = &rest[nl + 1..];
        }
        self.partial.extend_from_slice(rest);
        while self.partial.len() >= MAX_LINE {
            let tail = self.partial.split_off(MAX_LINE);
            lines.push(std::mem::replace(&mut self.partial, tail));
        }
    }

    /// A replaced file's last line, even without its line break.
    fn finish_partial(&mut self, lines: &mut Vec<Vec<u8>>) {
        if !self.partial.is_empty() {
            lines.push(std::mem::take(&mut self.partial));
        }
    }
}

/// The last `n` lines of `file` before `end` (the last line counts when it has no line break).
fn read_tail(file: &File, end: u64, n: usize) -> std::io::Result<Vec<Vec<u8>>> {
    use std::os::unix::fs::FileExt as _;
    const BLOCK: u64 = 64 * 1024;
    if n == 0 || end == 0 {
        return Ok(Vec::new());
    }
    let mut start = end;
    let mut buf: Vec<u8> = Vec::new();
    // Back a block at a time until the chunk holds n line breaks before its last line, or the
    // file starts, or a line is longer than anyone reads.
    loop {
        let from = start.saturating_sub(BLOCK);
        let mut block = vec![0; usize::try_from(start - from).unwrap_or(0)];
        file.read_exact_at(&mut block, from)?;
        block.extend_from_slice(&buf);
        buf = block;
        start = from;
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let breaks = memchr::memchr_iter(b'\n', body).count();
        if start == 0 || breaks >= n || buf.len() > n.saturating_mul(MAX_LINE) {
            break;
        }
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
    let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    // Unless the file starts here, the first piece is the end of a longer line.
    if start > 0 && lines.len() > 1 {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .map(|l| l[..l.len().min(MAX_LINE)].to_vec())
        .collect())
}

/// Every source's log, read and followed together.
#[derive(Debug)]
pub struct Logs {
    tracked: Vec<Tracked>,
    tz: TimeZone,
    /// The time of each source's last line that had one (a line without follows it).
    last_time: Vec<Option<Timestamp>>,
}

impl Logs {
    /// Opens the logs of `names` (see [`sources`]) at their current ends.
    pub fn open(production: &Production, names: &[String]) -> Result<Logs, ManagerError> {
        Logs::of_sources(sources(production, names)?)
    }

    /// Opens `sources` at their current ends. A file that does not exist yet is read from its
    /// start once it does.
    pub fn of_sources(sources: Vec<Source>) -> Result<Logs, ManagerError> {
        let tracked = sources
            .into_iter()
            .map(Tracked::open)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Logs {
            last_time: vec![None; tracked.len()],
            tracked,
            tz: TimeZone::try_system().unwrap_or(TimeZone::UTC),
        })
    }

    /// The sources, and whether each one's file exists.
    pub fn sources(&self) -> impl Iterator<Item = (&Source, bool)> {
        self.tracked.iter().map(|t| (&t.source, t.file.is_some()))
    }

    /// The last `n` lines before the logs were opened, of every source together, in time order.
    pub fn tail(&mut self, n: usize) -> Vec<Line> {
        let per_source: Vec<Vec<Vec<u8>>> = self.tracked.iter().map(|t| t.tail(n)).collect();
        // What came before the tail is unknown: its first lines without a time sort first.
        self.last_time.fill(None);
        let mut merged = self.merge(per_source);
        let skip = merged.len().saturating_sub(n);
        merged.drain(..skip);
        merged
    }

    /// The lines written since the last call (or since opening), in time order.
    pub fn poll(&mut self) -> Vec<Line> {
        let per_source: Vec<Vec<Vec<u8>>> =
            self.tracked.iter_mut().map(Tracked::read_new).collect();
        self.merge(per_source)
    }

    /// Interleaves each source's lines (each in file order) by time: a line without a time
    /// sorts with the line before it; ties keep the sources' order.
    fn merge(&mut self, per_source: Vec<Vec<Vec<u8>>>) -> Vec<Line> {
        let mut queues: Vec<std::collections::VecDeque<(Option<Timestamp>, Line)>> = Vec::new();
        for (i, raw) in per_source.into_iter().enumerate() {
            let tracked = &mut self.tracked[i];
            let mut queue = std::collections::VecDeque::with_capacity(raw.len());
            for bytes in raw {
                let mut text = String::from_utf8_lossy(&bytes).into_owned();
                if text.ends_with('\r') {
                    text.pop();
                }
                let time = parse_time(&text, &self.tz);
                if time.is_some() {
                    self.last_time[i] = time;
                    tracked.shown = tracked.source.shows(&text);
                }
                if !tracked.shown {
                    continue;
                }
                queue.push_back((
                    self.last_time[i],
                    Line {
                        source: tracked.source.name.clone(),
                        time,
                        text,
                    },
                ));
            }
            queues.push(queue);
        }
        let total = queues.iter().map(std::collections::VecDeque::len).sum();
        let mut out = Vec::with_capacity(total);
        // A k-way merge: keeps every source's own order even where its clock went backwards.
        let mut heads: BTreeSet<(Option<Timestamp>, usize)> = BTreeSet::new();
        for (i, q) in queues.iter().enumerate() {
            if let Some((key, _)) = q.front() {
                heads.insert((*key, i));
            }
        }
        while let Some((_, i)) = heads.pop_first() {
            let (_, line) = queues[i].pop_front().expect("a head has a line");
            out.push(line);
            if let Some((key, _)) = queues[i].front() {
                heads.insert((*key, i));
            }
        }
        out
    }
}

fn io_err<'p>(
    action: &'static str,
    path: &'p Path,
) -> impl Fn(std::io::Error) -> ManagerError + 'p {
    move |source| ManagerError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn reads_each_format_s_time() {
        let tz = TimeZone::UTC;
        let uwsgi = "[pid: 41|app: 0|req: 1/1] 127.0.0.1 () {38 vars in 519 bytes} [Tue Dec  2 06:30:01 2025] GET /whoami => generated 90 bytes in 3 msecs (HTTP/1.0 200) 2 headers in 79 bytes (1 switches on core 0)";
        assert_eq!(parse_time(uwsgi, &tz), Some(utc("2025-12-02T06:30:01Z")));
        let banner = "*** Starting uWSGI 2.0.28 (64bit) on [Wed Nov 12 17:05:09 2025] ***";
        assert_eq!(parse_time(banner, &tz), Some(utc("2025-11-12T17:05:09Z")));
        let access = "127.0.0.1 - - [02/Dec/2025:07:30:02 +0100] \"GET / HTTP/1.0\" 200 5 \"-\" \"curl\" \"jazz.localhost\"";
        assert_eq!(parse_time(access, &tz), Some(utc("2025-12-02T06:30:02Z")));
        let error = "2025/12/02 06:30:03 [error] 7#7: *1 connect() failed, client: 127.0.0.1, server: jazz.localhost, request: \"GET / HTTP/1.0\", host: \"jazz.localhost:8080\"";
        assert_eq!(parse_time(error, &tz), Some(utc("2025-12-02T06:30:03Z")));
        assert_eq!(parse_time("Traceback (most recent call last):", &tz), None);
        assert_eq!(parse_time("[]", &tz), None);
        let paris = TimeZone::get("Europe/Paris").unwrap_or(TimeZone::UTC);
        if paris != TimeZone::UTC {
            assert_eq!(
                parse_time("2025/07/01 08:00:00 [notice] 1#1: start", &paris),
                Some(utc("2025-07-01T06:00:00Z"))
            );
        }
    }

    #[test]
    fn finds_the_host_of_nginx_lines() {
        let access = "127.0.0.1 - - [02/Dec/2025:07:30:02 +0100] \"GET / HTTP/1.0\" 200 5 \"-\" \"curl\" \"jazz.localhost\"";
        assert_eq!(access_host(access), Some("jazz.localhost"));
        let combined =
            "127.0.0.1 - - [02/Dec/2025:07:30:02 +0100] \"GET / HTTP/1.0\" 200 5 \"-\" \"curl\"";
        assert_eq!(access_host(combined), None);
        let error = "2025/12/02 06:30:03 [error] 7#7: *1 x, client: 127.0.0.1, server: jazz.localhost, request: \"GET / HTTP/1.0\", host: \"www.jazz.localhost:8080\"";
        assert_eq!(error_host(error), Some("www.jazz.localhost:8080"));
        assert_eq!(
            error_host("2025/12/02 06:30:03 [x] 7#7: a, server: blues.localhost, b"),
            Some("blues.localhost")
        );
        assert!(host_matches("jazz.localhost", "JAZZ.localhost:8080"));
        assert!(host_matches("*.jazz.localhost", "a.b.jazz.localhost"));
        assert!(!host_matches("*.jazz.localhost", "jazz.localhost"));
        assert!(!host_matches("jazz.localhost", "blues.localhost"));
    }

    #[test]
    fn reads_system_mode_log_paths_from_nginx_conf() {
        let conf = "user www-data;\nerror_log syslog:server=x;\nerror_log /var/log/nginx/err.log warn;\nhttp {\n  # access_log /nope;\n  access_log \"/srv/log/access.log\" combined;\n}\n";
        assert_eq!(
            conf_log(conf, "access_log"),
            Some("/srv/log/access.log".into())
        );
        assert_eq!(
            conf_log(conf, "error_log"),
            Some("/var/log/nginx/err.log".into())
        );
        assert_eq!(conf_log("access_log off;", "access_log"), None);
    }

    fn source(dir: &Path, name: &str) -> Source {
        Source {
            name: Arc::from(name),
            path: dir.join(format!("{name}.log")),
            kind: SourceKind::Sess,
            hosts: None,
        }
    }

    #[test]
    fn merges_by_time_keeping_untimed_lines_with_theirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.log"),
            "[pid: 1|app: 0|req: 1/1] x [Tue Dec  2 06:30:01 2025] GET /1\nTraceback\n  line\n[pid: 1|app: 0|req: 2/2] x [Tue Dec  2 06:30:04 2025] GET /4\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b.log"),
            "2025/12/02 06:30:02 [error] two\n2025/12/02 06:30:03 [error] three\n",
        )
        .unwrap();
        let mut logs =
            Logs::of_sources(vec![source(dir.path(), "a"), source(dir.path(), "b")]).unwrap();
        logs.tz = TimeZone::UTC;
        let texts: Vec<String> = logs.tail(10).into_iter().map(|l| l.text).collect();
        assert_eq!(texts.len(), 6);
        assert!(texts[0].ends_with("GET /1") && texts[1] == "Traceback" && texts[2] == "  line");
        assert!(
            texts[3].ends_with("two")
                && texts[4].ends_with("three")
                && texts[5].ends_with("GET /4")
        );
        let last: Vec<String> = logs.tail(2).into_iter().map(|l| l.text).collect();
        assert!(
            last[0].ends_with("three") && last[1].ends_with("GET /4"),
            "{last:?}"
        );
    }

    #[test]
    fn follows_appends_replacements_and_truncation() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        std::fs::write(&path, "old\n").unwrap();
        let mut logs = Logs::of_sources(vec![source(dir.path(), "a")]).unwrap();
        assert!(logs.poll().is_empty());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"one\ntw").unwrap();
        let texts = |lines: Vec<Line>| lines.into_iter().map(|l| l.text).collect::<Vec<_>>();
        assert_eq!(texts(logs.poll()), ["one"]);
        f.write_all(b"o\n").unwrap();
        assert_eq!(texts(logs.poll()), ["two"]);
        // Rotated: the old file gets a last line, then a new one takes its name.
        f.write_all(b"last\n").unwrap();
        std::fs::rename(&path, dir.path().join("a.log.1")).unwrap();
        std::fs::write(&path, "new\n").unwrap();
        assert_eq!(texts(logs.poll()), ["last", "new"]);
        // Truncated in place (copytruncate).
        std::fs::write(&path, "").unwrap();
        assert!(logs.poll().is_empty());
        std::fs::write(&path, "again\n").unwrap();
        assert_eq!(texts(logs.poll()), ["again"]);
        // A file that did not exist at first.
        let mut logs = Logs::of_sources(vec![source(dir.path(), "later")]).unwrap();
        assert_eq!(logs.sources().next().map(|(_, exists)| exists), Some(false));
        std::fs::write(dir.path().join("later.log"), "hello\n").unwrap();
        assert_eq!(texts(logs.poll()), ["hello"]);
    }

    #[test]
    fn tails_long_files_and_long_lines() {
        use std::fmt::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..50_000 {
            let _ = writeln!(text, "line {i}");
        }
        text.push_str(&"x".repeat(200_000));
        std::fs::write(dir.path().join("a.log"), &text).unwrap();
        let mut logs = Logs::of_sources(vec![source(dir.path(), "a")]).unwrap();
        let lines = logs.tail(3);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].text, "line 49998");
        assert_eq!(lines[2].text.len(), MAX_LINE);
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let line = String::from_utf8_lossy(&bytes);
            let _ = parse_time(&line, &TimeZone::UTC);
            let _ = access_host(&line);
            let _ = error_host(&line);
            let _ = host_matches("*.jazz.localhost", &line);
        }

        #[test]
        fn near_misses_of_the_formats_never_panic(
            line in "(\\[|\\]|[0-9]{1,4}|/|:| |[A-Z][a-z]{2}|\\+|-|\"|, host: |, server: )*"
        ) {
            let _ = parse_time(&line, &TimeZone::UTC);
            let _ = access_host(&line);
            let _ = error_host(&line);
        }

        #[test]
        fn reading_any_bytes_never_panics(
            first in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            more in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            n in 0usize..20,
        ) {
            use std::io::Write as _;
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("a.log"), &first).unwrap();
            let mut logs = Logs::of_sources(vec![source(dir.path(), "a")]).unwrap();
            proptest::prop_assert!(logs.tail(n).len() <= n);
            std::fs::OpenOptions::new().append(true).open(dir.path().join("a.log")).unwrap()
                .write_all(&more).unwrap();
            let _ = logs.poll();
        }
    }
}
