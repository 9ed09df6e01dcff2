//! What a response asks of the next request: the same-origin target of a redirect to follow
//! or of a flow step whose path is a captured URL, and the cookies (`Set-Cookie`) the client's
//! jar sends back.

use super::Shared;
use super::client::Client;
use super::http::{self, Head};

/// Where a URL reference the target gave (a `Location`, a URL in a body) points, if it is the
/// target's own origin: its absolute path (`/x` as is; `scheme://host:port/x` of the target,
/// scheme and host compared without case). `Err(true)`: another origin; `Err(false)`: not an
/// absolute path or URL (e.g. a relative `x/y`, or nothing).
pub fn same_origin_path(loc: &[u8], shared: &Shared) -> Result<Vec<u8>, bool> {
    let origin = shared.common.origin.as_bytes();
    origin_path(loc, &origin[..origin.len() - shared.common.prefix.len()])
}

/// `same_origin_path` against `origin` (`scheme://host[:port]`, no path).
fn origin_path(loc: &[u8], origin: &[u8]) -> Result<Vec<u8>, bool> {
    let loc = loc.trim_ascii();
    if loc.starts_with(b"/") && !loc.starts_with(b"//") {
        return Ok(loc.to_vec());
    }
    let is_url = loc.starts_with(b"//") || loc.windows(3).any(|w| w == b"://");
    let rest = match loc.get(..origin.len()) {
        Some(head) if head.eq_ignore_ascii_case(origin) => &loc[origin.len()..],
        _ => return Err(is_url),
    };
    match rest.first() {
        None => Ok(b"/".to_vec()),
        Some(b'/') => Ok(rest.to_vec()),
        Some(b'?') => {
            let mut p = b"/".to_vec();
            p.extend_from_slice(rest);
            Ok(p)
        }
        // `http://host:80` + `80/x`: another port.
        Some(_) => Err(true),
    }
}

impl Client {
    /// The same-origin path a redirect response points at (`/x`, or `scheme://host:port/x`
    /// of the target itself); other locations are not followed.
    pub(super) fn location(&self, shared: &Shared, h: &Head) -> Option<Vec<u8>> {
        let loc = http::header(&self.bufs.rbuf[..h.head_len], "location")?;
        same_origin_path(loc, shared).ok()
    }

    /// Takes the response's `Set-Cookie` values into the jar and rebuilds the `Cookie` line.
    pub(super) fn store_cookies(&mut self, h: &Head) {
        let head = &self.bufs.rbuf[..h.head_len];
        let mut slots = vec![httparse::EMPTY_HEADER; head.len() / 3 + 1];
        let mut resp = httparse::Response::new(&mut slots);
        if resp.parse(head).is_err() {
            return;
        }
        let mut changed = false;
        for hd in resp.headers.iter() {
            if !hd.name.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let v = String::from_utf8_lossy(hd.value);
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || value.bytes().any(|b| b.is_ascii_control()) {
                continue;
            }
            let expired = parts.any(|a| {
                let a = a.trim().to_ascii_lowercase();
                a == "max-age=0" || a.starts_with("max-age=-")
            });
            self.jar.retain(|(n, _)| n != name);
            if !expired {
                self.jar.push((name.to_string(), value.to_string()));
            }
            changed = true;
        }
        if changed {
            self.cookie.clear();
            if !self.jar.is_empty() {
                self.cookie.extend_from_slice(b"Cookie: ");
                for (i, (n, v)) in self.jar.iter().enumerate() {
                    if i > 0 {
                        self.cookie.extend_from_slice(b"; ");
                    }
                    self.cookie.extend_from_slice(n.as_bytes());
                    self.cookie.push(b'=');
                    self.cookie.extend_from_slice(v.as_bytes());
                }
                self.cookie.extend_from_slice(b"\r\n");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::origin_path;

    #[test]
    fn only_the_targets_own_origin_is_a_path() {
        let o = b"http://127.0.0.1:8081";
        let ok = |l: &str| origin_path(l.as_bytes(), o).map(|p| String::from_utf8(p).unwrap());
        assert_eq!(ok("/api/todos/7"), Ok("/api/todos/7".into()));
        assert_eq!(ok(" /x?y=1 "), Ok("/x?y=1".into()));
        assert_eq!(ok("http://127.0.0.1:8081/base/t/1"), Ok("/base/t/1".into()));
        assert_eq!(ok("HTTP://127.0.0.1:8081"), Ok("/".into()));
        assert_eq!(ok("http://127.0.0.1:8081?q"), Ok("/?q".into()));
        // Another origin: another host, port (also a longer one), scheme, or scheme-relative.
        assert_eq!(ok("http://127.0.0.2:8081/x"), Err(true));
        assert_eq!(ok("http://127.0.0.1:80811/x"), Err(true));
        assert_eq!(ok("https://127.0.0.1:8081/x"), Err(true));
        assert_eq!(ok("//evil.example/x"), Err(true));
        // Neither an absolute path nor a URL.
        assert_eq!(ok("todos/7"), Err(false));
        assert_eq!(ok(""), Err(false));
    }
}
