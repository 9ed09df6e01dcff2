//! Which backends `verify` asks (`TRAFFICGEN_VERIFY_BACKENDS`) and the URL overrides
//! (`TRAFFICGEN_<BACKEND>_URL`), read once from the environment.

use super::clients::Backend;
use crate::plan::{AssertionKind, Verify};

/// Which backends `verify` checks, and URL overrides, from the environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// `None` = every backend; else only these (`TRAFFICGEN_VERIFY_BACKENDS`).
    pub only: Option<Vec<Backend>>,
    /// `TRAFFICGEN_PROMETHEUS_URL`, `_LOKI_URL`, `_TEMPO_URL` (same order as `Backend`).
    pub urls: [Option<String>; 3],
}

/// The variable that selects backends.
pub const BACKENDS_VAR: &str = "TRAFFICGEN_VERIFY_BACKENDS";

impl Selection {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Selection, String> {
        let mut sel = Selection::default();
        if let Some(list) = lookup(BACKENDS_VAR).filter(|l| !l.trim().is_empty()) {
            let mut only = Vec::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let b = Backend::ALL
                    .into_iter()
                    .find(|b| b.as_str().eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        format!(
                            "{BACKENDS_VAR}: unknown backend {name:?} (prometheus, loki, tempo)"
                        )
                    })?;
                only.push(b);
            }
            sel.only = Some(only);
        }
        for b in Backend::ALL {
            sel.urls[b as usize] = lookup(b.url_var())
                .map(|u| u.trim().to_string())
                .filter(|u| !u.is_empty());
        }
        Ok(sel)
    }

    pub(super) fn selected(&self, b: Backend) -> bool {
        self.only.as_ref().is_none_or(|o| o.contains(&b))
    }

    pub(super) fn apply(&self, v: &Verify) -> Verify {
        let mut v = v.clone();
        let [p, l, t] = &self.urls;
        if p.is_some() {
            v.prometheus_url = p.clone();
        }
        if l.is_some() {
            v.loki_url = l.clone();
        }
        if t.is_some() {
            v.tempo_url = t.clone();
        }
        v
    }
}

/// The backend an assertion queries.
pub fn backend_of(kind: &AssertionKind) -> Backend {
    match kind {
        AssertionKind::Promql { .. } | AssertionKind::PromqlDelta { .. } => Backend::Prometheus,
        AssertionKind::Logql { .. } => Backend::Loki,
        AssertionKind::Traceql { .. } | AssertionKind::Traces { .. } => Backend::Tempo,
    }
}
