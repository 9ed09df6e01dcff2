mod scheduler;
mod telemetry;
mod verify;
