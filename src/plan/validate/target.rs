//! The `target:` section → `Target`, and the target URL grammar (`http://host[:port][/prefix]`).

use super::mix::{check_header, template};
use super::{Errors, Overrides, defaults, dur, positive};
use crate::plan::template::Scope;
use crate::plan::{BaseUrl, Readiness, Target};
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
    }
}

/// An RFC 9110 token (header names, methods).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `http://host[:port][/prefix]`.
pub fn parse_base_url(url: &str) -> Result<BaseUrl, String> {
    let url = url.trim();
    if url.starts_with("https://") {
        return Err(format!(
            "`{url}`: https is not supported yet (TLS to the target is not implemented); use http://"
        ));
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http URL (expected http://host:port)"))?;
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
        None => 80,
    };
    Ok(BaseUrl {
        scheme: "http".into(),
        host: host.to_string(),
        port,
        prefix: prefix.trim_end_matches('/').to_string(),
    })
}
