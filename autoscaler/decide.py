"""How many replicas a target should have: the HPA's rules, as one pure function.

``decide(reading, current, policy, history, now)`` is the autoscaler's whole judgement; the loop
observes (Prometheus, the cluster), calls it, and acts on the ``Decision``. Everything a rule needs
is an argument, the clock included, so every rule is a table test.

The rules, in the order they apply (Kubernetes' HPA, ``pkg/controller/podautoscaler``):

1. paused: nothing changes;
2. bounds are the operator's word and need no data: below ``min`` goes to ``min`` at once, above
   ``max`` to ``max``;
3. no usable data (query failed or timed out, empty result, NaN, a sample older than the staleness
   limit, a backend seen before that vanished, several series for one target, no ready replica):
   hold. Never a scale-down on missing data (KEDA counted an empty result as 0: keda#3065);
4. raw recommendation ``ceil(ready x (metric per ready replica) / target)``, i.e. ``ceil(total /
   target)``; within ``tolerance`` of the target ratio the recommendation is the current count;
5. stabilization: scale up to the lowest recommendation of the scale-up window, down to the
   highest of the scale-down window (300 s by default);
6. rate limits: per period at most ``max(start x (1 + pct), start + pods)`` up and
   ``start x (1 - pct)`` down, where ``start`` is the count at the period's start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum

from openstack_gitops.model.spec import AutoscalingPolicy


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    NONE = "none"


class Reason(StrEnum):
    """Why a decision came out as it did: a closed set, so metrics and tests can name every case."""

    SCALE_UP = "scale-up"
    SCALE_UP_LIMITED = "scale-up-rate-limited"  # up, but less than recommended (rate limit)
    SCALE_DOWN = "scale-down"
    SCALE_DOWN_LIMITED = "scale-down-rate-limited"
    BELOW_MIN = "below-min"
    ABOVE_MAX = "above-max"
    STEADY = "steady"  # the recommendation is the current count
    WITHIN_TOLERANCE = "within-tolerance"
    STABILIZING = "stabilizing"  # a change is recommended, the window holds it back
    RATE_LIMITED = "rate-limited"  # the period's budget is spent
    AT_MAX = "at-max"  # more is recommended than max allows
    AT_MIN = "at-min"
    PAUSED = "paused"
    # no usable data: hold
    QUERY_FAILED = "query-failed"
    NO_DATA = "no-data"
    NAN = "nan"
    INVALID_VALUE = "invalid-value"
    STALE = "stale-data"
    BACKEND_VANISHED = "backend-vanished"
    SEVERAL_SERIES = "several-series"
    NO_READY_REPLICAS = "no-ready-replicas"


HOLD_ON_DATA: frozenset[Reason] = frozenset({
    Reason.QUERY_FAILED, Reason.NO_DATA, Reason.NAN, Reason.INVALID_VALUE, Reason.STALE,
    Reason.BACKEND_VANISHED, Reason.SEVERAL_SERIES, Reason.NO_READY_REPLICAS})
"""Reasons that mean "the data could not be trusted": counted as errors and reported."""


@dataclass(frozen=True)
class Reading:
    """What Prometheus said this tick about one target's backend.

    ``value`` is the backend's total (sessions, requests per second, ...) over every load-balancer
    instance; ``age`` how old its newest sample is (None: unknown, as for raw PromQL).
    ``failure`` is set when the query itself failed or was ambiguous for this target.
    """

    value: float | None = None
    age: float | None = None
    failure: Reason | None = None  # QUERY_FAILED or SEVERAL_SERIES
    detail: str = ""


@dataclass(frozen=True)
class Current:
    """The target as the cluster has it: asked-for replicas (the scale subresource) and ready pods."""

    replicas: int
    ready: int


@dataclass(frozen=True)
class ScaleEvent:
    at: float
    before: int
    after: int


@dataclass(frozen=True)
class History:
    """What a target's past decisions leave for the next one (kept by the loop, seeded after a failover)."""

    recommendations: tuple[tuple[float, int], ...] = ()  # (when, recommended replicas), oldest first
    events: tuple[ScaleEvent, ...] = ()
    seen_data: bool = False  # the backend answered at least once: a later empty result means it vanished


@dataclass(frozen=True)
class Decision:
    replicas: int  # what the target should have now
    direction: Direction
    reason: Reason
    recommended: int | None = None  # the raw recommendation (before windows and limits), when there was data
    value: float | None = None
    history: History = field(default_factory=History)
    detail: str = ""

    @property
    def changes(self) -> bool:
        return self.direction is not Direction.NONE


def decide(reading: Reading, current: Current, policy: AutoscalingPolicy, history: History, now: float,
           paused: bool = False) -> Decision:
    """The replicas ``policy`` wants for a target now. Pure.

    ``history`` is the previous decision's ``Decision.history``; the returned one replaces it.
    """
    kept = _prune(history, policy, now)
    cur = current.replicas
    if paused:
        return Decision(cur, Direction.NONE, Reason.PAUSED, history=kept, value=reading.value)
    if cur < policy.min_replicas:
        return _move(cur, policy.min_replicas, Reason.BELOW_MIN, kept, now, reading.value)
    if cur > policy.max_replicas:
        return _move(cur, policy.max_replicas, Reason.ABOVE_MAX, kept, now, reading.value)
    problem = _data_problem(reading, current, policy, kept)
    if problem is not None:
        reason, detail = problem
        return Decision(cur, Direction.NONE, reason, history=kept, value=reading.value, detail=detail)
    assert reading.value is not None
    total = reading.value
    kept = replace(kept, seen_data=True)
    ratio = total / (current.ready * policy.target_per_replica)
    within = abs(ratio - 1.0) <= policy.tolerance + 1e-9  # 22/20 is 1.1000000000000001 in binary
    needed = math.ceil(total / policy.target_per_replica - 1e-9)  # a sum of rates of 12.0000001 is 12
    unbounded = cur if within else needed
    recommended = min(max(unbounded, policy.min_replicas), policy.max_replicas)
    stabilized = _stabilize(cur, recommended, kept.recommendations, policy, now)
    kept = replace(kept, recommendations=(*kept.recommendations, (now, recommended)))
    target = _rate_limit(cur, stabilized, kept.events, policy, now)
    if target > cur:
        reason = Reason.SCALE_UP if target == stabilized else Reason.SCALE_UP_LIMITED
        return _move(cur, target, reason, kept, now, total, recommended)
    if target < cur:
        reason = Reason.SCALE_DOWN if target == stabilized else Reason.SCALE_DOWN_LIMITED
        return _move(cur, target, reason, kept, now, total, recommended)
    if stabilized != cur:
        reason = Reason.RATE_LIMITED
    elif recommended != cur:
        reason = Reason.STABILIZING
    elif unbounded > policy.max_replicas:
        reason = Reason.AT_MAX
    elif unbounded < policy.min_replicas:
        reason = Reason.AT_MIN
    elif within and needed != cur:
        reason = Reason.WITHIN_TOLERANCE
    else:
        reason = Reason.STEADY
    return Decision(cur, Direction.NONE, reason, recommended, total, kept)


def _data_problem(reading: Reading, current: Current, policy: AutoscalingPolicy,
                  history: History) -> tuple[Reason, str] | None:
    """Why this tick's reading cannot be acted on, or None when it can."""
    if reading.failure is not None:
        return reading.failure, reading.detail
    if reading.value is None:
        if history.seen_data:
            return Reason.BACKEND_VANISHED, "the backend answered before and has no series now"
        return Reason.NO_DATA, "the query returned no series for this backend"
    if math.isnan(reading.value) or math.isinf(reading.value):
        return Reason.NAN, f"the metric is {reading.value}"
    if reading.value < 0:
        return Reason.INVALID_VALUE, f"the metric is negative ({reading.value:g})"
    if reading.age is not None and reading.age > policy.stale_after_seconds:
        return Reason.STALE, f"newest sample is {reading.age:.0f}s old (limit {policy.stale_after_seconds}s)"
    if current.ready <= 0:
        return Reason.NO_READY_REPLICAS, "no ready replica to share the load by"
    return None


def _stabilize(cur: int, recommended: int, earlier: tuple[tuple[float, int], ...], policy: AutoscalingPolicy,
               now: float) -> int:
    """The HPA's windows: up to the lowest recommendation of the up window, down to the highest of the
    down window (each window holds this tick's recommendation and the earlier ones younger than it)."""
    up = min([recommended, *(r for t, r in earlier if t > now - policy.scale_up_stabilization_seconds)])
    down = max([recommended, *(r for t, r in earlier if t > now - policy.scale_down_stabilization_seconds)])
    return min(max(cur, up), down)


def _rate_limit(cur: int, wanted: int, events: tuple[ScaleEvent, ...], policy: AutoscalingPolicy,
                now: float) -> int:
    """``wanted`` cut to what the period's budget allows (counting the period's earlier steps)."""
    if wanted > cur:
        added = sum(e.after - e.before for e in events
                    if e.at > now - policy.scale_up_period_seconds and e.after > e.before)
        start = cur - added
        limit = max(math.ceil(start * (1 + policy.scale_up_max_percent / 100)), start + policy.scale_up_max_pods)
        return max(cur, min(wanted, limit))
    if wanted < cur:
        removed = sum(e.before - e.after for e in events
                      if e.at > now - policy.scale_down_period_seconds and e.after < e.before)
        start = cur + removed
        limit = int(start * (1 - policy.scale_down_max_percent / 100))
        return min(cur, max(wanted, limit))
    return cur


def _move(cur: int, target: int, reason: Reason, history: History, now: float, value: float | None,
          recommended: int | None = None) -> Decision:
    direction = Direction.UP if target > cur else Direction.DOWN
    events = (*history.events, ScaleEvent(now, cur, target))
    return Decision(target, direction, reason, recommended, value, replace(history, events=events))


def _prune(history: History, policy: AutoscalingPolicy, now: float) -> History:
    """Forget what no window or period looks at any more (the history stays small)."""
    window = max(policy.scale_up_stabilization_seconds, policy.scale_down_stabilization_seconds)
    period = max(policy.scale_up_period_seconds, policy.scale_down_period_seconds)
    return replace(history,
                   recommendations=tuple((t, r) for t, r in history.recommendations if t > now - window),
                   events=tuple(e for e in history.events if e.at > now - period))


def seeded(current: Current, now: float, last_scale: ScaleEvent | None = None) -> History:
    """The history a new leader starts a target with: its current count as a recommendation made now
    (so no scale-down before a whole window has passed under this leader) and the last scale the
    previous leader reported (so the rate limit's period goes on, and no step is taken twice)."""
    events = (last_scale,) if last_scale is not None else ()
    return History(recommendations=((now, current.replicas),), events=events)
