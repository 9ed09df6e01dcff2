
mod telemetry;
mod verify;
