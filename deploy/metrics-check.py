#!/usr/bin/env python3
"""Every metric name the Grafana dashboard and the alert rules read exists (`make deploy-check`):
in the app's /metrics (project/metrics.py: its counters and histograms, and the gauges read
when scraped), in Flower's /metrics, in the recording rules, or Prometheus' own `up`.

    .venv/bin/python deploy/metrics-check.py     prints nothing but problems; exit 1 on any
"""

import json
import os
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = ROOT / "deploy" / "prometheus"

# PromQL words that look like names: keywords and aggregation modifiers.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def sample_names(family) -> set[str]:
    """The names a family's series carry on the wire."""
    suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_count", "_sum", "_created"]}
    return {family.name + suffix for suffix in suffixes.get(family.type, [""])}


def exposed() -> set[str]:
    """Every name the app, Flower and the recording rules expose (Django set up: main() does it)."""
    import django

    django.setup()
    from flower.events import get_prometheus_metrics
    from prometheus_client import REGISTRY

    from project.metrics import StateCollector

    get_prometheus_metrics()  # Flower's metrics, registered once as the Flower process does
    names = {name for family in REGISTRY.collect() for name in sample_names(family)}
    names |= {family.name for family in StateCollector().describe()}
    names |= {rule["record"] for rule in rules("recording.yml")}
    return names | {"up"}


def rules(name: str) -> list[dict]:
    return [rule for group in yaml.safe_load((RULES / name).read_text())["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: names that are no function call, keyword,
    label (in {...} or a by/on list), string or duration."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    found = set()
    for match in NAME.finditer(expr):
        word, rest = match.group(), expr[match.end() :].lstrip()
        if word in KEYWORDS or rest.startswith("(") or re.fullmatch(r"\d.*|e\d*|Inf|NaN", word):
            continue
        found.add(word)
    return found


def dashboard_problems(name: str, dashboard: dict, known: set[str]) -> list[str]:
    """What is wrong with one dashboard: no panels, a panel without a query, a name nothing exposes."""
    problems = []
    panels = dashboard.get("panels", [])
    if not panels:
        problems.append(f"{name}: no panels")
    for panel in panels:
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"{name}: panel {panel.get('title')!r} has no query")
        for target in targets:
            for metric in sorted(metric_names(target["expr"]) - known):
                problems.append(f"{name}: panel {panel.get('title')!r} reads {metric}, which nothing exposes")
    return problems


def main() -> int:
    known = exposed()
    problems = []
    for path in DASHBOARDS:
        problems += dashboard_problems(path.name, json.loads(path.read_text()), known)
    for rule in rules("recording.yml") + rules("alerts.yml"):
        for name in sorted(metric_names(rule["expr"]) - known):
            problems.append(f"rule {rule.get('record') or rule.get('alert')}: reads {name}, which nothing exposes")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    # The app's registry in this process alone (no multiprocess folder), settings as in `make run`.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("DEBUG", "1")
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    sys.exit(main())
