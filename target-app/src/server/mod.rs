//! Serving the app on a TCP listener with bounds a public endpoint needs: at most
//! `max_connections` open connections (beyond it the listener stops accepting, so new clients
//! wait in the kernel's backlog), a header-read timeout (from the first byte of a request head
//! to its end), an idle timeout (a keep-alive connection waiting for its next request), answers
//! to half-closed clients, hyper's parse-error answers in the JSON error shape (see `io`), and
//! the graceful shutdown with its grace.
//!
//! Connections are served with hyper's HTTP/1 connection builder directly rather than through
//! `axum::serve`, which exposes none of these settings.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

use crate::AppState;

mod io;

/// What the connections are told by `serve`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Finish the request in flight, then close.
    Graceful,
    /// The grace is over: close now.
    Abort,
}

/// Serves `crate::app(state)` on `listener` until `shutdown` resolves, then stops accepting,
/// gives in-flight requests at most `config.shutdown_grace` to finish, and flushes telemetry
/// and log lines.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = &state.inner.config;
    let max = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let limit = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(Stop::Run);
    let router = crate::app(state.clone());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: say so, and wait a little so the
                    // loop does not spin while the condition lasts.
                    state.inner.log.log(
                        crate::logging::Level::Error,
                        "accept failed",
                        vec![("error", serde_json::Value::from(e.to_string()))],
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            router.clone(),
            state.clone(),
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(Stop::Graceful);
    // Every connection holds a permit until it ends: all permits back = all connections done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(config.shutdown_grace, limit.acquire_many(all)).await;
    if drained.is_err() {
        let _ = stop_tx.send(Stop::Abort);
    }
    let flush = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        flush.shutdown_telemetry();
        flush.inner.log.flush(Duration::from_secs(2));
    })
    .await;
    Ok(())
}

/// Calls `Activity::request_finished` when the request's future ends (also when dropped).
struct Finished(Arc<io::Activity>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: axum::Router,
    state: AppState,
    mut stop: watch::Receiver<Stop>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let config = &state.inner.config;
    let (head_timeout, idle_timeout) = (config.header_read_timeout, config.idle_timeout);
    let activity = Arc::new(io::Activity::new());
    let rejected_state = state.clone();
    let on_rejection: io::OnRejection = Arc::new(move |status, code| {
        rejected_state.inner.metrics.observe_rejection(status);
        rejected_state.inner.log.log(
            crate::logging::Level::Warn,
            "request rejected",
            vec![
                ("status", serde_json::Value::from(status)),
                ("error", serde_json::Value::from(code)),
                (
                    "clientAddress",
                    serde_json::Value::from(peer.ip().to_string()),
                ),
            ],
        );
    });
    let local = stream.local_addr().ok();
    let io = TokioIo::new(io::Io::new(stream, activity.clone(), on_rejection));
    let service_activity = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let router = router.clone();
        service_activity.request_started();
        // Made here, not inside the future: it ends the request even if hyper drops the
        // future unpolled.
        let finished = Finished(service_activity.clone());
        // Peer addresses feed the server span's client.address / client.port.
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(local) = local {
            req.extensions_mut()
                .insert(crate::middleware::LocalAddr(local));
        }
        async move {
            let _finished = finished;
            let r: Result<axum::response::Response, Infallible> =
                router.oneshot(req.map(axum::body::Body::new)).await;
            r
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        // A client may shut down its sending side after the request and still get the answer.
        .half_close(true)
        // The watchdog below owns both timeouts (hyper's own header timer also runs while an
        // idle keep-alive connection waits, which would merge the two).
        .header_read_timeout(None)
        .max_headers(config.max_headers);
    // Not pinned in place: on a head timeout the socket is taken back with `into_parts` to
    // answer 408 (the connection is `Unpin`, its service future is boxed by hyper).
    let mut conn = builder.serve_connection(io, service);
    let mut watching_stop = true;
    loop {
        let wake = match activity.deadline(head_timeout, idle_timeout) {
            Some((d, _)) => d,
            // A request is being handled: look again later.
            None => tokio::time::Instant::now() + head_timeout.min(idle_timeout),
        };
        tokio::select! {
            _ = &mut conn => return,
            _ = activity.changed.notified() => {}
            _ = tokio::time::sleep_until(wake) => {
                match activity.deadline(head_timeout, idle_timeout) {
                    Some((d, expiry)) if d <= tokio::time::Instant::now() => {
                        if expiry == io::Expiry::Head {
                            answer_head_timeout(conn.into_parts().io.into_inner(), &state, peer)
                                .await;
                        }
                        // Dropping the connection closes the socket.
                        return;
                    }
                    _ => {}
                }
            }
            changed = stop.changed(), if watching_stop => {
                if changed.is_err() {
                    watching_stop = false;
                    continue;
                }
                let now = *stop.borrow_and_update();
                match now {
                    Stop::Run => {}
                    Stop::Graceful => std::pin::Pin::new(&mut conn).graceful_shutdown(),
                    Stop::Abort => return,
                }
            }
        }
    }
}

/// Answers `408 request_timeout` on a connection whose head did not finish in time, counts and
/// logs it; bounded, since the client may not read.
async fn answer_head_timeout(
    io: io::Io<tokio::net::TcpStream>,
    state: &AppState,
    peer: SocketAddr,
) {
    use tokio::io::AsyncWriteExt as _;
    let mut stream = io.into_inner();
    let answer = io::head_timeout_answer();
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
    })
    .await;
    state.inner.metrics.observe_rejection(408);
    state.inner.log.log(
        crate::logging::Level::Warn,
        "request rejected",
        vec![
            ("status", serde_json::Value::from(408)),
            ("error", serde_json::Value::from("request_timeout")),
            (
                "clientAddress",
                serde_json::Value::from(peer.ip().to_string()),
            ),
        ],
    );
}
