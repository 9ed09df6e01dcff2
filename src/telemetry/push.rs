//! The final Pushgateway push: a short-lived run (a Kubernetes Job) ends before the next
//! scrape, so its last values are PUT to `{url}/metrics/job/trafficgen/run_id/<id>`.

use std::time::Duration;

use base64::Engine;

use super::metrics::Family;
use super::text::{Format, PROMETHEUS_CONTENT_TYPE, render};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

/// The grouping-key path for `run_id`; ids with characters a path segment cannot carry use the
/// Pushgateway's base64 form (`run_id@base64/...`).
pub fn group_path(run_id: &str) -> String {
    let plain = !run_id.is_empty()
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        format!("/metrics/job/trafficgen/run_id/{run_id}")
    } else {
        let b = base64::engine::general_purpose::URL_SAFE.encode(run_id);
        format!("/metrics/job/trafficgen/run_id@base64/{b}")
    }
}

/// PUT replaces the whole group: a rerun with the same id does not keep stale series.
pub async fn push(url: &str, run_id: &str, families: &[Family]) -> Result<(), PushError> {
    let target = format!("{}{}", url.trim_end_matches('/'), group_path(run_id));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let resp = client
        .put(&target)
        .header(reqwest::header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)
        .body(render(families, Format::Prometheus))
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(PushError::Status {
            status: status.as_u16(),
            body,
        });
    }
    Ok(())
}
