//! The `expect:` value of verify assertions:
//!
//! ```text
//! expect      := "non_empty" | "empty" | comparison ws* ( NUMBER | ground )
//! comparison  := "<=" | "<" | ">=" | ">" | "==" | "!="
//! ground      := ( "requests" | "errors" | "faults" ) [ "{" pair ( "," pair )* "}" ]
//! pair        := "op" ":" NAME                       requests, errors
//!              | "status" ":" ( "1xx".."5xx" | CODE )  requests only
//!              | "kind" ":" ( "latency" | "error" )   faults (required)
//! ```

use super::observe::unknown_op;
use crate::plan::threshold::Comparison;
use crate::plan::{Expect, Expected, GroundMetric, GroundRef, Tolerance};
use crate::scenario::suggest::suggest;

/// Parses an `expect:` value (grammar in the module doc).
pub fn parse_expect(s: &str, ops: Option<&[String]>) -> Result<Expect, String> {
    let t = s.trim();
    match t {
        "non_empty" => return Ok(Expect::NonEmpty),
        "empty" => return Ok(Expect::Empty),
        _ => {}
    }
    let (i, comparison, len) = Comparison::find(t)
        .filter(|(i, _, _)| *i == 0)
        .ok_or_else(|| {
            let hint = suggest(t, &["non_empty", "empty"]).map_or(String::new(), |s| format!("did you mean `{s}`? "));
            format!("`{t}`: {hint}expected `non_empty`, `empty` or a comparison like `> 0` or `== requests{{op:create}}`")
        })?;
    let rhs = t[i + len..].trim();
    if let Ok(n) = rhs.parse::<f64>() {
        return Ok(Expect::Compare {
            comparison,
            value: Expected::Number(n),
            tolerance: Tolerance::Absolute(0.0),
        });
    }
    let ground = parse_ground(rhs, ops)?;
    Ok(Expect::Compare {
        comparison,
        value: Expected::Ground(ground),
        tolerance: Tolerance::Absolute(0.0),
    })
}

fn parse_ground(s: &str, ops: Option<&[String]>) -> Result<GroundRef, String> {
    let (name, filter) = match s.find('{') {
        Some(i) => (
            s[..i].trim(),
            Some(
                s[i + 1..]
                    .strip_suffix('}')
                    .ok_or_else(|| format!("`{s}`: the filter must end with `}}`"))?,
            ),
        ),
        None => (s.trim(), None),
    };
    let known = ["requests", "errors", "faults"];
    if !known.contains(&name) {
        let hint = suggest(name, &known)
            .map_or(" (a number, requests, errors or faults)".to_string(), |k| {
                format!(", did you mean `{k}`?")
            });
        return Err(format!("unknown ground truth `{name}`{hint}"));
    }
    let (mut op, mut status, mut kind) = (None, None, None);
    for pair in filter
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair
            .split_once(':')
            .ok_or_else(|| format!("`{pair}`: write `key:value`"))?;
        let (k, v) = (k.trim(), v.trim().to_string());
        match (name, k) {
            ("requests" | "errors", "op") => {
                if let Some(ops) = ops.filter(|ops| !ops.contains(&v)) {
                    return Err(unknown_op(&v, ops));
                }
                op = Some(v);
            }
            ("requests", "status") => {
                let class = matches!(v.as_str(), "1xx" | "2xx" | "3xx" | "4xx" | "5xx");
                let code = v.parse::<u16>().is_ok_and(|c| (100..=599).contains(&c));
                if !class && !code {
                    return Err(format!("status `{v}`: use 1xx..5xx or a code like 503"));
                }
                status = Some(v);
            }
            ("faults", "kind") => {
                kind = Some(match v.as_str() {
                    "latency" => GroundMetric::FaultsLatency,
                    "error" => GroundMetric::FaultsError,
                    _ => return Err(format!("fault kind `{v}`: use latency or error")),
                })
            }
            _ => return Err(format!("`{k}` is not a filter of `{name}`")),
        }
    }
    let metric = match name {
        "requests" => GroundMetric::Requests,
        "errors" => GroundMetric::Errors,
        _ => kind.ok_or("`faults` needs a kind: faults{kind:latency} or faults{kind:error}")?,
    };
    Ok(GroundRef { metric, op, status })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expects() {
        let ops = vec!["create".to_string()];
        let p = |s: &str| parse_expect(s, Some(&ops));
        assert_eq!(p("non_empty"), Ok(Expect::NonEmpty));
        assert_eq!(p(" empty "), Ok(Expect::Empty));
        assert_eq!(
            p("> 0"),
            Ok(Expect::Compare {
                comparison: Comparison::Gt,
                value: Expected::Number(0.0),
                tolerance: Tolerance::Absolute(0.0)
            })
        );
        let Ok(Expect::Compare {
            comparison,
            value: Expected::Ground(g),
            ..
        }) = p("== requests{op:create, status:5xx}")
        else {
            panic!("ground")
        };
        assert_eq!(comparison, Comparison::Eq);
        assert_eq!(
            g,
            GroundRef {
                metric: GroundMetric::Requests,
                op: Some("create".into()),
                status: Some("5xx".into())
            }
        );
        assert_eq!(p(">= faults{kind:error}").map(|_| ()), Ok(()));
        assert_eq!(p("nonempty"), Err("`nonempty`: did you mean `non_empty`? expected `non_empty`, `empty` or a comparison like `> 0` or `== requests{op:create}`".into()));
        assert_eq!(
            p("== request"),
            Err("unknown ground truth `request`, did you mean `requests`?".into())
        );
        assert_eq!(
            p("== requests{op:crate}"),
            Err("unknown operation `crate`, did you mean `create`?".into())
        );
        assert_eq!(
            p("== faults"),
            Err("`faults` needs a kind: faults{kind:latency} or faults{kind:error}".into())
        );
        assert_eq!(
            p("== errors{status:5xx}"),
            Err("`status` is not a filter of `errors`".into())
        );
    }
}
