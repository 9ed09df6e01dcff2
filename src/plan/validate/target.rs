//! The `target:` section → `Target`, and the target URL grammar (`http://host[:port][/prefix]`).

use super::mix::{check_header, template};
use super::{Errors, Overrides, defaults, dur, positive};
use crate::plan::template::Scope;
use crate::plan::{BaseUrl, HttpVersion, Readiness, Target, Tls};
use crate::scenario::model;

pub(super) fn target(
    t: Option<&model::TargetSpec>,
    o: &Overrides,
    constants: &[(String, String)],
    env: &dyn Fn(&str) -> Option<String>,
    errs: &mut Errors,
) -> Target {
    let base_url = match (&o.target_url, t.and_then(|t| t.url.as_ref())) {
        (Some(url), _) => parse_base_url(url)
            .map_err(|m| errs.flag("--target-url", m))
            .ok(),
        (None, Some(url)) => parse_base_url(url)
            .map_err(|m| errs.at(url, "target.url", m))
            .ok(),
        (None, None) => None,
    };
    let scope = Scope {
        constants,
        captures: &[],
        env,
    };
    let mut headers = Vec::new();
    for (name, value) in t.and_then(|t| t.headers.as_ref()).map_or(&[][..], |h| &h.0) {
        let field = format!("target.headers.{}", name.value);
        let value = template(value, &field, &scope, errs);
        check_header(name, &value, &field, errs);
        headers.push((name.value.clone(), value));
    }
    let ready = t.and_then(|t| t.ready.as_ref());
    if let Some(p) = ready
        .and_then(|r| r.path.as_ref())
        .filter(|p| !p.starts_with('/'))
    {
        errs.at(p, "target.ready.path", "must start with `/`");
    }
    positive(
        errs,
        t.and_then(|t| t.connect_timeout.as_ref()),
        "target.connect_timeout",
    );
    positive(
        errs,
        t.and_then(|t| t.request_timeout.as_ref()),
        "target.request_timeout",
    );
    positive(
        errs,
        ready.and_then(|r| r.interval.as_ref()),
        "target.ready.interval",
    );
    let max_connections = t.and_then(|t| t.max_connections.as_ref());
    if let Some(m) = max_connections.filter(|m| m.value == 0) {
        errs.at(m, "target.max_connections", "must be at least 1");
    }
    let tls = tls(t.and_then(|t| t.tls.as_ref()), errs);
    let max_streams = t.and_then(|t| t.max_streams.as_ref());
    if let Some(m) = max_streams.filter(|m| m.value == 0) {
        errs.at(m, "target.max_streams", "must be at least 1");
    }
    Target {
        base_url,
        headers,
        connect_timeout: dur(
            t.and_then(|t| t.connect_timeout.as_ref()),
            defaults::CONNECT_TIMEOUT,
        ),
        request_timeout: dur(
            t.and_then(|t| t.request_timeout.as_ref()),
            defaults::REQUEST_TIMEOUT,
        ),
        ready: Readiness {
            path: ready
                .and_then(|r| r.path.as_ref())
                .map_or(defaults::READY_PATH.to_string(), |p| p.value.clone()),
            timeout: dur(
                ready.and_then(|r| r.timeout.as_ref()),
                defaults::READY_TIMEOUT,
            ),
            interval: dur(
                ready.and_then(|r| r.interval.as_ref()),
                defaults::READY_INTERVAL,
            ),
        },
        max_connections: max_connections.map_or(defaults::MAX_CONNECTIONS, |m| m.value),
        max_body: t
            .and_then(|t| t.max_body.as_ref())
            .map_or(defaults::MAX_BODY, |m| m.value),
        tls,
        http_version: match t.and_then(|t| t.http_version.as_ref()).map(|v| v.value) {
            None | Some(model::HttpVersionName::Http11) => HttpVersion::Http11,
            Some(model::HttpVersionName::Http2) => HttpVersion::Http2,
            Some(model::HttpVersionName::Auto) => HttpVersion::Auto,
        },
        max_streams: max_streams.map_or(defaults::MAX_STREAMS, |m| m.value),
        follow_redirects: t
            .and_then(|t| t.follow_redirects.as_ref())
            .map_or(0, |m| m.value),
        cookies: t.and_then(|t| t.cookies.as_ref()).is_some_and(|c| c.value),
    }
}

fn tls(t: Option<&model::TlsSpec>, errs: &mut Errors) -> Tls {
    let Some(t) = t else {
        return Tls::default();
    };
    let file = |f: &Option<crate::scenario::Sp<String>>, field: &str, errs: &mut Errors| {
        let f = f.as_ref()?;
        if !std::path::Path::new(&f.value).is_file() {
            errs.at(f, field, format!("`{}` is not a readable file", f.value));
        }
        Some(std::path::PathBuf::from(&f.value))
    };
    let ca_file = file(&t.ca_file, "target.tls.ca_file", errs);
    let client_cert = file(&t.client_cert, "target.tls.client_cert", errs);
    let client_key = file(&t.client_key, "target.tls.client_key", errs);
    match (&t.client_cert, &t.client_key) {
        (Some(c), None) => errs.at(c, "target.tls.client_cert", "needs `client_key` too"),
        (None, Some(k)) => errs.at(k, "target.tls.client_key", "needs `client_cert` too"),
        _ => {}
    }
    let server_name = t.server_name.as_ref().map(|n| {
        if rustls::pki_types::ServerName::try_from(n.value.as_str()).is_err() {
            errs.at(n, "target.tls.server_name", "not a DNS name or IP address");
        }
        n.value.clone()
    });
    Tls {
        ca_file,
        insecure_skip_verify: t.insecure_skip_verify.as_ref().is_some_and(|b| b.value),
        client_cert,
        client_key,
        server_name,
    }
}

/// An RFC 9110 token (header names, methods).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `http[s]://host[:port][/prefix]`.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let url = url.trim();
    let (scheme, rest, default_port) = if let Some(r) = url.strip_prefix("http://") {
        ("http", r, 80)
    } else if let Some(r) = url.strip_prefix("https://") {
        ("https", r, 443)
    } else {
        return Err(format!(
            "`{url}` is not an http(s) URL (expected http://host:port or https://host:port)"
        ));
    };
    let (authority, prefix) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if prefix.contains(['?', '#']) {
        return Err(format!(
            "`{url}`: the target URL cannot have a query or fragment"
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6
            .find(']')
            .ok_or_else(|| format!("`{url}`: unclosed `[` in the host"))?;
        if v6[..end].parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{url}`: `{}` is not an IPv6 address", &v6[..end]));
        }
        let port = v6[end + 1..].strip_prefix(':');
        (&authority[..end + 2], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("`{url}`: missing or invalid host"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("`{url}`: `{p}` is not a port"))?,
        None => default_port,
    };
    Ok(BaseUrl {
        scheme: scheme.into(),
        host: host.to_string(),
        port,
        prefix: prefix.trim_end_matches('/').to_string(),
    })
}
