#!/usr/bin/env bash
# Checks of the deploy assets (compose stack, Kubernetes manifests, rules, dashboards, Dockerfiles,
# workflows), run by scripts/test.sh after cargo test. Static checks use the real tools offline;
# the live check runs todo-api + trafficgen against a real Prometheus and runs every PromQL
# expression of the dashboards and alert rules against it (each must return data).
#
#   bash deploy/check.sh            # everything
#   bash deploy/check.sh --static   # skip the live check (no cargo build)
#   bash deploy/check.sh --write    # regenerate rules.yml and the config copies in the kustomize tree, then check
#
# Tools (scripts/test.sh installs them): PROMTOOL_BIN/PROMETHEUS_BIN
# (or PATH), amtool, docker-compose (v1, `config -q` only), kubectl (kustomize), .venv-tools
# (kubernetes-validate, PyYAML, hadolint), .ci/node (npm ci: @grafana/schema + typescript,
# kubernetes-models). A missing tool fails its check; nothing is skipped silently.
# Last line: `deploy-checks: N passed, N failed`; exit 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=${1:-all}

passed=0
failed=0
failed_names=()
tmp=$(mktemp -d)
# Every background process a check starts is recorded in $tmp/pids, by the check itself: checks
# run inside `run`'s command substitution, a subshell, so a shell array filled there would be
# lost to this shell (the leak this file once had). The check stops its own processes before
# it returns (stop_started); the EXIT trap stops whatever an interrupted check left.
: >"$tmp/pids"
started() { echo "$1" >>"$tmp/pids"; }
alive() {  # running, not merely a zombie
  local st; st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$st" ] && [ "${st:0:1}" != Z ]
}
stop_started() {
  local pid
  while read -r pid; do kill "$pid" 2>/dev/null; done <"$tmp/pids"
  while read -r pid; do
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null   # reaps it when it is this shell's child (the check's subshell)
  done <"$tmp/pids"
  return 0
}
cleanup() {
  stop_started
  rm -rf "$tmp"
}
trap cleanup EXIT

# run NAME CMD...: one check; its output is shown only when it fails.
run() {
  local name=$1; shift
  local out t0=$SECONDS
  if out=$("$@" 2>&1); then
    passed=$((passed + 1)); echo "ok   $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failed_names+=("$name"); echo "FAIL $name ($((SECONDS - t0)) s)"
    printf '%s\n' "$out" | tail -n 40 | sed 's/^/       /'
  fi
}

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing tool: $1 (see scripts/test.sh)" >&2; return 1; }; }

PY=python3
[ -x .venv-tools/bin/python ] && PY=$root/.venv-tools/bin/python
PROMTOOL=${PROMTOOL_BIN:-$(command -v promtool || echo promtool)}
PROMETHEUS=${PROMETHEUS_BIN:-$(command -v prometheus || echo prometheus)}
KVALIDATE=$(command -v kubernetes-validate || echo .venv-tools/bin/kubernetes-validate)
HADOLINT=$(command -v hadolint || echo .venv-tools/bin/hadolint)
NODE_DIR=.ci/node
rules=deploy/compose/config/rules.yml
prometheusrule=deploy/k8s/base/app/prometheusrule.yaml

if [ "$mode" = --write ]; then
  $PY deploy/checks/rules.py "$prometheusrule" "$rules" || exit 1
  $PY deploy/checks/sync_configs.py --write || exit 1
fi

# ---- Prometheus rules and config -------------------------------------------------------------
rules_in_sync() {
  $PY deploy/checks/rules.py "$prometheusrule" >"$tmp/rules.yml" &&
    diff -u "$rules" "$tmp/rules.yml" ||
    { echo "$rules is stale: run bash deploy/check.sh --write"; return 1; }
}
run "rules.yml generated from the PrometheusRule" rules_in_sync
run "promtool check rules" "$PROMTOOL" check rules "$rules"
run "promtool test rules" "$PROMTOOL" test rules deploy/k8s/tests/*.yaml
run "promtool check config (compose)" "$PROMTOOL" check config deploy/compose/config/prometheus.yml
run "amtool check-config (compose; k8s copy checked equal below)" amtool check-config deploy/compose/config/alertmanager.yml
run "every alert routes to its severity's receiver (amtool config routes test)" \
  $PY deploy/checks/alert_routes.py "$prometheusrule" deploy/compose/config/alertmanager.yml

# ---- configs shared by compose and the kustomize tree ----------------------------------------
run "kustomize config copies equal their sources (sync_configs.py --check)" $PY deploy/checks/sync_configs.py --check

# ---- compose ---------------------------------------------------------------------------------
run "docker-compose config -q" docker-compose --project-directory deploy/compose \
  -f deploy/compose/compose.yaml config -q

# ---- Kubernetes ------------------------------------------------------------------------------
# validate_k8s FILE: every check of a rendered manifest, all of them run (the output names each):
# core kinds strictly (unknown fields rejected), core kinds and CRDs against their schemas
# (types, enums, required), CRDs strictly (unknown fields rejected), Pod Security restricted
# and the project's pod rules.
validate_k8s() {
  local f=$1 rc=0 out
  need kubectl && need node || return 1
  # CRDs are unknown to kubernetes-validate (a warning, exit 0): the two node checks cover them.
  out=$("$KVALIDATE" --strict -k 1.32.0 --quiet "$f" 2>&1) || rc=1
  grep -v "Couldn't find schema for kind" <<<"$out" || true
  node "$NODE_DIR/validate-k8s.mjs" "$f" || rc=1
  if grep -q '^apiVersion: monitoring.coreos.com/' "$f"; then
    node "$NODE_DIR/check-crds-strict.mjs" "$f" || rc=1
  fi
  $PY deploy/checks/pod_security.py "$f" || rc=1
  return $rc
}
k8s_render() {  # dir -> rendered with the DEFAULT load restrictor, then validate_k8s
  local dir=$1 out=$tmp/$(echo "$1" | tr / _).yaml
  need kubectl || return 1
  kubectl kustomize "$dir" >"$out" || return 1
  validate_k8s "$out"
}
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  run "kustomize (default load restrictor) + strict schemas + pod security: $dir" k8s_render "$dir"
done
run "run templates: summary, report line, instance, one N, coordinator, verdict policies" $PY deploy/checks/run_manifests.py
# The checks must catch what they claim to: each file of checks/negative has one mistake, named
# by its first line `# expect: TEXT`; control.yaml (their shared part) must pass.
negative_k8s() {
  local f want out rc=0
  validate_k8s deploy/checks/negative/control.yaml >"$tmp/control.out" 2>&1 ||
    { echo "control.yaml fails:"; cat "$tmp/control.out"; return 1; }
  for f in deploy/checks/negative/*.yaml; do
    [ "$(basename "$f")" = control.yaml ] && continue
    want=$(sed -n '1s/^# expect: //p' "$f")
    if out=$(validate_k8s "$f" 2>&1); then
      echo "$f: accepted, must be rejected ($want)"; rc=1
    elif ! grep -qF -- "$want" <<<"$out"; then
      echo "$f: rejected, but not for its mistake (expected: $want):"; echo "$out" | tail -n 8; rc=1
    else
      echo "ok   $f rejected: $want"
    fi
  done
  return $rc
}
run "negative manifests rejected (prt:, scrapeProtocol, no seccomp, generator CPU limit)" negative_k8s

# ---- dashboards, Dockerfiles, cross-file consistency ----------------------------------------
run "dashboards type-check (@grafana/schema)" node "$NODE_DIR/check-dashboards.mjs" dashboards
run "hadolint Dockerfiles" "$HADOLINT" deploy/docker/Dockerfile.todo-api deploy/docker/Dockerfile.trafficgen deploy/docker/Dockerfile.frontend
run "healthcheck.rs compiles" rustc --edition 2024 -o "$tmp/healthcheck" deploy/docker/healthcheck.rs
run "consistency (pins, datasources, dashboards, ports, workflows, images, generator flags)" $PY deploy/checks/consistency.py
run "PromQL selector extractor self-test" $PY deploy/checks/promql_selectors.py --self-test

# ---- live: every PromQL expression against a real Prometheus ---------------------------------
live() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
  local t0=$SECONDS
  cargo build --workspace --bins --locked -q || return 1
  echo "build: $((SECONDS - t0)) s" >>"$tmp/live.times"
  local bin=$CARGO_TARGET_DIR/debug
  [ -x "$PROMETHEUS" ] || { echo "prometheus not found (PROMETHEUS_BIN)"; return 1; }
  local rotel=${ROTEL_BIN:-$($PY -c 'import rotel,os;print(os.path.join(os.path.dirname(rotel.__file__),"rotel-agent"))' 2>/dev/null)}
  [ -x "$rotel" ] || { echo "rotel not found (ROTEL_BIN; scripts/test.sh installs it)"; return 1; }
  read -r api_port tg_port prom_port grpc_port otlp_port < <($PY -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
  cat >"$tmp/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ["$root/$rules"]
scrape_configs:
  - job_name: todo-api
    static_configs: [{ targets: ["127.0.0.1:$api_port"] }]
  - job_name: trafficgen
    static_configs: [{ targets: ["127.0.0.1:$tg_port"] }]
YAML
  "$PROMETHEUS" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$prom_port" --enable-feature=exemplar-storage \
    >"$tmp/prometheus.log" 2>&1 &
  started $!
  # Both binaries export their spans to a real OTLP receiver, as in the shipped stacks (the
  # todo-api shows trace ids in logs and exemplars only for traces it exports).
  "$rotel" start --otlp-grpc-endpoint "127.0.0.1:$grpc_port" --otlp-http-endpoint "127.0.0.1:$otlp_port" \
    --exporter blackhole --pid-file "$tmp/rotel.pid" --log-file "$tmp/rotel.log" >"$tmp/rotel.out" 2>&1 &
  started $!
  local otlp=http://127.0.0.1:$otlp_port
  for i in $(seq 100); do
    curl -sf -H 'content-type: application/json' --data '{"resourceSpans":[]}' "$otlp/v1/traces" >/dev/null && break
    sleep 0.1
  done
  env -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT -u OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_ENDPOINT="$otlp" \
    HOST=127.0.0.1 PORT="$api_port" FAULTS_ENABLED=true LOG=stdout \
    "$bin/todo-api" >"$tmp/todo-api.log" 2>&1 &
  started $!
  local prom=http://127.0.0.1:$prom_port i
  for i in $(seq 100); do
    curl -sf "$prom/-/ready" >/dev/null && curl -sf "http://127.0.0.1:$api_port/ready" >/dev/null && break
    sleep 0.1
  done
  local start; start=$(date +%s)
  env -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT -u OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_ENDPOINT="$otlp" \
    OTEL_METRICS_EXPORTER=none \
    "$bin/trafficgen" run deploy/checks/live-scenario.yaml --target-url "http://127.0.0.1:$api_port" \
    --metrics-addr "127.0.0.1:$tg_port" --metrics-linger 60s --report "$tmp/report.json" \
    --no-progress --quiet >"$tmp/trafficgen.log" 2>&1 &
  local tg=$!
  started "$tg"
  # The run is over when trafficgen says so on /metrics (it lingers); then one more scrape.
  local done=""
  for i in $(seq 120); do
    if curl -sf "$prom/api/v1/query" --data-urlencode 'query=max(trafficgen_run_finished) == 1' |
      grep -q '"value"'; then done=1; break; fi
    kill -0 "$tg" 2>/dev/null || break
    sleep 0.5
  done
  if [ -z "$done" ]; then
    echo "trafficgen_run_finished never reached 1 in Prometheus; trafficgen log:"; tail -n 30 "$tmp/trafficgen.log"
    echo "prometheus targets:"; curl -s "$prom/api/v1/targets" | head -c 1500; echo
    return 1
  fi
  echo "load run finished (trafficgen_run_finished=1 in Prometheus) after $((SECONDS - t0)) s" >>"$tmp/live.times"
  sleep 2
  $PY deploy/checks/exprs.py "$rules" dashboards/*.json >"$tmp/exprs.jsonl" || return 1
  (cd deploy/checks && $PY live_query.py "$prom" "$start") <"$tmp/exprs.jsonl" | tee "$tmp/live.txt"
  local rc=${PIPESTATUS[0]}
  # Negative: misspelt selectors (some hidden behind `or vector(0)`) must each fail.
  (cd deploy/checks && $PY live_query.py --expect-fail "$prom") <deploy/checks/negative-promql.jsonl |
    sed 's/^/  /' | tee -a "$tmp/live.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
  # The seed's LogQL relies on these fields of the todo-api's JSON lines (Loki can't run here).
  $PY - "$tmp/todo-api.log" <<'PYEOF' || rc=1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
access = [l for l in lines if isinstance(l.get("duration"), (int, float)) and l.get("traceId")]
slow_or_any = [l for l in access if "route" in l and "status" in l]
ok = bool(slow_or_any) and all(l.get("level") for l in lines)
print(("ok   " if ok else "FAIL ") + f"log lines for LogQL: {len(access)} access lines with numeric duration + traceId")
sys.exit(0 if ok else 1)
PYEOF
  return "$rc"
}
live_and_stop() { local rc=0; live || rc=1; stop_started; return $rc; }
if [ "$mode" != --static ]; then
  run "live: dashboards and rules PromQL return data (todo-api + trafficgen + Prometheus)" live_and_stop
  [ -f "$tmp/live.txt" ] && { grep -v '^ok ' "$tmp/live.txt" | sed 's/^/       /'; }
  cat "$tmp/live.times" 2>/dev/null | sed "s/^/       /"
  validate_scenarios() {  # the scenarios the compose stack and the Jobs run (binary built by live)
    local f rc=0 bin=${CARGO_TARGET_DIR:-$root/target}/debug/trafficgen
    # scenarios/ci-smoke.yaml: what .github/workflows/perf-smoke.yml runs.
    for f in deploy/checks/live-scenario.yaml deploy/k8s/base/trafficgen/scenario.yaml scenarios/smoke.yaml scenarios/ci-smoke.yaml; do
      "$bin" validate "$f" || rc=1
    done
    return $rc
  }
  run "trafficgen validate: scenarios used by deploy/" validate_scenarios
fi

# Nothing a check started may outlive it (each stops its own; this proves it did).
none_left() {
  local pid left=0
  while read -r pid; do
    if alive "$pid"; then echo "still running: $(ps -o pid=,args= -p "$pid")"; left=1; fi
  done <"$tmp/pids"
  [ "$left" = 0 ] && echo "$(wc -l <"$tmp/pids") processes started by the checks, none left running"
  return $left
}
run "no process started by the checks is left running" none_left

echo "deploy-checks: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || { printf '  failed: %s\n' "${failed_names[@]}"; exit 1; }
