//! The `load:` section → `LoadModel`: open or closed model, stages, and the `--duration`,
//! `--rate` and `--vus` overrides.

use std::time::Duration;

use super::{Errors, Overrides, defaults, pos};
use crate::plan::{Arrivals, LoadModel, RateStage, ThinkTime, VuStage};
use crate::scenario::Sp;
use crate::scenario::model::{self, ModelName, ThinkTimeSpec};

pub(super) fn load(
    l: &Sp<model::LoadSpec>,
    max_connections: u32,
    o: &Overrides,
    errs: &mut Errors,
) -> LoadModel {
    let stages = &l.stages.value;
    let inferred =
        if stages.iter().any(|s| s.vus.is_some()) && stages.iter().all(|s| s.rate.is_none()) {
            ModelName::Closed
        } else {
            ModelName::Open
        };
    let model = l.model.as_ref().map_or(inferred, |m| m.value);
    if stages.is_empty() && !errs.damaged("load.stages") {
        errs.at(&l.stages, "load.stages", "at least one stage is needed");
    }
    for (i, s) in stages.iter().enumerate() {
        if s.duration.value.0.is_zero() {
            errs.at(
                &s.duration,
                format!("load.stages[{i}].duration"),
                "a stage must last longer than 0",
            );
        }
        // A stage whose `rate`/`vus` was rejected already is not missing it.
        if errs.damaged(&format!("load.stages[{i}]")) {
            continue;
        }
        match (model, &s.rate, &s.vus) {
            (ModelName::Open, None, _) => errs.at(
                s,
                format!("load.stages[{i}]"),
                "open-model stages need `rate`",
            ),
            (ModelName::Closed, _, None) => errs.at(
                s,
                format!("load.stages[{i}]"),
                "closed-model stages need `vus`",
            ),
            _ => {}
        }
        match (model, &s.rate, &s.vus) {
            (ModelName::Open, _, Some(v)) => errs.at(
                v,
                format!("load.stages[{i}].vus"),
                "`vus` belongs to closed-model stages (this load is open)",
            ),
            (ModelName::Closed, Some(r), _) => errs.at(
                r,
                format!("load.stages[{i}].rate"),
                "`rate` belongs to open-model stages (this load is closed)",
            ),
            _ => {}
        }
    }
    let only = |errs: &mut Errors, present: Option<(u32, u32)>, field: &str, model_name: &str| {
        if let Some((line, column)) = present {
            errs.at_pos(
                line,
                column,
                format!("load.{field}"),
                format!("`{field}` applies to the {model_name} model only"),
            );
        }
    };
    // Saturating: a stage beyond the limit is reported by `limits`, not a panic here.
    let total = stages
        .iter()
        .fold(Duration::ZERO, |t, s| t.saturating_add(s.duration.value.0));
    let new_total = o.duration.unwrap_or(total);
    if o.duration.is_some_and(|d| d.is_zero()) {
        errs.flag("--duration", "must be longer than 0");
    }
    // Stage lengths scale by one factor so ramps keep their shape.
    let scale = |d: Duration| {
        if total.is_zero() {
            d
        } else {
            Duration::try_from_secs_f64(
                d.as_secs_f64() * (new_total.as_secs_f64() / total.as_secs_f64()),
            )
            .unwrap_or(Duration::MAX)
        }
    };
    match model {
        ModelName::Open => {
            only(errs, pos(l.start_vus.as_ref()), "start_vus", "closed");
            only(
                errs,
                l.think_time.as_ref().map(|s| (s.line, s.column)),
                "think_time",
                "closed",
            );
            only(
                errs,
                l.max_rate.as_ref().map(|s| (s.line, s.column)),
                "max_rate",
                "closed",
            );
            if o.vus.is_some() {
                errs.flag(
                    "--vus",
                    "this scenario uses the open model (arrival rate); use --rate",
                );
            }
            let mut rs: Vec<RateStage> = stages
                .iter()
                .map(|s| RateStage {
                    duration: scale(s.duration.value.0),
                    target: s.rate.as_ref().map_or(0.0, |r| r.value.0),
                })
                .collect();
            let mut start_rate = l
                .start_rate
                .as_ref()
                .map_or(rs.first().map_or(0.0, |s| s.target), |r| r.value.0);
            if let Some(rate) = o.rate {
                if !(rate > 0.0 && rate.is_finite()) {
                    errs.flag("--rate", "must be greater than 0");
                }
                rs = vec![RateStage {
                    duration: new_total,
                    target: rate,
                }];
                start_rate = rate;
            } else if !stages.is_empty()
                && !errs.damaged("load")
                && start_rate == 0.0
                && rs.iter().all(|s| s.target == 0.0)
            {
                errs.at(
                    &l.stages,
                    "load.stages",
                    "every rate is 0: the load would send nothing",
                );
            }
            let max_in_flight = l
                .max_in_flight
                .as_ref()
                .map_or(max_connections, |m| m.value);
            if let Some(m) = l.max_in_flight.as_ref().filter(|m| m.value == 0) {
                errs.at(m, "load.max_in_flight", "must be at least 1");
            }
            LoadModel::Open {
                start_rate,
                stages: rs,
                arrivals: l.arrivals.as_ref().map_or(Arrivals::Constant, |a| a.value),
                max_in_flight,
                max_queue: l
                    .max_queue
                    .as_ref()
                    .map_or(defaults::MAX_QUEUE, |m| m.value),
            }
        }
        ModelName::Closed => {
            only(errs, pos(l.start_rate.as_ref()), "start_rate", "open");
            only(
                errs,
                l.arrivals.as_ref().map(|s| (s.line, s.column)),
                "arrivals",
                "open",
            );
            only(errs, pos(l.max_in_flight.as_ref()), "max_in_flight", "open");
            only(errs, pos(l.max_queue.as_ref()), "max_queue", "open");
            if o.rate.is_some() {
                errs.flag(
                    "--rate",
                    "this scenario uses the closed model (virtual users); use --vus",
                );
            }
            let mut vs: Vec<VuStage> = stages
                .iter()
                .map(|s| VuStage {
                    duration: scale(s.duration.value.0),
                    target: s.vus.as_ref().map_or(0, |v| v.value),
                })
                .collect();
            let mut start_vus = l
                .start_vus
                .as_ref()
                .map_or(vs.first().map_or(0, |s| s.target), |v| v.value);
            if let Some(vus) = o.vus {
                if vus == 0 {
                    errs.flag("--vus", "must be at least 1");
                }
                vs = vec![VuStage {
                    duration: new_total,
                    target: vus,
                }];
                start_vus = vus;
            } else if !stages.is_empty()
                && !errs.damaged("load")
                && start_vus == 0
                && vs.iter().all(|s| s.target == 0)
            {
                errs.at(
                    &l.stages,
                    "load.stages",
                    "every stage has 0 VUs: the load would send nothing",
                );
            }
            let think_time = match l.think_time.as_ref().map(|t| (t, &t.value)) {
                None => ThinkTime::None,
                Some((_, ThinkTimeSpec::Fixed(d))) if d.0.is_zero() => ThinkTime::None,
                Some((_, ThinkTimeSpec::Fixed(d))) => ThinkTime::Fixed(d.0),
                Some((t, ThinkTimeSpec::Uniform { min, max })) => {
                    if min > max {
                        errs.at(t, "load.think_time", "`min` is above `max`");
                    }
                    ThinkTime::Uniform(min.0, max.0)
                }
            };
            let max_rate = l.max_rate.as_ref().map(|r| {
                if r.value.0 <= 0.0 {
                    errs.at(r, "load.max_rate", "must be greater than 0");
                }
                r.value.0
            });
            LoadModel::Closed {
                start_vus,
                stages: vs,
                think_time,
                max_rate,
            }
        }
    }
}
