"""The autoscaler's loop: observe -> decide -> act, once per due tick, only while it leads.

A tick reads the clouds (their policies, so a changed policy counts from the next tick on, no
restart), reads the load of every target that is due (its own ``intervalSeconds``), decides each
target with :func:`autoscaler.decide.decide`, records the decisions in ``status.autoscaler`` *before*
it scales (so a standby that takes over after a crash knows the step was taken, and does not take it
twice), then scales and emits one Event per scale. Every write is fenced by ``still_leader``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from autoscaler import act, presets
from autoscaler.decide import HOLD_ON_DATA, Decision, Direction, History, Reading, Reason, decide, seeded
from autoscaler.metrics import Metrics
from autoscaler.observe import Cloud, Reader, TargetState, read_clouds, read_load
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.runtime import logs

log = logs.get("autoscaler")
IDLE_INTERVAL = 15.0  # how often to look for policies when there are none


@dataclass
class TickReport:
    """What one tick did (tests and the benchmark read it)."""

    started: float
    duration: float = 0.0
    decided: int = 0
    queries: int = 0
    scaled: list[tuple[str, int, int, str]] = field(default_factory=list)  # (key, from, to, reason)
    holds: dict[str, str] = field(default_factory=dict)  # key -> hold reason for data problems
    status_writes: int = 0
    error: str = ""


class Autoscaler:
    """Keeps per-target history between ticks; one instance per process (the leader's)."""

    def __init__(self, cluster: Cluster, reader: Reader, metrics: Metrics, namespace: str | None = None,
                 paused: bool = False, still_leader: Callable[[], bool] = lambda: True, identity: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.cluster, self.reader, self.metrics = cluster, reader, metrics
        self.namespace, self.paused, self.still_leader = namespace, paused, still_leader
        self.identity, self.clock = identity, clock
        self.histories: dict[str, History] = {}
        self.last_decided: dict[str, float] = {}
        self.last_scale_reason: dict[str, str] = {}
        self.holding: dict[str, Reason | None] = {}  # key -> the data problem it is holding on, for the log
        self.known: dict[str, tuple[str, str, str]] = {}  # key -> (namespace, deployment, metric) for forget()
        self.next_due = 0.0

    # -- one tick -------------------------------------------------------------------------------
    def tick(self, force: bool = False) -> TickReport:
        """Observe, decide and act for every target that is due (every target when ``force``)."""
        now = self.clock()
        report = TickReport(now)
        started = time.monotonic()
        try:
            clouds = read_clouds(self.cluster, self.namespace)
        except ApiError as exc:
            report.error = f"cannot read the clouds: {exc}"
            log.warning("tick: cannot read the clouds", extra={"error": str(exc)})
            self.next_due = now + 2.0
            return report
        self._forget_removed(clouds)
        due = {s.target.key for c in clouds for s in c.targets if force or self._due(s, now)}
        to_read = [s.target for c in clouds for s in c.targets
                   if s.target.key in due and s.current is not None and not self._paused(c, s)]
        load = read_load(self.reader, to_read) if to_read else None
        if load is not None:
            for metric, count in load.queries.items():
                self.metrics.queries.labels(metric).inc(count)
                report.queries += count
            for metric in load.errors:
                self.metrics.query_errors.labels(metric.split("/")[0] if "/" in metric else metric).inc()
        for cloud in clouds:
            self._tick_cloud(cloud, due, load.readings if load else {}, now, report)
        self.metrics.targets.set(sum(len(c.targets) for c in clouds))
        dues = [self.last_decided.get(s.target.key, now) + s.target.policy.interval_seconds
                for c in clouds for s in c.targets]
        self.next_due = min(dues, default=now + IDLE_INTERVAL)
        report.duration = time.monotonic() - started
        self.metrics.tick.observe(report.duration)
        return report

    def _due(self, state: TargetState, now: float) -> bool:
        """A target is due once its interval has passed since it was last decided (half a second early is fine)."""
        return now - self.last_decided.get(state.target.key, -math.inf) >= state.target.policy.interval_seconds - 0.5

    def _paused(self, cloud: Cloud, state: TargetState) -> bool:
        return self.paused or cloud.paused or state.paused

    def _tick_cloud(self, cloud: Cloud, due: set[str], readings: dict[str, Reading], now: float,
                    report: TickReport) -> None:
        reports: dict[str, act.TargetReport] = {}
        moves: list[tuple[TargetState, Decision]] = []
        for state in cloud.targets:
            target, current = state.target, state.current
            paused = self._paused(cloud, state)
            self.metrics.paused.labels(target.namespace, target.deployment).set(1 if paused else 0)
            unit = presets.unit_of(target.policy)
            previous = self._previous_report(cloud, state, unit)
            if current is None:
                if target.key in due:
                    self.metrics.errors.labels(target.namespace, target.deployment, "deployment-missing").inc()
                    self.last_decided[target.key] = now
                reports[target.deployment] = replace(previous, decision=None,
                                                     error=f"Deployment {target.key} not found")
                continue
            if target.key not in due:
                reports[target.deployment] = previous
                continue
            history = self.histories.get(target.key) or seeded(current, now, state.last_scale)
            decision = decide(readings.get(target.key, Reading()), current, target.policy, history, now, paused)
            self.histories[target.key] = decision.history
            self.last_decided[target.key] = now
            report.decided += 1
            self._count(state, decision, report)
            last = state.last_scale
            if decision.changes:
                last = decision.history.events[-1]
                self.last_scale_reason[target.key] = decision.reason.value
                moves.append((state, decision))
            reports[target.deployment] = act.TargetReport(
                target, decision.replicas, current.ready, decision, paused, unit, last,
                self.last_scale_reason.get(target.key, _reason_of(cloud, target.deployment)))
        if not self.still_leader():
            return
        section = act.status_section(cloud, reports, self.paused or cloud.paused, self.identity, now)
        try:  # the intent first: a standby taking over after a crash between the two knows of the step
            report.status_writes += act.write_status(self.cluster, cloud, section)
        except ApiError as exc:
            log.warning("cannot write the status", extra={"cloud": f"{cloud.namespace}/{cloud.name}",
                                                          "error": str(exc)})
        for state, decision in moves:
            self._scale(state, decision, now, report)

    def _scale(self, state: TargetState, decision: Decision, now: float, report: TickReport) -> None:
        target = state.target
        assert state.current is not None
        before = state.current.replicas
        if not self.still_leader():
            return
        try:
            act.scale(self.cluster, target, decision.replicas)
        except ApiError as exc:
            self.metrics.errors.labels(target.namespace, target.deployment, "scale-failed").inc()
            # the step did not happen: forget it, so the rate limit does not count it
            history = self.histories[target.key]
            self.histories[target.key] = replace(history, events=history.events[:-1])
            log.warning("scale failed", extra={"target": target.key, "replicas": decision.replicas,
                                               "error": str(exc)})
            return
        unit = presets.unit_of(target.policy)
        direction = "up" if decision.direction is Direction.UP else "down"
        self.metrics.scales.labels(target.namespace, target.deployment, direction).inc()
        self.metrics.current.labels(target.namespace, target.deployment).set(decision.replicas)
        report.scaled.append((target.key, before, decision.replicas, decision.reason.value))
        log.info(act.scale_note(target, before, decision, unit),
                 extra={"target": target.key, "from": before, "to": decision.replicas,
                        "reason": decision.reason.value, "value": decision.value})
        act.emit(self.cluster, act.scale_event(target, before, decision, unit, now))

    def _count(self, state: TargetState, decision: Decision, report: TickReport) -> None:
        t, m = state.target, self.metrics
        assert state.current is not None
        m.decisions.labels(t.namespace, t.deployment, decision.direction.value, decision.reason.value).inc()
        m.current.labels(t.namespace, t.deployment).set(state.current.replicas)
        m.desired.labels(t.namespace, t.deployment).set(decision.replicas)
        if decision.value is not None and math.isfinite(decision.value):
            m.value.labels(t.namespace, t.deployment, t.policy.metric.value).set(decision.value)
        if decision.reason in (Reason.NO_DATA, Reason.BACKEND_VANISHED):
            m.empty.labels(t.namespace, t.deployment).inc()
        held = decision.reason if decision.reason in HOLD_ON_DATA else None
        if held is not None:
            m.errors.labels(t.namespace, t.deployment, held.value).inc()
            report.holds[t.key] = held.value
        if held != self.holding.get(t.key):  # one line when a hold starts, changes or ends, not one per tick
            if held is not None:
                log.warning("holding: no usable data", extra={"target": t.key, "reason": held.value,
                                                              "detail": decision.detail})
            else:
                log.info("data usable again", extra={"target": t.key, "reason": decision.reason.value})
            self.holding[t.key] = held

    def _previous_report(self, cloud: Cloud, state: TargetState, unit: str) -> act.TargetReport:
        """The target's report as the status has it (a target not due this tick keeps its line)."""
        line = (cloud.status.get("targets") or {}).get(state.target.deployment) or {}
        replicas = state.current.replicas if state.current else 0
        ready = state.current.ready if state.current else 0
        previous = Decision(int(line.get("desiredReplicas", replicas)), Direction.NONE,
                            _reason(line.get("reason")), line.get("recommendedReplicas"), line.get("value"),
                            detail=str(line.get("message") or ""))
        return act.TargetReport(state.target, replicas, ready, previous, self._paused(cloud, state), unit,
                                state.last_scale, _reason_of(cloud, state.target.deployment))

    def _forget_removed(self, clouds: list[Cloud]) -> None:
        """Policies removed from the resource: drop their history and gauges (replicas go back to Git)."""
        present = {s.target.key: s for c in clouds for s in c.targets}
        for key in list(self.known):
            if key not in present:
                namespace, deployment, metric = self.known.pop(key)
                self.histories.pop(key, None)
                self.last_decided.pop(key, None)
                self.metrics.forget(namespace, deployment, metric)
                log.info("policy removed: replicas are Git's again", extra={"target": key})
        for key, state in present.items():
            self.known[key] = (state.target.namespace, state.target.deployment, state.target.policy.metric.value)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, stop: threading.Event, beat: Callable[[], None] = lambda: None) -> None:
        """Tick whenever a target is due, until ``stop``; never raises (a failed tick is logged and retried)."""
        while not stop.is_set():
            beat()
            if not self.still_leader():  # a standby: look again in a moment (it ticks at once when it leads)
                stop.wait(0.5)
                continue
            if self.clock() >= self.next_due:
                try:
                    self.tick()
                except Exception:  # the loop must survive anything one tick meets; the log says what
                    log.exception("tick failed")
                    self.next_due = self.clock() + 2.0
            stop.wait(max(0.05, min(1.0, self.next_due - self.clock())))


def _reason(raw: object) -> Reason:
    try:
        return Reason(str(raw))
    except ValueError:
        return Reason.STEADY


def _reason_of(cloud: Cloud, deployment: str) -> str:
    line = (cloud.status.get("targets") or {}).get(deployment) or {}
    return str((line.get("lastScale") or {}).get("reason") or "")
