//! The seed's LogQL queries against the log lines of a faulted run. Loki cannot run here, so a
//! small evaluator implements exactly the LogQL the queries use: a stream selector (matched
//! against the labels the log shipper puts on the app's stream: `namespace="tp2devops"`,
//! `app="backend"`), line filters `|=` / `!=`, `| json`, label filters `=` `!=` `>` `<` `>=`
//! `<=` on strings and numbers, and `rate(...[5m])` / `count_over_time(...[5m])` (which here
//! only need one matching line: all lines are inside the range).

use std::collections::BTreeMap;

use axum::body::Body;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{req, test_config, with_config};

/// The labels the shipped log pipeline attaches to the todo-api's stream.
const STREAM_LABELS: [(&str, &str); 2] = [("namespace", "tp2devops"), ("app", "backend")];

#[derive(Debug, PartialEq)]
enum Stage {
    Contains(String),
    NotContains(String),
    Json,
    Label {
        name: String,
        op: String,
        value: Lit,
    },
}

#[derive(Debug, PartialEq)]
enum Lit {
    Str(String),
    Num(f64),
}

#[derive(Debug)]
struct Query {
    selector: Vec<(String, String)>,
    stages: Vec<Stage>,
}

fn parse(q: &str) -> Query {
    let mut s = q.trim();
    // A range aggregation around a log query: keep the inner query, drop `[range])`.
    for f in ["rate(", "count_over_time("] {
        if let Some(inner) = s.strip_prefix(f) {
            let inner = inner.strip_suffix(')').expect("closing parenthesis");
            let open = inner.rfind('[').expect("a range");
            assert!(inner[open..].trim_end().ends_with(']'), "{q}");
            s = inner[..open].trim();
        }
    }
    let s = s
        .strip_prefix('{')
        .unwrap_or_else(|| panic!("selector in {q}"));
    let close = s.find('}').unwrap();
    let selector = s[..close]
        .split(',')
        .map(|m| {
            let (k, v) = m.split_once('=').unwrap_or_else(|| panic!("matcher {m}"));
            (k.trim().to_string(), unquote(v.trim()))
        })
        .collect();
    let mut rest = s[close + 1..].trim();
    let mut stages = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("|=") {
            let (lit, r) = quoted(r.trim_start());
            stages.push(Stage::Contains(lit));
            rest = r.trim_start();
        } else if let Some(r) = rest.strip_prefix("!=") {
            let (lit, r) = quoted(r.trim_start());
            stages.push(Stage::NotContains(lit));
            rest = r.trim_start();
        } else if let Some(r) = rest.strip_prefix('|') {
            let r = r.trim_start();
            if let Some(r) = r.strip_prefix("json") {
                stages.push(Stage::Json);
                rest = r.trim_start();
                continue;
            }
            let end = r.find('|').unwrap_or(r.len());
            let expr = r[..end].trim();
            let op_at = expr
                .find(['=', '!', '>', '<'])
                .unwrap_or_else(|| panic!("label filter {expr}"));
            let name = expr[..op_at].trim().to_string();
            let after = &expr[op_at..];
            let op_len =
                if after.starts_with("!=") || after.starts_with(">=") || after.starts_with("<=") {
                    2
                } else {
                    1
                };
            let op = after[..op_len].to_string();
            let v = after[op_len..].trim();
            let value = if v.starts_with('"') {
                Lit::Str(unquote(v))
            } else {
                Lit::Num(v.parse().unwrap_or_else(|_| panic!("number {v}")))
            };
            stages.push(Stage::Label { name, op, value });
            rest = r[end..].trim_start();
        } else {
            panic!("unsupported LogQL at {rest:?} in {q}");
        }
    }
    Query { selector, stages }
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("quoted string {v}"))
        .to_string()
}

/// A leading `"…"` and what follows it.
fn quoted(s: &str) -> (String, &str) {
    let s = s.strip_prefix('"').expect("a quoted string");
    let end = s.find('"').expect("closing quote");
    (s[..end].to_string(), &s[end + 1..])
}

/// The lines the query keeps.
fn eval<'a>(q: &Query, lines: &'a [String]) -> Vec<&'a String> {
    let stream = STREAM_LABELS.iter().copied().collect::<BTreeMap<_, _>>();
    if !q
        .selector
        .iter()
        .all(|(k, v)| stream.get(k.as_str()) == Some(&v.as_str()))
    {
        return Vec::new();
    }
    lines
        .iter()
        .filter(|line| {
            let mut labels: BTreeMap<String, Value> = BTreeMap::new();
            q.stages.iter().all(|st| match st {
                Stage::Contains(s) => line.contains(s.as_str()),
                Stage::NotContains(s) => !line.contains(s.as_str()),
                Stage::Json => {
                    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(line) {
                        labels.extend(m);
                    }
                    true
                }
                Stage::Label { name, op, value } => {
                    let Some(got) = labels.get(name) else {
                        return false;
                    };
                    match value {
                        Lit::Str(want) => {
                            let got = match got {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            match op.as_str() {
                                "=" => got == *want,
                                "!=" => got != *want,
                                _ => panic!("{op} on a string"),
                            }
                        }
                        Lit::Num(want) => {
                            let Some(got) = got
                                .as_f64()
                                .or_else(|| got.as_str().and_then(|s| s.parse().ok()))
                            else {
                                return false;
                            };
                            match op.as_str() {
                                "=" => got == *want,
                                "!=" => got != *want,
                                ">" => got > *want,
                                "<" => got < *want,
                                ">=" => got >= *want,
                                "<=" => got <= *want,
                                _ => panic!("operator {op}"),
                            }
                        }
                    }
                }
            })
        })
        .collect()
}

#[test]
fn the_evaluator_parses_and_filters() {
    let lines = vec![
        r#"{"level":"ERROR","todoId":101,"msg":"x"}"#.to_string(),
        r#"{"level":"ERROR","todoId":7}"#.to_string(),
        r#"{"level":"INFO","todoId":300}"#.to_string(),
    ];
    let q = parse(r#"{namespace="tp2devops"} | json | level="ERROR" | todoId > 100"#);
    assert_eq!(eval(&q, &lines), [&lines[0]]);
    assert!(eval(&parse(r#"{namespace="other"}"#), &lines).is_empty());
    assert_eq!(
        eval(&parse(r#"{namespace="tp2devops"} |= "INFO""#), &lines).len(),
        1
    );
    assert_eq!(
        eval(
            &parse(r#"rate({namespace="tp2devops"} != "INFO" [5m])"#),
            &lines
        )
        .len(),
        2
    );
    assert_eq!(
        eval(
            &parse(r#"{app="backend"} | json | todoId <= 101 | level != "INFO""#),
            &lines
        )
        .len(),
        2
    );
}

/// The seed document's "Loki Queries (LogQL)" block and the examples in the design notes,
/// verbatim except `traceId="abc123"`, the documents' placeholder, which gets a trace id of
/// the run (a faulted request's).
const SEED_QUERIES: [&str; 6] = [
    r#"{namespace="tp2devops", app="backend"}"#,
    r#"{namespace="tp2devops"} |= "ERROR""#,
    r#"{namespace="tp2devops"} | json | traceId="abc123""#,
    r#"rate({namespace="tp2devops"} |= "ERROR" [5m])"#,
    r#"{namespace="tp2devops"} | json | level="ERROR" | todoId > 100"#,
    r#"{namespace="tp2devops"} | json | duration > 500"#,
];

#[tokio::test(start_paused = true)]
async fn every_seed_query_matches_lines_of_a_faulted_run() {
    let (mut config, lines) = test_config();
    config.max_todos = 105;
    let app = with_config(config, lines.clone());
    for i in 0..105 {
        app.create(&format!("todo {i}")).await;
    }
    // A header error fault on todo 101, a rule error fault on todo 102, a slow list, a full
    // store and a validation error.
    let tp = "00-abcdef0123456789abcdef0123456789-00f067aa0ba902b7-01";
    let r = app
        .call(
            req(Method::GET, "/api/todos/101")
                .header("x-fault-status", "503")
                .header("traceparent", tp)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    r.assert_error(StatusCode::SERVICE_UNAVAILABLE, "fault_injected");
    let r = app
        .call(
            req(Method::POST, "/admin/faults")
                .header("authorization", "Bearer secret-token")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"route":"/api/todos/:id","method":"DELETE","kind":"error","status":500,"duration_s":60})
                        .to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    app.call(
        req(Method::DELETE, "/api/todos/102")
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .assert_error(StatusCode::INTERNAL_SERVER_ERROR, "fault_injected");
    let r = app
        .call(
            req(Method::GET, "/api/todos?limit=5")
                .header("x-fault-delay", "600")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.json(Method::POST, "/api/todos", r#"{"text":"one too many"}"#)
        .await
        .assert_error(StatusCode::INSUFFICIENT_STORAGE, "store_full");
    app.json(Method::PUT, "/api/todos/3", r#"{"text":"   "}"#)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "validation_error");

    let captured: Vec<String> = lines.lock().unwrap().clone();
    let trace = tp.split('-').nth(1).unwrap();
    for q in SEED_QUERIES {
        let q = q.replace("abc123", trace);
        let got = eval(&parse(&q), &captured);
        assert!(!got.is_empty(), "no line matches {q}");
    }

    let v = |l: &String| serde_json::from_str::<Value>(l).unwrap();
    // The ERROR lines about todos above 100 are exactly the two injected faults, and say so.
    let high: Vec<Value> = eval(&parse(SEED_QUERIES[4]), &captured)
        .into_iter()
        .map(v)
        .collect();
    assert_eq!(high.len(), 2, "{high:?}");
    for (line, id, status, method) in [(&high[0], 101, 503, "GET"), (&high[1], 102, 500, "DELETE")]
    {
        assert_eq!(line["todoId"], id, "{line}");
        assert!(line["todoId"].is_u64());
        assert_eq!(line["msg"], "Injected fault");
        assert_eq!(line["error"], "fault_injected");
        assert_eq!(line["fault"], "error");
        assert_eq!(line["status"], status);
        assert_eq!(line["method"], method);
        assert_eq!(line["route"], "/api/todos/:id");
        assert!(
            line["message"]
                .as_str()
                .is_some_and(|m| m.contains(&status.to_string()))
        );
    }
    assert_eq!(
        high[0]["traceId"], trace,
        "the caller's trace id is on the error line"
    );
    // The traceId query finds the faulted request's error line and its access line.
    let by_trace = eval(&parse(&SEED_QUERIES[2].replace("abc123", trace)), &captured);
    assert_eq!(by_trace.len(), 2, "{by_trace:?}");
    // Store full and validation errors say what they are.
    let full: Vec<Value> = eval(
        &parse(r#"count_over_time({namespace="tp2devops"} | json | error="store_full" [5m])"#),
        &captured,
    )
    .into_iter()
    .map(v)
    .collect();
    assert_eq!(full.len(), 1);
    assert_eq!(full[0]["level"], "ERROR");
    assert_eq!(full[0]["msg"], "Store full");
    assert!(
        full[0]["message"].as_str().unwrap().contains("105"),
        "{}",
        full[0]
    );
    let invalid: Vec<Value> = eval(
        &parse(r#"{namespace="tp2devops"} | json | level="WARN" | error="validation_error""#),
        &captured,
    )
    .into_iter()
    .map(v)
    .collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0]["msg"], "Validation failed");
    assert_eq!(invalid[0]["todoId"], 3);
    assert_eq!(invalid[0]["message"], "text must not be empty");
    // The slow request's access line is the one above 500 ms.
    let slow = eval(&parse(SEED_QUERIES[5]), &captured);
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert!(slow[0].contains(r#""route":"/api/todos""#), "{}", slow[0]);
}
