//! The target of a run before any load is sent: the bundled todo-api started in-process when
//! the plan names no target, resolving the target's address, and waiting until its readiness
//! path answers. Nothing here is on the hot path.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
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

    /// Every address the target's host resolves to (an IPv6 literal without its brackets).
    pub async fn resolve(&self) -> anyhow::Result<Vec<SocketAddr>> {
        crate::executor::resolve(&self.base)
            .await
            .with_context(|| format!("resolving {}", self.base.host))
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

/// A client for the generator's own calls to the target outside the load (readiness,
/// `mix.cleanup`): it trusts what the load trusts (`target.tls`, not the platform's roots)
/// and speaks HTTP/2 with prior knowledge to an HTTP/2-only cleartext target, as the load does.
pub fn control_client(
    plan: &Plan,
    target: &Target,
    timeout: Duration,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if target.base.scheme == "https" {
        let c = crate::executor::tls::client_config(&plan.target.tls, &[b"http/1.1"])
            .map_err(|e| format!("TLS error: {}: {e}", target.base.host))?;
        builder = builder.use_preconfigured_tls(c);
    }
    if plan.target.http_version == crate::plan::HttpVersion::Http2 && target.base.scheme == "http" {
        builder = builder.http2_prior_knowledge();
    }
    builder
        .timeout(timeout)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// Why the target was not ready: the last attempt's answer or error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// e.g. `connection refused`, `HTTP 503`, `timeout (no answer within 1s)`, `TLS error: …`.
    pub last: String,
    pub attempts: u32,
}

/// How often the wait says it is still waiting (stderr, not in quiet mode).
const WAIT_NOTE_EVERY: Duration = Duration::from_secs(1);

/// Polls the readiness path until it answers 2xx, or the timeout passes (then the last
/// attempt's reason). While waiting, a line about every second on stderr (not with `quiet`).
pub async fn wait_ready(plan: &Plan, target: &Target) -> Result<(), NotReady> {
    let quiet = plan.output.progress == crate::plan::Progress::Quiet;
    let r = &plan.target.ready;
    let url = format!("{}{}", target.url, r.path);
    let probe_timeout = r
        .interval
        .max(Duration::from_millis(200))
        .min(Duration::from_secs(5));
    let client = control_client(plan, target, probe_timeout)
        .map_err(|last| NotReady { last, attempts: 0 })?;
    let started = Instant::now();
    let Some(deadline) = started.checked_add(r.timeout) else {
        return Err(NotReady {
            last: "ready.timeout is too long".into(),
            attempts: 0,
        });
    };
    let mut attempts = 0u32;
    let mut next_note = started + WAIT_NOTE_EVERY;
    loop {
        attempts = attempts.saturating_add(1);
        let last = match client.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) => reason(&e, probe_timeout),
        };
        let now = Instant::now();
        if now
            .checked_add(r.interval)
            .is_none_or(|next| next > deadline)
        {
            return Err(NotReady { last, attempts });
        }
        if !quiet && now >= next_note {
            eprintln!(
                "trafficgen: waiting for {url} to be ready ({:.0}s of {:.0}s, {attempts} attempt(s)): {last}",
                now.saturating_duration_since(started).as_secs_f64(),
                r.timeout.as_secs_f64()
            );
            next_note = now + WAIT_NOTE_EVERY;
        }
        tokio::time::sleep(r.interval).await;
    }
}

/// A probe error in a few words: what a person checks first.
fn reason(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timeout (no answer within {timeout:?})");
    }
    // Walk the chain, also into wrapped `io::Error`s (whose `source` skips what they wrap).
    let mut at: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    let mut innermost = None;
    while let Some(s) = at {
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return format!("TLS error: {tls}");
        }
        innermost = Some(s);
        at = match s.downcast_ref::<std::io::Error>() {
            Some(io) => match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return "connect timeout".into(),
                _ => match io.get_ref() {
                    Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                    None => s.source(),
                },
            },
            None => s.source(),
        };
    }
    match innermost {
        Some(s) if e.is_connect() => format!("connect error: {s}"),
        Some(s) => s.to_string(),
        None => e.to_string(),
    }
}
