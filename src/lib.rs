//! trafficgen: scenario → plan → arrival offsets → outcome → snapshot/report → verdict.
pub mod plan;
pub mod recorder;
