"""Act: the restart itself, the Events that record it, and the history a new leader reads back.

A restart is one request: a delete with the judged pod's uid as precondition (a StatefulSet member
re-created under the same name meanwhile is left alone), through the eviction API when a
PodDisruptionBudget selects the pod (its 429 is a refusal, reported like the others), a delete
with grace 0 only for a pod stuck terminating on a NotReady node.

Every restart is recorded as an Event on the pod *before* the request (the intent: a leader killed
between the two leaves the record, and its successor counts it), labelled so the successor lists
them in one request and rebuilds the rate limits and back-off (:func:`history_from_events`). A
second Event goes on the owner (a DaemonSet's Events then tell the whole story). Refusals and the
breaker get Events too, written when they change, not on every pass.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from healthwatcher.decide import Action, Decision, Failure, History, Restart, WorkloadRef
from openstack_gitops import api
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.runtime import logs

CONTROLLER = f"{api.GROUP}/health-watcher"
EVENT_LABEL = f"{api.GROUP}/health-watcher"  # on our Events: what they record (RecordKind)
SLOT, NODE, WORKLOAD, AT = (f"{api.GROUP}/{k}" for k in ("slot", "node", "workload", "at"))


class RecordKind(StrEnum):
    RESTART = "restart"
    REFUSAL = "refusal"
    BREAKER = "breaker"
    DISCOVERY = "discovery"


class Result(StrEnum):
    DONE = "done"
    GONE = "gone"  # the pod was gone or replaced before the request: nothing to restart
    PDB_REFUSED = "pdb-refused"  # the eviction API answered 429


def restart(cluster: Cluster, decision: Decision, uid: str) -> Result:
    """One restart request as ``decision`` says (raises ApiError for anything but a PDB's refusal)."""
    try:
        if decision.action is Action.EVICT:
            done = cluster.evict_pod(decision.namespace, decision.pod, uid)
        else:
            grace = 0 if decision.action is Action.FORCE_DELETE else None
            done = cluster.delete_pod(decision.namespace, decision.pod, uid, grace)
    except ApiError as exc:
        if exc.status == 429 and decision.action is Action.EVICT:
            return Result.PDB_REFUSED
        raise
    return Result.DONE if done else Result.GONE


def _stamp(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


def _ref(kind: str, name: str, namespace: str) -> dict[str, str]:
    return {"apiVersion": "v1" if kind == "Pod" else "apps/v1", "kind": kind, "name": name, "namespace": namespace}


@dataclass(frozen=True)
class Note:
    """What an Event says, before it is an Event (pure, shared by the pod's and the owner's)."""

    record: RecordKind
    reason: str  # the Event's reason (CamelCase, as kubectl shows)
    message: str
    warning: bool = True


def restart_note(decision: Decision, failure: Failure) -> Note:
    verb = {Action.DELETE: "deleted", Action.EVICT: "evicted",
            Action.FORCE_DELETE: "force-deleted (node NotReady)"}[decision.action]
    where = f" on {failure.node}" if failure.node else ""
    return Note(RecordKind.RESTART, "HealthWatcherRestart",
                f"{decision.pod}{where} {verb} so that {failure.workload.kind} {failure.workload.name} "
                f"re-creates it: {failure.verdict.message}")


def refusal_note(decision: Decision) -> Note:
    return Note(RecordKind.REFUSAL, "HealthWatcherRefused",
                f"not restarting {decision.pod} ({decision.reason.value}): {decision.detail}")


def breaker_note(ref: WorkloadRef, failed: int, pods: int, opened: bool) -> Note:
    if opened:
        return Note(RecordKind.BREAKER, "HealthWatcherBreakerOpen",
                    f"{failed} of {pods} pods of {ref.kind} {ref.name} failed at once: not restarting any "
                    f"(a bad image or a broken network is not fixed by restarts); fix the cause")
    return Note(RecordKind.BREAKER, "HealthWatcherBreakerClosed",
                f"{ref.kind} {ref.name}: failures back under the breaker's share; restarting again", warning=False)


def event(note: Note, regarding: Mapping[str, str], related: Mapping[str, str] | None, now: float,
          annotations: Mapping[str, str] | None = None) -> Manifest:
    """An events.k8s.io/v1 Event. Pure."""
    stamp = _stamp(now)
    # unique per object, record and moment: a restart's intent and a refusal of the same pass must not collide
    name = f"{regarding['name']}.{note.record.value}.{stamp.strftime('%Y%m%d%H%M%S')}{stamp.microsecond:06d}"
    body: dict[str, Any] = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name[:253], "namespace": regarding["namespace"],
                     "labels": {EVENT_LABEL: note.record.value}, "annotations": dict(annotations or {})},
        "eventTime": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "type": "Warning" if note.warning else "Normal",
        "reason": note.reason, "action": note.record.value.capitalize(),
        "note": logs.scrub(note.message)[:1024],
        "reportingController": CONTROLLER, "reportingInstance": api.Process.HEALTH_WATCHER.field_manager,
        "regarding": dict(regarding),
    }
    if related is not None:
        body["related"] = dict(related)
    return body


def restart_events(decision: Decision, failure: Failure, now: float) -> tuple[Manifest, Manifest]:
    """The intent on the pod (annotated with what the history needs) and the record on its owner."""
    note = restart_note(decision, failure)
    pod = _ref("Pod", decision.pod, decision.namespace)
    owner = _ref(failure.workload.kind, failure.workload.name, failure.workload.namespace)
    record = {SLOT: failure.slot, NODE: failure.node or "", WORKLOAD: str(failure.workload), AT: f"{now:.3f}"}
    return event(note, pod, owner, now, record), event(note, owner, pod, now)


def refusal_events(decision: Decision, failure: Failure, now: float) -> tuple[Manifest, Manifest]:
    note = refusal_note(decision)
    pod = _ref("Pod", decision.pod, decision.namespace)
    owner = _ref(failure.workload.kind, failure.workload.name, failure.workload.namespace)
    return event(note, pod, owner, now), event(note, owner, pod, now)


def breaker_event(ref: WorkloadRef, failed: int, pods: int, opened: bool, now: float) -> Manifest:
    return event(breaker_note(ref, failed, pods, opened), _ref(ref.kind, ref.name, ref.namespace), None, now)


def retract(cluster: Cluster, intent: Manifest) -> None:
    """A restart that did not happen (refused by a PDB, pod gone, request failed): its intent must not
    tell an operator, or a successor's rate limits, that it did. Best effort."""
    with contextlib.suppress(ApiError):
        cluster.delete("events.k8s.io/v1", ObjectKey.of(intent))


def emit(cluster: Cluster, *events: Manifest) -> bool:
    """Best effort: a lost Event must not stop healing (the log and the metrics still say it)."""
    ok = True
    for body in events:
        with contextlib.suppress(ApiError):
            cluster.create_event(body)
            continue
        ok = False
    return ok


def _workload_ref(text: str) -> WorkloadRef | None:
    parts = text.split("/")
    return WorkloadRef(*parts) if len(parts) == 3 else None


def history_from_events(events: Iterable[Mapping[str, Any]], since: float) -> History:
    """The restarts our Events record since ``since``, oldest first: a new leader's memory. Pure.

    Events written by an older watcher or by hand without the annotations are skipped, not guessed."""
    restarts = []
    for body in events:
        meta = body.get("metadata") or {}
        if (meta.get("labels") or {}).get(EVENT_LABEL) != RecordKind.RESTART.value:
            continue
        notes = meta.get("annotations") or {}
        ref = _workload_ref(str(notes.get(WORKLOAD) or ""))
        try:
            at = float(notes.get(AT) or "")
        except ValueError:
            continue
        if ref is None or at < since:
            continue
        pod = str(((body.get("regarding") or {}).get("name")) or "")
        restarts.append(Restart(at, str(notes.get(SLOT) or ""), pod, notes.get(NODE) or None, ref))
    return History(tuple(sorted(restarts, key=lambda r: (r.at, r.slot))))


def read_history(cluster: Cluster, namespaces: Iterable[str], since: float) -> History:
    """One LIST of our restart Events per cloud namespace (raises ApiError)."""
    events: list[Manifest] = []
    for namespace in sorted(set(namespaces)):
        events += cluster.list("events.k8s.io/v1", "Event", f"{EVENT_LABEL}={RecordKind.RESTART.value}", namespace)
    return history_from_events(events, since)

