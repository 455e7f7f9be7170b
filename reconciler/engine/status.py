"""What the cluster shows about us: the OpenStackDeployment resource, its status, Events, credentials.

Writes happen only when something changed, so a no-op reconcile writes nothing at all.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubernetes.dynamic.exceptions import ResourceNotFoundError

from reconciler.edges.kube import ApiError, Cluster
from reconciler.engine.changeset import ChangeSet
from reconciler.model.fingerprint import fingerprint
from reconciler.model.spec import Spec
from reconciler.plan.diff import Action
from reconciler.plan.objects import FIELD_MANAGER, MANAGED_BY_LABEL, Manifest, canonical_hash

if TYPE_CHECKING:
    from reconciler.engine.reconcile import Outcome

GROUP = "openstack-gitops.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "OpenStackDeployment"
PLURAL = "openstackdeployments"
SPEC_HASH = f"{GROUP}/spec-hash"


def crd() -> Manifest:
    """The CustomResourceDefinition of OpenStackDeployment (also written to manifests/crd.yaml)."""
    columns = [
        {"name": "Release", "type": "string", "jsonPath": ".status.release"},
        {"name": "Commit", "type": "string", "jsonPath": ".status.observedCommitShort"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
        {"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].reason"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"kind": KIND, "plural": PLURAL, "singular": "openstackdeployment",
                           "shortNames": ["osdpl"], "listKind": f"{KIND}List"},
                 "versions": [{"name": VERSION, "served": True, "storage": True,
                               "subresources": {"status": {}}, "additionalPrinterColumns": columns,
                               "schema": {"openAPIV3Schema": schema}}]},
    }


def ensure_crd(cluster: Cluster) -> None:
    """Install or update our CRD when it differs from what this version ships (one read otherwise)."""
    want = crd()
    want["metadata"]["annotations"] = {SPEC_HASH: canonical_hash(want["spec"])}
    live = cluster.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", want["metadata"]["name"])
    if live and ((live.get("metadata") or {}).get("annotations") or {}).get(SPEC_HASH) == \
            want["metadata"]["annotations"][SPEC_HASH]:
        return
    cluster.apply(want)
    cluster.wait_crd_established(want["metadata"]["name"], timeout=30)


def read(cluster: Cluster, spec: Spec) -> Manifest | None:
    try:
        return cluster.get(API_VERSION, KIND, spec.name, spec.namespace)
    except ResourceNotFoundError:
        return None


# -- credentials --------------------------------------------------------------------------
def credentials_secret(spec: Spec) -> str:
    return f"{spec.name}-credentials"


def read_credentials(cluster: Cluster, spec: Spec) -> dict[str, str]:
    live = cluster.get("v1", "Secret", credentials_secret(spec), spec.namespace)
    data = (live or {}).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def save_credentials(cluster: Cluster, spec: Spec, new: Mapping[str, str]) -> None:
    """Add newly generated credentials; existing keys are never rewritten (apply owns only new keys)."""
    cluster.apply({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                   "metadata": {"name": credentials_secret(spec), "namespace": spec.namespace,
                                "labels": {MANAGED_BY_LABEL: FIELD_MANAGER},
                                "annotations": {f"{GROUP}/note": "generated credentials; never stored in Git"}},
                   "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(new.items())}},
                  field_manager=f"{FIELD_MANAGER}-credentials-{_short(sorted(new))}")


def _short(names: list[str]) -> str:
    return hashlib.sha256("\0".join(names).encode()).hexdigest()[:8]


# -- the custom resource -------------------------------------------------------------------
def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _desired_cr(spec: Spec, document: Mapping[str, Any]) -> Manifest:
    body: Manifest = {"apiVersion": API_VERSION, "kind": KIND,
            "metadata": {"name": spec.name, "namespace": spec.namespace,
                         "labels": {MANAGED_BY_LABEL: FIELD_MANAGER}},
            "spec": dict(document)}
    body["metadata"]["annotations"] = {SPEC_HASH: canonical_hash(body["spec"])}
    return body


def _ensure_cr(cluster: Cluster, spec: Spec, live: Manifest | None) -> None:
    want = _desired_cr(spec, spec_document(spec))
    have = ((live or {}).get("metadata") or {}).get("annotations") or {}
    if live is None or have.get(SPEC_HASH) != want["metadata"]["annotations"][SPEC_HASH]:
        cluster.apply(want)


def spec_document(spec: Spec) -> dict[str, Any]:
    """A readable summary of the spec for the resource (no overrides: they may be large)."""
    return {"release": spec.release, "size": spec.size.value, "region": spec.region,
            "publicDomain": spec.public_domain, "networking": {"backend": spec.network_backend.value},
            "services": sorted(spec.enabled_services)}


def _condition(kind: str, ok: bool, reason: str, message: str, previous: list[Mapping[str, Any]]) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == kind), None)
    since = old.get("lastTransitionTime") if old and old.get("status") == status else _now()
    return {"type": kind, "status": status, "reason": reason, "message": message[:1024], "lastTransitionTime": since}


def _write_status(cluster: Cluster, spec: Spec, live: Manifest | None, status: dict[str, Any]) -> None:
    old = (live or {}).get("status") or {}
    if _comparable(old) == _comparable(status):
        return
    cluster.patch_status(API_VERSION, KIND, spec.name, spec.namespace, status)


def _comparable(status: Mapping[str, Any]) -> Any:
    """Status without timestamps: a new timestamp alone is no reason to write."""
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                         for c in status.get("conditions", [])]
    out.pop("lastAppliedTime", None)
    return out


def record(cluster: Cluster, spec: Spec, commit: str, message: str, outcome: Outcome,
           values: Mapping[str, Any], live: Manifest | None) -> None:
    _ensure_cr(cluster, spec, live)
    live = read(cluster, spec) if live is None else live
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
        "release": spec.release, "lastAppliedCommit": commit if outcome.ok else previous.get("lastAppliedCommit", ""),
        "state": "Ready" if converged else ("Progressing" if outcome.ok else "Failed"),
        "health": f"{healthy}/{len(services)}",
        "services": services, "lastError": "" if outcome.ok else outcome.message[:2048],
        "conditions": [
            _condition("Ready", converged,
                       "Converged" if converged else ("Progressing" if outcome.ok else outcome.reason),
                       f"{healthy}/{len(services)} services healthy" if outcome.ok else outcome.message, conditions),
            _condition("Applied", outcome.ok, outcome.reason, outcome.message, conditions),
        ],
        "lastAppliedTime": _now() if outcome.changes.count(Action.CREATE, Action.UPDATE, Action.RECREATE, Action.PRUNE)
        else previous.get("lastAppliedTime", _now()),
    }
    _write_status(cluster, spec, live, status)


def record_failure(cluster: Cluster, spec: Spec, commit: str, outcome: Outcome) -> None:
    """A failed reconcile keeps the last applied state and says why, in status and as an Event."""
    live = read(cluster, spec)
    if live is None:
        return  # nothing applied yet; the error is in the logs, metrics and exit code
    previous = live.get("status") or {}
    status = {**previous, "observedCommit": commit, "observedCommitShort": commit[:12], "state": "Failed",
              "lastError": outcome.message[:2048]}
    conditions = previous.get("conditions") or []
    status["conditions"] = [
        _condition("Ready", False, outcome.reason, outcome.message, conditions),
        _condition("Applied", False, outcome.reason, outcome.message, conditions),
    ]
    _write_status(cluster, spec, live, status)
    if _comparable(previous) != _comparable(status):
        _event(cluster, spec, "Warning", outcome.reason, outcome.message)


# -- events --------------------------------------------------------------------------------
def emit_events(cluster: Cluster, spec: Spec, changes: ChangeSet) -> None:
    """One Event per service with changes, one per prune, one per failed object."""
    per_service: dict[str, list[str]] = {}
    for change in changes.changes:
        if change.action in (Action.UNCHANGED, Action.KEEP):
            continue
        if change.error:
            _event(cluster, spec, "Warning", "ApplyFailed", str(change))
        elif change.action is Action.PRUNE:
            _event(cluster, spec, "Normal", "Pruned", f"deleted {change.key} (removed from Git)")
        else:
            per_service.setdefault(change.service, []).append(f"{change.action.value} {change.key}")
    for service, lines in sorted(per_service.items()):
        text = f"{service}: {len(lines)} object(s) applied: " + ", ".join(lines[:10])
        _event(cluster, spec, "Normal", "Applied", text + (" ..." if len(lines) > 10 else ""))


def _event(cluster: Cluster, spec: Spec, kind: str, reason: str, note: str) -> None:
    now = dt.datetime.now(dt.UTC)
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event",
             "metadata": {"name": f"{spec.name}.{now.strftime('%Y%m%d%H%M%S')}{now.microsecond:06d}",
                          "namespace": spec.namespace},
             "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "type": kind, "reason": reason,
             "action": "Reconcile", "note": note[:1024], "reportingController": f"{GROUP}/reconciler",
             "reportingInstance": FIELD_MANAGER,
             "regarding": {"apiVersion": API_VERSION, "kind": KIND, "name": spec.name, "namespace": spec.namespace}}
    with contextlib.suppress(ApiError):  # best effort: the namespace may not exist on a first failure
        cluster.create_event(event)
