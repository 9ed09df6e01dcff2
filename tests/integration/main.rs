
mod report;
mod telemetry;
mod verdict;
