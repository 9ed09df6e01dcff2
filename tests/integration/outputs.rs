//! Outputs made from a finished report: the self-contained HTML page (checked in Rust and in
//! Debian's chromium through playwright-core), `report compare` and the JUnit XML. All start
//! from one real 8 s run of `tests/fixtures/report-faults.yaml` against the embedded todo-api
//! (a latency and an error fault window, a windowed threshold failing inside the first).

use std::path::{Path, PathBuf};
use std::process::Command as Std;
use std::sync::OnceLock;
use std::time::Duration;

use assert_cmd::Command;
use trafficgen::report::Report;
use trafficgen::report::html;

pub(super) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(super) fn bin() -> Command {
    let mut c = Command::cargo_bin("trafficgen").expect("trafficgen binary");
    for k in [
        "TRAFFICGEN_TARGET_URL",
        "TRAFFICGEN_REPORT",
        "TRAFFICGEN_RATE",
        "TRAFFICGEN_DURATION",
        "TRAFFICGEN_GRAFANA_URL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.timeout(Duration::from_secs(90));
    c
}

/// A fresh directory under cargo's per-target temp dir (kept for a look after a failure).
pub(super) fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("outputs")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A loopback HTTP/1.1 endpoint answering every request with an empty 200, on a thread of its
/// own for the rest of the test process (the exports of the run are all it serves).
fn otlp_sink() -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0u8; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if r.get_mut().write_all(ok).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// The report of one real run of the fixture, made once for every test of this module.
fn faults_report() -> &'static Path {
    static REPORT: OnceLock<PathBuf> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = out_dir("run");
        let path = dir.join("report-faults.json");
        // Trace ids are only shown for exported client spans (the sampling contract): an
        // OTLP/HTTP sink that accepts every export makes the report list them.
        let sink = otlp_sink();
        let out = bin()
            .env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("http://{sink}/v1/traces"),
            )
            .env("OTEL_METRICS_EXPORTER", "none")
            .arg("run")
            .arg(root().join("tests/fixtures/report-faults.yaml"))
            .arg("--report")
            .arg(&path)
            .arg("--html")
            .arg(dir.join("report-faults.html"))
            .arg("--junit")
            .arg(dir.join("report-faults.xml"))
            .output()
            .unwrap();
        // The windowed threshold fails inside the latency window by design.
        assert_eq!(
            out.status.code(),
            Some(99),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
}

#[test]
fn run_writes_the_html_and_junit_files_it_was_asked_for() {
    let dir = faults_report().parent().unwrap();
    let page = std::fs::read_to_string(dir.join("report-faults.html")).unwrap();
    let r = Report::read(faults_report()).unwrap();
    assert_eq!(
        page,
        html::render(&r),
        "--html writes the page of the final report"
    );
    let xml = std::fs::read_to_string(dir.join("report-faults.xml")).unwrap();
    assert_eq!(xml, trafficgen::report::junit::render(&r));
    xmllint(&dir.join("report-faults.xml")).unwrap();
}

#[test]
fn html_is_one_self_contained_file_with_every_section() {
    let mut r = Report::read(faults_report()).unwrap();
    r.config.grafana_url = Some("http://grafana.test:3000/".into());
    let page = html::render(&r);
    // Nothing is fetched: no external script, stylesheet, image or font.
    for needle in [
        "src=\"http",
        "href=\"http://fonts",
        "<link",
        "@import",
        "url(http",
    ] {
        assert!(!page.contains(needle), "external asset `{needle}`");
    }
    assert!(
        page.contains("https://github.com/leeoniya/uPlot (v1.6.32)"),
        "uPlot inlined"
    );
    for id in ["rate", "latency", "lag", "errors", "concurrency"] {
        assert!(page.contains(&format!("id=\"chart-{id}\"")), "chart {id}");
    }
    for id in [
        "thresholds",
        "ops",
        "faults",
        "slowest",
        "failed",
        "faulted",
    ] {
        assert!(page.contains(&format!("<table id=\"{id}\">")), "table {id}");
    }
    assert!(
        page.contains(
            "<span id=\"verdict\" class=\"verdict failed\">FAILED: 1 of 3 threshold(s) failed</span>"
        ),
        "the verdict's line"
    );
    let failing = r
        .thresholds
        .iter()
        .find(|t| !t.passed)
        .expect("a failing threshold");
    let (a, b) = html::charts::failing_window(failing).expect("its window");
    assert!(
        page.contains(&format!("{a:.1}s – {b:.1}s")),
        "the failing window is named"
    );
    // Trace ids become Grafana Explore links to the Tempo datasource.
    let id = &r.slowest[0].trace_id;
    assert!(
        page.contains("href=\"http://grafana.test:3000/explore?left=") && page.contains(id),
        "trace link"
    );
    assert!(page.contains("%22tempo%22"), "tempo datasource in the link");
    // Without a Grafana URL: ids only, and the page says why.
    r.config.grafana_url = None;
    let page = html::render(&r);
    assert!(!page.contains("explore?left="));
    assert!(page.contains("No Grafana URL was known"));
}

#[test]
fn chart_data_shades_faults_everywhere_and_the_failing_window_on_its_chart() {
    let r = Report::read(faults_report()).unwrap();
    let d = html::charts::chart_data(&r);
    assert_eq!(d.t.len(), r.timeline.len());
    assert!(d.t.len() >= 8, "{} points", d.t.len());
    for c in &d.charts {
        for s in &c.series {
            assert_eq!(s.values.len(), d.t.len(), "{}/{}", c.id, s.label);
        }
    }
    let faults: Vec<(f64, f64, &str)> = d
        .bands
        .iter()
        .filter(|b| b.chart.is_none())
        .map(|b| (b.start_s, b.end_s, b.kind.as_str()))
        .collect();
    assert_eq!(faults, vec![(2.0, 5.0, "latency"), (5.0, 7.0, "error")]);
    let marks: Vec<(f64, f64, Option<&str>)> = d
        .bands
        .iter()
        .filter(|b| b.kind == "threshold")
        .map(|b| (b.start_s, b.end_s, b.chart))
        .collect();
    // The worst 2 s window of p99 is one that overlaps the latency fault (which one depends on
    // how the random mix fell); it is marked on the latency chart only.
    assert_eq!(marks.len(), 1, "{marks:?}");
    let (a, b, chart) = marks[0];
    assert_eq!(chart, Some("latency"));
    assert!(
        (b - a - 2.0).abs() < 1e-9 && a < 5.0 && b > 2.0,
        "{marks:?}"
    );
    let failing = r.thresholds.iter().find(|t| !t.passed).unwrap();
    assert!(
        failing
            .message
            .contains(&format!("in the window {a:.1}s–{b:.1}s")),
        "{}",
        failing.message
    );
    // Latency thresholds become bound lines on the latency chart (the rate one does not).
    let limits: Vec<(&str, f64, bool)> = d
        .limits
        .iter()
        .map(|l| (l.chart, l.value, l.passed))
        .collect();
    assert_eq!(
        limits,
        vec![("latency", 100.0, false), ("latency", 250.0, true)]
    );
    // The error window shows as 5xx in the errors chart, and nowhere before it.
    let errors = d.charts.iter().find(|c| c.id == "errors").unwrap();
    let s5 = errors
        .series
        .iter()
        .find(|s| s.label == "status_5xx")
        .expect("a status_5xx series");
    let before: f64 = s5.values[..4].iter().flatten().sum();
    let during: f64 = s5.values[5..7].iter().flatten().sum();
    assert_eq!(before, 0.0);
    assert!(during > 0.0, "{:?}", s5.values);
}

#[test]
fn merged_reports_render_with_summed_timelines() {
    let r = Report::read(faults_report()).unwrap();
    let mut a = r.clone();
    let mut b = r.clone();
    a.segment = trafficgen::plan::Segment { index: 0, count: 2 };
    b.segment = trafficgen::plan::Segment { index: 1, count: 2 };
    let merged = trafficgen::report::merge(&[a, b]).unwrap();
    let d = html::charts::chart_data(&merged);
    let rate = d.charts.iter().find(|c| c.id == "rate").unwrap();
    let achieved = &rate.series[1].values;
    assert_eq!(
        achieved[2],
        Some(2.0 * r.timeline[2].requests as f64),
        "per-second sums"
    );
    let page = html::render(&merged);
    assert!(page.contains("(merged from 2 segments)"));
}

#[test]
fn html_report_draws_every_chart_in_chromium() {
    let dir = out_dir("html");
    let page = dir.join("report-faults.html");
    let out = bin()
        .args(["report", "html"])
        .arg(faults_report())
        .arg("-o")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let browser = root().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "tests/browser/node_modules is missing: scripts/test.sh installs it (npm ci in tests/browser)"
    );
    let shots = root().join("artifacts/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let node = std::env::var("NODE_BIN").unwrap_or_else(|_| "node".into());
    let out = Std::new(node)
        .current_dir(&browser)
        .arg("report.mjs")
        .arg(&page)
        .arg(faults_report())
        .arg(shots.join("report-faults.png"))
        .output()
        .expect("node runs (Node.js is on every CI machine)");
    assert!(
        out.status.success(),
        "browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(shots.join("report-faults.png").is_file());
}

/// A report of one operation `get`: 1000 requests over 10 s with response times 1..=1000 × `ms`
/// µs·1000 (so p50 = 500·ms, p95 = 950·ms, p99 = 990·ms), service time the same minus 1 ms,
/// and `errors` 5xx.
fn synthetic(run_id: &str, ms: u64, errors: u64) -> Report {
    use trafficgen::recorder::Counts;
    use trafficgen::report::{OpReport, hist};
    let (mut r, mut s, l) = (hist::empty(), hist::empty(), hist::empty());
    for v in 1..=1000u64 {
        hist::record_n(&mut r, v * ms * 1000, 1);
        hist::record_n(&mut s, (v * ms * 1000).saturating_sub(1000).max(1), 1);
    }
    let mut counts = Counts {
        requests: 1000,
        ..Counts::default()
    };
    counts.errors[5] = errors;
    let op = OpReport::from_parts(counts, &r, &s, &l, 10.0);
    Report {
        run_id: run_id.into(),
        scenario: "synthetic".into(),
        duration_s: 10.0,
        totals: op.clone(),
        ops: vec![("get".into(), op)],
        ..Report::default()
    }
}

const RULES: [&str; 2] = [
    "response_time: p(95) < baseline * 1.10",
    "errors: rate < baseline + 0.5%",
];

#[test]
fn compare_markdown_is_stable() {
    let base = synthetic("base", 1, 10);
    let new = synthetic("new", 2, 30);
    let rules: Vec<_> = RULES
        .iter()
        .map(|r| trafficgen::plan::compare::parse_line(r).unwrap())
        .collect();
    let c = trafficgen::verdict::compare::compare(&base, &new, &rules);
    assert!(c.regressed());
    let expected = "\
### ❌ trafficgen compare: `synthetic` — REGRESSION: 2 of 2 rule(s) failed

Baseline run `base` → new run `new`.

| | rule | baseline | new | bound | note |
|---|---|---:|---:|---:|---|
| ❌ | `response_time: p(95) < baseline * 1.10` | 950.27 ms | 1900.54 ms | 1045.30 ms | regression: 1900.54 ms is not < 1045.30 ms |
| ❌ | `errors: rate < baseline + 0.5%` | 1.00% | 3.00% | 1.50% | regression: 3.00% is not < 1.50% |

| operation | metric | baseline | new | change |
|---|---|---:|---:|---:|
| get | rate | 100.00/s | 100.00/s | +0.0% |
| get | error rate | 1.00% | 3.00% | +2.00 pp |
| get | response p50 | 500.22 ms | 1000.45 ms | +100.0% |
| get | response p95 | 950.27 ms | 1900.54 ms | +100.0% |
| get | response p99 | 990.21 ms | 1980.41 ms | +100.0% |
| get | service p50 | 499.20 ms | 999.42 ms | +100.2% |
| get | service p95 | 949.25 ms | 1899.52 ms | +100.1% |
| get | service p99 | 989.18 ms | 1979.39 ms | +100.1% |
| all | rate | 100.00/s | 100.00/s | +0.0% |
| all | error rate | 1.00% | 3.00% | +2.00 pp |
| all | response p50 | 500.22 ms | 1000.45 ms | +100.0% |
| all | response p95 | 950.27 ms | 1900.54 ms | +100.0% |
| all | response p99 | 990.21 ms | 1980.41 ms | +100.0% |
| all | service p50 | 499.20 ms | 999.42 ms | +100.2% |
| all | service p95 | 949.25 ms | 1899.52 ms | +100.1% |
| all | service p99 | 989.18 ms | 1979.39 ms | +100.1% |

Response time counts from the intended start (coordinated omission corrected), service time from the actual send.
";
    let got = trafficgen::verdict::compare::markdown(&c);
    assert_eq!(got, expected, "\n{got}");
}

#[test]
fn compare_exits_99_on_a_regression_and_0_on_an_improvement() {
    let dir = out_dir("compare");
    let slow = dir.join("slow.json");
    let fast = dir.join("fast.json");
    synthetic("slow", 2, 30).write(&slow).unwrap();
    synthetic("fast", 1, 10).write(&fast).unwrap();
    let run = |base: &Path, new: &Path, extra: &[&str]| {
        let mut c = bin();
        c.args(["report", "compare"]).arg(base).arg(new);
        for r in RULES {
            c.arg("--rule").arg(r);
        }
        c.args(extra).output().unwrap()
    };
    let regression = run(&fast, &slow, &[]);
    assert_eq!(regression.status.code(), Some(99));
    let text = String::from_utf8_lossy(&regression.stdout);
    assert!(text.contains("REGRESSION: 2 of 2 rule(s) failed"), "{text}");
    assert!(
        text.contains("✗ response_time: p(95) < baseline * 1.10"),
        "{text}"
    );
    let improvement = run(&slow, &fast, &["--format", "markdown"]);
    assert_eq!(
        improvement.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&improvement.stdout)
    );
    let md = String::from_utf8_lossy(&improvement.stdout);
    assert!(md.starts_with("### ✅ trafficgen compare"), "{md}");
    // The real run against itself: no regression, and the scenario's own `compare:` rules
    // (kept in the new report) are applied beside the command line's.
    let same = run(faults_report(), faults_report(), &[]);
    let text = String::from_utf8_lossy(&same.stdout);
    assert_eq!(same.status.code(), Some(0), "{text}");
    for rule in [
        "✓ response_time: p(95) < baseline * 1.50",
        "✓ errors{op:create}: rate < baseline + 5%",
        "✓ errors{op:create}: count <= baseline * 2",
        "✓ errors: rate < baseline + 0.5%",
    ] {
        assert!(text.contains(rule), "{rule}: {text}");
    }
    assert!(text.contains("no regression (5 rule(s) passed)"), "{text}");
    // A rule that does not parse is a usage error.
    let bad = run(&fast, &slow, &["--rule", "errors: rate < 1%"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("starts with `baseline`"));
}

/// Validates `xml` against our JUnit schema with Debian's xmllint; Err(xmllint's message).
fn xmllint(xml: &Path) -> Result<(), String> {
    let bin = std::env::var("XMLLINT_BIN").unwrap_or_else(|_| "xmllint".into());
    let out = Std::new(&bin)
        .arg("--noout")
        .arg("--schema")
        .arg(root().join("tests/fixtures/junit.xsd"))
        .arg(xml)
        .output()
        .unwrap_or_else(|e| {
            panic!("{bin}: {e} (scripts/test.sh installs libxml2-utils)");
        });
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn junit_validates_and_names_every_threshold_check_and_assertion() {
    use trafficgen::report::AssertionResult;
    let dir = out_dir("junit");
    let xml = dir.join("report-faults.xml");
    let out = bin()
        .args(["report", "junit"])
        .arg(faults_report())
        .arg("-o")
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    xmllint(&xml).unwrap();
    let doc = std::fs::read_to_string(&xml).unwrap();
    let mut r = Report::read(faults_report()).unwrap();
    assert_eq!(r.thresholds.len(), 3);
    for t in &r.thresholds {
        let name = t.source.replace('<', "&lt;");
        let case =
            format!("<testcase name=\"{name}\" classname=\"trafficgen.report-faults.thresholds\"");
        let at = doc
            .find(&case)
            .unwrap_or_else(|| panic!("no case for {}:\n{doc}", t.source));
        // A failed threshold's case holds a <failure>, a passed one closes at once.
        let rest = &doc[at + case.len()..];
        assert_eq!(
            rest.starts_with(" time=\"0\">\n      <failure"),
            !t.passed,
            "{}",
            t.source
        );
    }
    assert!(
        doc.contains("<testcase name=\"checks{op:create}\""),
        "{doc}"
    );
    let failed = r.thresholds.iter().filter(|t| !t.passed).count()
        + usize::from(r.totals.counts.checks_failed > 0);
    // One more case per server-side fault window (applied here).
    let server = r.faults.iter().filter(|f| f.via == "server").count();
    assert_eq!(server, 1);
    assert!(
        doc.contains("<testcase name=\"fault window #1 (error via server) was applied\""),
        "{doc}"
    );
    assert!(
        doc.contains(&format!("tests=\"{}\" failures=\"{failed}\"", 5 + server)),
        "{doc}"
    );

    // Assertions, an aborted run and hostile text still give a valid document.
    r.verify = vec![
        AssertionResult {
            name: "todo requests counted <all> & \"more\"".into(),
            passed: false,
            query: "sum(rate(x{a=\"b\"}[1m])) > 0".into(),
            observed: Some(0.0),
            expected: Some("> 0".into()),
            attempts: 3,
            message: "observed 0\u{1} < 1".into(),
            skipped: false,
        },
        AssertionResult {
            name: "spans in tempo".into(),
            passed: true,
            query: "{}".into(),
            observed: Some(4.0),
            expected: None,
            attempts: 1,
            message: String::new(),
            skipped: false,
        },
    ];
    r.aborted = Some("errors: rate<1% failed".into());
    let xml2 = dir.join("hostile.xml");
    trafficgen::report::junit::write(&r, &xml2).unwrap();
    xmllint(&xml2).unwrap();
    let doc = std::fs::read_to_string(&xml2).unwrap();
    assert!(
        doc.contains("<testcase name=\"todo requests counted &lt;all&gt; &amp; &quot;more&quot;\"")
    );
    assert!(doc.contains("<testcase name=\"spans in tempo\" classname=\"trafficgen.report-faults.verify\" time=\"0\"/>"));
    assert!(doc.contains("type=\"aborted\""));

    // The schema is not a rubber stamp: a case without its classname is rejected.
    let broken = dir.join("broken.xml");
    std::fs::write(
        &broken,
        doc.replacen(" classname=\"trafficgen.report-faults.run\"", "", 1),
    )
    .unwrap();
    let e = xmllint(&broken).expect_err("a testcase without classname must not validate");
    assert!(e.contains("classname"), "{e}");
}
