//! The `${…}` placeholders of observability queries. The plan owns the list (it rejects any
//! other name when it validates a query); `verify` substitutes them after the run.

/// The fixed placeholder names `verify` substitutes in queries (besides `fault_N_start` and
/// `fault_N_end`); `plan::build` rejects any other `${…}` in a query.
pub const PLACEHOLDERS: &[&str] = &[
    "run_id",
    "scenario",
    "range",
    "start",
    "end",
    "start_unix",
    "end_unix",
];

/// Whether `${name}` is substituted.
pub fn is_placeholder(name: &str) -> bool {
    PLACEHOLDERS.contains(&name) || fault_var(name).is_some()
}

/// `fault_3_start` → (3, false); `fault_0_end` → (0, true).
pub fn fault_var(name: &str) -> Option<(usize, bool)> {
    let rest = name.strip_prefix("fault_")?;
    let (n, which) = rest.split_once('_')?;
    let end = match which {
        "start" => false,
        "end" => true,
        _ => return None,
    };
    Some((n.parse().ok()?, end))
}
