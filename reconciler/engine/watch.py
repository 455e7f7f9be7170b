"""Drift watch: a manual edit of a field we own triggers a reconcile within seconds, not at the next poll.

One watch per workload/config kind in the deployment's namespace, filtered by our ownership label.
An event only triggers when the object's applied hash or our owned-field set differs from the
inventory; status updates by controllers (the vast majority of events) never do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from openstack_gitops import api
from openstack_gitops.kube import objects as kobjects
from openstack_gitops.kube.client import Cluster
from openstack_gitops.kube.objects import ObjectKey
from openstack_gitops.runtime import logs
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
    def __init__(self, cluster: Cluster, namespace: str, owner: str, inventory: Callable[[], Inventory],
                 on_drift: Callable[[str], None]) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.selector = kobjects.selector({api.OWNER_LABEL: owner})
        self.inventory = inventory
        self.on_drift = on_drift
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for api_version, kind in WATCHED:
            thread = threading.Thread(target=self._watch, args=(api_version, kind), daemon=True,
                                      name=f"drift-watch-{kind}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()

    def _watch(self, api_version: str, kind: str) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                resource = self.cluster.resource(api_version, kind)
                events = self.cluster.dyn.watch(  # type: ignore[no-untyped-call]
                    resource, namespace=self.namespace, label_selector=self.selector, timeout=60)
                for event in events:
                    if self._stop.is_set():
                        return
                    obj = event["raw_object"]
                    obj.setdefault("apiVersion", api_version)
                    obj.setdefault("kind", kind)
                    reason = drifted(str(event["type"]), obj, self.inventory())
                    if reason:
                        self.on_drift(reason)
                delay = 1.0
            except Exception as exc:  # the apiserver restarts, the watch expires: watch again
                log.debug("watch restarted", extra={"kind": kind, "error": str(exc)})
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
