//! Prometheus remote write 1.0: the final values as a snappy-compressed protobuf
//! `WriteRequest`, for receivers a short-lived run cannot wait to be scraped by (Prometheus
//! with `--web.enable-remote-write-receiver`, Mimir, Thanos Receive, VictoriaMetrics).
//!
//! The four messages of `prometheus/prompb` that 1.0 needs are declared here with prost's
//! derive: no protoc, no generated files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prost::Message;

use super::metrics::{BUCKETS, Family, Kind, Value};
use super::text::number;

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// The client error without its URL (the caller names the masked URL).
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
}

impl From<reqwest::Error> for RemoteWriteError {
    fn from(e: reqwest::Error) -> Self {
        RemoteWriteError::Http(e.without_url())
    }
}

/// One sample per series at `timestamp_ms`, named as a scrape of the Prometheus text format
/// would name them (`_total`, `_bucket{le}`, `_sum`, `_count`), plus `job="trafficgen-push"`
/// and `instance` (this process), so they never share a label set with the scraped series of
/// the same run. Labels sorted, as 1.0 requires.
pub fn write_request(families: &[Family], instance: &str, timestamp_ms: i64) -> WriteRequest {
    let mut timeseries = Vec::new();
    let mut add = |name: String,
                   labels: &[(&'static str, String)],
                   extra: Option<(&str, String)>,
                   value: f64| {
        let mut l: Vec<Label> = labels
            .iter()
            .map(|(k, v)| Label {
                name: (*k).to_string(),
                value: v.clone(),
            })
            .collect();
        l.push(Label {
            name: "__name__".into(),
            value: name,
        });
        l.push(Label {
            name: "job".into(),
            value: super::PUSH_JOB.into(),
        });
        l.push(Label {
            name: "instance".into(),
            value: instance.to_string(),
        });
        if let Some((k, v)) = extra {
            l.push(Label {
                name: k.to_string(),
                value: v,
            });
        }
        l.sort_by(|a, b| a.name.cmp(&b.name));
        timeseries.push(TimeSeries {
            labels: l,
            samples: vec![Sample {
                value,
                timestamp: timestamp_ms,
            }],
        });
    };
    for f in families {
        for s in &f.series {
            match &s.value {
                Value::Number(v) => {
                    let name = if f.kind == Kind::Counter {
                        format!("{}_total", f.name)
                    } else {
                        f.name.to_string()
                    };
                    add(name, &s.labels, None, *v);
                }
                Value::Histogram(b) => {
                    for (i, le) in BUCKETS.iter().enumerate() {
                        add(
                            format!("{}_bucket", f.name),
                            &s.labels,
                            Some(("le", number(*le))),
                            b.cumulative[i] as f64,
                        );
                    }
                    add(
                        format!("{}_bucket", f.name),
                        &s.labels,
                        Some(("le", "+Inf".into())),
                        b.count as f64,
                    );
                    add(format!("{}_sum", f.name), &s.labels, None, b.sum);
                    add(format!("{}_count", f.name), &s.labels, None, b.count as f64);
                }
            }
        }
    }
    WriteRequest { timeseries }
}

/// The request body: protobuf, then snappy *block* compression (not the framed format).
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .expect("snappy block compression of an in-memory buffer cannot fail")
}

pub async fn push(url: &str, instance: &str, families: &[Family]) -> Result<(), RemoteWriteError> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64;
    let body = encode(&write_request(families, instance, now_ms));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf")
        .header(reqwest::header::CONTENT_ENCODING, "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .header(
            reqwest::header::USER_AGENT,
            concat!("trafficgen/", env!("CARGO_PKG_VERSION")),
        )
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(RemoteWriteError::Status {
            status: status.as_u16(),
            body,
        });
    }
    Ok(())
}
