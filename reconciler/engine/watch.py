"""Drift watch: a manual edit of a field we own triggers a reconcile within seconds, not at the next poll.

One watch per workload/config kind in the deployment's namespace, filtered by our ownership label.
An event only triggers when the object's applied hash or our owned-field set differs from the
inventory; status updates by controllers (the vast majority of events) never do.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from openstack_gitops import api
from openstack_gitops.kube import objects as kobjects
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.kube.watch import EventType, Watch
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.backoff import Backoff
from reconciler.plan import ownership
from reconciler.plan.inventory import Inventory

WATCHED = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
           ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"))
log = logs.get("watch")


def drifted(event_type: str, obj: dict[str, Any], inventory: Inventory) -> str | None:
    """Why this watch event means drift (None when it does not). Pure."""
    key = ObjectKey.of(obj)
    entry = inventory.get(key)
    if entry is None:
        return None
    if event_type == "DELETED":
        return f"{key} was deleted"
    if ownership.applied_hash(obj) != entry.applied_hash:
        return f"{key}: applied content changed"
    manual = ownership.manual_managers(obj)
    if manual:
        return f"{key}: edited by hand ({', '.join(manual)})"
    if ownership.owned_fields_hash(obj) != entry.fields_hash:
        return f"{key}: fields we own were changed by {', '.join(ownership.other_managers(obj)) or 'someone'}"
    return None


class DriftWatch:
    """One watch per kind (the edge's watch verb), each in a thread of its own, until ``stop()``.

    The watch verb resumes from the last resourceVersion after a reconnect and diffs a re-list
    after 410 Gone, so an edit (or a deletion) made while a watch was reconnecting still counts.
    """

    def __init__(self, cluster: Cluster, namespace: str, owner: str, inventory: Callable[[], Inventory],
                 on_drift: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = kobjects.selector({api.OWNER_LABEL: owner})
        self.inventory = inventory
        self.on_drift = on_drift
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watches: dict[str, Watch] = {}  # the current watch of each kind
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for api_version, kind in WATCHED:
            thread = threading.Thread(target=self._watch, args=(api_version, kind), daemon=True,
                                      name=f"drift-watch-{kind}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Ends every watch; returns at once (the threads finish within moments)."""
        self._stop.set()
        with self._lock:
            watches = list(self._watches.values())
        for watch in watches:
            watch.stop()

    def _watch(self, api_version: str, kind: str) -> None:
        backoff = Backoff(base=1.0, cap=60.0)
        while not self._stop.is_set():
            try:  # a terminal refusal (kind not served yet, RBAC) ends a watch: watch again later
                watch = self.cluster.watch(api_version, kind, namespace=self.namespace, label_selector=self.selector)
                with self._lock:
                    self._watches[kind] = watch
                if self._stop.is_set():
                    watch.stop()
                for event in watch:
                    backoff.reset()
                    if event.type is EventType.RESYNC:
                        continue
                    reason = drifted(event.type.value, event.object, self.inventory())
                    if reason:
                        self.on_drift(reason)
            except ApiError as exc:
                log.warning("drift watch refused", extra={"kind": kind, "error": str(exc)})
                self._stop.wait(backoff.next_delay())
