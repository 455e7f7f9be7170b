"""What the cluster shows about us: the OpenStackDeployment resource, its status, Events, credentials.

Writes happen only when something changed, so a no-op reconcile writes nothing at all.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from openstack_gitops.api import (
    API_VERSION,
    AUTOSCALER_STATUS,
    FIELD_MANAGER,
    GROUP,
    HEALTH_WATCHER_STATUS,
    KIND,
    MANAGED_BY_LABEL,
    REGENERATE_ANNOTATION,
    SOURCE_ANNOTATION,
    SPEC_HASH_ANNOTATION,
    crd,
    spec_document,
)
from openstack_gitops.canonical import canonical_hash
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.model.fingerprint import fingerprint
from openstack_gitops.model.spec import Spec
from openstack_gitops.runtime import logs
from reconciler.engine.changeset import ChangeSet
from reconciler.engine.identity import CloudRef
from reconciler.engine.outcome import Outcome, Reason
from reconciler.plan.diff import Action

# status sections written by the other processes
OTHER_PROCESSES_STATUS = frozenset({AUTOSCALER_STATUS, HEALTH_WATCHER_STATUS})


def ensure_crd(cluster: Cluster) -> None:
    """Install or update our CRD when it differs from what this version ships (one read otherwise)."""
    want = crd()
    want["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: canonical_hash(want["spec"])}
    live = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", want["metadata"]["name"])
    if live and ((live.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH_ANNOTATION) == \
            want["metadata"]["annotations"][SPEC_HASH_ANNOTATION]:
        return
    cluster.apply(want)
    cluster.wait_crd_established(want["metadata"]["name"], timeout=30)


def read(cluster: Cluster, ref: CloudRef) -> Manifest | None:
    try:
        return cluster.get(API_VERSION, KIND, ref.name, ref.namespace)
    except ApiError as exc:
        if exc.kind_not_served:  # no CRD yet: no resource either
            return None
        raise


def list_all(cluster: Cluster) -> list[Manifest]:
    """Every OpenStackDeployment in the cluster (one LIST), to find a cloud's other homes."""
    return cluster.list(API_VERSION, KIND, label_selector="")


def regenerate_allowed(live: Manifest | None) -> bool:
    annotations = ((live or {}).get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(REGENERATE_ANNOTATION) == "true")


def clear_regenerate(cluster: Cluster, ref: CloudRef) -> None:
    """The permission to regenerate is used once: remove it so a later loss stops the reconcile again."""
    path = "/metadata/annotations/" + REGENERATE_ANNOTATION.replace("~", "~0").replace("/", "~1")
    cluster.patch_json(API_VERSION, ObjectKey(GROUP, KIND, ref.namespace, ref.name), [{"op": "remove", "path": path}])


def delete(cluster: Cluster, ref: CloudRef) -> None:
    cluster.delete(API_VERSION, ObjectKey(GROUP, KIND, ref.namespace, ref.name))


# -- credentials --------------------------------------------------------------------------
def credentials_secret(ref: CloudRef) -> str:
    return f"{ref.name}-credentials"


def read_credentials(cluster: Cluster, ref: CloudRef) -> dict[str, str]:
    live = cluster.get("v1", "Secret", credentials_secret(ref), ref.namespace)
    data = (live or {}).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def save_credentials(cluster: Cluster, ref: CloudRef, new: Mapping[str, str]) -> None:
    """Add newly generated credentials; existing keys are never rewritten (apply owns only new keys)."""
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": credentials_secret(ref), "namespace": ref.namespace,
                                "labels": {MANAGED_BY_LABEL: FIELD_MANAGER},
                                "annotations": {f"{GROUP}/note": "generated credentials; never stored in Git"}},
                   "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(new.items())}},
                  field_manager=f"{FIELD_MANAGER}-credentials-{_short(sorted(new))}")


def _short(names: list[str]) -> str:
    return hashlib.sha256("\0".join(names).encode()).hexdigest()[:8]


# -- the custom resource -------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _desired_cr(spec: Spec, source: str, document: Mapping[str, Any]) -> Manifest:
    body: Manifest = {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": spec.name, "namespace": spec.namespace,
                         "labels": {MANAGED_BY_LABEL: FIELD_MANAGER}},
            "spec": dict(document)}
    body["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: canonical_hash(body["spec"]), SOURCE_ANNOTATION: source}
    return body


def ensure_cr(cluster: Cluster, spec: Spec, source: str, live: Manifest | None) -> None:
    """Create or update the resource when its spec summary or source changed (nothing otherwise)."""
    want = _desired_cr(spec, source, spec_document(spec))
    have = ((live or {}).get("metadata") or {}).get("annotations") or {}
    if live is None or any(have.get(k) != v for k, v in want["metadata"]["annotations"].items()):
        cluster.apply(want)


def _condition(kind: str, ok: bool, reason: str, message: str, previous: list[Mapping[str, Any]]) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else _now()
    return {"type": kind, "status": status, "reason": reason, "message": logs.scrub(message)[:1024],
            "lastTransitionTime": since}


def _write_status(cluster: Cluster, ref: CloudRef, live: Manifest | None, status: dict[str, Any]) -> None:
    old = (live or {}).get("status") or {}
    if _comparable(old) == _comparable(status):
        return
    cluster.patch_status(API_VERSION, KIND, ref.name, ref.namespace, status)


def _comparable(status: Mapping[str, Any]) -> Any:
    """Status without timestamps: a new timestamp alone is no reason to write. The sections other
    processes own (``status.autoscaler``) are theirs: never compared, never sent."""
    out = {k: v for k, v in status.items() if k not in OTHER_PROCESSES_STATUS}
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in status.get("conditions", [])]
    out.pop("lastAppliedTime", None)
    return out


def record(cluster: Cluster, spec: Spec, source: str, commit: str, message: str, outcome: Outcome,
           values: Mapping[str, Any], live: Manifest | None) -> None:
    """The whole status after a reconcile that got as far as applying (also one on a stale commit)."""
    ref = CloudRef(spec.name, spec.namespace)
    ensure_cr(cluster, spec, source, live)
    live = read(cluster, ref) if live is None else live
    previous = ((live or {}).get("status") or {})
    conditions = previous.get("conditions") or []
    services = {}
    for chart in sorted(values):
        health = outcome.health.get(chart)
        services[chart] = {"state": health.state.value if health else "Unknown",
                           "message": health.message if health else "",
                           "fingerprint": fingerprint(values[chart])[:16]}
    healthy = sum(1 for s in services.values() if s["state"] == "Healthy")
    converged = outcome.converged
    status = {
        "observedCommit": commit, "observedCommitShort": commit[:12], "commitMessage": message[:200],
        "release": spec.release,
        "lastAppliedCommit": commit if outcome.applied else previous.get("lastAppliedCommit", ""),
        "state": "Ready" if converged else ("Progressing" if outcome.ok else "Failed"),
        "health": f"{healthy}/{len(services)}",
        "services": services, "lastError": "" if outcome.ok else logs.scrub(outcome.message)[:2048],
        "conditions": [
            _condition("Ready", converged,
                       "Converged" if converged else ("Progressing" if outcome.ok else str(outcome.reason)),
                       f"{healthy}/{len(services)} services healthy" if outcome.ok else outcome.message, conditions),
            _condition("Applied", outcome.applied, Reason.APPLIED if outcome.applied else outcome.reason,
                       outcome.message, conditions),
        ],
        "lastAppliedTime": _now() if outcome.changes.count(Action.CREATE, Action.UPDATE, Action.RECREATE, Action.PRUNE,
                                                          Action.HOOK)
        else previous.get("lastAppliedTime", _now()),
    }
    _write_status(cluster, ref, live, status)
    if not outcome.ok and _comparable(previous) != _comparable(status):
        _event(cluster, ref, "Warning", outcome.reason, outcome.message)


def record_failure(cluster: Cluster, ref: CloudRef, commit: str, outcome: Outcome) -> bool:
    """A failed reconcile keeps the last applied state and says why, in status and as an Event.

    Returns False when there is no resource to report on. A failure before any commit was
    fetched keeps the commit last observed.
    """
    live = read(cluster, ref)
    if live is None:
        return False
    previous = {k: v for k, v in (live.get("status") or {}).items() if k not in OTHER_PROCESSES_STATUS}
    commit = commit or previous.get("observedCommit", "")
    status = {**previous, "observedCommit": commit, "observedCommitShort": commit[:12], "state": "Failed",
              "lastError": logs.scrub(outcome.message)[:2048]}
    conditions = previous.get("conditions") or []
    status["conditions"] = [
        _condition("Ready", False, outcome.reason, outcome.message, conditions),
        _condition("Applied", False, outcome.reason, outcome.message, conditions),
    ]
    _write_status(cluster, ref, live, status)
    if _comparable(previous) != _comparable(status):
        _event(cluster, ref, "Warning", outcome.reason, outcome.message)
    return True


# -- events --------------------------------------------------------------------------------
def emit_events(cluster: Cluster, ref: CloudRef, changes: ChangeSet) -> None:
    """One Event per service with changes, one per prune, one per failed object."""
    per_service: dict[str, list[str]] = {}
    for change in changes.changes:
        if change.action in (Action.UNCHANGED, Action.KEEP, Action.FORGET):
            continue
        if change.error:
            _event(cluster, ref, "Warning", Reason.APPLY_FAILED, str(change))
        elif change.action is Action.PRUNE:
            _event(cluster, ref, "Normal", "Pruned", f"deleted {change.key} (removed from Git)")
        else:
            per_service.setdefault(change.service, []).append(f"{change.action.value} {change.key}")
    for service, lines in sorted(per_service.items()):
        text = f"{service}: {len(lines)} object(s) applied: " + ", ".join(lines[:10])
        _event(cluster, ref, "Normal", Reason.APPLIED, text + (" ..." if len(lines) > 10 else ""))


def _event(cluster: Cluster, ref: CloudRef, kind: str, reason: str, note: str) -> None:
    now = dt.datetime.now(dt.UTC)
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
             "metadata": {"name": f"{ref.name}.{now.strftime('%Y%m%d%H%M%S')}{now.microsecond:06d}",
                          "namespace": ref.namespace},
             "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "type": kind, "reason": reason,
             "action": "Reconcile", "note": logs.scrub(note)[:1024], "reportingController": f"{GROUP}/reconciler",
             "reportingInstance": FIELD_MANAGER,
             "regarding": {"apiVersion": API_VERSION, "kind": KIND, "name": ref.name, "namespace": ref.namespace}}
    with contextlib.suppress(ApiError):  # best effort: the namespace may not exist on a first failure
        cluster.create_event(event)
