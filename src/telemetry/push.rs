//! The final Pushgateway push: a short-lived run (a Kubernetes Job) ends before the next
//! scrape, so its last values are PUT to
//! `{url}/metrics/job/trafficgen-push/instance/<instance>/run_id/<id>`. Scraped with
//! `honor_labels: true` (the Pushgateway's documented setup), the series keep
//! `job="trafficgen-push"` and this process's `instance`, apart from the scraped ones.

use std::time::Duration;

use base64::Engine;

use super::metrics::Family;
use super::text::{Format, PROMETHEUS_CONTENT_TYPE, render};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The client error without its URL (the caller names the masked URL).
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

impl From<reqwest::Error> for PushError {
    fn from(e: reqwest::Error) -> Self {
        PushError::Http(e.without_url())
    }
}

/// One grouping-key segment; values with characters a path segment cannot carry use the
/// Pushgateway's base64 form (`name@base64/...`).
fn segment(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if plain {
        format!("/{name}/{value}")
    } else {
        let b = base64::engine::general_purpose::URL_SAFE.encode(value);
        format!("/{name}@base64/{b}")
    }
}

/// The grouping-key path: job `trafficgen-push`, this process's `instance`, the `run_id`.
pub fn group_path(run_id: &str, instance: &str) -> String {
    format!(
        "/metrics/job/{}{}{}",
        super::PUSH_JOB,
        segment("instance", instance),
        segment("run_id", run_id)
    )
}

/// PUT replaces the whole group: a rerun with the same id does not keep stale series.
pub async fn push(
    url: &str,
    run_id: &str,
    instance: &str,
    families: &[Family],
) -> Result<(), PushError> {
    let target = format!(
        "{}{}",
        url.trim_end_matches('/'),
        group_path(run_id, instance)
    );
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
