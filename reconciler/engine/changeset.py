"""What one reconcile did, per object: the single record status, events, metrics and logs read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from reconciler.plan.diff import Action
from reconciler.plan.objects import ObjectKey


@dataclass(frozen=True)
class Change:
    key: ObjectKey
    action: Action
    service: str
    error: str = ""
    drift: bool = False

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
        return {c.service for c in self.changes if c.action is not Action.UNCHANGED}
