"""What one reconcile did, per object: the single record status, events, metrics, logs and the
next inventory read. It is kept even when a reconcile fails half-way, so nothing done is forgotten."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from openstack_gitops.kube.objects import ObjectKey
from reconciler.plan.diff import Action
from reconciler.plan.inventory import Entry, Inventory

_RECORDED = frozenset({Action.CREATE, Action.UPDATE, Action.RECREATE, Action.HOOK})
_DROPPED = frozenset({Action.PRUNE, Action.FORGET})


@dataclass(frozen=True)
class Change:
    key: ObjectKey
    action: Action
    service: str
    error: str = ""
    drift: bool = False
    entry: Entry | None = None  # what the inventory records after a successful apply

    @property
    def ok(self) -> bool:
        return not self.error

    def __str__(self) -> str:
        return f"{self.action.value} {self.key}" + (f": {self.error}" if self.error else "")


@dataclass
class ChangeSet:
    changes: list[Change] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    @property
    def failed(self) -> list[Change]:
        return [c for c in self.changes if not c.ok]

    def count(self, *actions: Action, ok: bool = True) -> int:
        return sum(1 for c in self.changes if c.action in actions and c.ok == ok)

    def by_action(self) -> dict[str, int]:
        return dict(Counter(c.action.value for c in self.changes if c.ok))

    @property
    def drift_corrected(self) -> int:
        return sum(1 for c in self.changes if c.drift and c.ok)

    def services_changed(self) -> set[str]:
        return {c.service for c in self.changes if c.action not in (Action.UNCHANGED, Action.FORGET)}

    def next_inventory(self, base: Inventory) -> Inventory:
        """``base`` with what this change set applied recorded and what it pruned or forgot dropped.

        A failed apply keeps the base entry (pending or older), so the object stays owned.
        """
        updates: dict[ObjectKey, Entry | None] = {}
        for change in self.changes:
            if not change.ok:
                continue
            if change.action in _RECORDED and change.entry is not None:
                updates[change.key] = change.entry
            elif change.action in _DROPPED:
                updates[change.key] = None
        return base.updated(updates)
