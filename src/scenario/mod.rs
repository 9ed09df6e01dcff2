//! Scenario file → raw model, with source positions kept for line/column errors.
//! (OWNER: plan helper. CONTRACT: `json_schema`.)

/// JSON Schema of the scenario format (what `trafficgen schema` prints).
pub fn json_schema() -> serde_json::Value {
    todo!("plan helper")
}
