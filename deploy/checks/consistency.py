"""Cross-file checks no single tool makes. Each prints `ok NAME` or `FAIL NAME: why`; exit 1 on
any failure. Run from the repository root.

- pins:        every image tag in deploy/compose/.env equals the kustomize `images:` pin
- datasources: the k8s Grafana datasources equal the compose ones except the Prometheus URL
- dashboards:  unique uids and panel ids, gridPos on every panel, datasource uids provisioned
- seed-ports:  the compose stack publishes the seed's ports
- workflows:   ci.yml runs `bash .ci/run`; perf-smoke.yml runs scenarios/ci-smoke.yaml
"""
import glob
import json
import sys

import yaml

failures = 0


def check(name, problems):
    global failures
    if problems:
        failures += 1
        print(f"FAIL {name}: " + "; ".join(problems))
    else:
        print(f"ok   {name}")


def pins():
    env = {}
    for line in open("deploy/compose/.env", encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    k8s = yaml.safe_load(open("deploy/k8s/base/observability/kustomization.yaml"))
    problems = []
    compose_tags = {v.rsplit(":", 1)[0]: v.rsplit(":", 1)[1] for k, v in env.items() if k.endswith("_IMAGE")}
    for img in k8s["images"]:
        tag = compose_tags.get(img["name"])
        if tag != img["newTag"]:
            problems.append(f"{img['name']}: k8s {img['newTag']} vs compose {tag}")
    prom = yaml.safe_load(open("deploy/k8s/base/observability/prometheus.yaml").read().split("---")[3])
    if f"v{prom['spec']['version'].lstrip('v')}" != compose_tags.get("prom/prometheus"):
        problems.append(f"Prometheus CR {prom['spec']['version']} vs compose {compose_tags.get('prom/prometheus')}")
    return problems


def datasources():
    compose = yaml.safe_load(open("deploy/compose/config/grafana/provisioning/datasources/datasources.yaml"))
    k8s = yaml.safe_load(open("deploy/k8s/base/observability/config/grafana-datasources.yaml"))
    for ds in k8s["datasources"]:
        if ds["uid"] == "prometheus":
            if ds["url"] != "http://prometheus-operated:9090":
                return [f"k8s Prometheus URL {ds['url']}"]
            ds["url"] = "http://prometheus:9090"
    return [] if compose == k8s else ["k8s copy differs from the compose file beyond the Prometheus URL"]


def dashboards():
    problems, uids = [], set()
    provisioned = {d["uid"] for d in yaml.safe_load(open(
        "deploy/compose/config/grafana/provisioning/datasources/datasources.yaml"))["datasources"]}
    provisioned |= {"-- Grafana --"}
    for path in sorted(glob.glob("dashboards/*.json")):
        d = json.load(open(path))
        if d.get("uid") in uids:
            problems.append(f"{path}: duplicate uid {d.get('uid')}")
        uids.add(d.get("uid"))
        ids = [p.get("id") for p in d.get("panels", [])]
        if len(ids) != len(set(ids)) or None in ids:
            problems.append(f"{path}: panel ids not unique: {ids}")
        for p in d.get("panels", []):
            if not {"x", "y", "w", "h"} <= set(p.get("gridPos", {})):
                problems.append(f"{path}: panel {p.get('id')} without a full gridPos")
            refs = [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]
            for ref in filter(None, refs):
                if ref.get("uid") not in provisioned:
                    problems.append(f"{path}: panel {p.get('id')} uses datasource {ref.get('uid')}")
        for a in d.get("annotations", {}).get("list", []):
            if a.get("datasource", {}).get("uid") not in provisioned:
                problems.append(f"{path}: annotation {a.get('name')} uses {a.get('datasource')}")
    return problems


def seed_ports():
    compose = yaml.safe_load(open("deploy/compose/compose.yaml"))
    want = {"todo-api": "3001:3001", "grafana": "3000:3000", "prometheus": "9090:9090",
            "loki": "3100:3100", "tempo": "3200:3200", "otel-collector": "4317:4317"}
    return [f"{svc} does not publish {port}" for svc, port in want.items()
            if port not in compose["services"][svc].get("ports", [])]


def workflows():
    problems = []
    ci = open(".github/workflows/ci.yml").read()
    if "bash .ci/run" not in ci:
        problems.append("ci.yml does not run `bash .ci/run`")
    perf = open(".github/workflows/perf-smoke.yml").read()
    for needle in ("scenarios/ci-smoke.yaml", "--report perf-smoke.json", "upload-artifact"):
        if needle not in perf:
            problems.append(f"perf-smoke.yml lacks {needle}")
    for path in (".github/workflows/ci.yml", ".github/workflows/perf-smoke.yml"):
        doc = yaml.safe_load(open(path))
        if not doc.get("jobs"):
            problems.append(f"{path}: no jobs")
    return problems


for name, fn in [("pins", pins), ("datasources", datasources), ("dashboards", dashboards),
                 ("seed-ports", seed_ports), ("workflows", workflows)]:
    try:
        check(name, fn())
    except Exception as e:  # a missing or unparsable file is a failure of that check
        check(name, [f"{type(e).__name__}: {e}"])
sys.exit(1 if failures else 0)
