//! The generator's own telemetry: `/metrics` (`trafficgen_*`, Prometheus text or OpenMetrics
//! with trace-id exemplars), linger, final Pushgateway / remote-write pushes, OTLP metrics and
//! client spans.
//!
//! Everything is fed from the merged `Snapshot` at each interval tick and from the `Report` at
//! the end; nothing here touches the request hot path except the bounded span channel.
//!
//! Pushed and scraped series are told apart (the pushes carry `job="trafficgen-push"` and
//! `instance` = `TRAFFICGEN_INSTANCE` or the host name; a scrape gives its own `job` and
//! `instance`), so a query that selects one of them counts each request once.

pub mod control;
pub mod init;
pub mod metrics;
pub mod otlp;
pub mod otlp_env;
pub mod push;
pub mod remote_write;
pub mod server;
pub mod spans;
pub mod text;

use std::sync::{Arc, RwLock};

use crate::plan::Plan;
use crate::recorder::{Snapshot, SpanRecord};
use crate::report::Report;

use metrics::{Family, Identity, RunGauges, Verdicts};
pub use text::Format;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Env(#[from] otlp_env::OtlpEnvError),
    #[error("{0}")]
    Other(String),
}

/// The `job` label of every pushed (Pushgateway) and remote-written series.
pub const PUSH_JOB: &str = "trafficgen-push";

/// Everything `start` needs, separated from `Plan` and the environment so tests (and other
/// callers) can build it by hand.
#[derive(Debug, Clone)]
pub struct Config {
    pub identity: Identity,
    pub outputs: crate::plan::Telemetry,
    /// Where spans and metrics go over OTLP (`None` signals are not exported).
    pub otlp: otlp_env::OtlpEnv,
    /// The `instance` label of pushed and remote-written series.
    pub instance: String,
}

/// `TRAFFICGEN_INSTANCE` (Kubernetes manifests set it to the pod name), else the host name.
pub fn default_instance() -> String {
    std::env::var("TRAFFICGEN_INSTANCE")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

impl Config {
    /// From the plan, with OTLP destinations from the standard `OTEL_EXPORTER_OTLP_*`
    /// variables (an unsupported value is an error naming the variable).
    pub fn from_plan(plan: &Plan, run_id: &str) -> Result<Config, TelemetryError> {
        let windows = plan
            .faults
            .iter()
            .map(|w| match w.kind {
                crate::plan::FaultKind::Latency { .. } => "latency".to_string(),
                crate::plan::FaultKind::Error { .. } => "error".to_string(),
            })
            .collect();
        Ok(Config {
            identity: Identity {
                scenario: plan.name.clone(),
                run_id: run_id.to_string(),
                ops: plan.mix.operations.iter().map(|o| o.name.clone()).collect(),
                windows,
                steps: plan
                    .mix
                    .flow_steps()
                    .into_iter()
                    .map(|(op, step)| (plan.mix.operations[op].name.clone(), step))
                    .collect(),
            },
            outputs: plan.telemetry.clone(),
            otlp: otlp_env::OtlpEnv::from_env()?,
            instance: plan
                .telemetry
                .instance
                .clone()
                .unwrap_or_else(default_instance),
        })
    }
}

/// What the `/metrics` server and the OTLP metric reader read: the families of the latest tick.
#[derive(Debug, Default)]
pub struct Shared {
    pub families: RwLock<Vec<Family>>,
}

impl Shared {
    pub fn families(&self) -> Vec<Family> {
        self.families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

pub struct Telemetry {
    id: Identity,
    instance: String,
    outputs: crate::plan::Telemetry,
    shared: Arc<Shared>,
    server: Option<server::Server>,
    op_families: Vec<Family>,
    run: RunGauges,
    verdicts: Verdicts,
    spans: Option<spans::SpanExport>,
    otlp_metrics: Option<otlp::OtlpMetrics>,
    /// The control API's metrics, when it listens.
    control: Option<control::ControlMetrics>,
}

impl Telemetry {
    /// Starts what the plan asks for (metrics server, OTLP exporters when an OTLP endpoint
    /// is configured). Cheap when nothing is configured.
    pub async fn start(plan: &Plan, run_id: &str) -> Result<Telemetry, TelemetryError> {
        Self::start_with(Config::from_plan(plan, run_id)?).await
    }

    /// `start` from an explicit configuration (no environment read).
    pub async fn start_with(config: Config) -> Result<Telemetry, TelemetryError> {
        let mut op_families = metrics::op_families(&config.identity, None);
        op_families.extend(metrics::step_families(&config.identity, None));
        let mut t = Telemetry {
            id: config.identity,
            instance: config.instance,
            outputs: config.outputs,
            shared: Arc::new(Shared::default()),
            server: None,
            op_families,
            run: RunGauges::default(),
            verdicts: Verdicts::default(),
            spans: None,
            otlp_metrics: None,
            control: None,
        };
        t.publish();
        let other = |e: &dyn std::fmt::Display| TelemetryError::Other(e.to_string());
        if let Some(signal) = &config.otlp.traces {
            t.spans = Some(spans::SpanExport::start(signal, &t.id.run_id).map_err(|e| other(&e))?);
        }
        // `OTEL_METRICS_EXPORTER=none` (the standard switch, set by the compose and k8s
        // files) keeps metrics to the scrape, so dashboards don't see each series twice.
        if let Some(signal) = &config.otlp.metrics {
            t.otlp_metrics =
                Some(otlp::OtlpMetrics::start(signal, t.shared.clone()).map_err(|e| other(&e))?);
        }
        if let Some(addr) = t.outputs.metrics_addr {
            t.server = Some(server::Server::start(addr, t.shared.clone()).await?);
        }
        Ok(t)
    }

    /// Where the executor offers finished requests' client spans (None: spans are not
    /// exported, and no trace id is shown).
    pub fn span_sender(&self) -> Option<tokio::sync::mpsc::Sender<SpanRecord>> {
        self.spans.as_ref().map(|s| s.sender())
    }

    /// The trace sampling ratio in effect (0 when spans are not exported).
    pub fn sample_ratio(&self) -> f64 {
        if self.spans.is_some() {
            self.outputs.trace_sample_ratio.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The address `/metrics` is served on (the bound one when the plan said port 0).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// The current exposition, as a scrape would get it.
    pub fn render(&self, format: Format) -> String {
        text::render(&self.shared.families(), format)
    }

    /// Called at every interval tick with the merged snapshot.
    pub fn observe(&mut self, snapshot: &Snapshot) {
        self.op_families = metrics::op_families(&self.id, Some(&snapshot.ops));
        self.op_families
            .extend(metrics::step_families(&self.id, Some(&snapshot.steps)));
        self.run = RunGauges::of(snapshot);
        if snapshot.finished {
            self.verdicts.finished = true;
        }
        self.publish();
    }

    /// Publishes threshold and assertion state from the report (and `run_finished=1`) now,
    /// e.g. before `verify` polls Prometheus; `finish` does it again with the final report.
    pub fn publish_report(&mut self, report: &Report) {
        self.verdicts = Verdicts {
            thresholds: report
                .thresholds
                .iter()
                .map(|t| (t.source.clone(), !t.passed))
                .collect(),
            assertions: report
                .verify
                .iter()
                .map(|a| (a.name.clone(), a.failed()))
                .collect(),
            finished: true,
        };
        self.publish();
    }

    /// Final values (incl. threshold and assertion state from the report), pushes, span flush,
    /// then keeps `/metrics` up for the linger. Never fails the run: problems are returned as
    /// text (credentials masked; the run prints them).
    pub async fn finish(mut self, report: &Report) -> Vec<String> {
        self.publish_report(report);
        let mut problems = Vec::new();
        let families = self.shared.families();
        // Error texts quote URLs (and may quote answers): credentials never reach stderr.
        let secrets: Vec<String> = [&self.outputs.pushgateway, &self.outputs.remote_write]
            .into_iter()
            .flatten()
            .filter_map(|u| crate::secrets::url_secret(u))
            .collect();
        let shown = |u: &str| crate::secrets::mask_url(u);
        if let Some(url) = self.outputs.pushgateway.clone()
            && let Err(e) = push::push(&url, &self.id.run_id, &self.instance, &families).await
        {
            problems.push(crate::secrets::scrub(
                &format!("pushgateway push to {} failed: {e}", shown(&url)),
                &secrets,
            ));
        }
        if let Some(url) = self.outputs.remote_write.clone()
            && let Err(e) = remote_write::push(&url, &self.instance, &families).await
        {
            problems.push(crate::secrets::scrub(
                &format!("remote write to {} failed: {e}", shown(&url)),
                &secrets,
            ));
        }
        if let Some(spans) = self.spans.take()
            && let Err(e) = spans.finish().await
        {
            problems.push(e.to_string());
        }
        if let Some(m) = self.otlp_metrics.take()
            && let Err(e) = m.finish().await
        {
            problems.push(e.to_string());
        }
        if let Some(server) = self.server.take() {
            if !self.outputs.linger.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(self.outputs.linger) => {}
                    // Ctrl-C during the linger ends it, not the process's chance to report.
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            server.stop().await;
        }
        problems
    }

    /// The control API listens: its action counters exist (at 0) from now on.
    pub fn enable_control(&mut self, actions: &[&'static str]) {
        self.control = Some(control::ControlMetrics::new(actions));
        self.publish();
    }

    /// A control action was applied (see `control::ControlMetrics::record`).
    pub fn control_action(&mut self, event: &crate::report::ControlEvent) {
        if let Some(c) = &mut self.control {
            c.record(&event.action, &event.values);
            self.publish();
        }
    }

    fn publish(&self) {
        let mut all = self.op_families.clone();
        all.extend(metrics::run_families(&self.id, &self.run, &self.verdicts));
        if let Some(c) = &self.control {
            all.extend(c.families(&self.id));
        }
        *self
            .shared
            .families
            .write()
            .unwrap_or_else(|p| p.into_inner()) = all;
    }
}
