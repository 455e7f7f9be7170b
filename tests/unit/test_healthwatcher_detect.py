"""The health watcher's detection rules, from fixture files named after the state they show (no I/O)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from healthwatcher.detect import HEALTHY, Rule, Thresholds, Verdict, detect, parse_time

FIXTURES = Path(__file__).parent / "fixtures" / "healthwatcher"
CASES = sorted(FIXTURES.glob("*.yaml"))
NOW = parse_time("2026-12-01T12:00:00Z") or 0.0


def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        doc: dict[str, Any] = yaml.safe_load(f)
    return doc


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture(path: Path) -> None:
    case = load(path)
    want = case["expected"]
    verdict = detect(case["pod"], case.get("node"), Thresholds(**case.get("thresholds", {})), parse_time(case["now"]))
    assert verdict.failed is want["failed"]
    assert verdict.rule == (Rule(want["rule"]) if "rule" in want else None)
    assert verdict.since == parse_time(want.get("since"))
    if "due" in want:
        assert verdict.due == parse_time(want["due"])
    assert verdict.force is want.get("force", False)
    assert want.get("message", "") in verdict.message


def test_the_fixtures_cover_every_rule_firing() -> None:
    fired = {load(p)["expected"].get("rule") for p in CASES if load(p)["expected"]["failed"]}
    assert fired == {r.value for r in Rule}


def base_pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p"}, "status": {"phase": "Running", "startTime": "2026-12-01T11:00:00Z", **status}}


READY_NODE = {"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
NOT_READY = [{"type": "Ready", "status": "False", "lastTransitionTime": "2026-12-01T11:59:00Z"}]


@pytest.mark.parametrize(("thresholds", "now", "failed"), [
    pytest.param(Thresholds(), NOW, False, id="60s-of-120s-grace"),
    pytest.param(Thresholds(), NOW + 60, True, id="exactly-at-grace-fires"),
    pytest.param(Thresholds(not_ready_grace=30), NOW, True, id="workload-with-short-grace"),
    pytest.param(Thresholds(not_ready_grace=600), NOW + 300, False, id="database-with-long-grace"),
])
def test_grace_is_per_workload(thresholds: Thresholds, now: float, failed: bool) -> None:
    verdict = detect(base_pod(conditions=NOT_READY), READY_NODE, thresholds, now)
    assert (verdict.failed, verdict.rule) == (failed, Rule.NOT_READY)


@pytest.mark.parametrize(("restarts", "limit", "rule"), [
    pytest.param(2, 3, Rule.NOT_READY, id="below-limit-only-not-ready"),
    pytest.param(3, 3, Rule.CRASH_LOOP, id="at-limit"),
    pytest.param(9, 10, Rule.NOT_READY, id="workload-with-higher-limit"),
])
def test_restart_limit(restarts: int, limit: int, rule: Rule) -> None:
    pod = base_pod(conditions=NOT_READY, containerStatuses=[
        {"name": "c", "restartCount": restarts, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}])
    verdict = detect(pod, READY_NODE, Thresholds(restart_limit=limit, not_ready_grace=0), NOW)
    assert (verdict.failed, verdict.rule) == (True, rule)


def test_missing_ready_condition_counts_from_start() -> None:
    verdict = detect(base_pod(), READY_NODE, Thresholds(), NOW)
    assert (verdict.failed, verdict.rule, verdict.since) == (True, Rule.NOT_READY, NOW - 3600)


def test_empty_pod_is_healthy() -> None:
    assert detect({}, None, Thresholds(), NOW) == HEALTHY
    assert isinstance(HEALTHY, Verdict)
