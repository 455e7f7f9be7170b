"""What the health watcher knows of the cluster: kept from watch events, judged by pure functions.

The watch threads feed every event into one :class:`View` (the loop's thread alone touches it).
It keeps only what detecting and deciding read, trimmed (a pod is a few hundred bytes here, not the
kilobytes of its full object), so 2,000 compute nodes with their pods cost a few MB:

- the clouds (OpenStackDeployments): their health-watcher policy and network backend, by namespace;
- the guarded workloads (DaemonSets, StatefulSets) the policies name: size, readiness, rollout;
- their pods (found by owner reference), indexed by node so a node's change re-judges its pods;
- the nodes' Ready condition; the PodDisruptionBudgets' selectors (a pod one selects is evicted).

Pure: no client, no clock. ``failures(now)`` and ``workload_states()`` are what ``decide`` takes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from healthwatcher.decide import Failure, Workload, WorkloadRef
from healthwatcher.detect import Verdict, condition, detect
from healthwatcher.workloads import Watched, resolve
from openstack_gitops import api
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.model.catalog import NetworkBackend
from openstack_gitops.model.spec import HealthWatcherPolicy

PodKey = tuple[str, str]  # (namespace, name)
WORKLOAD_KINDS = ("DaemonSet", "StatefulSet")


# -- trimming: what is kept of each object -------------------------------------------------------
# (the watch trims with these as each page arrives; it needs the identity and version of each object)
IDENTITY = ("name", "namespace", "uid", "resourceVersion")


def _pick(obj: Mapping[str, Any] | None, *keys: str) -> dict[str, Any]:
    return {k: obj[k] for k in keys if obj and obj.get(k) is not None}


def _trim_container(c: Mapping[str, Any]) -> dict[str, Any]:
    def state(s: Mapping[str, Any] | None) -> dict[str, Any]:
        s = s or {}
        out: dict[str, Any] = {}
        if "waiting" in s:
            out["waiting"] = _pick(s["waiting"], "reason")
        if "terminated" in s:
            out["terminated"] = _pick(s["terminated"], "reason", "exitCode", "finishedAt")
        if "running" in s:
            out["running"] = _pick(s["running"], "startedAt")
        return out
    return {"name": c.get("name"), "restartCount": c.get("restartCount", 0), "ready": c.get("ready"),
            "state": state(c.get("state")), "lastState": state(c.get("lastState"))}


def trim_pod(pod: Mapping[str, Any]) -> Manifest:
    """The fields the rules, the owner lookup, the PDB match, the restart and the watch read. Pure."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    owners = [_pick(o, "kind", "name", "uid", "controller") for o in meta.get("ownerReferences") or []]
    return {
        **_pick(pod, "apiVersion", "kind"),
        "metadata": {**_pick(meta, *IDENTITY, "labels", "deletionTimestamp", "creationTimestamp"),
                     "ownerReferences": owners},
        "spec": _pick(pod.get("spec"), "nodeName"),
        "status": {**_pick(status, "phase", "reason", "message", "startTime"),
                   "conditions": [_pick(c, "type", "status", "lastTransitionTime", "reason")
                                  for c in status.get("conditions") or []],
                   "initContainerStatuses": [_trim_container(c) for c in status.get("initContainerStatuses") or []],
                   "containerStatuses": [_trim_container(c) for c in status.get("containerStatuses") or []]},
    }


def trim_node(node: Mapping[str, Any]) -> Manifest:
    """The Ready condition alone (a node's status holds its image list: kilobytes each). Pure."""
    ready = condition(node, "Ready")
    return {**_pick(node, "apiVersion", "kind"), "metadata": _pick(node.get("metadata"), *IDENTITY),
            "status": {"conditions": [_pick(ready, "type", "status", "lastTransitionTime")] if ready else []}}


def trim_workload(obj: Mapping[str, Any]) -> Manifest:
    """Size, readiness and rollout state. Pure."""
    return {**_pick(obj, "apiVersion", "kind"),
            "metadata": _pick(obj.get("metadata"), *IDENTITY, "generation"),
            "spec": _pick(obj.get("spec"), "replicas"),
            "status": dict(obj.get("status") or {})}


# -- pure helpers ---------------------------------------------------------------------------------
def owner_of(pod: Mapping[str, Any]) -> WorkloadRef | None:
    """The DaemonSet or StatefulSet that controls the pod, if any."""
    meta = pod.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") in WORKLOAD_KINDS and ref.get("controller", True):
            return WorkloadRef(str(ref["kind"]), str(meta.get("namespace") or ""), str(ref.get("name") or ""))
    return None


def pod_ready(pod: Mapping[str, Any]) -> bool:
    cond = condition(pod, "Ready")
    return bool(cond and cond.get("status") == "True") and not (pod.get("metadata") or {}).get("deletionTimestamp")


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A LabelSelector's verdict on ``labels``; an empty selector selects everything (as in a PDB). Pure."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def rolling_out(obj: Mapping[str, Any]) -> bool:
    """A workload whose controller has not caught up with its spec, or whose pods are not all updated."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        return True
    if obj.get("kind") == "StatefulSet":  # not updatedReplicas: a member being deleted or missing is not counted there
        return bool(status.get("updateRevision")) and status.get("currentRevision") != status.get("updateRevision")
    return int(status.get("updatedNumberScheduled") or 0) < int(status.get("desiredNumberScheduled") or 0)


def desired_pods(obj: Mapping[str, Any], live: int) -> int:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if obj.get("kind") == "StatefulSet":
        replicas = spec.get("replicas")
        return 1 if replicas is None else int(replicas)
    return int(status.get("desiredNumberScheduled") or live)


@dataclass(frozen=True)
class Cloud:
    """One OpenStackDeployment: where it lives and what its policy guards."""

    name: str
    namespace: str
    policy: HealthWatcherPolicy
    watched: Mapping[tuple[str, str], Watched]  # (kind, name) -> Watched
    status: Mapping[str, Any]  # status.healthWatcher as last written

    @classmethod
    def of(cls, resource: Mapping[str, Any]) -> Cloud:
        meta, spec = resource.get("metadata") or {}, resource.get("spec") or {}
        policy = api.health_watcher_policy(spec)
        try:
            backend = NetworkBackend(str((spec.get("networking") or {}).get("backend") or "openvswitch"))
        except ValueError:
            backend = NetworkBackend.OPENVSWITCH
        watched = {(w.kind, w.name): w for w in resolve(policy, backend)}
        section = (resource.get("status") or {}).get(api.HEALTH_WATCHER_STATUS) or {}
        return cls(str(meta.get("name") or ""), str(meta.get("namespace") or ""), policy, watched, section)


class View:
    """The cluster as the watches last told it. Mutated by ``apply``/``resync``; read by the loop."""

    def __init__(self) -> None:
        self.clouds: dict[str, Cloud] = {}  # namespace -> its cloud (one OpenStackDeployment per namespace)
        self.nodes: dict[str, Manifest] = {}
        self.workloads: dict[WorkloadRef, Manifest] = {}
        self.pods: dict[PodKey, Manifest] = {}  # pods of guarded workloads only
        self.pods_by_node: dict[str, set[PodKey]] = defaultdict(set)
        self.pdbs: dict[tuple[str, str], Mapping[str, Any] | None] = {}  # (namespace, name) -> selector
        self.synced: set[str] = set()  # kinds whose first LIST arrived

    # -- what is guarded --------------------------------------------------------------------------
    def watched(self, ref: WorkloadRef) -> Watched | None:
        cloud = self.clouds.get(ref.namespace)
        return None if cloud is None else cloud.watched.get((ref.kind, ref.name))

    def guarded(self, pod: Mapping[str, Any]) -> WorkloadRef | None:
        ref = owner_of(pod)
        return ref if ref is not None and self.watched(ref) is not None else None

    # -- feeding --------------------------------------------------------------------------------
    def apply(self, kind: str, event_type: str, obj: Mapping[str, Any]) -> set[PodKey]:
        """One watch event; returns the pods to judge again (the pod, or every pod of a node/cloud)."""
        meta = obj.get("metadata") or {}
        name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "")
        deleted = event_type == "DELETED"
        if kind == "Pod":
            return self._pod((namespace, name), None if deleted else obj)
        if kind == "Node":
            if deleted:
                self.nodes.pop(name, None)
            else:
                self.nodes[name] = trim_node(obj)
            return set(self.pods_by_node.get(name, ()))
        if kind in WORKLOAD_KINDS:
            ref = WorkloadRef(kind, namespace, name)
            if deleted:
                self.workloads.pop(ref, None)
            else:
                self.workloads[ref] = trim_workload({**obj, "kind": kind})
            return set()
        if kind == "PodDisruptionBudget":
            if deleted:
                self.pdbs.pop((namespace, name), None)
            else:
                self.pdbs[(namespace, name)] = (obj.get("spec") or {}).get("selector")
            return {k for k in self.pods if k[0] == namespace}
        if kind == api.KIND:
            if deleted:
                self.clouds.pop(namespace, None)
            else:
                self.clouds[namespace] = Cloud.of(obj)
            return {k for k in self.pods if k[0] == namespace}
        return set()

    def resync(self, kind: str, objects: Iterable[Mapping[str, Any]]) -> set[PodKey]:
        """A full LIST of one kind (the first, or after the watch's re-list): replace what was known."""
        self.synced.add(kind)
        dirty: set[PodKey] = set()
        if kind == "Pod":
            listed: set[PodKey] = set()
            for obj in objects:
                meta = obj.get("metadata") or {}
                key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                listed.add(key)
                dirty |= self._pod(key, obj)
            for key in set(self.pods) - listed:
                dirty |= self._pod(key, None)
            return dirty
        # every other kind is small: drop what the list no longer has, apply the rest
        objects = list(objects)
        names = {(str((o.get("metadata") or {}).get("namespace") or ""), str((o.get("metadata") or {}).get("name")))
                 for o in objects}
        for stale in self._known(kind) - names:
            dirty |= self.apply(kind, "DELETED", {"metadata": {"namespace": stale[0], "name": stale[1]}})
        for obj in objects:
            dirty |= self.apply(kind, "ADDED", obj)
        return dirty

    def _known(self, kind: str) -> set[tuple[str, str]]:
        if kind == "Node":
            return {("", n) for n in self.nodes}
        if kind in WORKLOAD_KINDS:
            return {(r.namespace, r.name) for r in self.workloads if r.kind == kind}
        if kind == "PodDisruptionBudget":
            return set(self.pdbs)
        if kind == api.KIND:
            return {(ns, c.name) for ns, c in self.clouds.items()}
        return set()

    def _pod(self, key: PodKey, obj: Mapping[str, Any] | None) -> set[PodKey]:
        old = self.pods.pop(key, None)
        if old is not None:
            node = (old.get("spec") or {}).get("nodeName")
            if node:
                self.pods_by_node[node].discard(key)
                if not self.pods_by_node[node]:
                    del self.pods_by_node[node]
        if obj is not None and owner_of(obj) is not None:  # every DaemonSet/StatefulSet pod: a policy may name it later
            trimmed = trim_pod(obj)
            self.pods[key] = trimmed
            node = trimmed["spec"].get("nodeName")
            if node:
                self.pods_by_node[node].add(key)
        return {key} if old is not None or obj is not None else set()

    # -- judging ------------------------------------------------------------------------------
    def node_of(self, pod: Mapping[str, Any]) -> Manifest | None:
        name = (pod.get("spec") or {}).get("nodeName")
        return self.nodes.get(name) if name else None

    def verdict(self, key: PodKey, now: float) -> tuple[WorkloadRef, Verdict] | None:
        """The pod's verdict, or None when it is gone or not guarded."""
        pod = self.pods.get(key)
        if pod is None:
            return None
        ref = self.guarded(pod)
        if ref is None:
            return None
        watched = self.watched(ref)
        assert watched is not None
        return ref, detect(pod, self.node_of(pod), watched.thresholds, now)

    def failure(self, key: PodKey, ref: WorkloadRef, verdict: Verdict) -> Failure:
        pod = self.pods[key]
        labels = (pod.get("metadata") or {}).get("labels") or {}
        pdb = any(ns == key[0] and selects(sel, labels) for (ns, _), sel in self.pdbs.items())
        return Failure(key[0], key[1], ref, (pod.get("spec") or {}).get("nodeName"), verdict,
                       ready=pod_ready(pod), pdb=pdb)

    def pods_of(self, ref: WorkloadRef) -> list[Manifest]:
        return [p for p in self.pods.values() if owner_of(p) == ref]

    def workload_states(self, restarting: Mapping[WorkloadRef, int]) -> dict[WorkloadRef, Workload]:
        """What ``decide`` needs of every guarded workload that exists."""
        members: dict[WorkloadRef, list[Manifest]] = defaultdict(list)
        for pod in self.pods.values():
            ref = owner_of(pod)
            if ref is not None:
                members[ref].append(pod)
        out = {}
        for ref, obj in self.workloads.items():
            watched = self.watched(ref)
            if watched is None:
                continue
            pods = members.get(ref, [])
            out[ref] = Workload(ref, desired_pods(obj, len(pods)), sum(1 for p in pods if pod_ready(p)),
                                database=watched.database, quorum=watched.quorum, rolling_out=rolling_out(obj),
                                restarting=restarting.get(ref, 0))
        return out

    def ready_nodes_of(self, ref: WorkloadRef) -> frozenset[str]:
        """Nodes where the workload has a Ready pod (host discovery follows nova-compute's)."""
        return frozenset(str((p.get("spec") or {}).get("nodeName")) for p in self.pods_of(ref)
                         if pod_ready(p) and (p.get("spec") or {}).get("nodeName"))


TRIMS: dict[str, Callable[[Manifest], Manifest]] = {"Pod": trim_pod, "Node": trim_node,
                                                     "DaemonSet": trim_workload, "StatefulSet": trim_workload}
"""What the watches keep of each kind (the others are small: kept whole)."""
