"""The autoscaler's decide core: HPA semantics as table tests with a fixed clock (no I/O)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from autoscaler.decide import (
    HOLD_ON_DATA,
    Current,
    Decision,
    Direction,
    History,
    Reading,
    Reason,
    ScaleEvent,
    decide,
    seeded,
)
from openstack_gitops.model.spec import AutoscalingPolicy

NOW = 1_000_000.0
POLICY = AutoscalingPolicy("nova-api-osapi", min_replicas=2, max_replicas=10, target_per_replica=10.0)
EMPTY = History()


def run(value: float | None, replicas: int, ready: int | None = None, policy: AutoscalingPolicy = POLICY,
        history: History = EMPTY, now: float = NOW, **reading: object) -> Decision:
    return decide(Reading(value, **reading), Current(replicas, replicas if ready is None else ready),  # type: ignore[arg-type]
                  policy, history, now)


@pytest.mark.parametrize(("value", "replicas", "ready", "expected", "reason"), [
    pytest.param(30.0, 2, 2, 3, Reason.SCALE_UP, id="up-to-ceil-total-over-target"),
    pytest.param(31.0, 2, 2, 4, Reason.SCALE_UP, id="up-rounds-up"),
    pytest.param(20.0, 2, 2, 2, Reason.STEADY, id="exactly-on-target"),
    pytest.param(21.0, 2, 2, 2, Reason.WITHIN_TOLERANCE, id="ratio-1.05-within-10pct"),
    pytest.param(22.0, 2, 2, 2, Reason.WITHIN_TOLERANCE, id="ratio-1.10-is-still-within"),
    pytest.param(23.0, 2, 2, 3, Reason.SCALE_UP, id="ratio-1.15-leaves-tolerance"),
    pytest.param(21.0, 2, 1, 3, Reason.SCALE_UP, id="ratio-uses-ready-not-asked-for"),
    pytest.param(0.0, 2, 2, 2, Reason.AT_MIN, id="idle-at-min"),
    pytest.param(500.0, 10, 10, 10, Reason.AT_MAX, id="overload-at-max"),
    pytest.param(500.0, 8, 8, 10, Reason.SCALE_UP, id="up-clamped-to-max"),
])
def test_raw_recommendation(value: float, replicas: int, ready: int, expected: int, reason: Reason) -> None:
    decision = run(value, replicas, ready)
    assert (decision.replicas, decision.reason) == (expected, reason)


@pytest.mark.parametrize(("replicas", "value", "expected", "reason"), [
    pytest.param(1, None, 2, Reason.BELOW_MIN, id="below-min-without-data"),
    pytest.param(1, 500.0, 2, Reason.BELOW_MIN, id="below-min-goes-to-min-first"),
    pytest.param(0, math.nan, 2, Reason.BELOW_MIN, id="zero-to-min-even-on-nan"),
    pytest.param(12, None, 10, Reason.ABOVE_MAX, id="above-max-is-the-operators-word"),
])
def test_bounds_need_no_data(replicas: int, value: float | None, expected: int, reason: Reason) -> None:
    decision = run(value, replicas)
    assert (decision.replicas, decision.reason) == (expected, reason)
    assert decision.history.events == (ScaleEvent(NOW, replicas, expected),)


@pytest.mark.parametrize(("reading", "ready", "history", "reason"), [
    pytest.param(Reading(failure=Reason.QUERY_FAILED, detail="timeout"), 5, History(), Reason.QUERY_FAILED,
                 id="query-failed"),
    pytest.param(Reading(), 5, History(), Reason.NO_DATA, id="empty-result"),
    pytest.param(Reading(), 5, History(seen_data=True), Reason.BACKEND_VANISHED, id="backend-vanished"),
    pytest.param(Reading(math.nan, 1.0), 5, History(), Reason.NAN, id="nan"),
    pytest.param(Reading(math.inf, 1.0), 5, History(), Reason.NAN, id="inf"),
    pytest.param(Reading(-1.0, 1.0), 5, History(), Reason.INVALID_VALUE, id="negative"),
    pytest.param(Reading(0.0, 61.0), 5, History(), Reason.STALE, id="stale-sample"),
    pytest.param(Reading(failure=Reason.SEVERAL_SERIES), 5, History(), Reason.SEVERAL_SERIES, id="several-series"),
    pytest.param(Reading(0.0, 1.0), 0, History(), Reason.NO_READY_REPLICAS, id="no-ready-replicas"),
])
def test_never_scales_on_missing_data(reading: Reading, ready: int, history: History, reason: Reason) -> None:
    # 5 replicas at zero load would scale down to min if the reading were trusted
    decision = decide(reading, Current(5, ready), POLICY, history, NOW)
    assert (decision.replicas, decision.direction, decision.reason) == (5, Direction.NONE, reason)
    assert decision.reason in HOLD_ON_DATA
    assert decision.history.recommendations == history.recommendations  # bad data recommends nothing


def test_fresh_enough_sample_is_used() -> None:
    assert run(50.0, 2, age=59.0).replicas == 5


def test_scale_down_waits_for_the_stabilization_window() -> None:
    """Load falls at t=0: the highest recommendation of the last 300 s holds the count, then it drops."""
    history = History(recommendations=((NOW - 10, 6),), seen_data=True)
    held = run(10.0, 6, history=history)
    assert (held.replicas, held.reason, held.recommended) == (6, Reason.STABILIZING, 2)
    later = run(10.0, 6, history=held.history, now=NOW + 295)
    assert (later.replicas, later.reason) == (2, Reason.SCALE_DOWN)


def test_scale_down_goes_to_the_highest_recommendation_in_the_window() -> None:
    history = History(recommendations=((NOW - 400, 9), (NOW - 200, 4), (NOW - 100, 3)))
    decision = run(0.0, 6, history=history)
    assert (decision.replicas, decision.reason) == (4, Reason.SCALE_DOWN)


def test_scale_up_is_immediate_by_default_and_windowed_when_asked() -> None:
    assert run(60.0, 2).replicas == 6
    policy = replace(POLICY, scale_up_stabilization_seconds=60)
    history = History(recommendations=((NOW - 30, 2),))
    decision = run(60.0, 2, policy=policy, history=history)
    assert (decision.replicas, decision.reason) == (2, Reason.STABILIZING)


@pytest.mark.parametrize(("replicas", "value", "events", "expected", "reason"), [
    pytest.param(2, 1000.0, (), 6, Reason.SCALE_UP_LIMITED, id="max-of-double-or-plus-4"),
    pytest.param(6, 1000.0, (), 12, Reason.SCALE_UP_LIMITED, id="doubling-beats-plus-4"),
    pytest.param(12, 1000.0, (), 20, Reason.SCALE_UP, id="doubling-capped-by-max"),
    pytest.param(6, 1000.0, (ScaleEvent(NOW - 5, 2, 6),), 6, Reason.RATE_LIMITED, id="period-budget-spent"),
    pytest.param(6, 1000.0, (ScaleEvent(NOW - 15, 2, 6),), 12, Reason.SCALE_UP_LIMITED, id="period-over"),
])
def test_scale_up_rate_limit(replicas: int, value: float, events: tuple[ScaleEvent, ...], expected: int,
                             reason: Reason) -> None:
    policy = replace(POLICY, max_replicas=20)
    decision = run(value, replicas, policy=policy, history=History(events=events))
    assert (decision.replicas, decision.reason) == (expected, reason)


def test_scale_down_rate_limit() -> None:
    policy = replace(POLICY, scale_down_stabilization_seconds=0, scale_down_max_percent=50)
    decision = run(0.0, 8, policy=policy)
    assert (decision.replicas, decision.reason) == (4, Reason.SCALE_DOWN_LIMITED)
    again = run(0.0, 4, policy=policy, history=decision.history, now=NOW + 5)
    assert (again.replicas, again.reason) == (4, Reason.RATE_LIMITED)
    after = run(0.0, 4, policy=policy, history=decision.history, now=NOW + 16)
    assert (after.replicas, after.reason) == (2, Reason.SCALE_DOWN)


def test_paused_changes_nothing_even_below_min() -> None:
    decision = decide(Reading(100.0, 1.0), Current(1, 1), POLICY, History(), NOW, paused=True)
    assert (decision.replicas, decision.reason) == (1, Reason.PAUSED)


def test_history_forgets_what_no_window_looks_at() -> None:
    old = History(recommendations=((NOW - 301, 9),), events=(ScaleEvent(NOW - 16, 1, 2),))
    decision = run(20.0, 2, history=old)
    assert decision.history.recommendations == ((NOW, 2),)
    assert decision.history.events == ()


def test_flapping_load_moves_at_most_once_down_per_window() -> None:
    """Load alternating high/low every tick for 10 minutes: one step up, then no scale-down while the
    highs keep landing in the window; a bounded number of events."""
    policy = replace(POLICY, max_replicas=10)
    history, replicas, moves = History(), 2, 0
    for tick in range(40):
        value = 80.0 if tick % 2 == 0 else 5.0
        decision = decide(Reading(value, 1.0), Current(replicas, replicas), policy, history, NOW + 15 * tick)
        history, moves = decision.history, moves + decision.changes
        replicas = decision.replicas
    assert replicas == 8
    assert moves <= 2


def test_new_leader_takes_no_double_step() -> None:
    """The old leader scaled 2 -> 6 five seconds ago; a standby seeded from the status does not add
    another step within the period, and does not scale down before a window has passed."""
    policy = replace(POLICY, max_replicas=20)
    history = seeded(Current(6, 6), NOW, ScaleEvent(NOW - 5, 2, 6))
    up = decide(Reading(1000.0, 1.0), Current(6, 6), policy, history, NOW)
    assert (up.replicas, up.reason) == (6, Reason.RATE_LIMITED)
    down = decide(Reading(0.0, 1.0), Current(6, 6), policy, seeded(Current(6, 6), NOW), NOW + 60)
    assert (down.replicas, down.reason) == (6, Reason.STABILIZING)


def test_float_noise_in_a_sum_does_not_add_a_replica() -> None:
    assert run(30.000000001, 2).replicas == 3
