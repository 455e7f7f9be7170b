"""Kubernetes objects as plain dicts: their identity, ownership stamps and content hashes.

Pure: no I/O. The identity of an object is (group, kind, namespace, name); the apiVersion is
not part of it, so a version bump of a kind is an update, not a create plus a prune.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]

FIELD_MANAGER = "openstack-gitops"
OWNER_LABEL = "openstack-gitops.io/deployment"
SERVICE_LABEL = "openstack-gitops.io/service"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
HASH_ANNOTATION = "openstack-gitops.io/applied-hash"
PRUNE_ANNOTATION = "openstack-gitops.io/prune"  # "disabled" keeps an object when it leaves Git


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


def canonical_hash(value: Any) -> str:
    """sha256 of canonical JSON: equal content gives an equal hash whatever the key order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def stamp(obj: Manifest, owner: str, service: str) -> Manifest:
    """Copy of ``obj`` with our ownership labels and the hash of its content as an annotation.

    The hash covers everything we send (labels included, the hash annotation excluded), so a
    live object whose annotation equals the desired hash holds exactly what we last applied.
    """
    out = copy.deepcopy(obj)
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), OWNER_LABEL: owner, SERVICE_LABEL: service,
                      MANAGED_BY_LABEL: FIELD_MANAGER}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != HASH_ANNOTATION}
    meta["annotations"] = annotations
    annotations[HASH_ANNOTATION] = canonical_hash(out)
    return out


def applied_hash(obj: Mapping[str, Any]) -> str | None:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(HASH_ANNOTATION)
    return str(value) if value is not None else None


_FIELDS_MEMO: dict[tuple[str, str, str], str | None] = {}
_FIELDS_MEMO_MAX = 50_000


def owned_fields_hash(obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> str | None:
    """Hash of the field set ``manager`` owns through Apply on ``obj`` (None when it owns none).

    When anyone else changes a field we applied (kubectl edit, scale, a forced apply), the API
    server moves that field out of our set, so a changed hash is drift, learnt without a request.
    Memoized by (uid, resourceVersion): an object the server did not change has the same fields.
    """
    meta = obj.get("metadata") or {}
    memo_key = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")), manager)
    if memo_key[0] and memo_key[1]:
        if memo_key not in _FIELDS_MEMO:
            if len(_FIELDS_MEMO) >= _FIELDS_MEMO_MAX:
                _FIELDS_MEMO.clear()
            _FIELDS_MEMO[memo_key] = _owned_fields_hash(obj, manager)
        return _FIELDS_MEMO[memo_key]
    return _owned_fields_hash(obj, manager)


def _owned_fields_hash(obj: Mapping[str, Any], manager: str) -> str | None:
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply" and not entry.get("subresource"):
            return canonical_hash(entry.get("fieldsV1") or {})
    return None


def other_managers(obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> list[str]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return sorted({str(e.get("manager")) for e in entries if e.get("manager") != manager and not e.get("subresource")})


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def without_replicas(obj: Manifest) -> Manifest:
    """Copy of a workload without ``spec.replicas``, so the autoscaler keeps owning that field."""
    out = copy.deepcopy(obj)
    out.get("spec", {}).pop("replicas", None)
    return out


def index(objects: Iterable[Manifest]) -> dict[ObjectKey, Manifest]:
    return {ObjectKey.of(o): o for o in objects}
