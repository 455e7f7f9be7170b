"""What makes an object the reconciler's: ownership stamps, content hashes and field ownership.

Pure: no I/O. ``stamp`` labels an object as ours and records the hash of what we send; the
managedFields helpers tell drift (someone else took a field, or added one by hand) without a request.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from openstack_gitops.api import (
    FIELD_MANAGER,
    HASH_ANNOTATION,
    MANAGED_BY_LABEL,
    OWNER_LABEL,
    SERVICE_LABEL,
)
from openstack_gitops.canonical import canonical_hash
from openstack_gitops.kube.objects import Manifest


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


# Field managers that mean a person edited the object by hand (kubectl edit/patch/apply/annotate,
# ...). Fields they own are taken back on the next apply, so a key added by ``kubectl edit`` goes
# away like a changed one. ``kubectl rollout restart`` is left alone: it restarts pods on purpose
# and changes no configuration; taking its annotation back would roll every pod a second time.
MANUAL_MANAGER_PREFIXES = ("kubectl", "before-first-apply")
MANUAL_MANAGER_EXEMPT = frozenset({"kubectl-rollout"})


def _is_manual(entry: Mapping[str, Any]) -> bool:
    manager = str(entry.get("manager", ""))
    return (manager.startswith(MANUAL_MANAGER_PREFIXES) and manager not in MANUAL_MANAGER_EXEMPT
            and not entry.get("subresource"))


def _without_replicas(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A field set less ``spec.replicas``: replicas belong to whoever scales (kubectl scale, the autoscaler)."""
    out = copy.deepcopy(dict(fields))
    spec = out.get("f:spec")
    if isinstance(spec, dict):
        spec.pop("f:replicas", None)
        if not spec:
            del out["f:spec"]
    return out


def manual_managers(obj: Mapping[str, Any]) -> list[str]:
    """Managers that changed ``obj`` by hand and still own some of its fields (subresources and
    replicas aside). Pure: read from the object's managedFields, no request."""
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return sorted({str(e.get("manager")) for e in entries
                   if _is_manual(e) and _without_replicas(e.get("fieldsV1") or {})})


def _union(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _union(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def taken_managed_fields(obj: Mapping[str, Any], managers: Iterable[str],
                         manager: str = FIELD_MANAGER) -> list[dict[str, Any]]:
    """``obj``'s managedFields with the fields of ``managers`` moved into our Apply entry.

    Sent as a JSON patch before our next apply: fields we own and no longer send are removed by
    the server, so a key added by hand goes away instead of staying forever (Flux does the same).
    ``spec.replicas`` stays with its manager.
    """
    taken = set(managers)
    entries = [dict(e) for e in (obj.get("metadata") or {}).get("managedFields") or []]
    ours = next((e for e in entries if e.get("manager") == manager and e.get("operation") == "Apply"
                 and not e.get("subresource")), None)
    if ours is None:
        ours = {"manager": manager, "operation": "Apply", "apiVersion": obj.get("apiVersion", ""),
                "fieldsType": "FieldsV1", "fieldsV1": {}}
        entries.append(ours)
    out = []
    for entry in entries:
        if entry.get("manager") in taken and _is_manual(entry):
            fields = entry.get("fieldsV1") or {}
            ours["fieldsV1"] = _union(ours.get("fieldsV1") or {}, _without_replicas(fields))
            rest = {k: v for k, v in fields.items() if k == "f:spec"}
            replicas = (rest.get("f:spec") or {}).get("f:replicas")
            if replicas is not None:
                out.append({**entry, "fieldsV1": {"f:spec": {"f:replicas": replicas}}})
            continue
        out.append(entry)
    return out


def other_managers(obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> list[str]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return sorted({str(e.get("manager")) for e in entries if e.get("manager") != manager and not e.get("subresource")})


def without_replicas(obj: Manifest) -> Manifest:
    """Copy of a workload without ``spec.replicas``, so the autoscaler keeps owning that field."""
    out = copy.deepcopy(obj)
    out.get("spec", {}).pop("replicas", None)
    return out
