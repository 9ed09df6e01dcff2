//! Quick mode (`trafficgen run --url URL …`): the command-line flags turned into the text of a
//! one-operation scenario, which then goes through the same validation as a file. YAML reads
//! JSON, so the text is written with serde_json (every value quoted properly).

use std::time::Duration;

use serde_json::{Map, Value, json};

/// The quick-mode flags.
#[derive(Debug, Clone, Default)]
pub struct Quick {
    pub url: String,
    pub method: Option<String>,
    /// `Name: value`.
    pub headers: Vec<String>,
    /// A literal body, or `@path` to read one from a file.
    pub body: Option<String>,
    pub rate: Option<f64>,
    pub vus: Option<u32>,
    pub duration: Option<Duration>,
    /// `METRIC: EXPR`, e.g. `response_time: p(95)<300ms`.
    pub thresholds: Vec<String>,
}

/// The URL split into the target (`scheme://authority`) and the request path (with query).
fn split_url(url: &str) -> Result<(String, String), String> {
    let after = url
        .find("://")
        .map(|i| i + 3)
        .ok_or_else(|| format!("--url `{url}`: expected http://host[:port]/path"))?;
    let end = url[after..]
        .find(['/', '?'])
        .map_or(url.len(), |i| after + i);
    let path = &url[end..];
    let path = if path.is_empty() {
        "/".to_string()
    } else if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((url[..end].to_string(), path))
}

/// The scenario text of `q`.
pub fn scenario_text(q: &Quick) -> Result<String, String> {
    let (target, path) = split_url(q.url.trim())?;
    let duration = q
        .duration
        .ok_or("quick mode needs --duration (e.g. --duration 30s)")?;
    let d = format!("{}ms", duration.as_millis().max(1));
    let load = match (q.rate, q.vus) {
        (Some(r), None) => {
            json!({"model": "open", "stages": [{"duration": d, "rate": format!("{r}/s")}]})
        }
        (None, Some(n)) => {
            json!({"model": "closed", "start_vus": n, "stages": [{"duration": d, "vus": n}]})
        }
        _ => return Err("quick mode needs exactly one of --rate R or --vus N".into()),
    };
    let mut headers = Map::new();
    for h in &q.headers {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| format!("--header `{h}`: expected `Name: value`"))?;
        headers.insert(k.trim().to_string(), Value::String(v.trim().to_string()));
    }
    let mut request = Map::new();
    request.insert(
        "method".into(),
        Value::String(
            q.method
                .clone()
                .unwrap_or_else(|| "GET".into())
                .to_uppercase(),
        ),
    );
    request.insert("path".into(), Value::String(path));
    if !headers.is_empty() {
        request.insert("headers".into(), Value::Object(headers));
    }
    if let Some(b) = &q.body {
        let body = match b.strip_prefix('@') {
            // Bounded like a scenario file: the body is kept in memory and sent per request.
            Some(file) => super::read_bounded(
                std::path::Path::new(file),
                super::limits::MAX_FILE_BYTES,
                "the body file",
            )
            .map_err(|e| format!("--body @{file}: {e}"))?,
            None => b.clone(),
        };
        request.insert("body".into(), Value::String(body));
    }
    let mut thresholds = Map::new();
    for t in &q.thresholds {
        let (m, e) = t
            .rsplit_once(':')
            .ok_or_else(|| format!("--threshold `{t}`: expected `METRIC: EXPR`"))?;
        thresholds.insert(m.trim().to_string(), Value::String(e.trim().to_string()));
    }
    let mut s = json!({
        "name": "quick",
        "description": format!("quick mode: {}", q.url),
        "target": {"url": target},
        "load": load,
        "mix": {"operations": [{"name": "request", "request": request}]},
    });
    if !thresholds.is_empty() {
        s["thresholds"] = Value::Object(thresholds);
    }
    serde_json::to_string_pretty(&s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_target_and_path() {
        let s = |u| split_url(u).unwrap();
        assert_eq!(
            s("http://h:1/a/b?c=d"),
            ("http://h:1".into(), "/a/b?c=d".into())
        );
        assert_eq!(
            s("https://[::1]:8443"),
            ("https://[::1]:8443".into(), "/".into())
        );
        assert_eq!(s("http://h?x=1"), ("http://h".into(), "/?x=1".into()));
        assert!(split_url("h:1/x").is_err());
    }

    #[test]
    fn flags_become_a_valid_scenario() {
        let q = Quick {
            url: "http://127.0.0.1:9/api?x=1".into(),
            method: Some("post".into()),
            headers: vec!["X-A: b: c".into()],
            body: Some("{}".into()),
            vus: Some(3),
            duration: Some(Duration::from_secs(2)),
            thresholds: vec!["response_time{op:request}: p(95)<300ms".into()],
            ..Default::default()
        };
        let text = scenario_text(&q).unwrap();
        let plan = crate::plan::build_from_str(&text, "q", None, &Default::default(), &|_| None)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(plan.mix.operations.len(), 1);
        assert_eq!(plan.thresholds.len(), 1);
        assert!(text.contains("\"X-A\": \"b: c\""), "{text}");
        assert!(
            scenario_text(&Quick {
                rate: Some(1.0),
                ..q.clone()
            })
            .is_err()
        );
    }
}
