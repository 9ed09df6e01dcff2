//! trafficgen: scenario → plan → arrival offsets → outcome → snapshot/report → verdict.
pub mod faults;
pub mod plan;
pub mod recorder;
pub mod report;
pub mod scenario;
pub mod telemetry;
pub mod verdict;
pub mod verify;
pub mod executor;
pub mod scheduler;
pub mod app;
pub mod cli;
pub mod exit;
pub mod progress;
