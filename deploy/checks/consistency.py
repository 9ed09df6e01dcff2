"""Cross-file checks no single tool makes. Each prints `ok NAME` or `FAIL NAME: why`; exit 1 on
any failure. Run from the repository root.

- pins:        every image tag in deploy/compose/.env equals the kustomize `images:` pin
- datasources: the k8s Grafana datasources equal the compose ones except the Prometheus URL
- dashboards:  unique uids and panel ids, gridPos on every panel, datasource uids provisioned
- seed-ports:  the compose stack publishes the seed's ports
- workflows:   ci.yml runs `bash .ci/run`; perf-smoke.yml runs scenarios/ci-smoke.yaml
- images:      the manifests pull both images from ghcr.io (one owner), tagged with the workspace
               version; images.yml publishes both there, tagged with the version and the commit
- dockerignore: the build context's .dockerignore (what compose v1 and plain docker read) equals
               the per-Dockerfile ones (what BuildKit reads)
- flags:       every flag the manifests and compose pass to trafficgen exists in src/cli.rs or is
               one of the distributed-run flags of the lead's decision D2 (printed: the binary
               must gain those before the Jobs can run)
- dashboards-k8s: every dashboards/*.json is in the Kubernetes grafana-dashboards ConfigMap
"""
import glob
import json
import re
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
    for path, kind, image in [("deploy/k8s/base/observability/prometheus.yaml", "Prometheus", "prom/prometheus"),
                              ("deploy/k8s/base/observability/alertmanager.yaml", "Alertmanager", "prom/alertmanager")]:
        cr = [d for d in yaml.safe_load_all(open(path)) if d and d.get("kind") == kind][0]
        if f"v{cr['spec']['version'].lstrip('v')}" != compose_tags.get(image):
            problems.append(f"{kind} CR {cr['spec']['version']} vs compose {compose_tags.get(image)}")
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


def workspace_version():
    text = open("Cargo.toml", encoding="utf-8").read()
    return re.search(r'\[workspace\.package\][^\[]*?\nversion = "([^"]+)"', text).group(1)


def images():
    problems, owners = [], set()
    version = workspace_version()
    want = {"todo-api": "deploy/k8s/base/app/kustomization.yaml",
            "trafficgen": "deploy/k8s/overlays/soak/kustomization.yaml",
            "frontend": "deploy/k8s/base/frontend/kustomization.yaml"}
    for path in [want["todo-api"], want["frontend"],
                 *sorted(glob.glob("deploy/k8s/overlays/*/kustomization.yaml"))]:
        for img in yaml.safe_load(open(path)).get("images", []):
            if img["name"] not in want:
                continue
            m = re.fullmatch(r"ghcr\.io/([a-z0-9-]+)/" + re.escape(img["name"]), img.get("newName", ""))
            if not m:
                problems.append(f"{path}: {img['name']} -> {img.get('newName')} (not ghcr.io/<owner>/{img['name']})")
            else:
                owners.add(m.group(1))
            if img.get("newTag") != version:
                problems.append(f"{path}: {img['name']} tag {img.get('newTag')} != workspace version {version}")
    if len(owners) > 1:
        problems.append(f"several GHCR owners: {sorted(owners)}")
    wf = open(".github/workflows/images.yml", encoding="utf-8").read()
    for needle in ("ghcr.io/${{ github.repository_owner }}", "packages: write", "github.sha",
                   "steps.meta.outputs.version", "file: deploy/docker/Dockerfile.${{ matrix.image }}"):
        if needle not in wf:
            problems.append(f"images.yml lacks {needle}")
    doc = yaml.safe_load(wf)
    matrix = doc["jobs"]["image"]["strategy"]["matrix"]["image"]
    if sorted(matrix) != sorted(want):
        problems.append(f"images.yml builds {matrix}, not {sorted(want)}")
    return problems


def dockerignore():
    root = open(".dockerignore", encoding="utf-8").read().splitlines()
    body = [line for line in root if line and not line.startswith("#")]
    problems = []
    for path in glob.glob("deploy/docker/Dockerfile.*.dockerignore"):
        other = [line for line in open(path, encoding="utf-8").read().splitlines() if line and not line.startswith("#")]
        if other != body:
            problems.append(f"{path} differs from .dockerignore")
    for must in ("target", ".git"):
        if must not in body:
            problems.append(f".dockerignore does not exclude {must}")
    return problems


# The distributed-run flags of decision D2 (docs: deploy/README.md, "Distributed run").
D2_FLAGS = {"segments", "coordinator", "summary-file", "report-log", "instance"}


def cli_flags():
    text = open("src/cli.rs", encoding="utf-8").read()
    flags = set(re.findall(r'long\s*=\s*"([a-z0-9-]+)"', text))
    for m in re.finditer(r"#\[arg\(([^]]*)\)\]\s*(?:///[^\n]*\s*)*pub (\w+):", text):
        if re.search(r"\blong\b(?!\s*=)", m.group(1)):
            flags.add(m.group(2).replace("_", "-"))
    return flags


def flags():
    known = cli_flags()
    problems, pending = [], set()
    args = []
    for path in sorted(glob.glob("deploy/k8s/overlays/*/cronjob.yaml")):
        for doc in yaml.safe_load_all(open(path)):
            spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
            for c in spec["containers"]:
                args += [(path, a) for a in c.get("args", [])]
    compose = yaml.safe_load(open("deploy/compose/compose.yaml"))
    args += [("compose.yaml", a) for a in compose["services"]["trafficgen"]["command"]]
    for path, arg in args:
        if not str(arg).startswith("--"):
            continue
        name = arg[2:].split("=", 1)[0]
        if name in known:
            continue
        if name in D2_FLAGS:
            pending.add(name)
        else:
            problems.append(f"{path}: unknown flag --{name}")
    if pending:
        print("info flags of decision D2 the manifests use and src/cli.rs lacks yet: "
              + ", ".join(f"--{f}" for f in sorted(pending)))
    return problems


def dashboards_k8s():
    k = yaml.safe_load(open("deploy/k8s/base/observability/kustomization.yaml"))
    gen = [g for g in k["configMapGenerator"] if g["name"] == "grafana-dashboards"][0]
    listed = {f.split("=", 1)[0] for f in gen["files"]}
    return [f"{p} is not in the grafana-dashboards ConfigMap" for p in sorted(glob.glob("dashboards/*.json"))
            if p.split("/")[-1] not in listed]


for name, fn in [("pins", pins), ("datasources", datasources), ("dashboards", dashboards),
                 ("seed-ports", seed_ports), ("workflows", workflows), ("images", images),
                 ("dockerignore", dockerignore), ("flags", flags), ("dashboards-k8s", dashboards_k8s)]:
    try:
        check(name, fn())
    except Exception as e:  # a missing or unparsable file is a failure of that check
        check(name, [f"{type(e).__name__}: {e}"])
sys.exit(1 if failures else 0)
