//! The scenario's `compare:` section: regression rules for `report compare`, parsed and located
//! like thresholds (same keys, same list forms).

use super::Errors;
use super::observe::{entry_place, unknown_op};
use crate::plan::compare::{self, CompareRule};
use crate::plan::threshold;
use crate::scenario::Sp;
use crate::scenario::model::{self, Entries};

pub(super) fn rules(
    c: Option<&Entries<Sp<model::ThresholdList>>>,
    ops: Option<&[String]>,
    errs: &mut Errors,
) -> Vec<CompareRule> {
    let mut out = Vec::new();
    for (key, list) in c.map_or(&[][..], |c| &c.0) {
        let field = format!("compare.{}", key.value);
        match threshold::parse_key(key) {
            Ok((_, Some(op))) => {
                if let Some(ops) = ops
                    && !ops.contains(&op)
                {
                    errs.at(key, &field, unknown_op(&op, ops));
                }
            }
            Ok((_, None)) => {}
            Err(e) => {
                errs.at(key, &field, e.message);
                continue;
            }
        }
        if list.0.is_empty() {
            errs.at(list, &field, "list at least one rule");
        }
        for (i, entry) in list.0.iter().enumerate() {
            let (at, f) = entry_place(list, entry, i, &field);
            if entry.abort_on_fail || entry.delay_abort_eval.is_some() {
                errs.at_pos(
                    at.0,
                    at.1,
                    f.clone(),
                    "a compare rule is judged after the run: abort_on_fail does not apply",
                );
            }
            match compare::parse(key, &entry.threshold) {
                Ok(rule) => out.push(rule),
                Err(e) => errs.at_pos(
                    at.0,
                    at.1,
                    f,
                    format!("`{}`: {}", entry.threshold.trim(), e.message),
                ),
            }
        }
    }
    out
}
