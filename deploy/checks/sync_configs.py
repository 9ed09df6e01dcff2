"""Copies the config files the compose stack and the Kubernetes base share into the kustomize
tree, so `kubectl kustomize` works with the default load restrictor (a kustomization may only
read files in or below its own folder). The compose files are the sources; the copies are
byte-for-byte equal and must not be edited.

usage: sync_configs.py --write   # refresh the copies
       sync_configs.py --check   # exit 1 (with a diff) when a copy differs, is missing or is stale
Run from the repository root (deploy/check.sh does both: --check always, --write with --write).
"""
import difflib
import glob
import os
import sys

DEST = "deploy/k8s/base/observability/config"
# destination (relative to DEST) -> source
PAIRS = {
    "loki.yaml": "deploy/compose/config/loki.yaml",
    "tempo.yaml": "deploy/compose/config/tempo.yaml",
    "otel-collector.yaml": "deploy/compose/config/otel-collector.yaml",
    "alertmanager.yaml": "deploy/compose/config/alertmanager.yml",
    "grafana-dashboard-provider.yaml": "deploy/compose/config/grafana/provisioning/dashboards/dashboards.yaml",
}
for path in sorted(glob.glob("dashboards/*.json")):
    PAIRS[f"dashboards/{os.path.basename(path)}"] = path
# Files in DEST that are written by hand (Kubernetes-specific), not copies.
OWN = {"config.alloy", "grafana-datasources.yaml", "README.md"}


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def main(mode):
    problems = 0
    for dest, src in PAIRS.items():
        target = os.path.join(DEST, dest)
        want = read(src)
        have = read(target) if os.path.exists(target) else None
        if have == want:
            continue
        if mode == "--write":
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as f:
                f.write(want)
            print(f"wrote {target} (from {src})")
        else:
            problems += 1
            print(f"FAIL {target} differs from {src} (run bash deploy/check.sh --write)")
            sys.stdout.writelines(difflib.unified_diff(
                (have or "").splitlines(True), want.splitlines(True), target, src, n=1))
    known = set(PAIRS) | OWN
    for path in sorted(glob.glob(f"{DEST}/**", recursive=True)):
        rel = os.path.relpath(path, DEST)
        if os.path.isfile(path) and rel not in known:
            if mode == "--write":
                os.remove(path)
                print(f"removed stale {path}")
            else:
                problems += 1
                print(f"FAIL {path} is a copy of nothing (stale; run bash deploy/check.sh --write)")
    if mode == "--check" and not problems:
        print(f"ok   {len(PAIRS)} shared config files equal their compose/dashboards sources")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("--write", "--check"):
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1]))
