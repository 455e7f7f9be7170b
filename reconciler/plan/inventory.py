"""The inventory: what this reconciler applied and still owns, with the hashes needed to skip work.

Pure value type; the engine stores it (as JSON) in a ConfigMap next to the custom resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from openstack_gitops.kube.objects import ObjectKey


@dataclass(frozen=True)
class Entry:
    service: str
    applied_hash: str
    fields_hash: str  # hash of our managedFields entry right after our last apply
    api_version: str


@dataclass(frozen=True)
class Inventory:
    entries: Mapping[ObjectKey, Entry] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ObjectKey]:
        return iter(self.entries)

    def get(self, key: ObjectKey) -> Entry | None:
        return self.entries.get(key)

    def to_json(self) -> str:
        rows = {k.to_json(): [e.service, e.applied_hash, e.fields_hash, e.api_version]
                for k, e in sorted(self.entries.items())}
        return json.dumps(rows, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Inventory:
        if not text:
            return cls()
        rows = json.loads(text)
        return cls({ObjectKey.from_json(k): Entry(*v) for k, v in rows.items()})

    def with_pending(self, pending: Mapping[ObjectKey, tuple[str, str]]) -> Inventory:
        """Entries for objects about to be created (service, apiVersion), with empty hashes.

        Saved before the first write, so a process killed mid-apply leaves no object that the
        inventory does not name; the empty hashes make the next plan re-apply it, not call it drift.
        """
        entries = dict(self.entries)
        for key, (service, api_version) in pending.items():
            entries.setdefault(key, Entry(service, "", "", api_version))
        return Inventory(entries)

    def updated(self, changes: Mapping[ObjectKey, Entry | None]) -> Inventory:
        """A new inventory with entries set (Entry) or removed (None)."""
        entries = dict(self.entries)
        for key, entry in changes.items():
            if entry is None:
                entries.pop(key, None)
            else:
                entries[key] = entry
        return Inventory(entries)
