"""The chart's PrometheusRule as plain Prometheus rule files, for promtool.

prometheus_rules.py extract OUT_RULES < rendered.yaml
    writes the groups of every PrometheusRule in a `helm template` output.
prometheus_rules.py tests TEST_FILE RULES OUT_TEST
    writes a copy of a promtool unit-test file that reads RULES and expects,
    on every firing alert, the annotations the rule renders (the tests pin
    labels and timing, not prose); fails unless every alert of RULES has a
    case where it fires and one where it stays silent.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml


def extract(out_rules: str) -> None:
    groups: list[dict[str, Any]] = []
    for doc in yaml.safe_load_all(sys.stdin):
        if doc and doc.get("kind") == "PrometheusRule":
            groups += doc["spec"]["groups"]
    if not groups:
        sys.exit("no PrometheusRule in the rendered chart (prometheusRule.enabled?)")
    Path(out_rules).write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))


def alerts_of(rules_file: str) -> dict[str, dict[str, Any]]:
    groups = yaml.safe_load(Path(rules_file).read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def tests(test_file: str, rules_file: str, out_test: str) -> None:
    alerts = alerts_of(rules_file)
    suite = yaml.safe_load(Path(test_file).read_text())
    suite["rule_files"] = [str(Path(rules_file).resolve())]
    fires: set[str] = set()
    silent: set[str] = set()
    for case in suite["tests"]:
        for check in case.get("alert_rule_test", []):
            name = check["alertname"]
            if name not in alerts:
                sys.exit(f"{test_file}: no alert {name} in the rules")
            expected = check.get("exp_alerts") or []
            (fires if expected else silent).add(name)
            for alert in expected:
                alert.setdefault("exp_annotations", alerts[name].get("annotations", {}))
    untested = sorted(set(alerts) - (fires & silent))
    if untested:
        sys.exit(f"{test_file}: each alert needs a case that fires it and one that does not: {untested}")
    Path(out_test).write_text(yaml.safe_dump(suite, sort_keys=False))
    print(f"{len(alerts)} alerts, each with a firing and a silent case")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "extract":
        extract(*args)
    elif command == "tests":
        tests(*args)
    else:
        sys.exit(__doc__)
