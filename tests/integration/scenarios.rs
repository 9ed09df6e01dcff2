//! Every shipped scenario builds into a `Plan`; invalid fixtures give the exact located error
//! text; the committed JSON Schema equals `trafficgen schema`; overrides follow the documented
//! precedence.

use std::path::{Path, PathBuf};
use std::time::Duration;

use trafficgen::plan::{self, LoadModel, Overrides};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

/// `{{env.NAME}}` values the shipped scenarios may use.
fn test_env(name: &str) -> Option<String> {
    Some(format!("test-{name}"))
}

#[test]
fn every_shipped_scenario_builds() {
    let files = yaml_files(&root().join("scenarios"));
    assert!(!files.is_empty(), "no scenarios found");
    for f in files {
        let plan =
            plan::build_with_env(&f, &Overrides::default(), &test_env).unwrap_or_else(|errs| {
                let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
                panic!("{} does not build:\n{}", f.display(), text.join("\n"))
            });
        assert!(!plan.mix.operations.is_empty(), "{}", f.display());
        assert!(plan.load.duration() > Duration::ZERO, "{}", f.display());
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(
            text.starts_with('#'),
            "{} needs a header comment (purpose, run command)",
            f.display()
        );
        assert!(
            text.contains("trafficgen run"),
            "{}: header names the run command",
            f.display()
        );
    }
}

#[test]
fn smoke_is_a_ten_second_open_crud_mix() {
    let plan =
        plan::build(&root().join("scenarios/smoke.yaml"), &Overrides::default()).expect("builds");
    assert!(
        plan.target.base_url.is_none(),
        "smoke uses the embedded todo-api"
    );
    let LoadModel::Open {
        stages, start_rate, ..
    } = &plan.load
    else {
        panic!("open model")
    };
    assert_eq!(
        (stages.len(), *start_rate, stages[0].target),
        (1, 50.0, 50.0)
    );
    assert_eq!(plan.load.duration(), Duration::from_secs(10));
    assert_eq!(plan.mix.operations.len(), 6);
    assert_eq!(plan.thresholds.len(), 2);
}

/// Each `tests/fixtures/invalid/X.yaml` fails with exactly the lines of `X.expected`
/// (`file:line:column: field: message`, sorted by position).
#[test]
fn invalid_fixtures_give_exact_located_errors() {
    let dir = Path::new("tests/fixtures/invalid");
    let files = yaml_files(&root().join(dir));
    assert!(files.len() >= 6, "expected at least 6 invalid fixtures");
    let mut mismatches = Vec::new();
    for f in files {
        let rel = dir.join(f.file_name().expect("file name"));
        let errs = match plan::build_with_env(&root().join(&rel), &Overrides::default(), &|_| None)
        {
            Ok(_) => panic!("{} should not build", rel.display()),
            Err(errs) => errs,
        };
        let prefix = format!("{}/", root().display());
        let got: Vec<String> = errs
            .iter()
            .map(|e| e.to_string().replacen(&prefix, "", 1))
            .collect();
        let expected_path = root().join(rel.with_extension("expected"));
        // TRAFFICGEN_BLESS=1 rewrites the expectations (review the diff before committing).
        if std::env::var_os("TRAFFICGEN_BLESS").is_some() {
            std::fs::write(&expected_path, got.join("\n") + "\n").expect("write expected");
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let expected: Vec<&str> = expected.lines().filter(|l| !l.is_empty()).collect();
        if got != expected {
            mismatches.push(format!(
                "{}:\n  got:\n    {}\n  expected:\n    {}",
                rel.display(),
                got.join("\n    "),
                expected.join("\n    ")
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The committed scenarios/schema.json is what `trafficgen schema` prints, and it accepts
/// every shipped scenario.
#[test]
fn committed_schema_matches_and_accepts_the_scenarios() {
    let schema = trafficgen::scenario::json_schema();
    let path = root().join("scenarios/schema.json");
    let pretty = serde_json::to_string_pretty(&schema).expect("serialize") + "\n";
    if std::env::var_os("TRAFFICGEN_BLESS").is_some() {
        std::fs::write(&path, &pretty).expect("write schema");
    }
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("scenarios/schema.json"))
            .expect("json");
    assert_eq!(
        committed, schema,
        "scenarios/schema.json is stale: rerun with TRAFFICGEN_BLESS=1"
    );
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    for f in yaml_files(&root().join("scenarios")) {
        let text = std::fs::read_to_string(&f).expect("read");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml as json");
        let problems: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{}: {e}", e.instance_path))
            .collect();
        assert!(
            problems.is_empty(),
            "{} fails its schema: {problems:?}",
            f.display()
        );
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write scenario");
    p
}

/// Precedence, highest first: flag > environment (both arrive as `Overrides`, clap resolves
/// flag over env) > scenario > default.
#[test]
fn overrides_beat_the_scenario_which_beats_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let with = write(
        dir.path(),
        "with.yaml",
        "name: p\nseed: 7\ntarget:\n  url: http://127.0.0.1:1234\n  request_timeout: 3s\nload:\n  start_rate: 0\n  stages:\n    - {duration: 10s, rate: 100/s}\n    - {duration: 30s, rate: 100/s}\nmix:\n  operations:\n    - todo: list\noutput:\n  report: from-scenario.json\ntelemetry:\n  linger: 5s\n",
    );
    let without = write(
        dir.path(),
        "without.yaml",
        "name: q\nload:\n  stages:\n    - {duration: 10s, rate: 5}\nmix:\n  operations:\n    - todo: list\n",
    );

    // Scenario over default.
    let p = plan::build(&with, &Overrides::default()).expect("builds");
    assert_eq!(p.seed, 7);
    assert_eq!(p.target.request_timeout, Duration::from_secs(3));
    assert_eq!(p.target.base_url.as_ref().map(|u| u.port), Some(1234));
    assert_eq!(
        p.output.report.as_deref(),
        Some(Path::new("from-scenario.json"))
    );
    assert_eq!(p.telemetry.linger, Duration::from_secs(5));

    // Default when the scenario is silent.
    let p = plan::build(&without, &Overrides::default()).expect("builds");
    assert_eq!(p.target.request_timeout, plan::defaults::REQUEST_TIMEOUT);
    assert_eq!(p.target.connect_timeout, Duration::from_secs(2));
    assert_eq!(p.target.max_connections, 50);
    assert_eq!(
        (p.target.ready.path.as_str(), p.target.ready.timeout),
        ("/health", Duration::from_secs(30))
    );
    assert_eq!(p.output.keep_traces, 10);
    assert_eq!(p.mix.pool_capacity, 1000);
    assert_eq!(p.telemetry.trace_sample_ratio, 0.1);
    assert_eq!(p.telemetry.linger, Duration::ZERO);
    assert!(p.target.base_url.is_none() && p.output.report.is_none() && p.verify.is_none());
    let LoadModel::Open {
        max_in_flight,
        max_queue,
        start_rate,
        ..
    } = p.load
    else {
        panic!("open")
    };
    assert_eq!((max_in_flight, max_queue, start_rate), (50, 10_000, 5.0));

    // Flag/env over scenario.
    let o = Overrides {
        target_url: Some("http://localhost:9999/base/".into()),
        seed: Some(99),
        report: Some("flag.json".into()),
        linger: Some(Duration::from_secs(1)),
        duration: Some(Duration::from_secs(20)),
        ..Overrides::default()
    };
    let p = plan::build(&with, &o).expect("builds");
    assert_eq!(p.seed, 99);
    let url = p.target.base_url.expect("url");
    assert_eq!(
        (url.host.as_str(), url.port, url.prefix.as_str()),
        ("localhost", 9999, "/base")
    );
    assert_eq!(p.output.report.as_deref(), Some(Path::new("flag.json")));
    assert_eq!(p.telemetry.linger, Duration::from_secs(1));
    // --duration scales the stages by one factor (40s → 20s keeps the 1:3 ramp shape).
    let LoadModel::Open {
        stages, start_rate, ..
    } = &p.load
    else {
        panic!("open")
    };
    assert_eq!(*start_rate, 0.0);
    assert_eq!(
        stages.iter().map(|s| s.duration).collect::<Vec<_>>(),
        vec![Duration::from_secs(5), Duration::from_secs(15)]
    );

    // --duration moves fault windows with the stages.
    let faults = write(
        dir.path(),
        "faults.yaml",
        "name: f\nload:\n  stages:\n    - {duration: 40s, rate: 5}\nmix:\n  operations:\n    - todo: list\nfaults:\n  - {start: 10s, duration: 20s, kind: error, status: 503}\n",
    );
    let p = plan::build(
        &faults,
        &Overrides {
            duration: Some(Duration::from_secs(4)),
            ..Overrides::default()
        },
    )
    .expect("builds");
    assert_eq!(
        (p.faults[0].start, p.faults[0].duration),
        (Duration::from_secs(1), Duration::from_secs(2))
    );

    // --rate: one constant stage over the (overridden) duration.
    let o = Overrides {
        rate: Some(40.0),
        duration: Some(Duration::from_secs(8)),
        ..Overrides::default()
    };
    let p = plan::build(&with, &o).expect("builds");
    let LoadModel::Open {
        stages, start_rate, ..
    } = &p.load
    else {
        panic!("open")
    };
    assert_eq!(
        (
            *start_rate,
            stages.len(),
            stages[0].target,
            stages[0].duration
        ),
        (40.0, 1, 40.0, Duration::from_secs(8))
    );

    // --vus on an open scenario is a command-line error, located as such.
    let errs = plan::build(
        &with,
        &Overrides {
            vus: Some(3),
            ..Overrides::default()
        },
    )
    .expect_err("open model");
    assert_eq!(
        errs[0].to_string(),
        "<command line>:0:0: --vus: this scenario uses the open model (arrival rate); use --rate"
    );
}

/// At every limit of the format (integers and the numeric rate), just inside and just outside,
/// the JSON Schema and the validator agree. (The file-descriptor check depends on the machine,
/// not on the format: its problems are left out here.)
#[test]
fn schema_and_validator_agree_at_every_limit() {
    use trafficgen::scenario::limits as l;
    let schema = trafficgen::scenario::json_schema();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let open = |target: &str, load: &str, op: &str, rest: &str| {
        format!(
            "name: s\ntarget:\n  url: http://127.0.0.1:9\n{target}load:\n{load}  stages:\n    - {{duration: 1s, rate: 5/s}}\nmix:\n  operations:\n    - todo: list\n{op}{rest}"
        )
    };
    let closed = |load: &str| {
        format!(
            "name: s\ntarget:\n  url: http://127.0.0.1:9\nload:\n  model: closed\n{load}mix:\n  operations:\n    - todo: list\n"
        )
    };
    // (field, document with `{v}`, smallest allowed, largest allowed)
    let cases: Vec<(&str, String, u64, u64)> = vec![
        (
            "target.max_connections",
            open("  max_connections: {v}\n", "", "", ""),
            1,
            l::MAX_CONNECTIONS.into(),
        ),
        (
            "target.max_streams",
            open("  max_streams: {v}\n", "", "", ""),
            1,
            l::MAX_STREAMS.into(),
        ),
        (
            "target.max_body",
            open("  max_body: {v}\n", "", "", ""),
            0,
            l::MAX_BODY,
        ),
        (
            "target.follow_redirects",
            open("  follow_redirects: {v}\n", "", "", ""),
            0,
            l::MAX_REDIRECTS.into(),
        ),
        (
            "load.max_in_flight",
            open("", "  max_in_flight: {v}\n", "", ""),
            1,
            l::MAX_CONNECTIONS.into(),
        ),
        (
            "load.max_queue",
            open("", "  max_queue: {v}\n", "", ""),
            0,
            l::MAX_QUEUE.into(),
        ),
        (
            "load.stages[0].rate",
            open("", "  start_rate: 1\n", "", "").replace("rate: 5/s", "rate: {v}"),
            0,
            l::MAX_RATE as u64,
        ),
        (
            "load.start_vus",
            closed("  start_vus: {v}\n  stages:\n    - {duration: 1s, vus: 1}\n"),
            0,
            l::MAX_VUS.into(),
        ),
        (
            "load.stages[0].vus",
            closed("  start_vus: 1\n  stages:\n    - {duration: 1s, vus: {v}}\n"),
            0,
            l::MAX_VUS.into(),
        ),
        (
            "mix.pool_capacity",
            open("", "", "", "").replace("mix:\n", "mix:\n  pool_capacity: {v}\n"),
            1,
            l::MAX_POOL.into(),
        ),
        (
            "mix.operations[0].weight",
            open("", "", "      weight: {v}\n", ""),
            1,
            l::MAX_WEIGHT.into(),
        ),
        (
            "mix.operations[0].follow_redirects",
            open("", "", "      follow_redirects: {v}\n", ""),
            0,
            l::MAX_REDIRECTS.into(),
        ),
        (
            "faults[0].status",
            open(
                "",
                "",
                "",
                "faults:\n  - {start: 0s, duration: 500ms, kind: error, status: {v}}\n",
            ),
            400,
            599,
        ),
        (
            "verify.assertions[0].limit",
            open(
                "",
                "",
                "",
                "verify:\n  tempo_url: http://127.0.0.1:9\n  assertions:\n    - {traces: slowest, limit: {v}}\n",
            ),
            1,
            l::MAX_TRACE_LOOKUPS.into(),
        ),
        (
            "output.keep_traces",
            open("", "", "", "output:\n  keep_traces: {v}\n"),
            0,
            l::MAX_KEEP_TRACES.into(),
        ),
    ];
    let mut disagreements = Vec::new();
    // Text fields given a number or a boolean: read as its text by both.
    let scalars = open(
        "  headers: {X-Id: 42, X-On: true}\n",
        "",
        "",
        "vars: {n: 7, b: false}\n",
    )
    .replace("name: s", "name: 12");
    let json: serde_json::Value = serde_saphyr::from_str(&scalars).expect("yaml as json");
    let schema_ok = validator.is_valid(&json);
    let built = plan::build_from_str(&scalars, "s.yaml", None, &Overrides::default(), &|_| None);
    if !schema_ok || built.is_err() {
        disagreements.push(format!(
            "scalars as text: schema {schema_ok}, validator {:?}",
            built.err()
        ));
    }
    for (field, doc, min, max) in &cases {
        let mut values = vec![*min, *max, max + 1];
        if *min > 0 {
            values.push(min - 1);
        }
        for v in values {
            let text = doc.replace("{v}", &v.to_string());
            let json: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml as json");
            let schema_ok = validator.is_valid(&json);
            let problems: Vec<String> =
                match plan::build_from_str(&text, "s.yaml", None, &Overrides::default(), &|_| None)
                {
                    Ok(_) => Vec::new(),
                    Err(errs) => errs
                        .iter()
                        .filter(|e| !e.message.contains("file descriptors"))
                        .map(ToString::to_string)
                        .collect(),
                };
            let inside = (*min..=*max).contains(&v);
            if schema_ok != problems.is_empty() || schema_ok != inside {
                disagreements.push(format!(
                    "{field} = {v}: schema {}, validator {problems:?}, expected {}",
                    if schema_ok { "accepts" } else { "refuses" },
                    if inside { "accepted" } else { "refused" },
                ));
            }
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
