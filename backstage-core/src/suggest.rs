//! "Did you mean ...?": the one rule every name Backstage looks up suggests by (manifest keys
//! and references, and the names given to the CLI: Acts, Sess, log sources).

/// The closest candidate to `word`, if it is close enough to be a likely typo: at most two
/// edits (a quarter of the candidate's length for long names), transpositions counting as one.
pub fn suggest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::suggest;

    #[test]
    fn typos_are_suggested_and_strangers_are_not() {
        let names = ["club-a", "club-late", "jazz-home"];
        assert_eq!(suggest("club-lat", names), Some("club-late"));
        assert_eq!(suggest("jazz-hom", names), Some("jazz-home"));
        assert_eq!(suggest("cbul-a", names), Some("club-a"));
        assert_eq!(suggest("blues", names), None);
    }
}
