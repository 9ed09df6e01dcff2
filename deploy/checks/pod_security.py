"""Checks rendered manifests (multi-document YAML) for what kubectl cannot check offline:

- Pod Security "restricted" on every pod template (Deployment, DaemonSet, StatefulSet, Job,
  CronJob, Pod) and on the operator CRs that make pods (Prometheus, Alertmanager: pod level):
  runAsNonRoot, seccomp RuntimeDefault/Localhost, no privilege escalation, all capabilities
  dropped (only NET_BIND_SERVICE may be added), not privileged, no host namespaces, ports or
  hostPath volumes; plus this project's rules: read-only root filesystem, requests for cpu and
  memory and a memory limit on every container, no CPU limit on a trafficgen container
  (throttling shows up as schedule lag).
- Every Namespace enforces `pod-security.kubernetes.io/enforce: restricted`, every namespaced
  object lives in such a namespace, and each namespace has a default-deny NetworkPolicy
  (empty podSelector, Ingress and Egress).

usage: pod_security.py RENDERED.yaml...   (exit 1 on any problem)
"""
import sys

import yaml

TEMPLATE_PATHS = {
    "Deployment": ["spec", "template", "spec"],
    "DaemonSet": ["spec", "template", "spec"],
    "StatefulSet": ["spec", "template", "spec"],
    "ReplicaSet": ["spec", "template", "spec"],
    "Job": ["spec", "template", "spec"],
    "CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
    "Pod": ["spec"],
}
OPERATOR_PODS = {"Prometheus", "Alertmanager", "PrometheusAgent", "ThanosRuler"}
PSS_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
               "projected", "secret", "name"}


def dig(obj, path):
    for key in path:
        obj = (obj or {}).get(key)
    return obj


def pod_problems(spec):
    problems = []
    psc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag}: true")
    for vol in spec.get("volumes") or []:
        kinds = set(vol) - PSS_VOLUMES
        if kinds:
            problems.append(f"volume {vol.get('name')}: {sorted(kinds)} not allowed by restricted")
    containers = [(c, "container") for c in spec.get("containers") or []]
    containers += [(c, "initContainer") for c in spec.get("initContainers") or []]
    if not containers:
        problems.append("no containers")
    for c, what in containers:
        name = f"{what} {c.get('name')}"
        sc = c.get("securityContext") or {}
        non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp} (RuntimeDefault needed)")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{name}: capabilities.drop lacks ALL")
        extra = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if extra:
            problems.append(f"{name}: adds capabilities {sorted(extra)}")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem is not true")
        for p in c.get("ports") or []:
            if p.get("hostPort"):
                problems.append(f"{name}: hostPort {p['hostPort']}")
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        for key in ("cpu", "memory"):
            if key not in req:
                problems.append(f"{name}: no {key} request")
        if "memory" not in lim:
            problems.append(f"{name}: no memory limit")
        if "trafficgen" in str(c.get("image", "")).rsplit("/", 1)[-1] and "cpu" in lim:
            problems.append(f"{name}: CPU limit on the generator (throttling shows up as schedule lag)")
    return problems


def operator_problems(spec):
    psc = spec.get("securityContext") or {}
    problems = []
    if psc.get("runAsNonRoot") is not True:
        problems.append("securityContext.runAsNonRoot is not true")
    if (psc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("securityContext.seccompProfile is not RuntimeDefault")
    res = spec.get("resources") or {}
    if "memory" not in (res.get("requests") or {}) or "memory" not in (res.get("limits") or {}):
        problems.append("no memory request and limit")
    return problems


def main(paths):
    docs = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            docs += [(path, d) for d in yaml.safe_load_all(f) if d]
    failures, pods = 0, 0
    restricted, namespaces_used, default_deny = set(), set(), set()
    for path, d in docs:
        kind, meta = d.get("kind"), d.get("metadata") or {}
        ident = f"{path}: {kind}/{meta.get('namespace', '-')}/{meta.get('name')}"
        if kind == "Namespace":
            labels = meta.get("labels") or {}
            if labels.get("pod-security.kubernetes.io/enforce") == "restricted":
                restricted.add(meta.get("name"))
            else:
                failures += 1
                print(f"FAIL {ident}: not labelled pod-security.kubernetes.io/enforce: restricted")
            continue
        if meta.get("namespace"):
            namespaces_used.add(meta["namespace"])
        if kind == "NetworkPolicy":
            spec = d.get("spec") or {}
            if spec.get("podSelector") == {} and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or []) \
                    and not spec.get("ingress") and not spec.get("egress"):
                default_deny.add(meta.get("namespace"))
        problems = None
        if kind in TEMPLATE_PATHS:
            problems = pod_problems(dig(d, TEMPLATE_PATHS[kind]) or {})
        elif kind in OPERATOR_PODS:
            problems = operator_problems(d.get("spec") or {})
        if problems is None:
            continue
        pods += 1
        for p in problems:
            failures += 1
            print(f"FAIL {ident}: {p}")
    for ns in sorted(namespaces_used - restricted):
        failures += 1
        print(f"FAIL namespace {ns}: objects live there but no rendered Namespace enforces restricted")
    for ns in sorted(namespaces_used - default_deny):
        failures += 1
        print(f"FAIL namespace {ns}: no default-deny NetworkPolicy (podSelector {{}}, Ingress + Egress)")
    if not pods:
        failures += 1
        print("FAIL no pod template found")
    print(f"pod security: {pods} pod templates, {failures} problems; restricted namespaces {sorted(restricted)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
