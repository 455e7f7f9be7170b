"""Kubernetes objects as plain dicts: their identity, labels and selectors.

Pure: no I/O. The identity of an object is (group, kind, namespace, name); the apiVersion is
not part of it, so a version bump of a kind is an update, not a create plus a prune.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectKey:
    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectKey:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def to_json(self) -> str:
        return "|".join((self.group, self.kind, self.namespace, self.name))

    @classmethod
    def from_json(cls, text: str) -> ObjectKey:
        group, kind, namespace, name = text.split("|")
        return cls(group, kind, namespace, name)


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def index(objects: Iterable[Manifest]) -> dict[ObjectKey, Manifest]:
    return {ObjectKey.of(o): o for o in objects}


def selector(labels: Mapping[str, str | None]) -> str:
    """A label selector: ``key=value`` for a value, ``key`` (exists) for None; sorted, comma-joined."""
    return ",".join(key if value is None else f"{key}={value}" for key, value in sorted(labels.items()))
