//! The todo-api test binary: in-process (`oneshot`) route and bad-input tests, a real-socket
//! test, metrics (with the real `promtool`), log lines, faults, a real Prometheus scraping the
//! app and running the seed's queries, and spans arriving at a real OTLP receiver (rotel).

mod bad_input;
mod binary;
mod config;
mod faults;
mod hardening;
mod logql;
mod logs;
mod metrics;
mod otlp;
mod otlp_transport;
mod prometheus;
mod routes;
mod sampling;
mod socket;
mod support;
