//! Fuzz the cron schedule reader of `[[acts.NAME.cron]]`: any text gives a schedule or an error
//! naming a field, never a panic, and a schedule's uWSGI lines stay within the limit and are
//! each five `key=integer` pairs.
#![no_main]

use backstage_core::work::{MAX_CRON_LINES, Schedule};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Schedule::parse(&text) {
        Ok(s) => {
            let lines = s.cron_lines();
            assert!(!lines.is_empty() && lines.len() <= MAX_CRON_LINES);
            for line in lines {
                let keys: Vec<&str> = line
                    .split(',')
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').expect("key=value");
                        v.parse::<i32>().expect("an integer");
                        k
                    })
                    .collect();
                assert_eq!(keys, ["minute", "hour", "day", "month", "week"]);
            }
        }
        Err(e) => {
            assert!(
                [
                    "schedule",
                    "minute",
                    "hour",
                    "day-of-month",
                    "month",
                    "day-of-week"
                ]
                .contains(&e.field)
            );
        }
    }
});
