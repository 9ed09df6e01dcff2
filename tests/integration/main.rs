mod report;
mod scheduler;
mod telemetry;
mod verdict;
mod verify;
