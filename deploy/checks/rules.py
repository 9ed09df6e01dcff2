"""Turns the PrometheusRule CRD(s) of a manifest into the plain rules file Prometheus and
promtool read (the CRD's `.spec`), so one source serves the operator, compose and unit tests.

usage: rules.py PROMETHEUSRULE.yaml [OUT.yml]   (stdout without OUT)
"""
import sys

import yaml


def plain_rules(path):
    groups = []
    with open(path, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if doc and doc.get("kind") == "PrometheusRule":
                groups.extend(doc["spec"]["groups"])
    if not groups:
        raise SystemExit(f"{path}: no PrometheusRule with groups")
    header = f"# GENERATED from {path} by deploy/check.sh --write; do not edit.\n"
    return header + yaml.safe_dump({"groups": groups}, sort_keys=False, width=1000)


if __name__ == "__main__":
    text = plain_rules(sys.argv[1])
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
