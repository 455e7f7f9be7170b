"""Pair desired objects with live ones and the inventory, and decide an action for each.

Pure. This is where "unchanged means untouched" is decided: an object whose live copy carries
the hash we would apply, and whose fields we own are exactly those we owned after our last
apply, needs no request at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from openstack_gitops import api
from openstack_gitops.kube import objects as kobjects
from openstack_gitops.kube.objects import Manifest, ObjectKey
from reconciler.plan import ownership
from reconciler.plan.inventory import Inventory
from reconciler.plan.order import sort_key

# Kinds whose spec cannot be updated in place once created: a change means delete + create.
IMMUTABLE_SPEC_KINDS = frozenset({"Job"})


# Helm's "never delete this" annotation (`keep`): Helm leaves such an object in place when a release
# drops it, and so does prune (glance's image PVCs carry it; hooks.py honours it for hook objects).
RESOURCE_POLICY_ANNOTATION = "helm.sh/resource-policy"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    RECREATE = "recreate"
    UNCHANGED = "unchanged"
    PRUNE = "prune"
    KEEP = "keep"  # left the render but protected (prune: disabled, or helm.sh/resource-policy: keep)
    HOOK = "hook"  # a Helm hook object created for its chart's install, upgrade or delete (plan.hooks)
    FORGET = "forget"  # in the inventory, but gone from the cluster or no longer ours: only the record goes


WRITES = frozenset({Action.CREATE, Action.UPDATE, Action.RECREATE, Action.PRUNE, Action.HOOK})
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
DEFAULT_MAX_PRUNE_FRACTION = 0.25


@dataclass(frozen=True)
class Desired:
    """One rendered, stamped object and the service it belongs to."""

    key: ObjectKey
    service: str
    manifest: Manifest

    @property
    def hash(self) -> str:
        return ownership.applied_hash(self.manifest) or ""


@dataclass(frozen=True)
class Step:
    key: ObjectKey
    action: Action
    service: str
    reason: str
    manifest: Manifest | None  # desired object (None for prune/keep/forget)
    drift: bool = False
    takeover: tuple[str, ...] = ()  # hand-edit managers whose fields we take back before applying

    def __str__(self) -> str:
        return f"{self.action.value} {self.key} ({self.reason})"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    def of(self, *actions: Action) -> list[Step]:
        return [s for s in self.steps if s.action in actions]

    @property
    def writes(self) -> list[Step]:
        return [s for s in self.steps if s.action in WRITES]

    def counts(self) -> dict[str, int]:
        out = {a.value: 0 for a in Action}
        for step in self.steps:
            out[step.action.value] += 1
        return out


class PruneRefused(Exception):
    """The render would delete more of a cloud than the spec says to switch off; nothing is done."""


@dataclass(frozen=True)
class PruneGuard:
    """How much a render may prune of services the spec still switches on.

    Objects of a service the spec switches off go without limit: that is the explicit way to
    remove them. Of the services still on, a render may neither remove every workload of one of
    them nor more than ``max_fraction`` of the whole inventory: both look like a broken chart or
    a bad commit (every template deleted), and on a cloud they mean deleted databases.
    """

    switched_on: frozenset[str]
    max_fraction: float = DEFAULT_MAX_PRUNE_FRACTION


def plan(desired: Sequence[Desired], live: Mapping[ObjectKey, Manifest], inventory: Inventory,
         service_order: Sequence[str], guard: PruneGuard | None = None,
         hooks: frozenset[ObjectKey] = frozenset()) -> Plan:
    """Decide, per object, what the executor must do; apply order first, prunes in reverse order.

    ``hooks``: keys of the render's Helm hooks; they run by their own rules (plan.hooks), so the
    plan neither applies nor prunes them. Raises PruneRefused when the prunes pass the guard's
    bounds (or the render is empty).
    """
    if not desired and len(inventory):
        raise PruneRefused(
            f"the render is empty but {len(inventory)} objects are applied; refusing to prune everything")
    steps = [_decide(d, live.get(d.key), inventory) for d in desired]
    steps.sort(key=lambda s: sort_key(s.key, s.service, service_order))
    wanted = {d.key for d in desired}
    gone = [_decide_gone(k, live.get(k), inventory) for k in inventory if k not in wanted and k not in hooks]
    gone.sort(key=lambda s: sort_key(s.key, s.service, service_order), reverse=True)
    if guard is not None:
        check_prunes([s for s in gone if s.action is Action.PRUNE], inventory, guard)
    return Plan(tuple(steps + gone))


def unchanged_plan(inventory: Inventory, live: Mapping[ObjectKey, Manifest]) -> Plan | None:
    """The plan of a render equal to the last complete one (``render_inputs`` unchanged): every inventory
    object unchanged, or None when any live object differs from its record (then render and ``plan``).

    Helm hooks (live objects stamped with the chart revision they ran for) get no step, as in ``plan``,
    so both plans read the same (the status written after them too).
    """
    steps = []
    for key, entry in inventory.entries.items():
        obj = live.get(key)
        if (obj is None or ownership.applied_hash(obj) != entry.applied_hash or not entry.fields_hash
                or ownership.owned_fields_hash(obj) != entry.fields_hash or ownership.manual_managers(obj)):
            return None
        if api.HOOK_REVISION_ANNOTATION not in kobjects.annotations_of(obj):
            steps.append(Step(key, Action.UNCHANGED, entry.service, "unchanged (render inputs unchanged)", None))
    return Plan(tuple(steps))


def check_prunes(prunes: Sequence[Step], inventory: Inventory, guard: PruneGuard) -> None:
    """Raise PruneRefused, naming each service, when the prunes pass the guard's bounds."""
    unexpected = [s for s in prunes if s.service in guard.switched_on]
    if not unexpected:
        return
    reasons = []
    pruned = {s.key for s in unexpected}
    for service in sorted({s.service for s in unexpected}):
        workloads = [k for k, e in inventory.entries.items() if e.service == service and k.kind in WORKLOAD_KINDS]
        if workloads and all(k in pruned for k in workloads):
            reasons.append(f"every workload of {service} ({len(workloads)}: "
                           f"{', '.join(str(k) for k in sorted(workloads)[:3])}{' ...' if len(workloads) > 3 else ''})")
    bound = guard.max_fraction * len(inventory)
    if len(unexpected) > bound:
        reasons.append(f"{len(unexpected)} of {len(inventory)} applied objects "
                       f"({100 * len(unexpected) / len(inventory):.0f}%, the bound is {100 * guard.max_fraction:.0f}%)")
    if reasons:
        services = ", ".join(sorted({s.service for s in unexpected}))
        raise PruneRefused(
            f"the render would delete {' and '.join(reasons)} although the spec still switches on {services}; "
            "nothing was applied. Switch a service off in the spec to remove it, or fix the charts")


def _decide(d: Desired, live: Manifest | None, inventory: Inventory) -> Step:
    entry = inventory.get(d.key)
    if live is None:
        if entry is not None and entry.applied_hash:
            return Step(d.key, Action.CREATE, d.service, "deleted outside Git; re-creating", d.manifest, drift=True)
        return Step(d.key, Action.CREATE, d.service, "not in the cluster", d.manifest)
    if ownership.applied_hash(live) != d.hash:
        edited = entry is not None and entry.applied_hash == d.hash  # we applied this content; someone changed it
        why = "its applied content was edited outside Git" if edited else "changed in Git"
        if d.key.kind in IMMUTABLE_SPEC_KINDS:
            return Step(d.key, Action.RECREATE, d.service, f"{why}; its spec is immutable", d.manifest, drift=edited)
        return Step(d.key, Action.UPDATE, d.service, why, d.manifest, drift=edited)
    if entry is None:
        return Step(d.key, Action.UPDATE, d.service, "not in the inventory (adopting)", d.manifest)
    manual = ownership.manual_managers(live)
    if manual:
        return Step(d.key, Action.UPDATE, d.service, f"drift: edited by hand ({', '.join(manual)}); taking it back",
                    d.manifest, drift=True, takeover=tuple(manual))
    if entry.applied_hash != d.hash or not entry.fields_hash:
        return Step(d.key, Action.UPDATE, d.service, "inventory record is stale (an apply was interrupted)",
                    d.manifest)
    if ownership.owned_fields_hash(live) != entry.fields_hash:
        others = ", ".join(ownership.other_managers(live)) or "unknown"
        return Step(d.key, Action.UPDATE, d.service, f"drift: fields we own were changed (managers: {others})",
                    d.manifest, drift=True)
    return Step(d.key, Action.UNCHANGED, d.service, "unchanged", d.manifest)


def _decide_gone(key: ObjectKey, live: Manifest | None, inventory: Inventory) -> Step:
    """An inventory object the render no longer has: prune it, keep it, or just forget the record."""
    entry = inventory.get(key)
    service = entry.service if entry else ""
    if live is None:
        return Step(key, Action.FORGET, service, "already gone from the cluster", None)
    if kobjects.labels_of(live).get(api.MANAGED_BY_LABEL) != api.FIELD_MANAGER:
        return Step(key, Action.FORGET, service, "no longer carries our ownership label", None)
    annotations = kobjects.annotations_of(live)
    if annotations.get(api.PRUNE_ANNOTATION) == "disabled":
        return Step(key, Action.KEEP, service, f"annotated {api.PRUNE_ANNOTATION}=disabled", None)
    if str(annotations.get(RESOURCE_POLICY_ANNOTATION, "")).strip() == "keep":
        return Step(key, Action.KEEP, service, f"annotated {RESOURCE_POLICY_ANNOTATION}=keep", None)
    return Step(key, Action.PRUNE, service, "removed from Git", None)
