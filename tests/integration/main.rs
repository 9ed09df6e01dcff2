
mod report;
mod telemetry;
mod verdict;
mod verify;
