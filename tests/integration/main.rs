
mod telemetry;
