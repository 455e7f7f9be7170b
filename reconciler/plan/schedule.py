"""Which writes of a pass run one after another, and which side by side. Pure.

A pass is a tuple of *lanes* that run side by side; the stages of one lane run in order. One
chart's stages are always: its pre hooks (pre-install or pre-upgrade, in weight order), its
objects in kind groups (identities and configuration before the workloads that mount them,
Jobs last; ``order.KIND_GROUPS``), then its post hooks (in weight order, after the last of its
objects). So a chart gets exactly Helm's order for one release, whatever runs beside it.

- A pass that is not a release upgrade gives every chart a lane of its own: charts are applied
  side by side, as ``helm install`` of each release at once would (their pods wait for their
  dependencies through the charts' init containers anyway), and each chart's post hooks (db-init,
  db-sync, ks-user, ...) start as soon as its own objects are written.
- A release upgrade is one lane: chart after chart in upgrade order, each followed by the health
  gate, so the next service starts only once the last one, db-sync included, is healthy.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby

from reconciler.plan.diff import Step
from reconciler.plan.order import kind_rank, service_rank


class StageKind(StrEnum):
    PRE_HOOKS = "pre-hooks"
    OBJECTS = "objects"  # one kind group of one chart, written side by side
    POST_HOOKS = "post-hooks"
    GATE = "gate"  # release upgrade: wait until the chart's service is healthy


@dataclass(frozen=True)
class Stage:
    kind: StageKind
    service: str
    steps: tuple[Step, ...] = ()  # OBJECTS only

    def __str__(self) -> str:
        return f"{self.kind.value} {self.service}" + (f" ({len(self.steps)})" if self.steps else "")


Lane = tuple[Stage, ...]


def chart_stages(service: str, steps: Sequence[Step], hooked: bool, gate: bool) -> list[Stage]:
    """One chart's stages in order: pre hooks, kind groups, post hooks, then the gate (an upgrade)."""
    ordered = sorted(steps, key=lambda s: (kind_rank(s.key.kind), s.key))
    stages = [Stage(StageKind.PRE_HOOKS, service)] if hooked else []
    stages += [Stage(StageKind.OBJECTS, service, tuple(group))
               for _, group in groupby(ordered, key=lambda s: kind_rank(s.key.kind))]
    if hooked:
        stages.append(Stage(StageKind.POST_HOOKS, service))
    if gate:
        stages.append(Stage(StageKind.GATE, service))
    return stages


def lanes(steps: Sequence[Step], hooked: Collection[str], service_order: Sequence[str],
          upgrade: bool) -> tuple[Lane, ...]:
    """The lanes of a pass: ``steps`` are the writes after stage 1 (Namespaces and CRDs), ``hooked``
    the charts whose install or upgrade hooks are due (run, or recorded, in this pass, even with no
    hook at all). Charts come in ``service_order``; an upgrade makes one lane of them, gated."""
    by_service: dict[str, list[Step]] = {}
    for step in steps:
        by_service.setdefault(step.service, []).append(step)
    services = sorted(set(by_service) | set(hooked), key=lambda s: (service_rank(s, service_order), s))
    per_chart = [chart_stages(s, by_service.get(s, []), s in hooked, gate=upgrade) for s in services]
    if upgrade:
        return (tuple(stage for chart in per_chart for stage in chart),) if per_chart else ()
    return tuple(tuple(chart) for chart in per_chart)
