"""The contract of the run templates (deploy/README.md, "Runs"), checked on the rendered
overlays, so a later edit cannot quietly undo it:

- soak and distributed: a suspended CronJob whose Job writes the summary to
  /dev/termination-log (`--summary-file`) with terminationMessagePolicy File, prints the report
  line (`--report-log`), names its pushed series after the pod (`--instance=$(POD_NAME)`, POD_NAME
  from metadata.name), has backoffLimit 0 and no volume that is not an emptyDir/ConfigMap/Secret;
- distributed: Indexed; N written once (parallelism == completions == TRAFFICGEN_SEGMENTS after
  the replacements); `--segments=$(TRAFFICGEN_SEGMENTS)`; `--coordinator` is
  $(JOB_NAME)-0.<subdomain>:7000 with JOB_NAME from the Job's label and <subdomain> a headless
  Service (publishNotReadyAddresses) selecting these pods; successPolicy succeededIndexes "0";
  podFailurePolicy FailJob on non-zero exits; pods spread over nodes.

usage: run_manifests.py   (from the repository root; needs kubectl)
"""
import subprocess
import sys

import yaml

problems = []


def render(overlay):
    out = subprocess.run(["kubectl", "kustomize", f"deploy/k8s/overlays/{overlay}"],
                         capture_output=True, text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def want(cond, what):
    if not cond:
        problems.append(what)


def job_of(docs, name):
    cjs = [d for d in docs if d["kind"] == "CronJob" and d["metadata"]["name"] == name]
    want(len(cjs) == 1, f"{name}: no CronJob template")
    if not cjs:
        return None, None
    cj = cjs[0]
    want(cj["spec"].get("suspend") is True, f"{name}: the CronJob is not suspended (it would start runs by itself)")
    job = cj["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    c = [c for c in pod["containers"] if c["name"] == "trafficgen"][0]
    args, env = c.get("args", []), {e["name"]: e for e in c.get("env", [])}
    for a in ("--summary-file=/dev/termination-log", "--report-log", "--instance=$(POD_NAME)"):
        want(a in args, f"{name}: lacks {a}")
    want(c.get("terminationMessagePolicy") == "File", f"{name}: terminationMessagePolicy is not File")
    want(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
         f"{name}: POD_NAME is not the pod's name (downward API)")
    want(job.get("backoffLimit") == 0, f"{name}: backoffLimit is not 0")
    for v in pod.get("volumes", []):
        want(set(v) - {"name"} <= {"emptyDir", "configMap", "secret"}, f"{name}: volume {v['name']} is shared storage")
    return job, (pod, c, args, env)


soak = render("soak")
job_of(soak, "trafficgen-soak")

dist = render("distributed")
job, rest = job_of(dist, "trafficgen-distributed")
if job:
    pod, c, args, env = rest
    n = job.get("completions")
    want(job.get("completionMode") == "Indexed", "distributed: not an Indexed Job")
    want(isinstance(n, int) and n >= 2, f"distributed: completions {n}")
    want(job.get("parallelism") == n, f"distributed: parallelism {job.get('parallelism')} != completions {n}")
    want(env.get("TRAFFICGEN_SEGMENTS", {}).get("value") == str(n),
         f"distributed: TRAFFICGEN_SEGMENTS {env.get('TRAFFICGEN_SEGMENTS')} != completions {n}")
    want("--segments=$(TRAFFICGEN_SEGMENTS)" in args, "distributed: lacks --segments=$(TRAFFICGEN_SEGMENTS)")
    sub = pod.get("subdomain")
    want(f"--coordinator=$(JOB_NAME)-0.{sub}:7000" in args, f"distributed: --coordinator is not $(JOB_NAME)-0.{sub}:7000")
    want(env.get("JOB_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
         == "metadata.labels['batch.kubernetes.io/job-name']", "distributed: JOB_NAME is not the Job's name label")
    svcs = [d for d in dist if d["kind"] == "Service" and d["metadata"]["name"] == sub]
    want(len(svcs) == 1, f"distributed: no Service {sub} for the pods' subdomain")
    if svcs:
        spec = svcs[0]["spec"]
        labels = job["template"]["metadata"]["labels"]
        want(spec.get("clusterIP") == "None", f"Service {sub} is not headless")
        want(spec.get("publishNotReadyAddresses") is True, f"Service {sub}: publishNotReadyAddresses is not true")
        want(all(labels.get(k) == v for k, v in spec.get("selector", {}).items()),
             f"Service {sub} does not select the segment pods")
        want(svcs[0]["metadata"].get("namespace") == "tp2devops", f"Service {sub} is not in tp2devops")
    rules = (job.get("successPolicy") or {}).get("rules") or []
    want(any(r.get("succeededIndexes") == "0" for r in rules), "distributed: no successPolicy on index 0")
    pfp = (job.get("podFailurePolicy") or {}).get("rules") or []
    want(any(r.get("action") == "FailJob" and (r.get("onExitCodes") or {}).get("operator") == "NotIn"
             and (r.get("onExitCodes") or {}).get("values") == [0] for r in pfp),
         "distributed: no podFailurePolicy FailJob on non-zero exit codes")
    want(any(t.get("topologyKey") == "kubernetes.io/hostname" for t in pod.get("topologySpreadConstraints", [])),
         "distributed: pods not spread over nodes")
    want(pod.get("restartPolicy") == "Never", "distributed: restartPolicy is not Never")

for p in problems:
    print(f"FAIL {p}")
print(f"run templates: {len(problems)} problems")
sys.exit(1 if problems else 0)
