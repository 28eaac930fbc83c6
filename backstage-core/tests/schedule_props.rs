//! Property tests of cron schedules: whatever text a manifest gives, `Schedule::parse` returns
//! a schedule or a `ScheduleError` naming a field (never a panic), and the uWSGI `cron2` lines
//! a schedule expands into fire at exactly the minutes cron itself would.
//!
//! The two sides are modelled here independently of the code under test:
//! - cron (Vixie cron, as in crontab(5)): minute, hour and month must match; the day must
//!   match day-of-month *and* day-of-week when either field starts with `*`, else *either*;
//! - uWSGI's `uwsgi_cron_task_needs_execution` (`core/master_utils.c`): `-1` is any, `-n` is a
//!   value divisible by n, else equality; when both `day` and `week` are non-negative, either
//!   matches.

use std::collections::BTreeSet;

use backstage_core::work::{MAX_CRON_LINES, Schedule};
use proptest::prelude::*;

/// minute, hour, day-of-month, month, day-of-week: (low, high) as a field may write them.
const BOUNDS: [(u8, u8); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// One item of a field's list, as written, and the values it stands for.
#[derive(Debug, Clone)]
enum Item {
    Star { step: u8 },
    Value { v: u8, named: bool },
    Range { lo: u8, hi: u8, step: u8 },
}

fn item(field: usize) -> impl Strategy<Value = Item> {
    let (lo, hi) = BOUNDS[field];
    let top = if field == 4 { 6 } else { hi };
    prop_oneof![
        (1..=top).prop_map(|step| Item::Star { step }),
        (lo..=hi, any::<bool>()).prop_map(|(v, named)| Item::Value { v, named }),
        (lo..=hi, lo..=hi, 1..=top).prop_map(|(a, b, step)| Item::Range {
            lo: a.min(b),
            hi: a.max(b),
            step,
        }),
    ]
}

fn write_value(field: usize, v: u8, named: bool) -> String {
    match field {
        3 if named => MONTHS[usize::from(v - 1)].to_owned(),
        4 if named && v < 7 => DAYS[usize::from(v)].to_uppercase(),
        _ => v.to_string(),
    }
}

fn write_item(field: usize, item: &Item) -> String {
    let with_step = |s: String, step: u8| {
        if step == 1 { s } else { format!("{s}/{step}") }
    };
    match item {
        Item::Star { step } => with_step("*".to_owned(), *step),
        Item::Value { v, named } => write_value(field, *v, *named),
        Item::Range { lo, hi, step } => {
            with_step(format!("{}-{}", write_value(field, *lo, false), hi), *step)
        }
    }
}

/// The values cron gives an item (7 is Sunday, like 0).
fn values(field: usize, item: &Item) -> BTreeSet<u8> {
    let (lo, hi) = BOUNDS[field];
    let hi = if field == 4 { 6.max(hi) } else { hi };
    let stepped = |a: u8, b: u8, step: u8| (a..=b).step_by(usize::from(step)).collect::<Vec<_>>();
    let raw = match item {
        // `*` on day-of-week is 0-6 (or 0-7: the same days).
        Item::Star { step } => stepped(lo, if field == 4 { 6 } else { hi }, *step),
        Item::Value { v, .. } => vec![*v],
        Item::Range { lo, hi, step } => stepped(*lo, *hi, *step),
    };
    raw.into_iter()
        .map(|v| if field == 4 && v == 7 { 0 } else { v })
        .collect()
}

/// A schedule as written, each field's values, and whether day-of-month and day-of-week
/// start with `*`.
fn schedule() -> impl Strategy<Value = (String, [BTreeSet<u8>; 5], bool, bool)> {
    let field = |i: usize| proptest::collection::vec(item(i), 1..4);
    (field(0), field(1), field(2), field(3), field(4)).prop_map(|(a, b, c, d, e)| {
        let fields = [a, b, c, d, e];
        let text = fields
            .iter()
            .enumerate()
            .map(|(i, items)| {
                items
                    .iter()
                    .map(|it| write_item(i, it))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect::<Vec<_>>()
            .join(" ");
        let sets: [BTreeSet<u8>; 5] =
            std::array::from_fn(|i| fields[i].iter().flat_map(|it| values(i, it)).collect());
        let star = |i: usize| matches!(fields[i][0], Item::Star { .. });
        (text, sets, star(2), star(4))
    })
}

/// A minute of the calendar: minute, hour, day-of-month, month, day-of-week (0 = Sunday).
type Instant = [u8; 5];

fn cron_fires(
    sets: &[BTreeSet<u8>; 5],
    month_day_star: bool,
    week_day_star: bool,
    t: Instant,
) -> bool {
    let has = |i: usize| sets[i].contains(&t[i]);
    let day = if month_day_star || week_day_star {
        has(2) && has(4)
    } else {
        has(2) || has(4)
    };
    has(0) && has(1) && has(3) && day
}

fn uwsgi_fires(line: &str, t: Instant) -> bool {
    let mut v = [0i32; 5];
    for (i, (part, key)) in line
        .split(',')
        .zip(["minute", "hour", "day", "month", "week"])
        .enumerate()
    {
        let (k, n) = part.split_once('=').expect("key=value");
        assert_eq!(k, key, "{line}");
        v[i] = n.parse().expect("an integer");
    }
    let [minute, hour, day, month, week] = v;
    let now = [t[0], t[1], t[2], t[3], t[4]].map(i32::from);
    let one = |want: i32, now: i32| {
        if want < 0 {
            now % want.abs() == 0
        } else {
            now == want
        }
    };
    // uWSGI reads a week of 7 as Sunday.
    let week_is = |now: i32| one(if week == 7 { 0 } else { week }, now);
    let common = one(minute, now[0]) && one(hour, now[1]) && one(month, now[3]);
    if day >= 0 && week >= 0 {
        common && (one(day, now[2]) || week_is(now[4]))
    } else {
        common && one(day, now[2]) && week_is(now[4])
    }
}

/// Instants worth trying: every value of each field's set paired with neighbours and strays,
/// so both firing and non-firing minutes are seen.
fn instants(sets: &[BTreeSet<u8>; 5], salt: &[u8]) -> Vec<Instant> {
    let pick = |i: usize, k: usize| -> u8 {
        let (lo, hi) = BOUNDS[i];
        let hi = if i == 4 { 6 } else { hi };
        let s = salt[k % salt.len()];
        if s.is_multiple_of(3) || sets[i].is_empty() {
            lo + s % (hi - lo + 1)
        } else {
            let v: Vec<u8> = sets[i].iter().copied().filter(|v| *v <= hi).collect();
            if v.is_empty() {
                lo
            } else {
                v[usize::from(s) % v.len()]
            }
        }
    };
    (0..200)
        .map(|k| std::array::from_fn(|i| pick(i, k * 5 + i)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn parse_never_panics_and_errors_name_a_field(text in "\\PC{0,40}") {
        if let Err(e) = Schedule::parse(&text) {
            prop_assert!(
                ["schedule", "minute", "hour", "day-of-month", "month", "day-of-week"].contains(&e.field),
                "{e}"
            );
            prop_assert!(!e.why.is_empty());
        }
    }

    #[test]
    fn near_miss_text_never_panics(text in "[-*/,0-9a-z@ ]{0,30}") {
        if let Ok(s) = Schedule::parse(&text) {
            prop_assert!(s.cron_lines().len() <= MAX_CRON_LINES);
        }
    }

    #[test]
    fn uwsgi_lines_fire_exactly_when_cron_would(
        (text, sets, month_day_star, week_day_star) in schedule(),
        salt in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let s = match Schedule::parse(&text) {
            Ok(s) => s,
            Err(e) => {
                // The two refusals a valid cron schedule can meet: a day-of-month beside a
                // day-of-week when one starts with `*` (cron then wants both, which uWSGI's
                // lines cannot say), and more lines than a vassal should hold.
                let full = |i: usize, n: usize| sets[i].len() == n;
                let day_rule = e.field == "day-of-month"
                    && (month_day_star || week_day_star)
                    && !full(2, 31)
                    && !full(4, 7);
                prop_assert!(
                    day_rule || e.why.contains("uWSGI cron lines"),
                    "`{}` refused: {}", text, e
                );
                return Ok(());
            }
        };
        let lines = s.cron_lines();
        prop_assert!(!lines.is_empty() && lines.len() <= MAX_CRON_LINES);
        for t in instants(&sets, &salt) {
            let want = cron_fires(&sets, month_day_star, week_day_star, t);
            let got = lines.iter().any(|l| uwsgi_fires(l, t));
            prop_assert_eq!(got, want, "`{}` at {:?}: lines {:?}", text, t, lines);
        }
    }
}

#[test]
fn the_models_agree_on_known_schedules() {
    // The models themselves, on schedules whose meaning is not in doubt.
    let every_weekday_9 = Schedule::parse("0 9 * * 1-5").unwrap();
    let lines = every_weekday_9.cron_lines();
    let fires = |t: Instant| lines.iter().any(|l| uwsgi_fires(l, t));
    assert!(fires([0, 9, 17, 3, 1]));
    assert!(!fires([0, 9, 17, 3, 0]));
    assert!(!fires([1, 9, 17, 3, 1]));
    // Both days given: the 1st of the month or any Sunday.
    let either = Schedule::parse("0 0 1 * sun").unwrap().cron_lines();
    let fires = |t: Instant| either.iter().any(|l| uwsgi_fires(l, t));
    assert!(fires([0, 0, 1, 6, 3]));
    assert!(fires([0, 0, 12, 6, 0]));
    assert!(!fires([0, 0, 12, 6, 3]));
}
