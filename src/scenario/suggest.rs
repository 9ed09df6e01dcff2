//! "Did you mean" suggestions for unknown names (fields, values, operations, metrics).

/// "unknown field `rat`, expected one of ...; did you mean `rate`?"
pub fn unknown_message(what: &str, got: &str, expected: &[&str]) -> String {
    let mut msg = format!("unknown {what} `{got}`");
    match suggest(got, expected) {
        Some(s) => msg.push_str(&format!(", did you mean `{s}`?")),
        None if expected.is_empty() => msg.push_str(", no fields are allowed here"),
        None => {
            let list: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
            msg.push_str(&format!(", expected one of {}", list.join(", ")));
        }
    }
    msg
}

/// The closest candidate by edit distance, when close enough to be a likely typo; on a tie,
/// one that `got` is a prefix of (an abbreviation).
pub fn suggest<'a>(got: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = got.chars().count().div_ceil(3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(got, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, !c.starts_with(got)))
        .map(|(_, c)| c)
}

/// Edit distance counting insertions, deletions, substitutions and swaps of neighbours (the
/// usual typos) as one step each (optimal string alignment).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("rat", "rate"), 1);
        assert_eq!(edit_distance("opne", "open"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggest("duraton", &["duration", "target"]),
            Some("duration")
        );
        assert_eq!(suggest("zzz", &["duration"]), None);
        assert_eq!(
            unknown_message("field", "zzz", &["a", "b"]),
            "unknown field `zzz`, expected one of `a`, `b`"
        );
    }
}
