//! The JSON Schema of the report (committed as `scenarios/report.schema.json`). Types owned by
//! other stages (`Counts`, `TraceRef`, `Segment`) carry no schema derive; the shapes below
//! document how they serialize, and a test checks real reports against the result.

use schemars::JsonSchema;

#[allow(dead_code)]
#[derive(JsonSchema)]
#[schemars(rename = "Counts")]
pub struct CountsDoc {
    pub requests: u64,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub status_class: [u64; 5],
    /// Exact status codes seen, ascending: [code, count] pairs.
    pub status: Vec<(u16, u64)>,
    /// Failures by kind: connect, timeout, io, protocol, status_4xx, status_5xx.
    pub errors: [u64; 6],
    pub dropped: u64,
    pub late: u64,
    pub empty_pool: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    pub faults_latency: u64,
    pub faults_error: u64,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
#[schemars(rename = "ErrorKind", rename_all = "snake_case")]
pub enum ErrorKindDoc {
    Connect,
    Timeout,
    Io,
    Protocol,
    Status4xx,
    Status5xx,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
#[schemars(rename = "TraceRef")]
pub struct TraceRefDoc {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    pub op: String,
    pub at_ms: f64,
    pub response_time_ms: f64,
    pub status: Option<u16>,
    pub error: Option<ErrorKindDoc>,
    pub fault: Option<String>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
#[schemars(rename = "Segment")]
pub struct SegmentDoc {
    pub index: u32,
    pub count: u32,
}

/// The report's JSON Schema, pretty-printed with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(super::Report);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    s.push('\n');
    s
}
