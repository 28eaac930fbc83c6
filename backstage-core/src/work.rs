//! Workers and scheduled jobs (`[acts.X.workers.NAME]`, `[acts.X.cron.NAME]`, SPEC §10): what
//! the manifest says of them, the five-field cron schedule, and the files each one runs from.
//!
//! Each worker and each cron job runs in a socket-less vassal of its own under the Emperor,
//! named after what it says (`backstage.<production>.worker.<act>.<name>.<id>.ini`, the id the
//! hash of its content, as a Sess' copy): a new release is a new vassal, started beside the old
//! one, which is then retired.

use std::collections::BTreeSet;
use std::fmt;

use crate::model::Production;
use crate::values::{ConfPath, InstanceId, Slug};

/// Seconds a worker has to stop (Celery's warm shutdown finishes the task in hand), unless the
/// manifest says otherwise.
pub const DEFAULT_STOP_TIMEOUT: u16 = 30;

/// The uWSGI cron lines one schedule may expand into (see [`Schedule::cron_lines`]).
pub const MAX_CRON_LINES: usize = 1000;

/// A long-running worker of an Act (`[acts.X.workers.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Worker {
    /// The shell command, run in the Act's live release (`celery -A club worker`).
    pub command: String,
    /// How many instances run (default 1); each gets `BACKSTAGE_WORKER_INSTANCE` = 1, 2, ….
    pub processes: u16,
    /// The signal that asks it to stop (default SIGTERM, 15).
    pub stop_signal: StopSignal,
    /// Seconds it has to stop before it is killed.
    pub stop_timeout: u16,
}

/// A scheduled job of an Act (`[acts.X.cron.NAME]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CronJob {
    /// When it runs.
    pub schedule: Schedule,
    /// The shell command, run in the Act's live release.
    pub command: String,
}

/// A stop signal, by name (`"SIGTERM"`, `"TERM"`) or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopSignal(pub i32);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(15)
    }
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("KILL", 9),
    ("USR1", 10),
    ("USR2", 12),
    ("TERM", 15),
];

impl StopSignal {
    /// Parses `SIGTERM`, `TERM` or `15`.
    pub fn parse(s: &str) -> Result<StopSignal, String> {
        let name = s.strip_prefix("SIG").unwrap_or(s);
        if let Some((_, n)) = SIGNALS.iter().find(|(k, _)| *k == name) {
            return Ok(StopSignal(*n));
        }
        match s.parse::<i32>() {
            Ok(n) if (1..=64).contains(&n) => Ok(StopSignal(n)),
            _ => Err(format!(
                "unknown signal; use one of {}",
                SIGNALS
                    .iter()
                    .map(|(k, _)| format!("SIG{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

/// What runs: a worker or a cron job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkKind {
    /// `[acts.X.workers.NAME]`.
    Worker,
    /// `[acts.X.cron.NAME]`.
    Cron,
}

impl WorkKind {
    /// `worker` or `cron`, as in file names and `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkKind::Worker => "worker",
            WorkKind::Cron => "cron",
        }
    }
}

/// One vassal of a worker or cron job: its files, from its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkInstance {
    /// Worker or cron job.
    pub kind: WorkKind,
    /// Its Act.
    pub act: Slug,
    /// Its name.
    pub name: Slug,
    /// The hash of its vassal's content.
    pub id: InstanceId,
    /// The vassal.
    pub vassal: ConfPath,
    /// The master's pid file.
    pub pid_file: ConfPath,
}

impl Production {
    fn work_stem(&self, kind: WorkKind, act: &Slug, name: &Slug) -> String {
        format!("backstage.{}.{}.{act}.{name}", self.name, kind.as_str())
    }

    /// The vassal (and pid file) of a worker or cron job with content id `id`.
    pub fn work_instance(
        &self,
        kind: WorkKind,
        act: &Slug,
        name: &Slug,
        id: &InstanceId,
    ) -> WorkInstance {
        let stem = self.work_stem(kind, act, name);
        let file = |suffix: &str| format!("{stem}.{}{suffix}", id.as_str());
        WorkInstance {
            kind,
            act: act.clone(),
            name: name.clone(),
            id: id.clone(),
            vassal: join(&self.layout.vassal_dir, &file(".ini")),
            pid_file: join(&self.layout.run_dir, &file(".pid")),
        }
    }

    /// The worker or cron job a vassal file belongs to, from its name
    /// (`backstage.<production>.<worker|cron>.<act>.<name>.<id>.ini`); `None` for any other.
    pub fn work_of_vassal(&self, path: &std::path::Path) -> Option<WorkInstance> {
        let file = path.file_name()?.to_str()?;
        let stem = file
            .strip_prefix("backstage.")?
            .strip_prefix(self.name.as_str())?
            .strip_prefix('.')?
            .strip_suffix(".ini")?;
        let mut parts = stem.split('.');
        let kind = match parts.next()? {
            "worker" => WorkKind::Worker,
            "cron" => WorkKind::Cron,
            _ => return None,
        };
        let act: Slug = parts.next()?.parse().ok()?;
        let name: Slug = parts.next()?.parse().ok()?;
        let id: InstanceId = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        let w = self.work_instance(kind, &act, &name, &id);
        (w.vassal.as_path() == path).then_some(w)
    }

    /// The log of a worker or cron job, shared by its vassals.
    pub fn work_log(&self, kind: WorkKind, act: &Slug, name: &Slug) -> ConfPath {
        join(
            &self.layout.log_dir,
            &format!("{}.log", self.work_stem(kind, act, name)),
        )
    }

    /// The Sess that lends an Act's workers its Stage, account and secrets: its first one.
    pub fn lead_sess(&self, act: &Slug) -> Option<(&Slug, &crate::model::Sess)> {
        self.sess.iter().find(|(_, s)| &s.act == act)
    }

    /// Where a cron job's wrapper records its last run, and its lock (never two runs at once):
    /// in its lead Sess' run dir, which the job's account may write to (system mode).
    pub fn cron_files(&self, act: &Slug, name: &Slug) -> Option<(ConfPath, ConfPath)> {
        let (lead, _) = self.lead_sess(act)?;
        let dir = Production::sess_run_dir(&self.layout, self.mode, lead);
        let stem = self.work_stem(WorkKind::Cron, act, name);
        Some((
            join(&dir, &format!("{stem}.last")),
            join(&dir, &format!("{stem}.lock")),
        ))
    }
}

/// The name of the renewal job's files: `backstage.<production>.tls-renew.*`.
pub const RENEWAL: &str = "tls-renew";

impl Production {
    /// The vassal of the job that runs `backstage tls renew` (ACME Venues).
    pub fn renewal_vassal(&self) -> ConfPath {
        join(
            &self.layout.vassal_dir,
            &format!("backstage.{}.{RENEWAL}.ini", self.name),
        )
    }

    /// The renewal job's log.
    pub fn renewal_log(&self) -> ConfPath {
        join(
            &self.layout.log_dir,
            &format!("backstage.{}.{RENEWAL}.log", self.name),
        )
    }

    /// The renewal job's pid file.
    pub fn renewal_pid(&self) -> ConfPath {
        join(
            &self.layout.run_dir,
            &format!("backstage.{}.{RENEWAL}.pid", self.name),
        )
    }
}

fn join(dir: &ConfPath, file: &str) -> ConfPath {
    ConfPath::resolve(dir, file, true).expect("a generated name stays in its directory")
}

/// A five-field cron schedule (`minute hour day-of-month month day-of-week`), or one of
/// `@hourly`, `@daily`, `@midnight`, `@weekly`, `@monthly`, `@yearly`, `@annually`. Fields
/// take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, and names for months
/// (`jan`) and days (`mon`; 0 and 7 are Sunday). Times are the server's local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    fields: [BTreeSet<u8>; 5],
    /// Day-of-month and day-of-week as written start with `*` (cron's rule: when neither
    /// does, a day matching either runs the job).
    dom_star: bool,
    dow_star: bool,
}

/// A schedule that does not parse: the field and the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    /// `minute`, `hour`, `day-of-month`, `month`, `day-of-week`, or `schedule` for the whole.
    pub field: &'static str,
    /// The offending value.
    pub value: String,
    /// Why.
    pub why: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`: {}", self.field, self.value, self.why)
    }
}

const FIELDS: [(&str, u8, u8); 5] = [
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Schedule {
    /// Parses a schedule.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let expanded = match text.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            t if t.starts_with('@') => {
                return Err(ScheduleError {
                    field: "schedule",
                    value: t.to_owned(),
                    why: "unknown shorthand; use @hourly, @daily, @weekly, @monthly or @yearly"
                        .to_owned(),
                });
            }
            t => t,
        };
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(ScheduleError {
                field: "schedule",
                value: text.to_owned(),
                why: format!(
                    "has {} fields; cron's five are minute, hour, day-of-month, month and day-of-week (`17 3 * * *`)",
                    parts.len()
                ),
            });
        }
        let mut fields: [BTreeSet<u8>; 5] = Default::default();
        for (i, part) in parts.iter().enumerate() {
            fields[i] = parse_field(i, part)?;
        }
        // Sunday is 0 (uWSGI before 2.0.29 knows no 7).
        if fields[4].remove(&7) {
            fields[4].insert(0);
        }
        let schedule = Schedule {
            text: text.to_owned(),
            fields,
            dom_star: parts[2].starts_with('*'),
            dow_star: parts[4].starts_with('*'),
        };
        let uwsgi_or = !schedule.dom_star && !schedule.dow_star;
        // A stepped day-of-month (`*/2`) with a day of week means both (cron's rule), which
        // uWSGI's cron (day and week both set: either) cannot say.
        if !uwsgi_or
            && !schedule.full(2)
            && !schedule.full(4)
            && schedule.uwsgi_values(4).iter().all(|v| *v >= 0)
        {
            return Err(ScheduleError {
                field: "day-of-month",
                value: parts[2].to_owned(),
                why: "a stepped day-of-month with a day-of-week is not supported; give one of them as `*`".to_owned(),
            });
        }
        let n = schedule.cron_lines().len();
        if n > MAX_CRON_LINES {
            return Err(ScheduleError {
                field: "schedule",
                value: text.to_owned(),
                why: format!(
                    "expands into {n} uWSGI cron lines; at most {MAX_CRON_LINES} (use steps `*/n` on minutes and hours)"
                ),
            });
        }
        Ok(schedule)
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn full(&self, i: usize) -> bool {
        let (_, min, max) = FIELDS[i];
        let max = if i == 4 { 6 } else { max };
        (min..=max).all(|v| self.fields[i].contains(&v))
    }

    /// A field in uWSGI's terms: `[-1]` for any, `[-n]` for every n-th from 0 (minute, hour
    /// and day-of-week only: uWSGI's `-n` is the value modulo n, and days and months start
    /// at 1), else the values.
    fn uwsgi_values(&self, i: usize) -> Vec<i32> {
        if self.full(i) {
            return vec![-1];
        }
        let set = &self.fields[i];
        let (_, _, max) = FIELDS[i];
        let max = if i == 4 { 6 } else { max };
        if matches!(i, 0 | 1 | 4)
            && set.contains(&0)
            && let Some(&step) = set.iter().nth(1)
            && set.iter().copied().eq((0..=max).step_by(usize::from(step)))
        {
            return vec![-i32::from(step)];
        }
        set.iter().map(|v| i32::from(*v)).collect()
    }

    /// The `cron2` key lists that together run exactly when the schedule says:
    /// `minute=…,hour=…,day=…,month=…,week=…`. Lists and ranges become several lines; a
    /// day-of-month and a day-of-week both given become two sets of lines, one with each.
    pub fn cron_lines(&self) -> Vec<String> {
        let minutes = self.uwsgi_values(0);
        let hours = self.uwsgi_values(1);
        let months = self.uwsgi_values(3);
        let days = self.uwsgi_values(2);
        let weeks = self.uwsgi_values(4);
        let groups: Vec<(Vec<i32>, Vec<i32>)> = if !self.dom_star && !self.dow_star {
            vec![(days, vec![-1]), (vec![-1], weeks)]
        } else {
            vec![(days, weeks)]
        };
        let mut out = Vec::new();
        for (days, weeks) in &groups {
            for m in &minutes {
                for h in &hours {
                    for d in days {
                        for mo in &months {
                            for w in weeks {
                                out.push(format!(
                                    "minute={m},hour={h},day={d},month={mo},week={w}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

fn parse_field(i: usize, part: &str) -> Result<BTreeSet<u8>, ScheduleError> {
    let (field, min, max) = FIELDS[i];
    let err = |value: &str, why: String| ScheduleError {
        field,
        value: value.to_owned(),
        why,
    };
    let number = |s: &str| -> Result<u8, ScheduleError> {
        let lower = s.to_ascii_lowercase();
        let named = match i {
            3 => MONTHS.iter().position(|m| *m == lower).map(|p| p + 1),
            4 => DAYS.iter().position(|d| *d == lower),
            _ => None,
        };
        if let Some(n) = named {
            return Ok(u8::try_from(n).expect("small"));
        }
        match s.parse::<u8>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            Ok(_) => Err(err(s, format!("out of range; allowed: {min} to {max}"))),
            Err(_) => Err(err(s, format!("not a number from {min} to {max}"))),
        }
    };
    let mut out = BTreeSet::new();
    for item in part.split(',') {
        if item.is_empty() {
            return Err(err(part, "an empty list item".to_owned()));
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => match s.parse::<u8>() {
                Ok(n) if n >= 1 && n <= max => (r, n),
                _ => {
                    return Err(err(item, format!("the step `{s}` is not from 1 to {max}")));
                }
            },
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(err(item, format!("the range runs backwards ({a} > {b})")));
            }
            (a, b)
        } else {
            let a = number(range)?;
            // `5/15`: from 5 to the end, every 15th.
            (a, if item.contains('/') { max } else { a })
        };
        out.extend((lo..=hi).step_by(usize::from(step)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_into_uwsgi_lines() {
        let s = Schedule::parse("17 3 * * *").unwrap();
        assert_eq!(s.cron_lines(), ["minute=17,hour=3,day=-1,month=-1,week=-1"]);
        let s = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            s.cron_lines(),
            ["minute=-15,hour=-1,day=-1,month=-1,week=-1"]
        );
        let s = Schedule::parse("5,35 9-10 * * mon-fri").unwrap();
        assert_eq!(s.cron_lines().len(), 2 * 2 * 5);
        // `0,30` is every 30th minute: one line.
        let s = Schedule::parse("0,30 9-10 * * mon-fri").unwrap();
        assert_eq!(s.cron_lines().len(), 2 * 5);
        // Both days given: either one (two sets of lines).
        let s = Schedule::parse("0 0 1 * 0").unwrap();
        assert_eq!(
            s.cron_lines(),
            [
                "minute=0,hour=0,day=1,month=-1,week=-1",
                "minute=0,hour=0,day=-1,month=-1,week=0"
            ]
        );
        // 7 is Sunday; `*/2` on days is explicit (uWSGI's -2 would be the even days).
        let s = Schedule::parse("0 0 */10 * *").unwrap();
        assert_eq!(s.cron_lines().len(), 4);
        assert_eq!(
            Schedule::parse("0 0 * * 7").unwrap().cron_lines(),
            Schedule::parse("0 0 * * 0").unwrap().cron_lines()
        );
        assert_eq!(
            Schedule::parse("@daily").unwrap().cron_lines(),
            ["minute=0,hour=0,day=-1,month=-1,week=-1"]
        );
    }

    #[test]
    fn names_the_field_and_value() {
        let e = Schedule::parse("61 * * * *").unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("minute", "61"));
        let e = Schedule::parse("0 0 * foo *").unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("month", "foo"));
        let e = Schedule::parse("0 5-2 * * *").unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("hour", "5-2"));
        let e = Schedule::parse("* * * *").unwrap_err();
        assert_eq!(e.field, "schedule");
        let e = Schedule::parse("*/0 * * * *").unwrap_err();
        assert_eq!((e.field, e.value.as_str()), ("minute", "*/0"));
        let e = Schedule::parse("0 0 */2 * 1").unwrap_err();
        assert_eq!(e.field, "day-of-month");
        let e = Schedule::parse("* * * * 1,").unwrap_err();
        assert_eq!(e.field, "day-of-week");
    }

    #[test]
    fn signals() {
        assert_eq!(StopSignal::parse("SIGINT").unwrap().0, 2);
        assert_eq!(StopSignal::parse("QUIT").unwrap().0, 3);
        assert_eq!(StopSignal::parse("15").unwrap().0, 15);
        assert!(StopSignal::parse("SIGFOO").is_err());
    }
}
