"""Pair desired objects with live ones and the inventory, and decide an action for each.

Pure. This is where "unchanged means untouched" is decided: an object whose live copy carries
the hash we would apply, and whose fields we own are exactly those we owned after our last
apply, needs no request at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from reconciler.plan import objects
from reconciler.plan.inventory import Inventory
from reconciler.plan.objects import Manifest, ObjectKey
from reconciler.plan.order import sort_key

# Kinds whose spec cannot be updated in place once created: a change means delete + create.
IMMUTABLE_SPEC_KINDS = frozenset({"Job"})


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    KEEP = "keep"  # left the render but protected (prune disabled or no longer ours)


WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.RECREATE, Action.PRUNE})


@dataclass(frozen=True)
class Desired:
    """One rendered, stamped object and the service it belongs to."""

    key: ObjectKey
    service: str
    manifest: Manifest

    @property
    def hash(self) -> str:
        return objects.applied_hash(self.manifest) or ""


@dataclass(frozen=True)
class Step:
    key: ObjectKey
    action: Action
    service: str
    reason: str
    manifest: Manifest | None  # desired object (None for prune/keep)
    drift: bool = False

    def __str__(self) -> str:
        return f"{self.action.value} {self.key} ({self.reason})"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    def of(self, *actions: Action) -> list[Step]:
        return [s for s in self.steps if s.action in actions]

    @property
    def writes(self) -> list[Step]:
        return [s for s in self.steps if s.action in WRITES]

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for step in self.steps:
            out[step.action.value] += 1
        return out


class EmptyRenderRefused(Exception):
    """The render came out empty while we own objects: never prune a whole cloud by accident."""


def plan(desired: Sequence[Desired], live: Mapping[ObjectKey, Manifest], inventory: Inventory,
         service_order: Sequence[str]) -> Plan:
    """Decide, per object, what the executor must do; apply order first, prunes in reverse order."""
    if not desired and len(inventory):
        raise EmptyRenderRefused(
            f"the render is empty but {len(inventory)} objects are applied; refusing to prune everything")
    steps = [_decide(d, live.get(d.key), inventory) for d in desired]
    steps.sort(key=lambda s: sort_key(s.key, s.service, service_order))
    wanted = {d.key for d in desired}
    gone = [k for k in inventory if k not in wanted]
    prunes = [p for p in (_decide_prune(k, live.get(k), inventory) for k in gone) if p is not None]
    prunes.sort(key=lambda s: sort_key(s.key, s.service, service_order), reverse=True)
    return Plan(tuple(steps + prunes))


def _decide(d: Desired, live: Manifest | None, inventory: Inventory) -> Step:
    if live is None:
        return Step(d.key, Action.CREATE, d.service, "not in the cluster", d.manifest)
    entry = inventory.get(d.key)
    if objects.applied_hash(live) != d.hash:
        if d.key.kind in IMMUTABLE_SPEC_KINDS:
            return Step(d.key, Action.RECREATE, d.service, "changed; its spec is immutable", d.manifest)
        return Step(d.key, Action.UPDATE, d.service, "changed in Git", d.manifest)
    if entry is None:
        return Step(d.key, Action.UPDATE, d.service, "not in the inventory (adopting)", d.manifest)
    if objects.owned_fields_hash(live) != entry.fields_hash:
        others = ", ".join(objects.other_managers(live)) or "unknown"
        return Step(d.key, Action.UPDATE, d.service, f"drift: fields we own were changed (managers: {others})",
                    d.manifest, drift=True)
    return Step(d.key, Action.UNCHANGED, d.service, "unchanged", d.manifest)


def _decide_prune(key: ObjectKey, live: Manifest | None, inventory: Inventory) -> Step | None:
    entry = inventory.get(key)
    service = entry.service if entry else ""
    if live is None:
        return None  # already gone; the executor drops it from the inventory
    if objects.labels_of(live).get(objects.MANAGED_BY_LABEL) != objects.FIELD_MANAGER:
        return Step(key, Action.KEEP, service, "no longer carries our ownership label", None)
    if objects.annotations_of(live).get(objects.PRUNE_ANNOTATION) == "disabled":
        return Step(key, Action.KEEP, service, f"annotated {objects.PRUNE_ANNOTATION}=disabled", None)
    return Step(key, Action.PRUNE, service, "removed from Git", None)
