//! JUnit XML of a report (`--junit PATH`, `output.junit`, `report junit`): one test case per
//! threshold, per operation's checks and per observability assertion, grouped in the suites
//! `thresholds`, `checks` and `verify`, plus a `run` case that fails when the run was
//! interrupted or aborted. The layout is the common Ant/Jenkins one that GitHub, GitLab,
//! Jenkins and Buildkite read; `tests/fixtures/junit.xsd` (written for this project) describes
//! exactly what is emitted.

use std::fmt::Write as _;
use std::path::Path;

use super::{Report, ReportError};

/// Text for XML content and attribute values: the five entities, other control characters
/// (not allowed in XML 1.0) as a visible `?`.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Element text: like attribute values, but line breaks and tabs stay as they are.
fn text(s: &str) -> String {
    esc(s).replace("&#10;", "\n").replace("&#9;", "\t")
}

/// One test case: its name and `None` (passed) or `Some((kind, message, detail))`.
struct Case {
    name: String,
    failure: Option<(&'static str, String, String)>,
}

fn suite(out: &mut String, name: &str, class: &str, cases: &[Case], r: &Report) {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" \
         time=\"{:.3}\" timestamp=\"{}\">",
        esc(name),
        cases.len(),
        r.duration_s,
        esc(&timestamp(&r.started_at))
    );
    for c in cases {
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
            esc(&c.name),
            esc(class)
        );
        match &c.failure {
            None => out.push_str("/>\n"),
            Some((kind, message, detail)) => {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>",
                    esc(message),
                    text(detail)
                );
            }
        }
    }
    out.push_str("  </testsuite>\n");
}

/// JUnit timestamps are ISO 8601 without a zone in the Ant schema; readers accept the report's
/// RFC 3339 with fractions, but the plain form is the safest.
fn timestamp(rfc3339: &str) -> String {
    let t = rfc3339.trim_end_matches('Z');
    let t = t.split('.').next().unwrap_or(t);
    if t.len() >= 19 {
        t[..19].to_string()
    } else {
        "1970-01-01T00:00:00".to_string()
    }
}

fn threshold_cases(r: &Report) -> Vec<Case> {
    r.thresholds
        .iter()
        .map(|t| Case {
            name: t.source.clone(),
            failure: (!t.passed).then(|| {
                let observed = t
                    .observed
                    .map_or("no samples".into(), |v| format!("{v:.4}"));
                (
                    "threshold",
                    if t.message.is_empty() {
                        format!("observed {observed}")
                    } else {
                        t.message.clone()
                    },
                    format!("threshold {}\nobserved {observed}", t.source),
                )
            }),
        })
        .collect()
}

/// One case per operation that ran checks: it fails when any of its checks failed.
fn check_cases(r: &Report) -> Vec<Case> {
    r.ops
        .iter()
        .filter(|(_, op)| op.counts.checks_passed + op.counts.checks_failed > 0)
        .map(|(name, op)| {
            let (ok, bad) = (op.counts.checks_passed, op.counts.checks_failed);
            Case {
                name: format!("checks{{op:{name}}}"),
                failure: (bad > 0).then(|| {
                    (
                        "check",
                        format!("{bad} of {} checks failed", ok + bad),
                        format!("operation {name}: {ok} passed, {bad} failed"),
                    )
                }),
            }
        })
        .collect()
}

fn verify_cases(r: &Report) -> Vec<Case> {
    r.verify
        .iter()
        .map(|a| Case {
            name: a.name.clone(),
            // A skipped assertion (backend not selected) is not a failure.
            failure: a.failed().then(|| {
                (
                    "assertion",
                    a.message.clone(),
                    format!(
                        "query {}\nobserved {}\nexpected {}\nattempts {}",
                        a.query,
                        a.observed.map_or("-".into(), |v| v.to_string()),
                        a.expected.as_deref().unwrap_or("-"),
                        a.attempts
                    ),
                )
            }),
        })
        .collect()
}

fn run_case(r: &Report) -> Case {
    let failure = if let Some(reason) = &r.aborted {
        Some(("aborted", format!("aborted: {reason}"), reason.clone()))
    } else if r.interrupted {
        Some((
            "interrupted",
            "interrupted before the load ended".to_string(),
            format!("{:.1}s of load ran", r.duration_s),
        ))
    } else {
        None
    };
    Case {
        name: "the load ran to its end".into(),
        failure,
    }
}

/// One case per server-side fault window: it was applied, or why not.
fn fault_cases(r: &Report) -> Vec<Case> {
    r.faults
        .iter()
        .enumerate()
        .filter(|(_, f)| f.via == "server")
        .map(|(i, f)| Case {
            name: format!("fault window #{i} ({} via server) was applied", f.kind),
            failure: f.failed.as_ref().map(|why| {
                (
                    "faults_failed",
                    format!("fault window #{i} could not be applied"),
                    why.clone(),
                )
            }),
        })
        .collect()
}

/// The JUnit XML document of a report.
pub fn render(r: &Report) -> String {
    let class = format!("trafficgen.{}", r.scenario);
    let mut run = vec![run_case(r)];
    run.extend(fault_cases(r));
    let suites: [(&str, Vec<Case>); 4] = [
        ("run", run),
        ("thresholds", threshold_cases(r)),
        ("checks", check_cases(r)),
        ("verify", verify_cases(r)),
    ];
    let tests: usize = suites.iter().map(|(_, c)| c.len()).sum();
    let failures: usize = suites
        .iter()
        .map(|(_, c)| c.iter().filter(|x| x.failure.is_some()).count())
        .sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"trafficgen {}\" tests=\"{tests}\" failures=\"{failures}\" \
         errors=\"0\" time=\"{:.3}\">",
        esc(&r.scenario),
        r.duration_s
    );
    for (name, cases) in &suites {
        suite(&mut out, name, &format!("{class}.{name}"), cases, r);
    }
    out.push_str("</testsuites>\n");
    out
}

/// Renders and writes the document atomically.
pub fn write(r: &Report, path: &Path) -> Result<(), ReportError> {
    super::file::write_atomic(path, render(r).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_timestamps() {
        assert_eq!(
            esc("a<b & \"c\"\n'"),
            "a&lt;b &amp; &quot;c&quot;&#10;&apos;"
        );
        assert_eq!(esc("\u{1}"), "?");
        assert_eq!(
            timestamp("2026-12-01T09:09:58.254325782Z"),
            "2026-12-01T09:09:58"
        );
        assert_eq!(timestamp(""), "1970-01-01T00:00:00");
    }

    #[test]
    fn a_fault_window_not_applied_is_a_failed_case() {
        let window = |failed: Option<&str>| crate::report::FaultReport {
            start_s: 1.0,
            end_s: 2.0,
            kind: "latency".into(),
            via: "server".into(),
            ops: vec![],
            route: None,
            share: 1.0,
            injected: None,
            failed: failed.map(str::to_string),
        };
        let r = Report {
            scenario: "s".into(),
            faults: vec![window(None), window(Some("POST /admin/faults: HTTP 404"))],
            ..Report::default()
        };
        let xml = render(&r);
        assert!(xml.contains("fault window #0 (latency via server) was applied\" classname=\"trafficgen.s.run\" time=\"0\"/>"), "{xml}");
        assert!(
            xml.contains("type=\"faults_failed\">POST /admin/faults: HTTP 404</failure>"),
            "{xml}"
        );
    }
}
