"""Lists every PromQL expression of the dashboards and the alert rules, ready to run against a
real Prometheus: Grafana variables are replaced by concrete values, and an alert's trailing
threshold comparison is dropped (the live check asks "does the measured series exist?", not
"is the alert firing?"). Output: one JSON object per line {"source": ..., "expr": ...}.

usage: exprs.py RULES.yml DASHBOARD.json...
LogQL (Loki panels) is listed with "logql": true; nothing here can run Loki.
"""
import json
import re
import sys

import yaml

# Grafana's built-in and dashboard variables → values a plain Prometheus query accepts.
SUBSTITUTIONS = [
    (r"\$__rate_interval|\$\{__rate_interval\}", "1m"),
    (r"\$__interval|\$\{__interval\}", "15s"),
    (r"\$__range|\$\{__range\}", "5m"),
    (r"\$\{?(scenario|run_id|route|op)\}?", ".*"),
]
TRAILING_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*-?[0-9.]+(e-?[0-9]+)?\s*$")


def concrete(expr):
    for pattern, value in SUBSTITUTIONS:
        expr = re.sub(pattern, value, expr)
    if "$" in expr:
        raise SystemExit(f"unsubstituted Grafana variable in: {expr}")
    return expr


def from_rules(path):
    with open(path, encoding="utf-8") as f:
        for group in yaml.safe_load(f)["groups"]:
            for rule in group["rules"]:
                name = rule.get("alert") or rule.get("record")
                expr = rule["expr"].strip()
                if "alert" in rule:
                    expr = TRAILING_COMPARISON.sub("", expr)
                yield {"source": f"{path}: {group['name']}/{name}", "expr": expr}


LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


def from_dashboard(path):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        m = LABEL_VALUES.match(query or "")
        if var.get("type") == "query" and m:
            # label_values(selector, label) has values iff this query has series.
            expr = f"count by ({m.group(2)}) ({concrete(m.group(1))})"
            yield {"source": f"{path}: variable {var['name']}", "expr": expr}
    for ann in dash.get("annotations", {}).get("list", []):
        target = ann.get("target") or {}
        if ann.get("datasource", {}).get("type") == "prometheus" and "expr" in target:
            expr = TRAILING_COMPARISON.sub("", concrete(target["expr"]))
            yield {"source": f"{path}: annotation {ann['name']}", "expr": expr}
    for panel in dash.get("panels", []):
        kind = panel.get("datasource", {}).get("type")
        for t in panel.get("targets", []):
            ds = (t.get("datasource") or {}).get("type", kind)
            item = {"source": f"{path}: panel {panel['id']} {panel['title']!r} {t['refId']}"}
            if ds == "loki":
                yield {**item, "expr": t["expr"], "logql": True}
            else:
                yield {**item, "expr": concrete(t["expr"])}


if __name__ == "__main__":
    rules, dashboards = sys.argv[1], sys.argv[2:]
    for item in from_rules(rules):
        print(json.dumps(item))
    for d in dashboards:
        for item in from_dashboard(d):
            print(json.dumps(item))
