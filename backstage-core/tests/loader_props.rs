//! Property tests: the loader never panics, whatever text it is given, and every problem it
//! reports points inside the source.

use std::fmt::Write as _;
use std::path::PathBuf;

use backstage_core::Manifest;
use backstage_core::values::{BodySize, ServerName, Slug, UrlPath};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../examples/jazzclub/backstage.toml");

fn check(src: &str) {
    let m = Manifest::from_source(
        "backstage.toml".into(),
        PathBuf::from("/srv/jazz"),
        src.to_owned(),
    );
    for p in m.check() {
        assert!(
            p.span.start <= src.len() && p.span.end <= src.len(),
            "{p:?}"
        );
        assert!(p.line >= 1 && p.column >= 1, "{p:?}");
        assert!(!p.message.is_empty());
        assert!(
            !p.message.contains('\n'),
            "one-line messages: {:?}",
            p.message
        );
    }
}

/// A TOML basic string holding `s` exactly.
fn toml_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(src in ".{0,400}") {
        check(&src);
    }

    #[test]
    fn toml_like_text_never_panics(src in r#"(\[[a-z._"-]{0,12}\]\n|[a-z_"./-]{1,10} = ("[^"\n]{0,20}"|-?[0-9]{1,6}|\[("[^"]{0,8}",? ?){0,3}\]|\{ ?[a-z"/]{1,6} = "[^"]{0,6}" ?\}|true)\n){0,20}"#) {
        check(&src);
    }

    #[test]
    fn mutated_example_never_panics(pos in 0usize..EXAMPLE.len(), len in 0usize..12, insert in ".{0,8}") {
        let mut s = EXAMPLE.to_owned();
        let mut start = pos.min(s.len());
        while !s.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(s.len());
        while !s.is_char_boundary(end) { end -= 1; }
        s.replace_range(start..end, &insert);
        check(&s);
    }

    #[test]
    fn any_string_value_in_any_field_never_panics(field in 0usize..8, value in ".{0,40}") {
        let keys = ["name", "root", "wsgi", "virtualenv", "act", "stage", "venue", "path"];
        let key = keys[field];
        let line = format!("\n{key} = ");
        let src = EXAMPLE.replacen(&line, &format!("\n{key} = {} #", toml_quote(&value)), 1);
        check(&src);
    }

    #[test]
    fn slugs_round_trip(s in "[a-z][a-z0-9-]{0,31}") {
        let slug: Slug = s.parse().unwrap();
        prop_assert_eq!(slug.as_str(), s.as_str());
    }

    #[test]
    fn valid_values_never_carry_config_syntax(s in ".{0,40}") {
        // Whatever the input, a value that validates has none of the characters that would
        // let it escape its place in an nginx or ini file.
        let accepted = [
            s.parse::<ServerName>().ok().map(|v| v.to_string()),
            s.parse::<UrlPath>().ok().map(|v| v.to_string()),
            s.parse::<Slug>().ok().map(|v| v.to_string()),
            s.parse::<BodySize>().ok().map(|v| v.to_string()),
        ];
        for v in accepted.into_iter().flatten() {
            prop_assert!(
                !v.contains(|c: char| ";{}\"'#$\\\n\r ".contains(c) || c.is_control()),
                "{v:?}"
            );
        }
    }

    #[test]
    fn body_sizes_round_trip(n in 0u64..100_000_000, unit in "[kKmMgG]?") {
        let written = format!("{n}{unit}");
        let size: BodySize = written.parse().unwrap();
        prop_assert_eq!(size.to_string(), written.to_ascii_lowercase());
        let shift = match unit.to_ascii_lowercase().as_str() {
            "" => 0,
            "k" => 10,
            "m" => 20,
            _ => 30,
        };
        prop_assert_eq!(size.bytes(), n << shift);
    }

    #[test]
    fn any_body_size_text_parses_or_is_rejected_without_panic(s in "[0-9kmgKMG. -]{0,24}|.{0,24}") {
        if let Ok(size) = s.parse::<BodySize>() {
            // What nginx reads back: digits and at most one unit, never more than it can count.
            prop_assert!(size.to_string().trim_end_matches(['k', 'm', 'g']).bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(i64::try_from(size.bytes()).is_ok());
        }
    }
}
