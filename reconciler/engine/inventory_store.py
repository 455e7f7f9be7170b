"""Where the inventory lives: a ConfigMap next to the custom resource, written only when it changed.

Beside the inventory it keeps the *names* (never the values) of the credentials this cloud has
generated, so a deleted credentials Secret is recognised as lost, not as a first install, and
the chart revisions whose Helm hooks last completed (plan.hooks: install, upgrade or nothing).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from openstack_gitops.api import FIELD_MANAGER, MANAGED_BY_LABEL
from openstack_gitops.kube.client import Cluster
from reconciler.engine.identity import CloudRef
from reconciler.plan.inventory import Inventory

KEY = "inventory.json"
CREDENTIALS_KEY = "credential-names.json"
HOOKS_KEY = "hook-revisions.json"
INPUTS_KEY = "render-inputs"  # digest of the inputs of the last complete pass (reconcile.render_inputs)


@dataclass(frozen=True)
class Stored:
    inventory: Inventory
    credential_names: frozenset[str] | None  # None: nothing recorded yet (new cloud, or one from before the record)
    hook_revisions: Mapping[str, str] = field(default_factory=dict)  # chart -> revision whose hooks completed
    render_inputs: str = ""


def name(ref: CloudRef) -> str:
    return f"{ref.name}-inventory"


def load(cluster: Cluster, ref: CloudRef) -> Stored:
    data = ((cluster.get("v1", "ConfigMap", name(ref), ref.namespace) or {}).get("data")) or {}
    names = data.get(CREDENTIALS_KEY)
    hooks = data.get(HOOKS_KEY)
    return Stored(Inventory.from_json(data.get(KEY)), frozenset(json.loads(names)) if names else None,
                  json.loads(hooks) if hooks else {}, data.get(INPUTS_KEY, ""))


def save(cluster: Cluster, ref: CloudRef, inventory: Inventory, credential_names: Iterable[str],
         hook_revisions: Mapping[str, str] | None = None, render_inputs: str | None = None) -> None:
    """Write the record if it changed; ``hook_revisions`` and ``render_inputs`` None keep the stored ones."""
    want = {KEY: inventory.to_json(), CREDENTIALS_KEY: json.dumps(sorted(set(credential_names)))}
    live = cluster.get("v1", "ConfigMap", name(ref), ref.namespace)
    if hook_revisions is None:
        kept = ((live or {}).get("data") or {}).get(HOOKS_KEY)
        if kept:
            want[HOOKS_KEY] = kept
    elif hook_revisions:
        want[HOOKS_KEY] = json.dumps(dict(sorted(hook_revisions.items())), separators=(",", ":"))
    inputs = ((live or {}).get("data") or {}).get(INPUTS_KEY) if render_inputs is None else render_inputs
    if inputs:
        want[INPUTS_KEY] = inputs
    if live is not None and (live.get("data") or {}) == want:
        return
    cluster.apply({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name(ref), "namespace": ref.namespace,
                                "labels": {MANAGED_BY_LABEL: FIELD_MANAGER}},
                   "data": want})
