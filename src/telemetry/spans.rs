//! Client spans over OTLP: a task drains the executor's bounded `SpanRecord` channel, turns
//! each record into a finished CLIENT span carrying the request's own trace and span id (the
//! ones in its `traceparent`), and hands it to the SDK's batch processor, which exports on its
//! own thread with the OTLP/HTTP exporter. So Tempo shows trafficgen → todo-api as one trace.
//!
//! No tracer and no global provider: the ids come from the executor, the span is built
//! finished, and nothing here is process-global (tests run many of these side by side).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SpanData, SpanEvents, SpanLinks, SpanProcessor,
};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::recorder::SpanRecord;

/// Records waiting for the exporter task; the executor `try_send`s and drops when full.
pub const CHANNEL_CAPACITY: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum SpanExportError {
    #[error("OTLP span exporter: {0}")]
    Build(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("OTLP span flush: {0}")]
    Flush(String),
}

/// The scope every client span is reported under.
pub fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("trafficgen")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// The resource of everything the generator exports over OTLP.
pub fn resource() -> Resource {
    Resource::builder().with_service_name("trafficgen").build()
}

/// One finished CLIENT span named `METHOD op`, with the record's ids and the attributes of
/// CONTRACTS.md. 4xx/5xx and transport failures set the error status, as the HTTP semantic
/// conventions ask of client spans.
pub fn span_data(rec: &SpanRecord, run_id: &str, scope: &InstrumentationScope) -> SpanData {
    let mut attributes = Vec::with_capacity(7);
    attributes.push(KeyValue::new("http.request.method", rec.method));
    attributes.push(KeyValue::new("url.full", rec.url.clone()));
    if let Some(code) = rec.status {
        attributes.push(KeyValue::new("http.response.status_code", i64::from(code)));
    }
    attributes.push(KeyValue::new("trafficgen.op", rec.op.to_string()));
    attributes.push(KeyValue::new("trafficgen.run_id", run_id.to_string()));
    if let Some(kind) = rec.fault {
        attributes.push(KeyValue::new("fault.kind", kind));
    }
    let status = match (rec.error, rec.status) {
        (Some(e), _) => {
            attributes.push(KeyValue::new("error.type", e.as_str()));
            Status::error(e.as_str())
        }
        (None, Some(code)) if code >= 400 => Status::error(code.to_string()),
        _ => Status::Unset,
    };
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(rec.trace_id),
            SpanId::from_bytes(rec.span_id),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Client,
        name: Cow::Owned(format!("{} {}", rec.method, rec.op)),
        start_time: rec.start,
        end_time: rec.start + rec.duration,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    }
}

/// The running exporter: the sender half for the executor, the draining task, the processor.
pub struct SpanExport {
    tx: mpsc::Sender<SpanRecord>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    processor: Arc<BatchSpanProcessor>,
}

impl SpanExport {
    /// `endpoint` is the OTLP/HTTP base (`http://host:4318`); spans go to `/v1/traces`.
    pub fn start(endpoint: &str, run_id: &str) -> Result<SpanExport, SpanExportError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
            .with_timeout(Duration::from_secs(10))
            .build()?;
        let mut processor = BatchSpanProcessor::builder(exporter).build();
        processor.set_resource(&resource());
        let processor = Arc::new(processor);
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(drain(rx, stopped, processor.clone(), run_id.to_string()));
        Ok(SpanExport {
            tx,
            stop,
            task,
            processor,
        })
    }

    pub fn sender(&self) -> mpsc::Sender<SpanRecord> {
        self.tx.clone()
    }

    /// Converts what is still queued, then flushes the batch processor (blocking I/O, so on a
    /// blocking thread).
    pub async fn finish(self) -> Result<(), SpanExportError> {
        let _ = self.stop.send(());
        drop(self.tx);
        let _ = self.task.await;
        let processor = self.processor;
        tokio::task::spawn_blocking(move || {
            processor.shutdown_with_timeout(Duration::from_secs(15))
        })
        .await
        .map_err(|e| SpanExportError::Flush(e.to_string()))?
        .map_err(|e| SpanExportError::Flush(e.to_string()))
    }
}

async fn drain(
    mut rx: mpsc::Receiver<SpanRecord>,
    mut stopped: oneshot::Receiver<()>,
    processor: Arc<BatchSpanProcessor>,
    run_id: String,
) {
    let scope = scope();
    loop {
        tokio::select! {
            rec = rx.recv() => match rec {
                // `on_end` only enqueues (and drops when the SDK's queue is full).
                Some(rec) => processor.on_end(span_data(&rec, &run_id, &scope)),
                None => return,
            },
            _ = &mut stopped => break,
        }
    }
    // Executors may still hold senders: stop accepting, keep what is already queued.
    rx.close();
    while let Ok(rec) = rx.try_recv() {
        processor.on_end(span_data(&rec, &run_id, &scope));
    }
}
