//! Request building for the hot path: the parts that never change (Host, User-Agent, baggage,
//! the target's headers) are serialized once per run; per request only the request line, the
//! `traceparent`, fault headers, Content-Length and body are appended to a reused buffer.
//! Also the built-in todo operations' paths and bodies, and the bounded id pool they share.

use std::collections::VecDeque;
use std::io::Write as _;

use rand::{Rng, SeedableRng};

use crate::faults::HeaderFault;
use crate::plan::{BaseUrl, Template, TodoOp};

/// The request bytes common to every request of a run.
#[derive(Debug, Clone)]
pub struct Common {
    /// Path prefix of the base URL ("" or "/prefix").
    pub prefix: String,
    /// The generator's own headers, (lowercase name, whole line ending in CRLF): a user
    /// header of the same name replaces one.
    builtin: Vec<(&'static str, Vec<u8>)>,
    /// `target.headers`.
    target: Vec<(String, Template)>,
    /// `http://host:port` + prefix, for span URLs.
    pub origin: String,
}

/// The headers of one request template (an operation, or a step of a flow), resolved once per
/// run: which built-in and target headers it keeps.
#[derive(Debug, Clone, Default)]
pub struct HeaderSet {
    /// Lines that never change, each ending in CRLF.
    pub fixed: Vec<u8>,
    /// Target headers with per-request values (`{{seq}}`, random), rendered per request.
    pub dynamic: Vec<(String, Template)>,
    /// A user `Content-Type` is set (then the JSON one is not added).
    pub has_content_type: bool,
}

impl Common {
    pub fn new(base: &BaseUrl, target_headers: &[(String, Template)], run_id: &str) -> Common {
        let default_port = if base.scheme == "https" { 443 } else { 80 };
        let host = if base.port == default_port {
            base.host.clone()
        } else {
            format!("{}:{}", base.host, base.port)
        };
        let builtin = vec![
            ("host", format!("Host: {host}\r\n").into_bytes()),
            (
                "user-agent",
                format!("User-Agent: trafficgen/{}\r\n", env!("CARGO_PKG_VERSION")).into_bytes(),
            ),
            (
                "baggage",
                format!("baggage: synthetic=true,trafficgen.run_id={run_id}\r\n").into_bytes(),
            ),
        ];
        Common {
            prefix: base.prefix.clone(),
            builtin,
            target: target_headers.to_vec(),
            origin: format!("{}://{host}{}", base.scheme, base.prefix),
        }
    }

    /// The header set of a request whose own headers are named `own`.
    pub fn headers_for<'a>(&self, own: impl Iterator<Item = &'a str> + Clone) -> HeaderSet {
        let mut set = HeaderSet::default();
        let overridden = |n: &str| own.clone().any(|o| o.eq_ignore_ascii_case(n));
        let by_target = |n: &str| self.target.iter().any(|(t, _)| t.eq_ignore_ascii_case(n));
        for (name, line) in &self.builtin {
            if !overridden(name) && !by_target(name) {
                set.fixed.extend_from_slice(line);
            }
        }
        let mut rng = rand::rngs::SmallRng::seed_from_u64(0);
        for (name, value) in &self.target {
            if overridden(name) {
                continue;
            }
            if value.is_static() {
                set.fixed.extend_from_slice(name.as_bytes());
                set.fixed.extend_from_slice(b": ");
                value.render(&Default::default(), &mut rng, &mut set.fixed);
                set.fixed.extend_from_slice(b"\r\n");
            } else {
                set.dynamic.push((name.clone(), value.clone()));
            }
        }
        set.has_content_type = overridden("content-type") || by_target("content-type");
        set
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(w: &mut Vec<u8>, bytes: &[u8; 16]) {
    // Into a stack buffer first, then one copy: no per-byte capacity checks.
    let mut buf = [0u8; 32];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = HEX[(b >> 4) as usize];
        buf[2 * i + 1] = HEX[(b & 15) as usize];
    }
    w.extend_from_slice(&buf);
}

fn put_hex8(w: &mut Vec<u8>, bytes: &[u8; 8]) {
    let mut buf = [0u8; 16];
    for (i, b) in bytes.iter().enumerate() {
        buf[2 * i] = HEX[(b >> 4) as usize];
        buf[2 * i + 1] = HEX[(b & 15) as usize];
    }
    w.extend_from_slice(&buf);
}

/// Per-request identity: W3C trace context.
#[derive(Debug, Clone, Copy)]
pub struct TraceIds {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// Drawn by `trace_sample_ratio`: export the generator's own client span (the
    /// `traceparent` is marked sampled either way).
    pub sampled: bool,
}

impl TraceIds {
    pub fn random(rng: &mut impl Rng, ratio: f64) -> TraceIds {
        let a: u128 = rng.random();
        let mut trace_id = a.to_be_bytes();
        // An all-zero id is invalid in W3C trace context.
        trace_id[15] |= 1;
        let mut span_id = rng.random::<u64>().to_be_bytes();
        span_id[7] |= 1;
        let sampled = ratio > 0.0 && (ratio >= 1.0 || rng.random::<f64>() < ratio);
        TraceIds {
            trace_id,
            span_id,
            sampled,
        }
    }
}

/// Everything that varies per request.
pub struct Parts<'a> {
    pub method: &'a str,
    /// Built-in and static target header lines (`HeaderSet::fixed`).
    pub fixed: &'a [u8],
    /// Path (with query) after the base URL's prefix.
    pub path: &'a [u8],
    /// Extra header lines, each ending in CRLF.
    pub headers: &'a [u8],
    /// The `Cookie` line of the client's jar ("" for none).
    pub cookie: &'a [u8],
    /// Prepend the base URL's prefix to `path` (not for a redirect's `Location`).
    pub prefix: bool,
    pub body: Option<&'a [u8]>,
    /// Add `Content-Type: application/json` when there is a body.
    pub json: bool,
    pub ids: TraceIds,
    pub fault: Option<&'a HeaderFault>,
}

/// Writes the whole request into `w` (cleared first).
pub fn write_request(w: &mut Vec<u8>, common: &Common, p: &Parts<'_>) {
    w.clear();
    w.extend_from_slice(p.method.as_bytes());
    w.push(b' ');
    if p.prefix {
        w.extend_from_slice(common.prefix.as_bytes());
    }
    w.extend_from_slice(p.path);
    w.extend_from_slice(b" HTTP/1.1\r\n");
    w.extend_from_slice(p.fixed);
    w.extend_from_slice(b"traceparent: 00-");
    put_hex(w, &p.ids.trace_id);
    w.push(b'-');
    put_hex8(w, &p.ids.span_id);
    // Always sampled (flags 01): downstream services record every trace the generator
    // causes; `ids.sampled` only decides whether the generator exports its own client span.
    w.extend_from_slice(b"-01\r\n");
    w.extend_from_slice(p.headers);
    w.extend_from_slice(p.cookie);
    if let Some(f) = p.fault {
        if let Some(d) = f.delay_ms {
            let _ = write!(w, "X-Fault-Delay: {d}\r\n");
        }
        if let Some(s) = f.status {
            let _ = write!(w, "X-Fault-Status: {s}\r\n");
        }
        if let Some(span) = &f.span {
            let _ = write!(w, "X-Fault-Span: {span}\r\n");
        }
    }
    match p.body {
        Some(b) => {
            if p.json {
                w.extend_from_slice(b"Content-Type: application/json\r\n");
            }
            let _ = write!(w, "Content-Length: {}\r\n\r\n", b.len());
            w.extend_from_slice(b);
        }
        None => {
            if matches!(p.method, "POST" | "PUT" | "PATCH") {
                w.extend_from_slice(b"Content-Length: 0\r\n");
            }
            w.extend_from_slice(b"\r\n");
        }
    }
}

/// A `&'static str` for a method (span names need one).
pub fn static_method(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

/// Todo ids created by this worker's `create` operations: bounded; when full the oldest id
/// makes room (and is deleted on the target with `mix.steady_state`). Per worker (each worker thread owns one, capacity split evenly) so the hot path
/// takes no lock.
#[derive(Debug, Clone)]
pub struct Pool {
    ids: VecDeque<u64>,
    capacity: usize,
}

impl Pool {
    pub fn new(capacity: usize) -> Pool {
        Pool {
            ids: VecDeque::with_capacity(capacity.min(1 << 16)),
            capacity: capacity.max(1),
        }
    }
    /// Adds `id`; returns the oldest id when it had to make room (with `mix.steady_state` the
    /// caller deletes it on the target).
    pub fn push(&mut self, id: u64) -> Option<u64> {
        let evicted = if self.ids.len() >= self.capacity {
            self.ids.pop_front()
        } else {
            None
        };
        self.ids.push_back(id);
        evicted
    }
    /// Every id still in the pool, emptying it (`mix.cleanup`).
    pub fn drain(&mut self) -> Vec<u64> {
        self.ids.drain(..).collect()
    }
    /// A random id, left in the pool.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<u64> {
        if self.ids.is_empty() {
            return None;
        }
        self.ids.get(rng.random_range(0..self.ids.len())).copied()
    }
    /// A random id, removed from the pool (deletes).
    pub fn take(&mut self, rng: &mut impl Rng) -> Option<u64> {
        if self.ids.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.ids.len());
        self.ids.swap_remove_back(i)
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Method, path and body of a built-in todo operation (`id` from the pool where needed).
/// Returns false when the operation needs an id and got none.
pub fn todo_request(
    op: TodoOp,
    id: Option<u64>,
    rng: &mut impl Rng,
    path: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> Option<&'static str> {
    path.clear();
    body.clear();
    let n: u32 = rng.random_range(0..1_000_000);
    match op {
        TodoOp::Create => {
            path.extend_from_slice(b"/api/todos");
            let _ = write!(body, "{{\"text\":\"synthetic todo {n}\"}}");
            Some("POST")
        }
        TodoOp::List => {
            path.extend_from_slice(b"/api/todos?limit=20");
            Some("GET")
        }
        TodoOp::Get => {
            let _ = write!(path, "/api/todos/{}", id?);
            Some("GET")
        }
        TodoOp::Update => {
            let _ = write!(path, "/api/todos/{}", id?);
            let _ = write!(
                body,
                "{{\"text\":\"synthetic update {n}\",\"completed\":false}}"
            );
            Some("PUT")
        }
        TodoOp::Toggle => {
            let _ = write!(path, "/api/todos/{}", id?);
            let _ = write!(body, "{{\"completed\":{}}}", n.is_multiple_of(2));
            Some("PATCH")
        }
        TodoOp::Delete => {
            let _ = write!(path, "/api/todos/{}", id?);
            Some("DELETE")
        }
    }
}

/// Whether a todo operation takes an id from the pool, and whether it removes it.
pub fn needs_id(op: TodoOp) -> Option<bool> {
    match op {
        TodoOp::Create | TodoOp::List => None,
        TodoOp::Get | TodoOp::Update | TodoOp::Toggle => Some(false),
        TodoOp::Delete => Some(true),
    }
}

/// The `"id"` number of a created todo's JSON body, without a JSON parser on the hot path.
pub fn created_id(body: &[u8]) -> Option<u64> {
    let mut from = 0;
    while let Some(pos) = super::http::find(&body[from..], b"\"id\"") {
        let rest = &body[from + pos + 4..];
        from += pos + 4;
        let Some(start) = rest.iter().position(|b| b.is_ascii_digit()) else {
            continue;
        };
        if rest[..start]
            .iter()
            .any(|&b| b != b':' && !b.is_ascii_whitespace())
        {
            continue;
        }
        let digits = &rest[start..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        return std::str::from_utf8(&digits[..end]).ok()?.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn request_has_traceparent_baggage_and_length() {
        let base = BaseUrl {
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: 8081,
            prefix: String::new(),
        };
        let common = Common::new(&base, &[("X-Team".into(), Template::literal("qa"))], "run1");
        let set = common.headers_for(std::iter::empty());
        let mut w = Vec::new();
        let ids = TraceIds {
            trace_id: [0xab; 16],
            span_id: [0x01; 8],
            sampled: true,
        };
        let fault = HeaderFault {
            window: 0,
            delay_ms: Some(800),
            status: None,
            span: Some("todo_creation".into()),
        };
        write_request(
            &mut w,
            &common,
            &Parts {
                method: "POST",
                fixed: &set.fixed,
                path: b"/api/todos",
                headers: b"",
                cookie: b"",
                prefix: true,
                body: Some(b"{}"),
                json: true,
                ids,
                fault: Some(&fault),
            },
        );
        let s = String::from_utf8(w).unwrap();
        assert!(
            s.starts_with("POST /api/todos HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n"),
            "{s}"
        );
        assert!(
            s.contains("traceparent: 00-abababababababababababababababab-0101010101010101-01\r\n")
        );
        assert!(s.contains("baggage: synthetic=true,trafficgen.run_id=run1\r\n"));
        assert!(s.contains("X-Team: qa\r\n"));
        assert!(
            s.contains("-01\r\nX-Fault-Delay: 800\r\nX-Fault-Span: todo_creation\r\n"),
            "{s}"
        );
        assert!(s.ends_with("Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn user_headers_replace_built_in_ones() {
        let base = BaseUrl {
            scheme: "http".into(),
            host: "10.0.0.1".into(),
            port: 80,
            prefix: String::new(),
        };
        let common = Common::new(
            &base,
            &[("host".into(), Template::literal("shop.example"))],
            "r",
        );
        let set = common.headers_for(["User-Agent", "Content-Type"].into_iter());
        let s = String::from_utf8(set.fixed).unwrap();
        assert_eq!(s.matches("ost:").count(), 1, "{s}");
        assert!(s.contains("host: shop.example\r\n"), "{s}");
        assert!(!s.contains("User-Agent"), "{s}");
        assert!(set.has_content_type);
        // A request's own Host replaces the target's.
        let set = common.headers_for(["Host"].into_iter());
        assert!(
            !String::from_utf8(set.fixed)
                .unwrap()
                .contains("shop.example")
        );
    }

    #[test]
    fn every_request_is_marked_sampled() {
        let base = BaseUrl {
            scheme: "http".into(),
            host: "h".into(),
            port: 80,
            prefix: String::new(),
        };
        let mut w = Vec::new();
        let ids = TraceIds {
            trace_id: [0xcd; 16],
            span_id: [0x02; 8],
            sampled: false,
        };
        let common = Common::new(&base, &[], "r");
        let set = common.headers_for(std::iter::empty());
        let parts = Parts {
            method: "GET",
            fixed: &set.fixed,
            path: b"/",
            headers: b"",
            cookie: b"",
            prefix: true,
            body: None,
            json: false,
            ids,
            fault: None,
        };
        write_request(&mut w, &common, &parts);
        let s = String::from_utf8(w).unwrap();
        assert!(s.contains("-0202020202020202-01\r\n"), "{s}");
    }

    #[test]
    fn pool_is_bounded_and_handles_empty() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let mut p = Pool::new(2);
        assert_eq!(p.take(&mut rng), None);
        assert_eq!(p.push(1), None);
        assert_eq!(p.push(2), None);
        assert_eq!(p.push(3), Some(1), "a full pool evicts its oldest id");
        assert_eq!(p.len(), 2);
        let a = p.take(&mut rng).unwrap();
        let b = p.take(&mut rng).unwrap();
        assert_eq!([a.min(b), a.max(b)], [2, 3]);
        assert!(p.is_empty());
    }

    #[test]
    fn created_id_reads_the_number() {
        assert_eq!(created_id(br#"{"id": 42,"text":"x"}"#), Some(42));
        assert_eq!(created_id(br#"{"text":"id","id":7}"#), Some(7));
        assert_eq!(created_id(br#"{"text":"x"}"#), None);
    }
}
