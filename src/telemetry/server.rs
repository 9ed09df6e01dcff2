//! The `/metrics` endpoint: serves the latest families in the format the scraper asks for,
//! until `finish` has lingered long enough for the last scrape.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::Shared;
use super::TelemetryError;
use super::text::{Format, render};

pub struct Server {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    /// Binds now (so a taken port fails the start, not the first scrape) and serves in a task.
    pub async fn start(addr: SocketAddr, shared: Arc<Shared>) -> Result<Server, TelemetryError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| TelemetryError::Bind { addr, source })?;
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/", get(|| async { "trafficgen: see /metrics\n" }))
            .with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                eprintln!("trafficgen: metrics server: {e}");
            }
        });
        Ok(Server {
            addr: bound,
            stop,
            task,
        })
    }

    /// Stops accepting; gives open scrapes a moment to complete, then drops the rest
    /// (a scraper's idle keep-alive connection must not hold the process).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

async fn metrics(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> impl IntoResponse {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let body = {
        let fams = shared.families.read().unwrap_or_else(|p| p.into_inner());
        render(&fams, format)
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
}
