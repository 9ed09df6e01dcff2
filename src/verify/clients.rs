//! HTTP clients of the three query APIs `verify` talks to, and the parsing of their documented
//! JSON answers into one number (or a trace's spans):
//! - Prometheus `GET /api/v1/query` (instant vector or scalar; values summed);
//! - Loki `GET /loki/api/v1/query_range` (streams: lines counted; matrix: last value of each
//!   series summed; vector: summed);
//! - Tempo `GET /api/search?q=<TraceQL>` (traces counted) and `GET /api/traces/<id>` (OTLP JSON,
//!   `batches` (v1) or `resourceSpans`/`trace.resourceSpans` (v2) → `scopeSpans` → `spans`).
//!
//! Loki and Tempo cannot run in this project's tests: their parsing is tested against in-test
//! HTTP servers answering with the shapes documented in DEPLOY-STACK.md §3–4.

use std::time::Duration;

use serde_json::Value;

/// Why one query attempt gave no answer (retried until the deadline unless `is_final`).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// `cause` is the whole chain of the client error (e.g. "tcp connect error: Connection
    /// refused (os error 111)"), `url` has its credentials masked.
    #[error("GET {url}: {cause}")]
    Http {
        url: String,
        cause: String,
        /// Nothing answered (connection refused, DNS failure): waiting cannot help.
        connect: bool,
    },
    #[error("GET {url}: HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("GET {url}: unexpected answer: {message}")]
    Format { url: String, message: String },
    #[error("trace {0} not found")]
    TraceNotFound(String),
}

/// A per-request bound: a hung backend must not eat the whole deadline in one attempt.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl QueryError {
    /// Retrying cannot change the outcome: the backend rejected the query (400) or nothing
    /// listens / the name does not resolve. Timeouts, 5xx and missing data are retried: the
    /// data may still be arriving.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            QueryError::Status { status: 400, .. } | QueryError::Http { connect: true, .. }
        )
    }

    fn http(url: &str, e: reqwest::Error) -> QueryError {
        // reqwest's Display is only the top ("error sending request"): the cause is in the
        // source chain, and the URL (which may carry credentials) is named by us, masked.
        let connect = e.is_connect();
        let timeout = e.is_timeout();
        let e = e.without_url();
        let mut cause = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            let t = s.to_string();
            if !cause.contains(&t) {
                cause.push_str(": ");
                cause.push_str(&t);
            }
            source = s.source();
        }
        if timeout {
            cause.push_str(" (timed out)");
        }
        QueryError::Http {
            url: crate::secrets::mask_url(url),
            cause,
            connect,
        }
    }
}

/// Which backend a request goes to (its headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Prometheus,
    Loki,
    Tempo,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Prometheus, Backend::Loki, Backend::Tempo];
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Prometheus => "prometheus",
            Backend::Loki => "loki",
            Backend::Tempo => "tempo",
        }
    }
    /// `TRAFFICGEN_PROMETHEUS_HEADERS` …
    pub fn headers_var(self) -> &'static str {
        match self {
            Backend::Prometheus => "TRAFFICGEN_PROMETHEUS_HEADERS",
            Backend::Loki => "TRAFFICGEN_LOKI_HEADERS",
            Backend::Tempo => "TRAFFICGEN_TEMPO_HEADERS",
        }
    }
    /// `TRAFFICGEN_PROMETHEUS_URL` …
    pub fn url_var(self) -> &'static str {
        match self {
            Backend::Prometheus => "TRAFFICGEN_PROMETHEUS_URL",
            Backend::Loki => "TRAFFICGEN_LOKI_URL",
            Backend::Tempo => "TRAFFICGEN_TEMPO_URL",
        }
    }
}

/// Shared reqwest client plus each backend's headers (bearer / basic `Authorization`,
/// `X-Scope-OrgID` for multi-tenant Loki, Tempo or Mimir, …).
#[derive(Debug, Clone)]
pub struct Clients {
    http: reqwest::Client,
    headers: [reqwest::header::HeaderMap; 3],
}

impl Default for Clients {
    fn default() -> Self {
        Clients {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            headers: Default::default(),
        }
    }
}

/// What a query returned, reduced to what assertions compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Summed value (metric queries) or count (lines, traces); `None` = empty result.
    pub value: Option<f64>,
    /// Series / streams / traces in the result.
    pub items: usize,
}

impl Clients {
    /// With `headers` (name, value) sent to `backend`; a bad name or value is an error that
    /// names the header, never its value.
    pub fn with_headers(
        mut self,
        backend: Backend,
        headers: &[(String, String)],
    ) -> Result<Clients, String> {
        let map = crate::secrets::header_map(headers)?;
        self.headers[backend as usize] = map;
        Ok(self)
    }

    /// Headers from `TRAFFICGEN_<BACKEND>_HEADERS` (the `OTEL_EXPORTER_OTLP_HEADERS` format:
    /// `Authorization=Bearer%20TOKEN,X-Scope-OrgID=tenant-1`), read by `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Clients, String> {
        let mut c = Clients::default();
        for b in Backend::ALL {
            if let Some(text) = lookup(b.headers_var()).filter(|t| !t.trim().is_empty()) {
                let h = crate::secrets::parse_headers(&text)
                    .map_err(|m| format!("{}: {m}", b.headers_var()))?;
                c = c
                    .with_headers(b, &h)
                    .map_err(|m| format!("{}: {m}", b.headers_var()))?;
            }
        }
        Ok(c)
    }

    async fn get_json(
        &self,
        backend: Backend,
        base: &str,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<(String, Option<Value>), QueryError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", base.trim_end_matches('/')))
            .map_err(|e| QueryError::Format {
                url: format!("{base}{path}"),
                message: format!("bad URL: {e}"),
            })?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
        let shown = crate::secrets::mask_url(url.as_str());
        let resp = self
            .http
            .get(url.clone())
            .headers(self.headers[backend as usize].clone())
            .send()
            .await
            .map_err(|e| QueryError::http(url.as_str(), e))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| QueryError::http(url.as_str(), e))?;
        if status == 404 && text.trim().is_empty() {
            return Ok((shown, None));
        }
        if !(200..300).contains(&status) {
            let body: String = text.chars().take(300).collect();
            return Err(QueryError::Status {
                url: shown,
                status,
                body,
            });
        }
        let v = serde_json::from_str(&text).map_err(|e| QueryError::Format {
            url: shown.clone(),
            message: format!("not JSON: {e}"),
        })?;
        Ok((shown, Some(v)))
    }

    /// Instant PromQL query at `time` (unix seconds).
    pub async fn promql(&self, base: &str, query: &str, time: f64) -> Result<Answer, QueryError> {
        let (url, v) = self
            .get_json(
                Backend::Prometheus,
                base,
                "/api/v1/query",
                &[("query", query.to_string()), ("time", format!("{time:.3}"))],
            )
            .await?;
        parse_prometheus(v.as_ref()).map_err(|message| QueryError::Format { url, message })
    }

    /// LogQL over `[start, end]` (unix nanoseconds).
    pub async fn logql(
        &self,
        base: &str,
        query: &str,
        start_ns: i128,
        end_ns: i128,
    ) -> Result<Answer, QueryError> {
        let params = [
            ("query", query.to_string()),
            ("start", start_ns.to_string()),
            ("end", end_ns.to_string()),
            ("limit", LOKI_LIMIT.to_string()),
            ("direction", "backward".to_string()),
        ];
        let (url, v) = self
            .get_json(Backend::Loki, base, "/loki/api/v1/query_range", &params)
            .await?;
        parse_loki(v.as_ref()).map_err(|message| QueryError::Format { url, message })
    }

    /// TraceQL search over `[start, end]` (unix seconds).
    pub async fn traceql(
        &self,
        base: &str,
        query: &str,
        start: i64,
        end: i64,
    ) -> Result<Answer, QueryError> {
        let params = [
            ("q", query.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("limit", TEMPO_LIMIT.to_string()),
        ];
        let (url, v) = self
            .get_json(Backend::Tempo, base, "/api/search", &params)
            .await?;
        parse_tempo_search(v.as_ref()).map_err(|message| QueryError::Format { url, message })
    }

    /// One trace by id; `TraceNotFound` on Tempo's 404 (not there yet: retried).
    pub async fn trace(&self, base: &str, trace_id: &str) -> Result<Vec<Span>, QueryError> {
        let (url, v) = self
            .get_json(
                Backend::Tempo,
                base,
                &format!("/api/traces/{trace_id}"),
                &[],
            )
            .await?;
        let v = v.ok_or_else(|| QueryError::TraceNotFound(trace_id.to_string()))?;
        let spans = parse_trace(&v).map_err(|message| QueryError::Format { url, message })?;
        if spans.is_empty() {
            return Err(QueryError::TraceNotFound(trace_id.to_string()));
        }
        Ok(spans)
    }
}

/// Lines asked from Loki per query: counts above it read as "at least this many".
pub const LOKI_LIMIT: usize = 5000;
/// Traces asked from Tempo per search.
pub const TEMPO_LIMIT: usize = 1000;

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// The `data` of a `{"status":"success","data":…}` answer (Prometheus and Loki share it).
fn success_data(v: Option<&Value>) -> Result<&Value, String> {
    let v = v.ok_or("404 with an empty body")?;
    match v.get("status").and_then(Value::as_str) {
        Some("success") => v.get("data").ok_or_else(|| "no \"data\"".to_string()),
        Some(other) => Err(format!(
            "status {other}: {}",
            v.get("error").and_then(Value::as_str).unwrap_or("")
        )),
        None => Err("no \"status\"".into()),
    }
}

fn sum(values: impl Iterator<Item = Option<f64>>) -> Result<Answer, String> {
    let mut items = 0;
    let mut total = 0.0;
    for v in values {
        total += v.ok_or("a sample value is not a number")?;
        items += 1;
    }
    Ok(Answer {
        value: (items > 0).then_some(total),
        items,
    })
}

/// `vector` → the sum of the samples; `scalar` → the value; `matrix` → the sum of each series'
/// last sample.
pub fn parse_prometheus(v: Option<&Value>) -> Result<Answer, String> {
    let data = success_data(v)?;
    let result = data.get("result").ok_or("no \"result\"")?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => sum(array(result)?
            .iter()
            .map(|s| s.get("value").and_then(|p| p.get(1)).and_then(number))),
        Some("scalar") => sum(std::iter::once(result.get(1).and_then(number))),
        Some("matrix") => sum(array(result)?.iter().map(|s| {
            s.get("values")
                .and_then(Value::as_array)
                .and_then(|vs| vs.last())
                .and_then(|p| p.get(1))
                .and_then(number)
        })),
        other => Err(format!("unknown resultType {other:?}")),
    }
}

fn array(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| "\"result\" is not an array".into())
}

/// `streams` → the number of log lines; metric results as for Prometheus.
pub fn parse_loki(v: Option<&Value>) -> Result<Answer, String> {
    let data = success_data(v)?;
    if data.get("resultType").and_then(Value::as_str) == Some("streams") {
        let streams = array(data.get("result").ok_or("no \"result\"")?)?;
        let lines: usize = streams
            .iter()
            .map(|s| {
                s.get("values")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            })
            .sum();
        // A stream without lines is no evidence: items = lines.
        return Ok(Answer {
            value: (lines > 0).then_some(lines as f64),
            items: lines,
        });
    }
    parse_prometheus(v)
}

/// The number of traces found.
pub fn parse_tempo_search(v: Option<&Value>) -> Result<Answer, String> {
    let v = v.ok_or("404 with an empty body")?;
    // jsonpb omits empty repeated fields: no "traces" key = no trace found.
    let n = match v.get("traces") {
        None | Some(Value::Null) => 0,
        Some(t) => t.as_array().ok_or("\"traces\" is not an array")?.len(),
    };
    Ok(Answer {
        value: (n > 0).then_some(n as f64),
        items: n,
    })
}

/// One span of a trace, as much as the slow-span analysis needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub name: String,
    /// As encoded in the answer (base64 in Tempo's JSON, hex in OTLP/JSON): only compared.
    pub span_id: String,
    pub parent_id: Option<String>,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Span {
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// Every span of a trace-by-id answer (v1 `batches`, v2 `trace.resourceSpans`, or OTLP
/// `resourceSpans`; `scopeSpans` or the older `instrumentationLibrarySpans`).
pub fn parse_trace(v: &Value) -> Result<Vec<Span>, String> {
    let v = v.get("trace").unwrap_or(v);
    let batches = v.get("batches").or_else(|| v.get("resourceSpans"));
    let Some(batches) = batches else {
        return Ok(vec![]);
    };
    let batches = batches.as_array().ok_or("\"batches\" is not an array")?;
    let mut out = Vec::new();
    for b in batches {
        let scopes = b
            .get("scopeSpans")
            .or_else(|| b.get("instrumentationLibrarySpans"))
            .and_then(Value::as_array);
        for s in scopes.into_iter().flatten() {
            for sp in s
                .get("spans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = |k: &str| {
                    sp.get(k)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                // Nanosecond timestamps overflow f64's exact range: parse them as integers.
                let time = |k: &str| match sp.get(k) {
                    Some(Value::String(s)) => s.parse::<u64>().ok(),
                    Some(Value::Number(n)) => n.as_u64(),
                    _ => None,
                };
                out.push(Span {
                    name: text("name").unwrap_or_default(),
                    span_id: text("spanId").ok_or("a span has no spanId")?,
                    parent_id: text("parentSpanId"),
                    start_ns: time("startTimeUnixNano").ok_or("a span has no startTimeUnixNano")?,
                    end_ns: time("endTimeUnixNano").ok_or("a span has no endTimeUnixNano")?,
                });
            }
        }
    }
    Ok(out)
}

/// The span where the trace's time went: the largest self time (its duration minus the time
/// covered by its children). A delay injected into `todo_creation` makes every ancestor slow
/// too, so "slowest by duration" would always name the root; self time names the culprit.
/// Returns (name, self time in ns).
pub fn slowest_span(spans: &[Span]) -> Option<(&str, u64)> {
    spans
        .iter()
        .map(|s| {
            let mut children: Vec<(u64, u64)> = spans
                .iter()
                .filter(|c| c.parent_id.as_deref() == Some(s.span_id.as_str()))
                .map(|c| (c.start_ns.max(s.start_ns), c.end_ns.min(s.end_ns)))
                .filter(|(a, b)| b > a)
                .collect();
            children.sort_unstable();
            // Union of the children's intervals, so parallel children are not counted twice.
            let (mut covered, mut until) = (0u64, 0u64);
            for (a, b) in children {
                let a = a.max(until);
                if b > a {
                    covered += b - a;
                    until = b;
                }
            }
            (s.name.as_str(), s.duration_ns().saturating_sub(covered))
        })
        .max_by_key(|&(_, t)| t)
}
