"""Runs each PromQL expression (JSON lines from exprs.py on stdin) against a real Prometheus
and requires data: at least one series. Also requires trace_id exemplars on the latency
histograms the dashboards show exemplars for. Prints one line per expression and a summary;
exit 1 if any expression errs or is empty.

usage: exprs.py ... | live_query.py http://127.0.0.1:PORT START_UNIX
"""
import json
import sys
import time
import urllib.parse
import urllib.request

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


def main():
    base, start = sys.argv[1], float(sys.argv[2])
    ok, bad, logql, tempo = 0, 0, 0, 0
    for line in sys.stdin:
        item = json.loads(line)
        if item.get("logql"):
            logql += 1
            print(f"skip (LogQL, no Loki here)  {item['source']}")
            continue
        if "traces_spanmetrics_" in item["expr"]:
            # Written by Tempo's metrics-generator (remote write), and Tempo cannot run here: the
            # query must parse and run, but it has no data (frontend/e2e checks the span names).
            try:
                get(base, "/api/v1/query", {"query": item["expr"]})
                tempo += 1
                print(f"ok   parses, no data expected (Tempo span metrics)  {item['source']}")
            except Exception as e:
                bad += 1
                print(f"FAIL error: {getattr(e, 'read', lambda: b'')().decode() or e}  {item['source']}")
            continue
        try:
            result = get(base, "/api/v1/query", {"query": item["expr"]})["result"]
            err = None if result else "no data"
        except Exception as e:  # an HTTP 400 is a PromQL error: report it, go on
            err = f"error: {getattr(e, 'read', lambda: b'')().decode() or e}"
        if err:
            bad += 1
            print(f"FAIL {err}  {item['source']}\n       {item['expr']}")
        else:
            ok += 1
            print(f"ok   {len(result)} series  {item['source']}")
    for metric in EXEMPLAR_METRICS:
        data = get(base, "/api/v1/query_exemplars", {"query": metric, "start": start, "end": time.time()})
        ids = {e["labels"].get("trace_id") for s in data for e in s["exemplars"]} - {None}
        if ids:
            ok += 1
            print(f"ok   {len(ids)} trace_id exemplars on {metric}")
        else:
            bad += 1
            print(f"FAIL no trace_id exemplars on {metric}")
    print(f"live PromQL: {ok} with data, {bad} failed, {logql} LogQL not runnable here, {tempo} Tempo span-metrics queries without data")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
