mod cli;
mod report;
mod run_e2e;
mod scheduler;
mod support;
mod telemetry;
mod verdict;
mod verify;
