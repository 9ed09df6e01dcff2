//! The control API's requests on their way from the dashboard's HTTP server to the run loop,
//! which applies them (`run::control`) and answers each one. The JSON bodies are parsed and
//! checked here, so bad input gets a 4xx answer before anything reaches the run.
//!
//! Body: `{"action": ACTION, ...values, "who": "optional name"}` with ACTION one of
//! `rate {rate}`, `vus {vus}`, `pause`, `resume`, `fault_open {window | kind, ...}`,
//! `fault_close {id}`, `annotate {text}` (docs/control.md has the whole contract).

use serde::Deserialize;
use tokio::sync::oneshot;

/// Upper bounds of what the control API accepts (a typo must not start a flood).
pub const MAX_RATE: f64 = 100_000.0;
pub const MAX_VUS: u32 = 10_000;
pub const MAX_FAULT_SECS: f64 = 3600.0;
const MAX_TEXT: usize = 500;
const MAX_WHO: usize = 100;

/// A fault window to open: one of the scenario's (`window`, its index in `faults:`) or an
/// ad-hoc one (`kind` and its values). Server-side: set through the target's fault API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub window: Option<usize>,
    /// `latency` or `error`.
    pub kind: Option<String>,
    pub delay_ms: Option<u64>,
    pub jitter_ms: Option<u64>,
    pub status: Option<u16>,
    /// Share of matching requests, 0 < share ≤ 1 (default 1).
    pub share: Option<f64>,
    pub route: Option<String>,
    pub method: Option<String>,
    /// How long the window stays open unless closed before (default: the scenario window's
    /// length, 60 s for an ad-hoc one); the target expires the rule by itself after it.
    pub duration_s: Option<f64>,
    /// Ad-hoc windows: `server` (default: the target's fault API) or `header` (the generator
    /// sends fault headers with a `share` of the requests of `ops`).
    pub via: Option<String>,
    /// Header windows: the operations affected (default: all).
    pub ops: Option<Vec<String>>,
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Open model: this process's arrivals per second from now on (`null`: the plan's again).
    Rate {
        rate: Option<f64>,
    },
    /// Closed model: this process's virtual users from now on (`null`: the plan's again).
    Vus {
        vus: Option<u32>,
    },
    Pause,
    Resume,
    FaultOpen(FaultSpec),
    FaultClose {
        id: String,
    },
    Annotate {
        text: String,
    },
    /// `GET /control`: the current state (not recorded).
    #[serde(skip)]
    Status,
}

impl Action {
    /// The name recorded in the report and the metric's `action` label.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Rate { .. } => "rate",
            Action::Vus { .. } => "vus",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::FaultOpen(_) => "fault_open",
            Action::FaultClose { .. } => "fault_close",
            Action::Annotate { .. } => "annotate",
            Action::Status => "status",
        }
    }

    /// Every recorded action name (metric series exist for all of them from the start).
    pub const NAMES: [&'static str; 7] = [
        "rate",
        "vus",
        "pause",
        "resume",
        "fault_open",
        "fault_close",
        "annotate",
    ];
}

/// A refused request: the HTTP status and what was wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
}

/// The answer to a request: a JSON object, or why not.
pub type Reply = Result<serde_json::Value, Refusal>;

/// One request in flight to the run loop.
#[derive(Debug)]
pub struct Request {
    pub action: Action,
    pub who: String,
    pub reply: oneshot::Sender<Reply>,
}

#[derive(Deserialize)]
struct Who {
    who: Option<String>,
}

/// Parses a request body into the action and the optional `who`. Checks ranges; whether the
/// action fits the run (a rate for an open model, an existing window) is the run loop's call.
pub fn parse(body: &[u8]) -> Result<(Action, Option<String>), Refusal> {
    let bad = |m: String| Refusal::new(400, m);
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(bad("the body must be a JSON object".into()));
    };
    let who = match obj.remove("who") {
        None | Some(serde_json::Value::Null) => None,
        Some(w) => {
            serde_json::from_value::<Who>(serde_json::json!({ "who": w }))
                .map_err(|_| bad("`who` must be a string".into()))?
                .who
        }
    };
    if !obj.contains_key("action") {
        return Err(bad(format!(
            "missing `action` (one of {})",
            Action::NAMES.join(", ")
        )));
    }
    let action: Action = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    check(&action).map_err(bad)?;
    // Printed on stderr as is: no control characters (no forged log lines).
    if let Some(w) = &who
        && (w.is_empty() || w.chars().count() > MAX_WHO || w.chars().any(char::is_control))
    {
        return Err(bad(format!(
            "`who` must be 1 to {MAX_WHO} characters, no control characters"
        )));
    }
    Ok((action, who))
}

fn check(a: &Action) -> Result<(), String> {
    match a {
        Action::Rate { rate: Some(r) } if !(r.is_finite() && (0.0..=MAX_RATE).contains(r)) => Err(
            format!("`rate` must be a number of arrivals per second from 0 to {MAX_RATE}"),
        ),
        Action::Vus { vus: Some(v) } if *v > MAX_VUS => {
            Err(format!("`vus` must be from 0 to {MAX_VUS}"))
        }
        Action::Annotate { text } if text.trim().is_empty() || text.chars().count() > MAX_TEXT => {
            Err(format!("`text` must be 1 to {MAX_TEXT} characters"))
        }
        Action::FaultClose { id } if id.is_empty() => Err("`id` must not be empty".into()),
        Action::FaultOpen(f) => check_fault(f),
        _ => Ok(()),
    }
}

fn check_fault(f: &FaultSpec) -> Result<(), String> {
    if let Some(s) = f.share
        && !(s > 0.0 && s <= 1.0)
    {
        return Err("`share` must be in (0, 1]".into());
    }
    if let Some(d) = f.duration_s
        && !(d > 0.0 && d <= MAX_FAULT_SECS)
    {
        return Err(format!("`duration_s` must be in (0, {MAX_FAULT_SECS}]"));
    }
    let header = match f.via.as_deref() {
        None | Some("server") => false,
        Some("header") => true,
        Some(v) => return Err(format!("unknown `via` `{v}` (server or header)")),
    };
    if header && (f.route.is_some() || f.method.is_some()) {
        return Err("a header window takes `ops`, not `route` or `method`".into());
    }
    if !header && f.ops.is_some() {
        return Err("`ops` is for header windows (`\"via\": \"header\"`)".into());
    }
    match (f.window, f.kind.as_deref()) {
        (Some(_), None) => {
            if f.delay_ms.is_some()
                || f.status.is_some()
                || f.route.is_some()
                || f.via.is_some()
                || f.ops.is_some()
            {
                return Err("a scenario `window` takes only `duration_s` and `share`".into());
            }
            Ok(())
        }
        (Some(_), Some(_)) => Err("give either `window` (a scenario window) or `kind`".into()),
        (None, None) => Err("give `window` (a scenario window's index) or `kind`".into()),
        (None, Some("latency")) if f.delay_ms.is_none_or(|d| d == 0 || d > 60_000) => {
            Err("a latency fault needs `delay_ms` from 1 to 60000".into())
        }
        (None, Some("error")) if f.status.is_none_or(|s| !(100..=599).contains(&s)) => {
            Err("an error fault needs `status` from 100 to 599".into())
        }
        (None, Some("latency" | "error")) => Ok(()),
        (None, Some(k)) => Err(format!("unknown fault `kind` `{k}` (latency or error)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_and_who() {
        let (a, who) = parse(br#"{"action":"rate","rate":80,"who":"alice"}"#).unwrap();
        assert_eq!(a, Action::Rate { rate: Some(80.0) });
        assert_eq!(who.as_deref(), Some("alice"));
        assert_eq!(
            parse(br#"{"action":"rate","rate":null}"#).unwrap().0,
            Action::Rate { rate: None }
        );
        assert_eq!(parse(br#"{"action":"pause"}"#).unwrap().0, Action::Pause);
        let (a, _) =
            parse(br#"{"action":"fault_open","kind":"error","status":503,"share":0.5}"#).unwrap();
        assert!(matches!(
            a,
            Action::FaultOpen(FaultSpec {
                status: Some(503),
                ..
            })
        ));
    }

    #[test]
    fn refuses_bad_bodies_with_a_reason() {
        for (body, says) in [
            (&b"{nope"[..], "not JSON"),
            (b"[1]", "JSON object"),
            (b"{}", "missing `action`"),
            (br#"{"action":"warp"}"#, "unknown variant"),
            (br#"{"action":"rate","rate":-1}"#, "from 0 to"),
            (br#"{"action":"rate","rate":"fast"}"#, "invalid type"),
            (br#"{"action":"rate","rat":5}"#, "unknown field"),
            (br#"{"action":"vus","vus":100000}"#, "from 0 to"),
            (br#"{"action":"annotate","text":" "}"#, "1 to 500"),
            (br#"{"action":"pause","who":7}"#, "`who` must be a string"),
            (
                br#"{"action":"pause","who":"a\nb"}"#,
                "no control characters",
            ),
            (br#"{"action":"fault_open","kind":"error"}"#, "status"),
            (
                br#"{"action":"fault_open","window":0,"kind":"error"}"#,
                "either",
            ),
            (
                br#"{"action":"fault_open","kind":"latency","delay_ms":5,"share":2}"#,
                "share",
            ),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(says), "{body:?}: {}", e.message);
        }
    }
}
