//! The todo-api binary: configuration from the environment, serve until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match todo_api::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("todo-api: {e}");
            return ExitCode::from(2);
        }
    };
    let addr = SocketAddr::new(config.host, config.port);
    let listener = match listen(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("todo-api: cannot listen on {addr}: {e}");
            return ExitCode::from(1);
        }
    };
    let state = todo_api::AppState::new(config);
    let shutdown = shutdown_signal();
    if let Ok(local) = listener.local_addr() {
        eprintln!("todo-api: listening on http://{local}");
    }
    match todo_api::serve(listener, state, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("todo-api: {e}");
            ExitCode::from(1)
        }
    }
}

/// Binds with a listen backlog of 4096 (the kernel caps it at `somaxconn`) rather than tokio's
/// 1024: a burst of connects then waits in the kernel instead of being dropped and retried a
/// second later (measured in the 5 000-connection test: waves of 250 connects each stalled ~1 s
/// on SYN retransmits with tokio's default, 5 000 in waves of 500 took 0.85 s in all with 4096).
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// SIGINT or SIGTERM. The handlers are installed here, before the app says it listens: a
/// signal that arrives right after that line must start the graceful shutdown, not kill the
/// process (a lazily installed handler lost that race in tests).
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut term = signal(SignalKind::terminate()).ok();
    async move {
        let int = async {
            match int.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        let term = async {
            match term.as_mut() {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! { _ = int => {}, _ = term => {} }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
