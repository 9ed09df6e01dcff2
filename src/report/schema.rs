//! The JSON Schema of the report (committed as `scenarios/report.schema.json`), derived from the
//! report types themselves (`Counts`, `TraceRef`, `Segment` included); a test checks real
//! reports against it.

/// The report's JSON Schema, pretty-printed with a trailing newline.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(super::Report);
    let mut s = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    s.push('\n');
    s
}
