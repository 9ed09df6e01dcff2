"""Runs each PromQL expression (JSON lines from exprs.py on stdin) against a real Prometheus
and requires data twice over: the expression returns at least one series, AND at least one of
its vector selectors, queried on its own, matches series. The second test catches a misspelt
metric or label hidden behind `or vector(0)` (the expression then returns 0 whatever the
spelling). Also requires trace_id exemplars on the latency histograms the dashboards show
exemplars for. Prints one line per expression and a summary; exit 1 if any check fails.

usage: exprs.py ... | live_query.py http://127.0.0.1:PORT START_UNIX
       ... | live_query.py --expect-fail http://127.0.0.1:PORT   # negative test: every
             expression must fail (exit 0 iff none passes)
"""
import json
import sys
import time
import urllib.parse
import urllib.request

from promql_selectors import selectors

EXEMPLAR_METRICS = [
    "tp2devops_http_request_duration_seconds_bucket",
    "trafficgen_response_time_seconds_bucket",
]


def get(base, path, params):
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", body))
    return body["data"]


def query(base, expr):
    try:
        return get(base, "/api/v1/query", {"query": expr})["result"], None
    except Exception as e:  # an HTTP 400 is a PromQL error: report it, go on
        return None, f"error: {getattr(e, 'read', lambda: b'')().decode() or e}"


def check(base, expr):
    """(problem or None, detail)"""
    result, err = query(base, expr)
    if err:
        return err, ""
    if not result:
        return "no data", ""
    sels = selectors(expr)
    if not sels:
        return "no vector selector in the expression (nothing measured)", ""
    counts = {}
    for sel in sels:
        res, err = query(base, sel)
        if err:
            return f"selector {sel}: {err}", ""
        counts[sel] = len(res)
    empty = [s for s, c in counts.items() if c == 0]
    if len(empty) == len(counts):
        return "every selector matches nothing: " + ", ".join(empty), ""
    detail = f"{len(result)} series; selectors with data {len(counts) - len(empty)}/{len(counts)}"
    if empty:
        detail += " (empty here: " + ", ".join(empty) + ")"
    return None, detail


def main(argv):
    expect_fail = argv[:1] == ["--expect-fail"]
    if expect_fail:
        argv = argv[1:]
    base = argv[0]
    ok, bad, logql, tempo = 0, 0, 0, 0
    for line in sys.stdin:
        item = json.loads(line)
        if item.get("logql"):
            logql += 1
            print(f"skip (LogQL, no Loki here)  {item['source']}")
            continue
        if "traces_spanmetrics_" in item["expr"] and not expect_fail:
            # Written by Tempo's metrics-generator (remote write), and Tempo cannot run here: the
            # query must parse and run, but it has no data (frontend/e2e checks the span names).
            _, err = query(base, item["expr"])
            if err:
                bad += 1
                print(f"FAIL {err}  {item['source']}\n       {item['expr']}")
            else:
                tempo += 1
                print(f"ok   parses, no data expected (Tempo span metrics)  {item['source']}")
            continue
        problem, detail = check(base, item["expr"])
        if problem:
            bad += 1
            print(f"{'ok   (fails as expected)' if expect_fail else 'FAIL'} {problem}  {item['source']}\n       {item['expr']}")
        else:
            ok += 1
            print(f"{'FAIL (passes, must fail)' if expect_fail else 'ok  '} {detail}  {item['source']}")
    if expect_fail:
        print(f"negative PromQL: {bad} failed as expected, {ok} passed wrongly")
        return 1 if ok or not bad else 0
    start = float(argv[1])
    for metric in EXEMPLAR_METRICS:
        data = get(base, "/api/v1/query_exemplars", {"query": metric, "start": start, "end": time.time()})
        ids = {e["labels"].get("trace_id") for s in data for e in s["exemplars"]} - {None}
        if ids:
            ok += 1
            print(f"ok   {len(ids)} trace_id exemplars on {metric}")
        else:
            bad += 1
            print(f"FAIL no trace_id exemplars on {metric}")
    print(f"live PromQL: {ok} with data, {bad} failed, {logql} LogQL not runnable here, "
          f"{tempo} Tempo span-metrics queries without data")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
