//! trafficgen: scenario-driven synthetic traffic that checks the telemetry it caused.
pub mod plan;
