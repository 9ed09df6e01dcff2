"""Every alert of the PrometheusRule must reach a receiver of its own in the Alertmanager config
(the receiver named like its `severity` label), not the catch-all `default`: runs the real
`amtool config routes test` once per alert with the alert's labels.

usage: alert_routes.py PROMETHEUSRULE.yaml ALERTMANAGER.yml   (exit 1 on any misrouted alert)
"""
import subprocess
import sys

import yaml


def main(rule_path, config):
    failures, alerts = 0, 0
    with open(rule_path, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d and d.get("kind") == "PrometheusRule"]
    for doc in docs:
        for group in doc["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" not in rule:
                    continue
                alerts += 1
                labels = {"alertname": rule["alert"], **(rule.get("labels") or {})}
                want = labels.get("severity")
                out = subprocess.run(
                    ["amtool", "config", "routes", "test", f"--config.file={config}",
                     *[f"{k}={v}" for k, v in labels.items()]],
                    capture_output=True, text=True)
                got = out.stdout.strip()
                if out.returncode != 0 or not want or got != want:
                    failures += 1
                    print(f"FAIL {rule['alert']} (severity={want}) routes to {got!r} {out.stderr.strip()}")
                else:
                    print(f"ok   {rule['alert']} -> {got}")
    if not alerts:
        print(f"FAIL no alerts in {rule_path}")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
