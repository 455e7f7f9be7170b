"""The shipped alert rules, checked and unit-tested by the real promtool (Debian's prometheus package).

An alert whose expression can never be true looks fine until the outage it should have reported, so
every rule must have a promtool case that makes it fire, and may only name metrics and labels that
the three processes really export.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Metric
from prometheus_client.metrics import MetricWrapperBase

from autoscaler.metrics import Metrics as AutoscalerMetrics
from healthwatcher.metrics import Metrics as HealthWatcherMetrics
from reconciler.engine.metrics import PREFIX, Metrics

MONITORING = Path(__file__).resolve().parents[2] / "manifests" / "monitoring"
RULES = MONITORING / "alerts.yaml"
TESTS = MONITORING / "alerts.test.yaml"
TARGET_LABELS = {"job", "instance"}  # added by Prometheus when it scrapes the reconciler
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
# PromQL words that are not label names inside by(...)/without(...)/on(...)/ignoring(...).
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_SELECTOR = re.compile(rf"\b({PREFIX}_\w+)(?:\{{([^}}]*)\}})?")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: `make bootstrap` installs Debian's prometheus package, which ships it")
    return path


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    # Run from the rules' folder: alerts.test.yaml names alerts.yaml relative to itself.
    return subprocess.run([promtool(), *args], cwd=MONITORING, capture_output=True, text=True, timeout=120,
                          check=False)


def rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def exported() -> dict[str, set[str]]:
    """Sample name -> label names, for every metric of a fresh registry of each of the three processes."""
    out: dict[str, set[str]] = {}
    for metrics in (Metrics(), AutoscalerMetrics(), HealthWatcherMetrics()):
        families: list[Metric] = list(metrics.registry.collect())
        labels = {m._name: set(m._labelnames) for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}
        out.update({family.name + suffix: labels[family.name] | ({"le"} if suffix == "_bucket" else set())
                    for family in families for suffix in _SUFFIXES[family.type]})
    return out


def test_promtool_checks_the_rules() -> None:
    done = run_promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_pass() -> None:
    done = run_promtool("test", "rules", TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_has_a_case_that_fires_it() -> None:
    fired = {case["alertname"] for test in yaml.safe_load(TESTS.read_text())["tests"]
             for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    untested = [rule["alert"] for rule in rules() if rule["alert"] not in fired]
    assert untested == [], f"add a case to {TESTS.name} that makes these rules fire: {untested}"


@pytest.mark.parametrize("rule", [r["alert"] for r in rules()])
def test_rule_names_only_exported_metrics_and_labels(rule: str) -> None:
    """Catches `openstack_gitops_reconcile` for the counter `openstack_gitops_reconcile_total`, or a label typo."""
    expr = next(r["expr"] for r in rules() if r["alert"] == rule)
    metrics = exported()
    used_labels = set(TARGET_LABELS)
    for name, matchers in _SELECTOR.findall(expr):
        assert name in metrics, f"{rule}: {name} is not exported (exported: {sorted(metrics)})"
        used = {re.split(r"!=|!~|=~|=", m)[0].strip() for m in matchers.split(",") if m.strip()}
        assert used <= metrics[name], f"{rule}: {name} has no label {sorted(used - metrics[name])}"
        used_labels |= metrics[name]
    for group in _GROUPING.findall(expr):
        names = {n.strip() for n in group.split(",") if n.strip()}
        assert names <= used_labels, f"{rule}: grouping by unknown labels {sorted(names - used_labels)}"
