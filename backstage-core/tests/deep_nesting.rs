//! Deeply nested input is refused at the right place, and never exhausts the stack.

use std::path::PathBuf;

use backstage_core::{Manifest, Problem};

const HEAD: &str = "[production]\nname = \"jazz\"\n";

/// `check` on a thread with the default 2 MiB stack of spawned threads (less than `main`'s), so a
/// recursion that would overflow in `backstage check` overflows here first.
fn check(src: String) -> Vec<Problem> {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            Manifest::from_source("backstage.toml".into(), PathBuf::from("/srv/jazz"), src).check()
        })
        .unwrap()
        .join()
        .expect("check panicked")
}

fn dotted(parts: usize) -> String {
    vec!["a"; parts].join(".")
}

fn recursion_problems(problems: &[Problem]) -> Vec<&Problem> {
    problems
        .iter()
        .filter(|p| p.message.contains("recursion"))
        .collect()
}

#[test]
fn a_ten_thousand_deep_table_header_is_reported_where_it_is() {
    let problems = check(format!("{HEAD}\n[{}]\nx = 1\n", dotted(10_000)));
    let deep = recursion_problems(&problems);
    assert_eq!(deep.len(), 1, "{problems:?}");
    // Line 4, column 2: the key starts right after `[`.
    assert_eq!((deep[0].line, deep[0].column), (4, 2), "{problems:?}");
    assert_eq!(deep[0].message, "invalid TOML: recursion limit");
    assert_eq!(
        deep[0].hint.as_deref(),
        Some("a dotted key has at most 80 parts")
    );
}

#[test]
fn deep_dotted_keys_are_reported_where_they_are() {
    let src = format!(
        "{HEAD}[acts.club]\nroot = \"club\"\n  {} = 1\n[[{}]]\ny = {{ {} = 2 }}\n",
        dotted(10_000),
        dotted(500),
        dotted(81)
    );
    let keys = [(5, 3), (6, 3), (7, 7)];
    // `toml` may stop after the first too-deep key: that one is always reported, and every
    // report is at one of them.
    for rest in 0..keys.len() {
        let lines: Vec<&str> = src.lines().collect();
        let doc = [&lines[..4], &lines[4 + rest..]].concat().join("\n");
        let want: Vec<(usize, usize)> = keys[rest..].iter().map(|&(l, c)| (l - rest, c)).collect();
        let problems = check(doc);
        let deep: Vec<(usize, usize)> = recursion_problems(&problems)
            .iter()
            .map(|p| (p.line, p.column))
            .collect();
        assert_eq!(deep.first(), want.first(), "{problems:?}");
        assert!(deep.iter().all(|p| want.contains(p)), "{deep:?} {want:?}");
    }
}

#[test]
fn eighty_parts_are_allowed_eighty_one_are_not() {
    let at = check(format!("{HEAD}[x]\n{} = 1\n", dotted(80)));
    assert!(recursion_problems(&at).is_empty(), "{at:?}");
    let over = check(format!("{HEAD}[x]\n{} = 1\n", dotted(81)));
    let deep = recursion_problems(&over);
    assert_eq!(
        deep.iter().map(|p| (p.line, p.column)).collect::<Vec<_>>(),
        [(4, 1)]
    );
}

#[test]
fn a_hundred_thousand_deep_array_neither_overflows_nor_loses_its_place() {
    for src in [
        format!("{HEAD}x = {}\n", "[".repeat(100_000)),
        format!("{HEAD}x = {}{}\n", "[".repeat(100_000), "]".repeat(100_000)),
        format!("{HEAD}x = {}\n", "{a=".repeat(100_000)),
        format!("{HEAD}x = {}\n", "[{a=".repeat(50_000)),
    ] {
        let problems = check(src);
        let deep = recursion_problems(&problems);
        assert!(!deep.is_empty(), "{problems:?}");
        // Reported on line 3, past `x = ` and the first levels, never at 1:1.
        assert_eq!(deep[0].line, 3, "{problems:?}");
        assert!(deep[0].column > 5, "{problems:?}");
    }
}

#[test]
fn a_deep_key_beside_a_deep_array_is_found_without_overflowing() {
    let problems = check(format!(
        "{HEAD}x = {}{}\n{} = 1\n",
        "[".repeat(100_000),
        "]".repeat(100_000),
        dotted(100)
    ));
    let at: Vec<(usize, usize)> = recursion_problems(&problems)
        .iter()
        .map(|p| (p.line, p.column))
        .collect();
    assert_eq!(at, [(3, 85), (4, 1)], "{problems:?}");
}
