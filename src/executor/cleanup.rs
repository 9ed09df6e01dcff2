//! `mix.cleanup`: after the load, delete the todos the run created and still knows of (the
//! workers' id pools), a few requests at a time and within a time bound, counted apart from
//! the load (its requests are in no operation's counts, threshold or latency).
//!
//! A control-plane step like the fault API calls (`reqwest`, not the hot path): it runs once,
//! after the measured load, so its cost is irrelevant to the figures. The caller's client
//! trusts what the load trusts (`target::control_client`), and the target's static headers
//! (an API key, a Host override) are sent, so it reaches what the load reached.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Deletes at once at most this many (each a sequential loop over the shared list).
const PARALLEL: usize = 8;

/// What the cleanup did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Cleanup {
    /// Ids the run still knew of at the end of the load.
    pub known: u64,
    /// Deleted (2xx).
    pub deleted: u64,
    /// Already gone (404).
    pub not_found: u64,
    /// Any other answer or a transport error.
    pub failed: u64,
    /// Not tried before the bound passed (`mix.cleanup_timeout`).
    pub left: u64,
    pub duration_s: f64,
    /// The first failure, for the summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

#[derive(Default)]
struct Tally {
    deleted: u64,
    not_found: u64,
    failed: u64,
    first_error: Option<String>,
}

/// `DELETE {base}/api/todos/{id}` for every id, within `bound`, with `client` (its timeout
/// bounds each request). `base` ends without `/`; `headers` are sent with every request.
pub async fn delete_all(
    client: reqwest::Client,
    base: &str,
    headers: &[(String, String)],
    ids: Vec<u64>,
    bound: Duration,
) -> Cleanup {
    let started = Instant::now();
    let known = ids.len() as u64;
    let mut header_map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            reqwest::header::HeaderName::from_bytes(k.as_bytes()),
            reqwest::header::HeaderValue::from_str(v),
        ) {
            header_map.insert(k, v);
        }
    }
    let queue = Arc::new(Mutex::new(ids));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PARALLEL {
        let (client, queue, tally, header_map) = (
            client.clone(),
            queue.clone(),
            tally.clone(),
            header_map.clone(),
        );
        let base = base.to_string();
        tasks.spawn(async move {
            loop {
                let Some(id) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                    return;
                };
                let url = format!("{base}/api/todos/{id}");
                let r = client.delete(&url).headers(header_map.clone()).send().await;
                let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                match r {
                    Ok(r) if r.status().is_success() => t.deleted += 1,
                    Ok(r) if r.status() == reqwest::StatusCode::NOT_FOUND => t.not_found += 1,
                    Ok(r) => {
                        t.failed += 1;
                        t.first_error
                            .get_or_insert_with(|| format!("DELETE {url}: HTTP {}", r.status()));
                    }
                    Err(e) => {
                        t.failed += 1;
                        t.first_error
                            .get_or_insert_with(|| format!("DELETE {url}: {}", e.without_url()));
                    }
                }
            }
        });
    }
    let all = async { while tasks.join_next().await.is_some() {} };
    // Past the bound the tasks are dropped (aborted) with the JoinSet: what they had not
    // finished is `left`.
    let _ = tokio::time::timeout(bound, all).await;
    drop(tasks);
    let t = std::mem::take(&mut *tally.lock().unwrap_or_else(|p| p.into_inner()));
    let done = t.deleted + t.not_found + t.failed;
    Cleanup {
        known,
        deleted: t.deleted,
        not_found: t.not_found,
        failed: t.failed,
        // Requests cut off by the bound count as left too, so the figures add up to `known`.
        left: known.saturating_sub(done),
        duration_s: started.elapsed().as_secs_f64(),
        first_error: t.first_error,
    }
}

impl Cleanup {
    /// The summary's line.
    pub fn line(&self) -> String {
        let mut l = format!(
            "cleanup: {} of {} created todo(s) deleted in {:.1}s",
            self.deleted, self.known, self.duration_s
        );
        if self.not_found > 0 {
            l += &format!(", {} already gone", self.not_found);
        }
        if self.failed > 0 {
            l += &format!(", {} failed", self.failed);
        }
        if self.left > 0 {
            l += &format!(", {} left (bound reached)", self.left);
        }
        if let Some(e) = &self.first_error {
            l += &format!(" (first error: {e})");
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bound_holds_against_a_target_that_never_answers() {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let started = Instant::now();
        let c = delete_all(
            reqwest::Client::new(),
            &base,
            &[],
            (1..=20).collect(),
            Duration::from_millis(300),
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(5), "bounded");
        assert_eq!(
            (c.known, c.deleted, c.failed, c.left),
            (20, 0, 0, 20),
            "{c:?}"
        );
        assert!(c.line().contains("20 left (bound reached)"), "{}", c.line());
        hold.abort();
    }

    #[tokio::test]
    async fn answers_are_counted_by_kind() {
        // 204 for even ids, 404 for odd ones: one request per connection.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let serve = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let id: u64 = head
                        .split_whitespace()
                        .nth(1)
                        .and_then(|p| p.rsplit('/').next())
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(1);
                    let status = if id.is_multiple_of(2) {
                        "204 No Content"
                    } else {
                        "404 Not Found"
                    };
                    let _ = s
                        .write_all(
                            format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .as_bytes(),
                        )
                        .await;
                });
            }
        });
        let c = delete_all(
            reqwest::Client::new(),
            &base,
            &[("X-Key".into(), "k".into())],
            (1..=10).collect(),
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(
            (c.known, c.deleted, c.not_found, c.failed, c.left),
            (10, 5, 5, 0, 0)
        );
        serve.abort();
    }
}
