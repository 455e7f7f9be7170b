"""Where the inventory lives: a ConfigMap next to the custom resource, written only when it changed."""

from __future__ import annotations

from reconciler.edges.kube import Cluster
from reconciler.model.spec import Spec
from reconciler.plan.inventory import Inventory
from reconciler.plan.objects import FIELD_MANAGER, MANAGED_BY_LABEL

KEY = "inventory.json"


def name(spec: Spec) -> str:
    return f"{spec.name}-inventory"


def load(cluster: Cluster, spec: Spec) -> Inventory:
    live = cluster.get("v1", "ConfigMap", name(spec), spec.namespace)
    return Inventory.from_json(((live or {}).get("data") or {}).get(KEY))


def save(cluster: Cluster, spec: Spec, inventory: Inventory) -> None:
    text = inventory.to_json()
    live = cluster.get("v1", "ConfigMap", name(spec), spec.namespace)
    if live is not None and ((live.get("data") or {}).get(KEY)) == text:
        return
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name(spec), "namespace": spec.namespace,
                                "labels": {MANAGED_BY_LABEL: FIELD_MANAGER}},
                   "data": {KEY: text}})
