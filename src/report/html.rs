//! `report html`: one self-contained HTML page of a finished (or merged) report. Every asset is
//! inside the file (uPlot, its CSS, the page script and the data), so it opens offline, from a
//! CI artifact or a mail attachment. Tables are rendered here; the charts are drawn by the
//! page script from the columns `charts::chart_data` computes.
//!
//! Why uPlot (vendored, MIT, 51 KB minified) rather than hand-written SVG: a cursor that reads
//! out every series at a second, synced across all charts, and drag-to-zoom are what people use
//! to line a latency spike up with the lag and the fault window; the same library redraws in
//! place when a live page gets new points. A 40 s report renders to about 75 KB.

use std::fmt::Write as _;
use std::path::Path;

use super::summary::trace_link;
use super::{OpReport, Report, ReportError, VerdictState};
use crate::plan::threshold;
use crate::plan::{Aggregation, ThresholdMetric};
use crate::recorder::{ErrorKind, TraceRef};

pub mod charts;

const UPLOT_JS: &str = include_str!("html/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("html/vendor/uPlot.min.css");
const PAGE_JS: &str = include_str!("html/page.js");
const PAGE_CSS: &str = include_str!("html/page.css");

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script>` element: no `</script>`, no `<!--` (every `<` escaped).
fn script_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v)
        .expect("chart data serializes")
        .replace('<', "\\u003c")
}

fn ms(v: f64) -> String {
    format!("{v:.2}")
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.2}%", part as f64 * 100.0 / whole as f64)
    }
}

fn errors_cell(r: &OpReport) -> String {
    let total: u64 = r.counts.errors.iter().sum();
    let kinds: Vec<String> = ErrorKind::ALL
        .iter()
        .filter(|k| r.counts.errors[k.index()] > 0)
        .map(|k| format!("{} {}", k.as_str(), r.counts.errors[k.index()]))
        .collect();
    if kinds.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", kinds.join(", "))
    }
}

fn op_row(out: &mut String, name: &str, r: &OpReport, class: &str) {
    let c = &r.counts;
    let errors: u64 = c.errors.iter().sum();
    let checks = c.checks_passed + c.checks_failed;
    let (rt, st, lag) = (&r.response_time_ms, &r.service_time_ms, &r.lag_ms);
    let _ = writeln!(
        out,
        "<tr class=\"{class}\"><th>{}</th><td>{}</td><td>{:.2}</td><td>{}</td><td>{}</td>\
         <td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(name),
        c.requests,
        r.rate,
        esc(&errors_cell(r)),
        pct(errors, c.requests),
        c.checks_passed,
        checks,
        c.dropped,
        ms(rt.p50),
        ms(rt.p95),
        ms(rt.p99),
        ms(rt.max),
        ms(st.p50),
        ms(st.p95),
        ms(st.p99),
        ms(lag.p99),
    );
}

fn ops_table(out: &mut String, r: &Report) {
    out.push_str(
        "<section><h2>Operations</h2><p class=\"note\">Times in ms. Response time counts from \
         the intended start (coordinated omission corrected), service time from the actual send.\
         </p>\n<table id=\"ops\"><thead><tr><th>operation</th><th>requests</th><th>rate/s</th>\
         <th>errors</th><th>error rate</th><th>checks passed</th><th>dropped</th>\
         <th>resp p50</th><th>resp p95</th><th>resp p99</th><th>resp max</th>\
         <th>svc p50</th><th>svc p95</th><th>svc p99</th><th>lag p99</th></tr></thead><tbody>\n",
    );
    for (name, op) in &r.ops {
        op_row(out, name, op, "op");
        // A flow's row counts whole flows; its steps follow it.
        for (i, (step, s)) in op.steps.iter().enumerate() {
            op_row(out, &format!("{name} · step {} {step}", i + 1), s, "step");
        }
    }
    op_row(out, "all", &r.totals, "total");
    out.push_str("</tbody></table></section>\n");
}

fn mark(passed: bool) -> &'static str {
    if passed {
        "<span class=\"pass\">✓ pass</span>"
    } else {
        "<span class=\"fail\">✗ fail</span>"
    }
}

fn thresholds_table(out: &mut String, r: &Report) {
    if r.thresholds.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Thresholds</h2><table id=\"thresholds\"><thead><tr><th>result</th>\
         <th>threshold</th><th>observed</th><th>failing window</th><th>message</th></tr></thead>\
         <tbody>\n",
    );
    for t in &r.thresholds {
        let parsed = threshold::parse_line(&t.source).ok();
        let time = parsed.as_ref().is_some_and(|p| p.metric.is_time());
        // Shares (error, check, dropped rates) read better as percentages.
        let share = parsed.as_ref().is_some_and(|p| {
            p.aggregation == Aggregation::Rate && p.metric != ThresholdMetric::Requests
        });
        let observed = match t.observed {
            None => "no samples".to_string(),
            Some(v) if share => format!("{:.2}%", v * 100.0),
            Some(v) if time => format!("{v:.4} ms"),
            Some(v) => format!("{v:.4}"),
        };
        let window =
            charts::failing_window(t).map_or(String::new(), |(a, b)| format!("{a:.1}s – {b:.1}s"));
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if t.passed { "passed" } else { "failed" },
            mark(t.passed),
            esc(&t.source),
            esc(&observed),
            window,
            esc(&t.message)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn verify_table(out: &mut String, r: &Report) {
    if r.verify.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Telemetry assertions</h2><table id=\"verify\"><thead><tr><th>result</th>\
         <th>assertion</th><th>observed</th><th>expected</th><th>attempts</th><th>query</th>\
         <th>message</th></tr></thead><tbody>\n",
    );
    for a in &r.verify {
        let _ = writeln!(
            out,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td><code>{}</code></td><td>{}</td></tr>",
            if a.passed {
                "passed"
            } else if a.skipped {
                "skipped"
            } else {
                "failed"
            },
            mark(a.passed),
            esc(&a.name),
            a.observed.map_or("–".to_string(), |v| format!("{v}")),
            esc(a.expected.as_deref().unwrap_or("–")),
            a.attempts,
            esc(&a.query),
            esc(&a.message)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn faults_table(out: &mut String, r: &Report) {
    if r.faults.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Fault windows</h2><table id=\"faults\"><thead><tr><th>from</th><th>to</th>\
         <th>kind</th><th>via</th><th>operations / route</th><th>share</th><th>injected</th>\
         </tr></thead><tbody>\n",
    );
    for f in &r.faults {
        let target = match (&f.route, f.ops.is_empty()) {
            (Some(route), _) => route.clone(),
            (None, false) => f.ops.join(", "),
            (None, true) => "all".into(),
        };
        let _ = writeln!(
            out,
            "<tr class=\"fault-{}\"><td>{:.1}s</td><td>{:.1}s</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.0}%</td><td>{}</td></tr>",
            esc(&f.kind),
            f.start_s,
            f.end_s,
            esc(&f.kind),
            esc(&f.via),
            esc(&target),
            f.share * 100.0,
            match &f.failed {
                Some(why) => format!("FAILED, not applied: {}", esc(why)),
                None => f.injected.map_or("–".to_string(), |n| n.to_string()),
            }
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn control_table(out: &mut String, r: &Report) {
    if r.control.is_empty() {
        return;
    }
    out.push_str(
        "<section><h2>Control actions</h2><table id=\"control-actions\"><thead><tr><th>at</th>\
         <th>action</th><th>values</th><th>by</th><th>time</th></tr></thead><tbody>\n",
    );
    for e in &r.control {
        let values: Vec<String> = e
            .values
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect();
        let _ = writeln!(
            out,
            "<tr><td>{:.1}s</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.t_s,
            esc(&e.action),
            esc(&values.join(" ")),
            esc(&e.who),
            esc(&e.at)
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn traces_table(out: &mut String, id: &str, title: &str, list: &[TraceRef], r: &Report) {
    if list.is_empty() {
        return;
    }
    let grafana = r.config.grafana_url.as_deref();
    let _ = writeln!(
        out,
        "<section><h2>{title}</h2><table id=\"{id}\"><thead><tr><th>response ms</th>\
         <th>operation</th><th>outcome</th><th>at</th><th>fault</th><th>trace</th></tr></thead>\
         <tbody>"
    );
    for t in list {
        let outcome = match (t.status, t.error) {
            (Some(s), Some(e)) => format!("{s} ({})", e.as_str()),
            (Some(s), None) => s.to_string(),
            (None, Some(e)) => e.as_str().to_string(),
            (None, None) => "–".to_string(),
        };
        let trace = match grafana {
            Some(g) => format!(
                "<a class=\"trace\" href=\"{}\" target=\"_blank\" rel=\"noopener\"><code>{}</code></a>",
                esc(&trace_link(g, &t.trace_id, &r.started_at, &r.ended_at)),
                esc(&t.trace_id)
            ),
            None => format!("<code>{}</code>", esc(&t.trace_id)),
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}s</td><td>{}</td><td>{trace}</td></tr>",
            ms(t.response_time_ms),
            esc(&t.op),
            esc(&outcome),
            t.at_ms / 1000.0,
            esc(t.fault.as_deref().unwrap_or("–")),
        );
    }
    out.push_str("</tbody></table>");
    if grafana.is_none() {
        out.push_str(
            "<p class=\"note\">No Grafana URL was known for this run (scenario \
             <code>verify.grafana_url</code> or <code>--grafana-url</code>), so trace ids are \
             not links.</p>",
        );
    }
    out.push_str("</section>\n");
}

/// The live dashboard's header: the scenario and a running badge (no verdict, no totals yet).
fn live_header(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<header><h1>{} <span id=\"verdict\" class=\"verdict running\">RUNNING</span></h1>\
         </header>",
        esc(&r.scenario)
    );
}

fn header(out: &mut String, r: &Report) {
    // The verdict's own line (the summary's last line), or pass/fail for unjudged reports.
    let judged = r.verdict.state != VerdictState::NotJudged;
    let pass = if judged {
        r.verdict.state.is_pass()
    } else {
        r.passed
    };
    let line = match (judged, pass) {
        (true, _) => r.verdict.message.as_str(),
        (false, true) => "PASSED",
        (false, false) => "FAILED",
    };
    let _ = writeln!(
        out,
        "<header><h1>{} <span id=\"verdict\" class=\"verdict {}\">{}</span></h1>",
        esc(&r.scenario),
        if pass { "passed" } else { "failed" },
        esc(line)
    );
    // Older merges joined the segments' run ids with commas.
    let merged = r.config.merged_segments.or_else(|| {
        r.run_id
            .contains(',')
            .then(|| r.run_id.split(',').count() as u32)
    });
    let _ = writeln!(
        out,
        "<p class=\"meta\">run <code>{}</code>{} · target <code>{}</code> · {} → {} · \
         {:.1}s of load</p>",
        esc(&r.run_id),
        if let Some(n) = merged {
            format!(" (merged from {n} segments)")
        } else if r.segment.count > 1 {
            format!(" · segment {}/{}", r.segment.index, r.segment.count)
        } else {
            String::new()
        },
        esc(&r.target_url),
        esc(&r.started_at),
        esc(&r.ended_at),
        r.duration_s
    );
    if r.interrupted {
        out.push_str(
            "<p class=\"warn\">Interrupted: the run was stopped before the load ended.</p>\n",
        );
    }
    if let Some(reason) = &r.aborted {
        let _ = writeln!(out, "<p class=\"warn\">Aborted: {}</p>", esc(reason));
    }
    let c = &r.totals.counts;
    let errors: u64 = c.errors.iter().sum();
    let tiles = [
        ("requests", c.requests.to_string()),
        ("rate", format!("{:.1}/s", r.totals.rate)),
        ("error rate", pct(errors, c.requests)),
        ("p95", format!("{} ms", ms(r.totals.response_time_ms.p95))),
        ("p99", format!("{} ms", ms(r.totals.response_time_ms.p99))),
        ("dropped", c.dropped.to_string()),
    ];
    out.push_str("<div class=\"tiles\">");
    for (k, v) in tiles {
        let _ = write!(
            out,
            "<div class=\"tile\"><b>{}</b><span>{k}</span></div>",
            esc(&v)
        );
    }
    out.push_str("</div></header>\n");
}

/// The whole page.
pub fn render(r: &Report) -> String {
    render_with(r, None)
}

/// The page of the live dashboard: the run so far, its script following `events` (a URL
/// relative to the page) for new points; `control` is the dashboard's control section (HTML,
/// placed under the header).
pub fn render_live(r: &Report, events: &str, control: &str) -> String {
    render_with(r, Some((events, control)))
}

fn render_with(r: &Report, live: Option<(&str, &str)>) -> String {
    let mut body = String::new();
    if let Some((url, _)) = live {
        let _ = writeln!(
            body,
            "<script>window.trafficgenLive = {};</script>
<p class=\"warn\" id=\"live\">Live: the \
             charts follow the run (one point per second); the tables show the run so far, the \
             final report has them all.</p>",
            script_json(&url)
        );
    }
    if let Some((_, control)) = live {
        live_header(&mut body, r);
        body.push_str(control);
    } else {
        header(&mut body, r);
    }
    let data = charts::chart_data_with(r, live.is_some());
    body.push_str(
        "<section><h2>Over time</h2><p class=\"note\">One point per second of load. \
        Shaded: fault windows (orange = latency, red = error); hatched: the failing window of a \
        windowed threshold; dashed: latency threshold bounds (green held, red failed). Drag to zoom, double-click to reset.</p>\n",
    );
    for c in &data.charts {
        let _ = writeln!(
            body,
            "<div class=\"chart\" id=\"chart-{}\" data-chart=\"{}\"><h3>{}</h3></div>",
            c.id,
            c.id,
            esc(c.title)
        );
    }
    if data.t.is_empty() {
        body.push_str("<p class=\"warn\">This report has no timeline points.</p>");
    }
    body.push_str("</section>\n");
    thresholds_table(&mut body, r);
    verify_table(&mut body, r);
    ops_table(&mut body, r);
    faults_table(&mut body, r);
    if live.is_none() {
        control_table(&mut body, r);
    }
    traces_table(&mut body, "slowest", "Slowest requests", &r.slowest, r);
    traces_table(&mut body, "failed", "Failed requests", &r.failed, r);
    traces_table(&mut body, "faulted", "Faulted requests", &r.faulted, r);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>trafficgen · {title}</title>\n<style>{UPLOT_CSS}</style>\n<style>{PAGE_CSS}</style>\
         </head><body>\n{body}<footer>trafficgen {version} · report version {rv}</footer>\n\
         <script type=\"application/json\" id=\"chart-data\">{json}</script>\n\
         <script>{UPLOT_JS}</script>\n<script>{PAGE_JS}</script>\n</body></html>\n",
        title = esc(&r.scenario),
        version = env!("CARGO_PKG_VERSION"),
        rv = r.version,
        json = script_json(&data),
    )
}

/// Renders and writes the page (atomic like the JSON report: a temp file, then rename).
pub fn write(r: &Report, path: &Path) -> Result<(), ReportError> {
    super::file::write_atomic(path, render(r).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text_and_script_json() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let j = script_json(&serde_json::json!({"s": "</script><!--"}));
        assert!(!j.contains('<'), "{j}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&j).unwrap()["s"],
            "</script><!--"
        );
    }
}
