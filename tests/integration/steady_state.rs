//! `mix.steady_state` and `mix.cleanup` keep the target's data bounded: the shipped soak
//! scenario's own mix (scenarios/soak.yaml, read from the file), compressed in time — 1 000/s
//! for 5 s instead of 50/s for 2 h, its pool scaled like the store — against a real todo-api
//! whose store holds 200 todos (the soak's 5 000 of 10 000, halved the same way).
//!
//! A control run with `steady_state: false` shows the compressed mix does fill that store (it
//! gets 507), so the bounded run's zero 507s is not luck.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

const MAX_TODOS: usize = 200;
const POOL: u32 = 100;

async fn small_todo_api() -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = todo_api::Config {
        max_todos: MAX_TODOS,
        log: todo_api::LogOutput::Off,
        shutdown_grace: Duration::from_millis(100),
        ..todo_api::Config::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(todo_api::serve(
        listener,
        todo_api::AppState::new(config),
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// The `mix:` block of scenarios/soak.yaml, its pool scaled to `POOL`.
fn soak_mix(steady: bool) -> String {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("scenarios/soak.yaml")).unwrap();
    let start = text.find("\nmix:\n").expect("soak.yaml has a mix") + 1;
    let end = text[start..].find("\n\n").map_or(text.len(), |e| start + e);
    let mix = &text[start..end];
    assert!(
        mix.contains("steady_state: true") && mix.contains("cleanup: true"),
        "the shipped soak keeps its data bounded: {mix}"
    );
    assert!(mix.contains("pool_capacity: 5000"), "{mix}");
    let mix = mix.replace("pool_capacity: 5000", &format!("pool_capacity: {POOL}"));
    if steady {
        mix
    } else {
        mix.replace("steady_state: true", "steady_state: false")
            .replace("cleanup: true", "cleanup: false")
    }
}

/// The todo-api's own count of stored todos (the list's `X-Total-Count`).
async fn stored(addr: std::net::SocketAddr) -> u64 {
    let r = reqwest::get(format!("http://{addr}/api/todos?limit=1"))
        .await
        .unwrap();
    r.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn run(addr: std::net::SocketAddr, steady: bool, dir: &std::path::Path) -> Value {
    let scenario = format!(
        "name: soak-compressed\n\
         target:\n  url: http://{addr}\n  request_timeout: 5s\n  max_connections: 20\n\
         load:\n  model: open\n  arrivals: poisson\n  stages:\n    - {{duration: 5s, rate: 1000/s}}\n\
         output:\n  progress: quiet\n\n{}\n",
        soak_mix(steady)
    );
    let file = dir.join(format!("soak-{steady}.yaml"));
    std::fs::write(&file, scenario).unwrap();
    let report = dir.join(format!("soak-{steady}.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_trafficgen"))
        .arg("run")
        .arg(&file)
        .arg("--report")
        .arg(&report)
        .arg("--quiet")
        .output()
        .unwrap();
    assert!(
        report.exists(),
        "no report: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap()
}

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o[0] == name)
        .map(|o| &o[1])
        .unwrap_or_else(|| panic!("no op {name}"))
}

fn count_of(report: &Value, name: &str, status: u64) -> u64 {
    op(report, name)["counts"]["status"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == status)
        .map_or(0, |s| s[1].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_soak_mix_compressed_never_fills_a_small_store() {
    let dir = tempfile::tempdir().unwrap();

    // Control: without the steady-state rule the same mix fills the store.
    let (addr, stop) = small_todo_api().await;
    let control = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || run(addr, false, &d)
    })
    .await
    .unwrap();
    let full = count_of(&control, "create", 507);
    assert!(
        full > 0,
        "the compressed mix fills a {MAX_TODOS}-todo store without steady_state"
    );
    assert!(
        stored(addr).await > POOL as u64,
        "the control run left more than its pool"
    );
    let _ = stop.send(());

    // Bounded: the store never fills, and the cleanup empties it.
    let (addr, stop) = small_todo_api().await;
    let runner = tokio::task::spawn_blocking({
        let d = dir.path().to_path_buf();
        move || run(addr, true, &d)
    });
    let mut most = 0;
    while !runner.is_finished() {
        most = most.max(stored(addr).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = runner.await.unwrap();
    let creates = op(&report, "create")["counts"]["requests"]
        .as_u64()
        .unwrap();
    assert!(creates > 2 * MAX_TODOS as u64, "{creates} creates");
    assert_eq!(count_of(&report, "create", 507), 0, "no create was refused");
    assert_eq!(report["totals"]["counts"]["errors"][5], 0, "no 5xx at all");
    // Each connection holds at most one created id not yet evicted: pool + connections.
    assert!(most <= POOL as u64 + 20, "the store held {most} todos");
    let evicted = count_of(&report, "evict", 200) + count_of(&report, "evict", 204);
    assert!(evicted > 0, "evicted ids were deleted on the target");
    let cleanup = &report["cleanup"];
    let known = cleanup["known"].as_u64().unwrap();
    assert!(known > 0 && known <= POOL as u64, "{cleanup}");
    assert_eq!(cleanup["deleted"], known, "{cleanup}");
    assert_eq!(cleanup["left"], 0, "{cleanup}");
    assert_eq!(
        stored(addr).await,
        0,
        "the cleanup deleted what the run created"
    );
    eprintln!(
        "control: {full} creates refused (507); bounded: {creates} creates, at most {most} \
         stored, {evicted} evicted, cleanup {cleanup}"
    );
    // The cleanup's deletes are not requests of the load.
    let total = report["totals"]["counts"]["requests"].as_u64().unwrap();
    let by_op: u64 = report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[1]["counts"]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(total, by_op);
    let _ = stop.send(());
}
