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

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bin() -> Command {
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
fn out_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("outputs")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The report of one real run of the fixture, made once for every test of this module.
fn faults_report() -> &'static Path {
    static REPORT: OnceLock<PathBuf> = OnceLock::new();
    REPORT.get_or_init(|| {
        let dir = out_dir("run");
        let path = dir.join("report-faults.json");
        let out = bin()
            .arg("run")
            .arg(root().join("tests/fixtures/report-faults.yaml"))
            .arg("--report")
            .arg(&path)
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
    assert!(page.contains("<span id=\"verdict\" class=\"verdict failed\">FAILED</span>"));
    let failing = r
        .thresholds
        .iter()
        .find(|t| !t.passed)
        .expect("a failing threshold");
    let (a, b) = html::charts::failing_window(failing, Some(2.0)).expect("its window");
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
    b.run_id = format!("{}-b", r.run_id);
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
    assert!(page.contains("(merged from 2 runs)"));
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
