//! The target's addresses and opening a connection to one of them: a host name may resolve
//! to several addresses (IPv4 and IPv6, several replicas); an IPv6 literal is written in
//! brackets in the URL and the `Host` header but looked up without them.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::plan::BaseUrl;

/// The host part to resolve: `[::1]` → `::1`.
pub fn lookup_host(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// Every address of the base URL's host, in the resolver's order.
pub async fn resolve(base: &BaseUrl) -> std::io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host(&base.host), base.port))
        .await?
        .collect();
    if addrs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no address", base.host),
        ));
    }
    Ok(addrs)
}

/// Connects to the first address that answers, trying them in turn from `first` (so
/// connections spread over the addresses), all within `timeout`.
pub async fn connect(addrs: &[SocketAddr], first: usize, timeout: Duration) -> Option<TcpStream> {
    let end = Instant::now().checked_add(timeout)?;
    for i in 0..addrs.len() {
        let addr = addrs[(first + i) % addrs.len()];
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        if let Ok(Ok(s)) = tokio::time::timeout(left, TcpStream::connect(addr)).await {
            // Without it, small requests wait for the peer's delayed ACK (Nagle).
            let _ = s.set_nodelay(true);
            return Some(s);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brackets_are_not_part_of_the_looked_up_name() {
        assert_eq!(lookup_host("[::1]"), "::1");
        assert_eq!(lookup_host("example.org"), "example.org");
    }

    #[tokio::test]
    async fn a_dead_address_falls_through_to_a_live_one() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let addrs = [dead, live.local_addr().unwrap()];
        let s = connect(&addrs, 0, Duration::from_secs(2)).await;
        assert_eq!(s.unwrap().peer_addr().unwrap(), addrs[1]);
    }
}
