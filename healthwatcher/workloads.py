"""Which workloads the health watcher guards, and with what limits: data and pure functions.

The default workloads' names are the OpenStack-Helm charts' own and live in the model's catalog
(``guarded``), so that validation knows them too (tests/golden/test_charts_render.py checks them
against real renders): the compute node's DaemonSets (nova-compute, libvirt and the switch agent of
the network backend) and the two databases as StatefulSets. This module adds their thresholds and
merges the spec's ``healthWatcher.workloads`` overrides into them (``resolve``), and turns the
spec's restart budgets into the decider's ``Limits`` (``limits``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from healthwatcher.decide import Limits
from healthwatcher.detect import Thresholds
from openstack_gitops.model.catalog import NetworkBackend, guarded
from openstack_gitops.model.spec import HealthWatcherPolicy, WatchedWorkloadPolicy


@dataclass(frozen=True)
class Watched:
    kind: str
    name: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    database: bool = False
    quorum: int | None = None  # None: a majority of the replicas


COMPUTE = Thresholds()
# A Galera joiner or a RabbitMQ node syncing is not Ready for minutes: give it time before judging it.
DATABASE = Thresholds(restart_limit=5, crash_loop_grace=120.0, not_ready_grace=600.0)

THRESHOLD_FIELDS: tuple[tuple[str, str], ...] = (
    ("restart_limit", "restart_limit"),
    ("crash_loop_grace_seconds", "crash_loop_grace"),
    ("phase_failed_grace_seconds", "phase_failed_grace"),
    ("not_ready_grace_seconds", "not_ready_grace"),
    ("terminating_grace_seconds", "terminating_grace"),
)
"""WatchedWorkloadPolicy attribute -> the Thresholds attribute it overrides."""


def defaults(backend: NetworkBackend) -> tuple[Watched, ...]:
    """The workloads guarded by default with ``backend``. Pure."""
    return tuple(Watched(g.kind, g.name, DATABASE if g.database else COMPUTE, database=g.database)
                 for g in guarded(backend))


def resolve(policy: HealthWatcherPolicy, backend: NetworkBackend) -> tuple[Watched, ...]:
    """The workloads to guard: the defaults with the policy's overrides merged by name, sorted by name. Pure.

    A field the override leaves None keeps the default's value; ``enabled: false`` drops the
    workload; a name that is no default is added with its kind and the thresholds of its class
    (DATABASE when ``database``, else COMPUTE) under its overrides. A new name without a kind
    (validation refuses it) cannot be looked up, so it is skipped rather than guessed.
    """
    merged = {w.name: w for w in defaults(backend)}
    for o in policy.workloads:
        base = merged.pop(o.name, None)
        if not o.enabled:
            continue
        if base is None:
            if o.kind is None:
                continue
            base = Watched(o.kind, o.name, DATABASE if o.database else COMPUTE, database=bool(o.database))
        merged[o.name] = _merge(base, o)
    return tuple(merged[name] for name in sorted(merged))


def _merge(base: Watched, o: WatchedWorkloadPolicy) -> Watched:
    overrides: dict[str, Any] = {t: getattr(o, a) for a, t in THRESHOLD_FIELDS if getattr(o, a) is not None}
    return Watched(
        kind=o.kind if o.kind is not None else base.kind,
        name=base.name,
        thresholds=replace(base.thresholds, **overrides),
        database=o.database if o.database is not None else base.database,
        quorum=o.quorum if o.quorum is not None else base.quorum,
    )


def limits(policy: HealthWatcherPolicy) -> Limits:
    """The decider's limits from the spec's budgets and breaker; the rest keep ``Limits``' defaults. Pure."""
    return Limits(per_node=policy.max_restarts_per_node_per_hour,
                  per_workload=policy.max_restarts_per_workload_per_hour,
                  breaker_share=policy.breaker_percent / 100)
