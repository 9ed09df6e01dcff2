//! Secrets are never printed: the one place that knows how to hide them.
//!
//! Owns: masking the credentials of a URL (`http://user:password@host` → `http://user:***@host`),
//! the names of headers whose values are credentials, and scrubbing known secret values out of
//! any text (error messages of HTTP clients quote URLs and sometimes answers), and reading
//! header lists (`key=value,…`, the `OTEL_EXPORTER_OTLP_HEADERS` format) whose values are
//! often credentials, without ever quoting a value in an error. Every output —
//! progress, errors, summary, report, metrics — goes through one of these where it can carry a
//! URL, a header or a token.

/// What replaces a secret.
pub const MASK: &str = "***";

/// `url` with its password (or, without a password, its user name) replaced by `***`.
/// Text that is not a URL with credentials comes back unchanged.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let masked = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:{MASK}"),
        None => MASK.to_string(),
    };
    format!(
        "{}{masked}{}",
        &url[..scheme_end + 3],
        &url[scheme_end + 3 + at..]
    )
}

/// The credentials part of a URL (the password, or the user name without one), if any.
pub fn url_secret(url: &str) -> Option<String> {
    let rest = &url[url.find("://")? + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let s = match userinfo.split_once(':') {
        Some((_, p)) => p,
        None => userinfo,
    };
    (!s.is_empty()).then(|| s.to_string())
}

/// Whether a header's value is a credential (shown as `***`).
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
    ) || n.contains("token")
        || n.contains("secret")
        || n.contains("api-key")
        || n.contains("apikey")
        || n.contains("password")
}

/// `text` with every occurrence of each secret (and of its URL-encoded form) replaced by
/// `***`, and the credentials of any URL in it masked. Secrets shorter than 4 characters are
/// not searched for (they would mask ordinary words); URL credentials are masked regardless.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = mask_urls_in(text);
    for s in secrets {
        if s.len() < 4 {
            continue;
        }
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), MASK);
        }
        let enc = url_encode(s);
        if enc != *s && out.contains(enc.as_str()) {
            out = out.replace(enc.as_str(), MASK);
        }
    }
    out
}

/// Masks the credentials of every `scheme://user:pass@` in free text.
pub fn mask_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        // The scheme starts after the last non-scheme character before "://".
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |p| p + 1);
        out.push_str(&rest[..start]);
        let url_end = rest[i + 3..]
            .find(|c: char| c.is_whitespace() || "\"'<>()[]{},".contains(c))
            .map_or(rest.len(), |p| i + 3 + p);
        out.push_str(&mask_url(&rest[start..url_end]));
        rest = &rest[url_end..];
    }
    out.push_str(rest);
    out
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `key1=value1,key2=value2` (the W3C baggage-like format of `OTEL_EXPORTER_OTLP_HEADERS`;
/// values URL-decoded). The messages never contain a value.
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, part) in text.split(',').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("entry {} has no '=' (expected key=value)", i + 1));
        };
        let k = percent_decode(k.trim()).ok_or_else(|| format!("entry {}: bad %-escape", i + 1))?;
        let v = percent_decode(v.trim()).ok_or_else(|| format!("entry {}: bad %-escape", i + 1))?;
        if k.is_empty()
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(format!("entry {}: {k:?} is not a header name", i + 1));
        }
        if v.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(format!("entry {}: the value contains a line break", i + 1));
        }
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The header map both transports take (gRPC as metadata).
pub fn header_map(headers: &[(String, String)]) -> Result<reqwest::header::HeaderMap, String> {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| format!("{k:?} is not a header name"))?;
        let value = reqwest::header::HeaderValue::from_str(v)
            .map_err(|_| format!("the value of {k} is not a valid header value"))?;
        map.append(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            mask_url("http://user:hunter2@host:9091/metrics"),
            "http://user:***@host:9091/metrics"
        );
        assert_eq!(mask_url("https://tok3n@host/"), "https://***@host/");
        assert_eq!(mask_url("http://host:9091/a@b"), "http://host:9091/a@b");
        assert_eq!(mask_url("not a url"), "not a url");
        assert_eq!(url_secret("http://u:p%40ss@h/").as_deref(), Some("p%40ss"));
        assert_eq!(url_secret("http://h/"), None);
    }

    #[test]
    fn free_text_loses_urls_credentials_and_known_secrets() {
        let t =
            "push to http://u:hunter2@127.0.0.1:1/api/v1/write failed (s3cr3t/tok, s3cr3t%2Ftok)";
        let s = scrub(t, &["s3cr3t/tok".into(), "ab".into()]);
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!s.contains("s3cr3t"), "{s}");
        assert!(s.contains("http://u:***@127.0.0.1:1/api/v1/write"), "{s}");
    }

    #[test]
    fn credential_headers_are_recognised() {
        for h in ["Authorization", "x-api-key", "X-Auth-Token", "Cookie"] {
            assert!(is_secret_header(h), "{h}");
        }
        assert!(!is_secret_header("X-Scope-OrgID"));
    }
}
