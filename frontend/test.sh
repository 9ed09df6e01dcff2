#!/usr/bin/env bash
# The frontend's whole test: installs what it needs (Debian's chromium and nginx, the locked npm
# packages), builds the todo-api and the app, runs the Vitest unit tests (against a real todo-api)
# and the Playwright end-to-end test (chromium → nginx → todo-api, spans to an in-test OTLP
# receiver). Called by scripts/test.sh; runs alone too:
#
#   bash frontend/test.sh                  # install if missing, build, unit + e2e
#   SKIP_INSTALL=1 bash frontend/test.sh   # no apt-get (npm ci still runs when node_modules is absent)
#
# Screenshots: artifacts/screenshots/frontend-e2e.png and frontend-e2e-error.png (repository
# root, gitignored; CI keeps that folder). Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")"
frontend=$PWD
root=$(cd .. && pwd)

pids=()
stop_all() {
  # Each step runs in its own process group (setsid), so this also stops what it started
  # (nginx, todo-api, chromium) even if the step itself died without cleaning up.
  local pid
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# step NAME CMD...: one step in its own process group; its exit status is returned.
step() {
  local name=$1; shift
  echo "-- frontend: $name"
  setsid "$@" &
  local pid=$!
  pids+=("$pid")
  local rc=0
  wait "$pid" || rc=$?
  kill -TERM -- "-$pid" 2>/dev/null || true   # leftovers of a step that crashed
  return "$rc"
}

nginx_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true; }

# ---- install (idempotent: check, then install) ----------------------------------------------
if [ -z "${SKIP_INSTALL:-}" ]; then
  if [ ! -x /usr/bin/chromium ] || [ -z "$(nginx_bin)" ]; then
    sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo_ apt-get update -qq
    # nginx is only run by the e2e test with its own config; the package's service is not used.
    had_nginx=$(nginx_bin)
    $sudo_ apt-get install -y -qq --no-install-recommends chromium nginx >/dev/null
    # Where no policy-rc.d forbids it, the package starts its own service on port 80: that one
    # is ours (nginx was not there before), and the tests never use it.
    if [ -z "$had_nginx" ] && [ -s /run/nginx.pid ]; then
      $sudo_ kill -QUIT "$(cat /run/nginx.pid)" 2>/dev/null || true
    fi
  fi
fi
if [ -z "${SKIP_INSTALL:-}" ] || [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
[ -x /usr/bin/chromium ] || { echo "frontend: /usr/bin/chromium missing (apt-get install chromium)" >&2; exit 1; }
NGINX_BIN=$(nginx_bin)
[ -n "$NGINX_BIN" ] || { echo "frontend: nginx missing (apt-get install nginx)" >&2; exit 1; }
export NGINX_BIN CHROMIUM_BIN=/usr/bin/chromium

# ---- build ----------------------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build -p todo-api --locked -q)
export TODO_API_BIN=$target_dir/debug/todo-api
step "typecheck + vite build" npm run --silent build

# ---- tests ----------------------------------------------------------------------------------
status=0
step "vitest (unit, against a real todo-api)" npx vitest run || status=1
step "e2e (chromium → nginx → todo-api)" node e2e/run.mjs || status=1
[ "$status" -eq 0 ] && echo "frontend: all passed" || echo "frontend: FAILED"
exit "$status"
