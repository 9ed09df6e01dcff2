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
    assert!(files.len() >= 1, "no scenarios found");
    for f in files {
        let plan = plan::build_with_env(&f, &Overrides::default(), &test_env)
            .unwrap_or_else(|errs| {
                let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
                panic!("{} does not build:\n{}", f.display(), text.join("\n"))
            });
        assert!(!plan.mix.operations.is_empty(), "{}", f.display());
        assert!(plan.load.duration() > Duration::ZERO, "{}", f.display());
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(text.starts_with('#'), "{} needs a header comment (purpose, run command)", f.display());
        assert!(text.contains("trafficgen run"), "{}: header names the run command", f.display());
    }
}

#[test]
fn smoke_is_a_ten_second_open_crud_mix() {
    let plan = plan::build(&root().join("scenarios/smoke.yaml"), &Overrides::default()).expect("builds");
    assert!(plan.target.base_url.is_none(), "smoke uses the embedded todo-api");
    let LoadModel::Open { stages, start_rate, .. } = &plan.load else { panic!("open model") };
    assert_eq!((stages.len(), *start_rate, stages[0].target), (1, 50.0, 50.0));
    assert_eq!(plan.load.duration(), Duration::from_secs(10));
    assert_eq!(plan.mix.operations.len(), 6);
    assert_eq!(plan.thresholds.len(), 2);
}
