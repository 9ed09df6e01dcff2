//! The target of a run before any load is sent: the bundled todo-api started in-process when
//! the plan names no target, resolving the target's address, and waiting until its readiness
//! path answers. Nothing here is on the hot path.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::plan::{BaseUrl, Plan};

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct Target {
    pub base: BaseUrl,
    /// `scheme://host:port/prefix`, for messages, the report and the fault API.
    pub url: String,
    /// The bearer token of the target's fault API (the embedded todo-api's own, or
    /// `TRAFFICGEN_FAULT_TOKEN`).
    pub fault_token: Option<String>,
}

impl Target {
    pub fn new(base: BaseUrl, fault_token: Option<String>) -> Target {
        let url = format!(
            "{}://{}:{}{}",
            base.scheme, base.host, base.port, base.prefix
        );
        Target {
            base,
            url,
            fault_token,
        }
    }

    /// The first address the target's host resolves to.
    pub async fn resolve(&self) -> anyhow::Result<SocketAddr> {
        tokio::net::lookup_host((self.base.host.as_str(), self.base.port))
            .await
            .with_context(|| format!("resolving {}", self.base.host))?
            .next()
            .ok_or_else(|| anyhow!("{}: no address", self.base.host))
    }
}

/// A random 16-hex-digit id (run ids, tokens).
pub fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The bundled todo-api, started in-process when the scenario has no target.
pub struct Embedded {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Embedded {
    /// Starts the todo-api on an ephemeral loopback port with fault injection on (its token in
    /// the returned target).
    pub async fn start() -> anyhow::Result<(Embedded, Target)> {
        let token = random_id() + &random_id();
        // With an OTLP endpoint the embedded app exports its server spans too (to the same
        // collector, with the same protocol, per-signal endpoint and headers as the standard
        // OTEL_* variables say), so a trace shows trafficgen → todo-api without another target.
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let otlp_export = env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        let otlp_protocol = todo_api::OtlpProtocol::from_env()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .unwrap_or(todo_api::OtlpProtocol::HttpProtobuf);
        let config = todo_api::Config {
            host: [127, 0, 0, 1].into(),
            port: 0,
            faults_enabled: true,
            fault_token: Some(token.clone()),
            log: todo_api::LogOutput::Off,
            otlp_export,
            otlp_protocol,
            ..Default::default()
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("binding the embedded todo-api")?;
        let addr = listener.local_addr()?;
        let state = todo_api::AppState::new(config);
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(todo_api::serve(listener, state, async move {
            let _ = rx.await;
        }));
        let base = BaseUrl {
            scheme: "http".into(),
            host: addr.ip().to_string(),
            port: addr.port(),
            prefix: String::new(),
        };
        Ok((Embedded { stop, task }, Target::new(base, Some(token))))
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

/// Polls the readiness path until it answers 2xx (true) or the timeout passes (false).
pub async fn wait_ready(plan: &Plan, target: &Target) -> bool {
    let r = &plan.target.ready;
    let url = format!("{}{}", target.url, r.path);
    let client = match reqwest::Client::builder()
        .timeout(
            r.interval
                .max(Duration::from_millis(200))
                .min(Duration::from_secs(5)),
        )
        .build()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let Some(deadline) = Instant::now().checked_add(r.timeout) else {
        return false;
    };
    loop {
        if let Ok(resp) = client.get(&url).send().await
            && resp.status().is_success()
        {
            return true;
        }
        if Instant::now()
            .checked_add(r.interval)
            .is_none_or(|next| next > deadline)
        {
            return false;
        }
        tokio::time::sleep(r.interval).await;
    }
}
