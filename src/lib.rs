//! trafficgen: scenario → plan → arrival offsets → outcome → snapshot/report → verdict.
pub mod app;
pub mod cli;
pub mod executor;
pub mod exit;
pub mod faults;
pub mod plan;
pub mod progress;
pub mod recorder;
pub mod report;
pub mod scenario;
pub mod scheduler;
pub mod secrets;
pub mod telemetry;
pub mod verdict;
pub mod verify;
