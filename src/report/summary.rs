//! The end summary printed to stdout (and by `report render`): per operation counts, rates,
//! errors by kind, percentiles, dropped/late/lag, thresholds, assertions and trace ids.

use std::fmt::Write as _;

use super::{OpReport, Percentiles, Report};
use crate::recorder::{ErrorKind, TraceRef};

/// How many of each trace list the summary prints (the report keeps more).
const SHOWN_TRACES: usize = 5;

fn pct_line(out: &mut String, label: &str, p: &Percentiles) {
    let _ = writeln!(
        out,
        "    {label:<9} p50 {:>9.2}  p90 {:>9.2}  p95 {:>9.2}  p99 {:>9.2}  p99.9 {:>9.2}  max {:>9.2}",
        p.p50, p.p90, p.p95, p.p99, p.p999, p.max
    );
}

fn errors_text(r: &OpReport) -> String {
    let total: u64 = r.counts.errors.iter().sum();
    if total == 0 {
        return "0".to_string();
    }
    let kinds: Vec<String> = ErrorKind::ALL
        .iter()
        .filter(|k| r.counts.errors[k.index()] > 0)
        .map(|k| format!("{} {}", k.as_str(), r.counts.errors[k.index()]))
        .collect();
    format!("{total} ({})", kinds.join(", "))
}

fn op_block(out: &mut String, name: &str, r: &OpReport) {
    let c = &r.counts;
    let checks = c.checks_passed + c.checks_failed;
    // A flow counts whole flows; its steps' requests are listed below it.
    let unit = if r.steps.is_empty() {
        "requests"
    } else {
        "flows"
    };
    let _ = writeln!(
        out,
        "  {name}: {} {unit}, {:.2}/s, errors {}",
        c.requests,
        r.rate,
        errors_text(r)
    );
    let statuses: Vec<String> = c.status.iter().map(|(s, n)| format!("{s}×{n}")).collect();
    if !statuses.is_empty() {
        let _ = writeln!(out, "    status    {}", statuses.join("  "));
    }
    let _ = writeln!(
        out,
        "    dropped {}  late {}  empty pool {}  checks {}/{} passed",
        c.dropped, c.late, c.empty_pool, c.checks_passed, checks
    );
    // Reports written before the accounting have no planned count: nothing to say then.
    if c.planned > 0 {
        let _ = writeln!(
            out,
            "    arrivals  planned {} = completed {} + dropped {} + abandoned {}",
            c.planned, c.completed, c.dropped, c.abandoned
        );
    }
    if r.steps.is_empty() {
        pct_line(out, "response", &r.response_time_ms);
        pct_line(out, "service", &r.service_time_ms);
    } else {
        // From the flow's intended start to its last step's last byte; from its first send.
        pct_line(out, "flow", &r.response_time_ms);
        pct_line(out, "flow svc", &r.service_time_ms);
    }
    pct_line(out, "lag", &r.lag_ms);
    let ph = &r.phases_ms;
    if r.steps.is_empty() {
        let _ = writeln!(
            out,
            "    phases p95  connect {:.2}  tls {:.2}  ttfb {:.2}  receive {:.2}  ({} B sent, {} B received)",
            ph.connect.p95, ph.tls.p95, ph.ttfb.p95, ph.receive.p95, c.bytes_sent, c.bytes_received
        );
    }
    for (i, (step, s)) in r.steps.iter().enumerate() {
        let p = &s.response_time_ms;
        let _ = writeln!(
            out,
            "    step {} {step}: {} requests, errors {}; response p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
            i + 1,
            s.counts.requests,
            errors_text(s),
            p.p50,
            p.p95,
            p.p99,
            p.max
        );
    }
}

/// Epoch milliseconds of an RFC 3339 timestamp.
fn epoch_ms(rfc3339: &str) -> Option<i128> {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339);
    t.ok().map(|t| t.unix_timestamp_nanos() / 1_000_000)
}

/// A Grafana Explore link opening the trace in the Tempo datasource (uid `tempo`, as the
/// provisioned datasources name it), over the run's time range (from 5 min before the start to
/// 15 min after the end, so late-ingested spans are inside).
pub fn trace_link(grafana: &str, trace_id: &str, started_at: &str, ended_at: &str) -> String {
    let (from, to) = match (epoch_ms(started_at), epoch_ms(ended_at)) {
        (Some(a), Some(b)) => ((a - 300_000).to_string(), (b + 900_000).to_string()),
        _ => ("now-24h".to_string(), "now".to_string()),
    };
    let pane =
        format!(r#"["{from}","{to}","tempo",{{"query":"{trace_id}","queryType":"traceql"}}]"#);
    let mut enc = String::new();
    for b in pane.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                enc.push(b as char)
            }
            _ => {
                let _ = write!(enc, "%{b:02X}");
            }
        }
    }
    format!("{}/explore?left={enc}", grafana.trim_end_matches('/'))
}

fn trace_lines(out: &mut String, title: &str, list: &[TraceRef], r: &Report) {
    let grafana = r.config.grafana_url.as_deref();
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "{title} ({} kept):", list.len());
    for t in list.iter().take(SHOWN_TRACES) {
        let outcome = match (t.status, t.error) {
            (None, Some(e)) => e.as_str().to_string(),
            (Some(s), _) => s.to_string(),
            (None, None) => "-".to_string(),
        };
        let fault = t
            .fault
            .as_deref()
            .map(|f| format!(" fault={f}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:>10.2} ms  {:<10} {:<10} at {:>9.3}s  trace {}{fault}",
            t.response_time_ms,
            t.op,
            outcome,
            t.at_ms / 1000.0,
            t.trace_id
        );
        if let Some(g) = grafana {
            let _ = writeln!(
                out,
                "      {}",
                trace_link(g, &t.trace_id, &r.started_at, &r.ended_at)
            );
        }
    }
}

impl Report {
    /// The end summary printed to stdout (per operation counts, rates, errors by kind,
    /// percentiles, dropped, lag, thresholds, assertions, slowest/failed trace ids).
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "trafficgen: scenario {} · run {} · {:.1}s",
            self.scenario, self.run_id, self.duration_s
        );
        if self.elapsed_s > 0.0 {
            let _ = write!(out, " (elapsed {:.1}s with the drain)", self.elapsed_s);
        }
        if self.segment.count > 1 {
            let _ = write!(
                out,
                " · segment {}/{}",
                self.segment.index, self.segment.count
            );
        }
        // The seed replays the run's choices (`--seed N`).
        if let Some(seed) = self.config.seed {
            let _ = write!(out, " · seed {seed}");
        }
        out.push('\n');
        let _ = writeln!(out, "target {}", self.target_url);
        if self.interrupted {
            out.push_str("INTERRUPTED: the run was stopped before the load ended\n");
        }
        if let Some(reason) = &self.aborted {
            let _ = writeln!(out, "ABORTED: {reason}");
        }
        if let Some(why) = &self.schedule_missed {
            let allowed = if self.config.allow_schedule_miss {
                " (allowed by load.allow_schedule_miss)"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "WARNING: the generator could not keep the schedule: latency figures are not trustworthy ({why}){allowed}"
            );
        }
        out.push_str(
            "\ntimes in ms (response = from the release, or from the intended start when it waited for a connection; service = from the send; lag = send − intended)\n",
        );
        for (name, r) in &self.ops {
            op_block(&mut out, name, r);
        }
        if self.ops.len() != 1 {
            op_block(&mut out, "all", &self.totals);
        }
        if let Some(c) = &self.cleanup {
            let _ = writeln!(out, "\n{}", c.line());
        }
        if !self.faults.is_empty() {
            out.push_str("\nfault windows:\n");
            for f in &self.faults {
                let injected = f
                    .injected
                    .map(|n| format!(", {n} injected"))
                    .unwrap_or_default();
                let failed = f
                    .failed
                    .as_deref()
                    .map(|why| format!("  FAILED, not applied: {why}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {:>7.1}s – {:>7.1}s  {} via {} share {}{injected}{failed}",
                    f.start_s, f.end_s, f.kind, f.via, f.share
                );
            }
        }
        if let Some(t) = &self.target_faults {
            let _ = writeln!(
                out,
                "  target counted {} latency / {} error faults: {} / {} by header, {} / {} server-side",
                t.counted.latency,
                t.counted.error,
                t.header.latency,
                t.header.error,
                t.server.latency,
                t.server.error
            );
        }
        if !self.thresholds.is_empty() {
            out.push_str("\nthresholds:\n");
            for t in &self.thresholds {
                let mark = if t.passed { '✓' } else { '✗' };
                // Times are shown in ms; counts and rates as they are.
                let unit = crate::plan::threshold::parse_line(&t.source)
                    .ok()
                    .filter(|p| {
                        p.metric.is_time() && p.aggregation != crate::plan::Aggregation::Count
                    })
                    .map_or("", |_| " ms");
                let observed = t
                    .observed
                    .map_or("no samples".to_string(), |v| format!("{v:.4}{unit}"));
                let _ = writeln!(out, "  {mark} {}  observed {observed}", t.source);
                if !t.passed && !t.message.is_empty() {
                    let _ = writeln!(out, "      {}", t.message);
                }
            }
        }
        if !self.verify.is_empty() {
            out.push_str("\nassertions:\n");
            for a in &self.verify {
                if a.skipped {
                    let _ = writeln!(out, "  – {}  skipped: {}", a.name, a.message);
                    continue;
                }
                let mark = if a.passed { '✓' } else { '✗' };
                let observed = a.observed.map_or("-".to_string(), |v| format!("{v}"));
                let expected = a.expected.as_deref().unwrap_or("-");
                let _ = writeln!(
                    out,
                    "  {mark} {}  observed {observed}  expected {expected}  ({} attempts)",
                    a.name, a.attempts
                );
                if !a.passed && !a.message.is_empty() {
                    let _ = writeln!(out, "      {}", a.message);
                }
            }
        }
        out.push('\n');
        trace_lines(&mut out, "slowest requests", &self.slowest, self);
        trace_lines(&mut out, "failed requests", &self.failed, self);
        trace_lines(&mut out, "faulted requests", &self.faulted, self);
        // The last line is the verdict's own (see `verdict::Verdict::line`).
        let _ = writeln!(out, "\n{}", self.verdict.message);
        out
    }
}
