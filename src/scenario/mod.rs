//! Scenario file → raw model, with source positions kept for line/column errors.
//! (OWNER: plan helper. CONTRACT: `json_schema`.)

pub mod de;
pub mod node;
pub mod suggest;
pub mod units;

pub use units::Sp;

/// JSON Schema of the scenario format (what `trafficgen schema` prints).
pub fn json_schema() -> serde_json::Value {
    todo!("plan helper")
}
