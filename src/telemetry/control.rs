//! Metrics of the control API (next to `--dashboard`): how many actions of each kind were
//! taken (`trafficgen_control_actions_total{action}`, a counter Grafana annotates on) and
//! the load's current setting (`trafficgen_control_target{setting}`: the rate or VU count
//! the last change asked for, 1 while paused). Present only when the control API listens.

use super::metrics::{Family, Identity, Kind, Series, Value};

/// Action counts and the current settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlMetrics {
    /// (action, times taken), every action from the start (at 0) so `increase()` sees the
    /// first one.
    pub actions: Vec<(&'static str, u64)>,
    /// (setting, value): `paused` always, `rate` / `vus` once changed.
    pub settings: Vec<(&'static str, f64)>,
}

impl ControlMetrics {
    pub fn new(actions: &[&'static str]) -> ControlMetrics {
        ControlMetrics {
            actions: actions.iter().map(|&a| (a, 0)).collect(),
            settings: vec![("paused", 0.0)],
        }
    }

    /// Counts one `action`; `values` are the event's (`rate`, `vus`, `paused` are taken).
    pub fn record(&mut self, action: &str, values: &serde_json::Map<String, serde_json::Value>) {
        if let Some(a) = self.actions.iter_mut().find(|(a, _)| *a == action) {
            a.1 += 1;
        }
        for key in ["rate", "vus", "paused"] {
            let v = match values.get(key) {
                Some(serde_json::Value::Bool(b)) => f64::from(u8::from(*b)),
                Some(v) => match v.as_f64() {
                    Some(x) => x,
                    // `null`: back to the plan; the setting's series goes away.
                    None => {
                        self.settings.retain(|(s, _)| *s != key);
                        continue;
                    }
                },
                None => continue,
            };
            match self.settings.iter_mut().find(|(s, _)| *s == key) {
                Some(s) => s.1 = v,
                None => self.settings.push((key, v)),
            }
        }
    }

    pub fn families(&self, id: &Identity) -> Vec<Family> {
        let labels = |k: &'static str, v: &str| {
            vec![
                ("scenario", id.scenario.clone()),
                ("op", "all".to_string()),
                ("run_id", id.run_id.clone()),
                (k, v.to_string()),
            ]
        };
        vec![
            Family {
                name: "trafficgen_control_actions",
                help: "Actions taken through the control API, by action.",
                kind: Kind::Counter,
                series: self
                    .actions
                    .iter()
                    .map(|(a, n)| Series {
                        labels: labels("action", a),
                        value: Value::Number(*n as f64),
                    })
                    .collect(),
            },
            Family {
                name: "trafficgen_control_target",
                help: "The load as the control API set it: rate (per second), vus, paused (1/0).",
                kind: Kind::Gauge,
                series: self
                    .settings
                    .iter()
                    .map(|(s, v)| Series {
                        labels: labels("setting", s),
                        value: Value::Number(*v),
                    })
                    .collect(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_actions_and_keeps_the_settings() {
        let mut m = ControlMetrics::new(&["rate", "pause"]);
        let vals = |j: serde_json::Value| j.as_object().unwrap().clone();
        m.record("rate", &vals(serde_json::json!({"rate": 80.0})));
        m.record("pause", &vals(serde_json::json!({"paused": true})));
        assert_eq!(m.actions, vec![("rate", 1), ("pause", 1)]);
        assert_eq!(m.settings, vec![("paused", 1.0), ("rate", 80.0)]);
        m.record("rate", &vals(serde_json::json!({"rate": null})));
        assert_eq!(m.settings, vec![("paused", 1.0)]);
    }
}
