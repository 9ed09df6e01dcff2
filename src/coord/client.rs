//! A segment's side (index ≠ 0): registers with the coordinator and polls until the start is
//! announced, then delivers its final report. Both retry while the coordinator is not up yet
//! (pods start in any order) until the coordinator timeout.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::time::Instant;

use super::protocol::{self, Joined, LiveAnswer, LiveSnapshot, Refused, Register, Start};
use super::{Address, CoordError};
use crate::report::Report;

/// Between two polls of the registration: the start is announced 2 s ahead, so a poll every
/// 100 ms sees it in time.
const POLL: Duration = Duration::from_millis(100);
/// One request must not hang longer than this (a report upload included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A live snapshot that is not answered by the next interval is worth nothing.
const LIVE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

enum Attempt<T> {
    Done(T),
    Again(String),
}

impl Client {
    pub fn new(addr: &Address, timeout: Duration) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .unwrap_or_default(),
            base: format!("http://{addr}"),
            timeout,
        }
    }

    /// One request: the successful response, `Again` for what a retry may cure (not up yet,
    /// connection reset, 5xx), an error for a refusal (409).
    async fn post<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Attempt<reqwest::Response>, CoordError> {
        let url = format!("{}{path}", self.base);
        let resp = match self.http.post(&url).json(body).send().await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Again(format!("{url}: {e}"))),
        };
        let status = resp.status();
        if status == StatusCode::CONFLICT {
            let why = resp
                .json::<Refused>()
                .await
                .map_or_else(|e| format!("refused ({e})"), |r| r.error);
            return Err(CoordError::Refused(why));
        }
        if !status.is_success() {
            return Ok(Attempt::Again(format!("{url}: HTTP {status}")));
        }
        Ok(Attempt::Done(resp))
    }

    /// Registers and waits for the announced start.
    pub async fn join(&self, reg: &Register) -> Result<Start, CoordError> {
        let deadline = Instant::now() + self.timeout;
        let mut last: String;
        loop {
            match self.post(protocol::REGISTER, reg).await? {
                Attempt::Done(resp) => match resp.json::<Joined>().await {
                    Ok(Joined { start: Some(s) }) => return Ok(s),
                    Ok(Joined { start: None }) => {
                        last = "registered; waiting for the other segments".into()
                    }
                    Err(e) => last = format!("unreadable answer: {e}"),
                },
                Attempt::Again(why) => last = why,
            }
            if Instant::now() + POLL > deadline {
                return Err(CoordError::Unreachable(format!(
                    "no start announced by the coordinator {} within {:?} (last: {last})",
                    self.base, self.timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Sends one live snapshot; the coordinator's stop request, if any. Best effort: a lost
    /// snapshot only makes the live view lag (the final reports decide the verdict).
    pub async fn live(&self, snap: &LiveSnapshot) -> Option<String> {
        let url = format!("{}{}", self.base, protocol::LIVE);
        let resp = self
            .http
            .post(&url)
            .timeout(LIVE_TIMEOUT)
            .json(snap)
            .send()
            .await
            .ok()?;
        resp.json::<LiveAnswer>().await.ok()?.stop
    }

    /// Delivers the final report, retrying until the coordinator timeout.
    pub async fn deliver(&self, report: &Report) -> Result<(), CoordError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let why = match self.post(protocol::REPORT, report).await? {
                Attempt::Done(_) => return Ok(()),
                Attempt::Again(why) => why,
            };
            if Instant::now() + POLL > deadline {
                return Err(CoordError::Unreachable(format!(
                    "the report could not be delivered to the coordinator {} within {:?}: {why}",
                    self.base, self.timeout
                )));
            }
            tokio::time::sleep(POLL * 5).await;
        }
    }
}
