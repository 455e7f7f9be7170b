"""Pure planning: create / update / unchanged / drift / recreate / prune decisions."""

from __future__ import annotations

from typing import Any

import pytest

from openstack_gitops import api
from openstack_gitops.canonical import canonical_hash
from openstack_gitops.kube import objects as kobjects
from openstack_gitops.kube.objects import ObjectKey
from reconciler.plan import ownership
from reconciler.plan.diff import Action, Desired, PruneGuard, PruneRefused, plan, unchanged_plan
from reconciler.plan.inventory import Entry, Inventory

ORDER = ("openstack-gitops", "mariadb", "keystone", "nova")
OUR_FIELDS = {"f:data": {"f:a": {}}}


def cm(name: str, data: dict[str, str], service: str = "keystone") -> dict[str, Any]:
    raw = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "openstack"},
           "data": data}
    return ownership.stamp(raw, "cloud", service)


def desired(obj: dict[str, Any], service: str = "keystone") -> Desired:
    return Desired(ObjectKey.of(obj), service, obj)


def live_of(obj: dict[str, Any], fields: dict[str, Any] | None = None, other: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {**obj, "metadata": {**obj["metadata"]}}
    managed = [{"manager": api.FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields or OUR_FIELDS}]
    if other:
        managed.append({"manager": other, "operation": "Update", "fieldsV1": {"f:data": {"f:b": {}}}})
    out["metadata"]["managedFields"] = managed
    return out


def entry(obj: dict[str, Any], service: str = "keystone", fields: dict[str, Any] | None = None) -> Entry:
    return Entry(service, ownership.applied_hash(obj) or "", canonical_hash(fields or OUR_FIELDS), "v1")


def test_stamp_is_deterministic_and_hash_covers_content() -> None:
    a, b = cm("x", {"a": "1"}), cm("x", {"a": "1"})
    assert ownership.applied_hash(a) == ownership.applied_hash(b)
    assert ownership.applied_hash(cm("x", {"a": "2"})) != ownership.applied_hash(a)
    assert a["metadata"]["labels"][api.OWNER_LABEL] == "cloud"


@pytest.mark.parametrize(
    ("case", "action", "drift"),
    [
        ("missing-live", Action.CREATE, False),
        ("changed-in-git", Action.UPDATE, False),
        ("unchanged", Action.UNCHANGED, False),
        ("drift-fields-taken", Action.UPDATE, True),
        ("not-in-inventory", Action.UPDATE, False),
    ],
)
def test_decisions(case: str, action: Action, drift: bool) -> None:
    want = cm("keystone-etc", {"a": "1"})
    old = cm("keystone-etc", {"a": "0"})
    live: dict[ObjectKey, Any] = {}
    inventory = Inventory({ObjectKey.of(want): entry(want)})
    if case == "missing-live":
        inventory = Inventory()
    elif case == "changed-in-git":
        live = {ObjectKey.of(old): live_of(old)}
        inventory = Inventory({ObjectKey.of(old): entry(old)})
    elif case == "unchanged":
        live = {ObjectKey.of(want): live_of(want)}
    elif case == "drift-fields-taken":
        live = {ObjectKey.of(want): live_of(want, fields={"f:data": {}}, other="kubectl-edit")}
    elif case == "not-in-inventory":
        live = {ObjectKey.of(want): live_of(want)}
        inventory = Inventory()
    result = plan([desired(want)], live, inventory, ORDER)
    (step,) = result.steps
    assert (step.action, step.drift) == (action, drift)
    if drift:
        assert "kubectl-edit" in step.reason


def test_changed_job_is_recreated() -> None:
    raw = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "db-sync", "namespace": "o"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "v2"}]}}}}
    job = ownership.stamp(raw, "cloud", "nova")
    old = {**job, "metadata": {**job["metadata"], "annotations": {api.HASH_ANNOTATION: "old"}}}
    result = plan([desired(job, "nova")], {ObjectKey.of(job): old}, Inventory(), ORDER)
    assert result.steps[0].action is Action.RECREATE


def test_prune_only_ours_and_not_protected_in_reverse_order() -> None:
    keep = cm("kept", {"a": "1"})
    gone_keystone = cm("gone-ks", {"a": "1"})
    gone_nova = cm("gone-nova", {"a": "1"}, service="nova")
    protected = cm("protected", {"a": "1"})
    protected["metadata"]["annotations"][api.PRUNE_ANNOTATION] = "disabled"
    helm_keep = cm("helm-keep", {"a": "1"})  # glance's image PVCs: Helm never deletes them either
    helm_keep["metadata"]["annotations"]["helm.sh/resource-policy"] = "keep"
    foreign = cm("foreign", {"a": "1"})
    foreign["metadata"]["labels"] = {}
    inv = Inventory({ObjectKey.of(o): entry(o, s) for o, s in
                     [(keep, "keystone"), (gone_keystone, "keystone"), (gone_nova, "nova"), (protected, "keystone"),
                      (helm_keep, "keystone"), (foreign, "keystone")]})
    live = {ObjectKey.of(o): live_of(o) for o in (keep, gone_keystone, gone_nova, protected, helm_keep, foreign)}
    result = plan([desired(keep)], live, inv, ORDER)
    prunes = [s.key.name for s in result.of(Action.PRUNE)]
    assert prunes == ["gone-nova", "gone-ks"]  # nova after keystone in apply order: deleted first
    assert {s.key.name for s in result.of(Action.KEEP)} == {"protected", "helm-keep"}
    assert {s.key.name for s in result.of(Action.FORGET)} == {"foreign"}  # no longer ours: only the record goes


def test_already_deleted_object_is_forgotten_not_pruned_again() -> None:
    gone = cm("gone", {"a": "1"})
    keep = cm("kept", {"a": "1"})
    inv = Inventory({ObjectKey.of(gone): entry(gone), ObjectKey.of(keep): entry(keep)})
    result = plan([desired(keep)], {ObjectKey.of(keep): live_of(keep)}, inv, ORDER)
    assert result.of(Action.PRUNE) == []
    assert [s.key.name for s in result.of(Action.FORGET)] == ["gone"]


def test_empty_render_is_refused_when_we_own_objects() -> None:
    obj = cm("x", {"a": "1"})
    with pytest.raises(PruneRefused):
        plan([], {}, Inventory({ObjectKey.of(obj): entry(obj)}), ORDER)
    assert plan([], {}, Inventory(), ORDER).steps == ()


def test_apply_order_namespaces_first_then_services_then_kinds() -> None:
    ns = ownership.stamp({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openstack"}}, "cloud",
                       "openstack-gitops")
    dep = ownership.stamp({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "keystone-api", "namespace": "openstack"}}, "cloud", "keystone")
    db = ownership.stamp({"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "metadata": {"name": "mariadb-server", "namespace": "openstack"}}, "cloud", "mariadb")
    secret = ownership.stamp({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "keystone-db", "namespace": "openstack"}}, "cloud", "keystone")
    result = plan([desired(dep), desired(db, "mariadb"), desired(secret), desired(ns, "openstack-gitops")],
                  {}, Inventory(), ORDER)
    assert [s.key.name for s in result.steps] == ["openstack", "mariadb-server", "keystone-db", "keystone-api"]


def test_inventory_round_trip() -> None:
    obj = cm("x", {"a": "1"})
    inv = Inventory({ObjectKey.of(obj): entry(obj)})
    assert Inventory.from_json(inv.to_json()) == inv
    assert len(inv.updated({ObjectKey.of(obj): None})) == 0


def manual_edit(obj: dict[str, Any], manager: str, fields: dict[str, Any]) -> dict[str, Any]:
    out = live_of(obj)
    out["metadata"]["managedFields"].append({"manager": manager, "operation": "Update", "fieldsV1": fields})
    return out


@pytest.mark.parametrize(
    ("case", "action", "drift", "takeover"),
    [
        ("deleted-by-hand", Action.CREATE, True, ()),
        ("new-object", Action.CREATE, False, ()),
        ("key-added-by-kubectl-edit", Action.UPDATE, True, ("kubectl-edit",)),
        ("annotated-by-kubectl", Action.UPDATE, True, ("kubectl-annotate",)),
        ("rollout-restart-is-left-alone", Action.UNCHANGED, False, ()),
        ("controller-update-is-not-drift", Action.UNCHANGED, False, ()),
        ("replicas-by-kubectl-edit-left-to-scaler", Action.UNCHANGED, False, ()),
        ("pending-inventory-entry", Action.UPDATE, False, ()),
        ("stale-inventory-hash", Action.UPDATE, False, ()),
        ("hash-annotation-edited", Action.UPDATE, True, ()),
    ],
)
def test_drift_decisions(case: str, action: Action, drift: bool, takeover: tuple[str, ...]) -> None:
    want = cm("keystone-etc", {"a": "1"})
    key = ObjectKey.of(want)
    inventory = Inventory({key: entry(want)})
    live: dict[ObjectKey, Any] = {key: live_of(want)}
    if case == "deleted-by-hand":
        live = {}
    elif case == "new-object":
        live, inventory = {}, Inventory()
    elif case == "key-added-by-kubectl-edit":
        live[key] = manual_edit(want, "kubectl-edit", {"f:data": {"f:extra": {}}})
    elif case == "annotated-by-kubectl":
        live[key] = manual_edit(want, "kubectl-annotate", {"f:metadata": {"f:annotations": {"f:x": {}}}})
    elif case == "rollout-restart-is-left-alone":
        live[key] = manual_edit(want, "kubectl-rollout", {"f:spec": {"f:template": {}}})
    elif case == "controller-update-is-not-drift":
        live[key] = manual_edit(want, "kube-controller-manager", {"f:metadata": {"f:annotations": {}}})
    elif case == "replicas-by-kubectl-edit-left-to-scaler":
        live[key] = manual_edit(want, "kubectl-edit", {"f:spec": {"f:replicas": {}}})
    elif case == "pending-inventory-entry":
        inventory = Inventory({key: objects_entry_pending()})
    elif case == "stale-inventory-hash":
        inventory = Inventory({key: entry(cm("keystone-etc", {"a": "0"}))})
    elif case == "hash-annotation-edited":
        edited = live_of(want)
        edited["metadata"]["annotations"] = {api.HASH_ANNOTATION: "edited"}
        live[key] = edited
    (step,) = plan([desired(want)], live, inventory, ORDER).steps
    assert (step.action, step.drift, step.takeover) == (action, drift, takeover), step.reason


def objects_entry_pending() -> Entry:
    return Inventory().with_pending({ObjectKey("", "ConfigMap", "openstack", "keystone-etc"): ("keystone", "v1")}
                                    ).entries[ObjectKey("", "ConfigMap", "openstack", "keystone-etc")]


def test_taken_fields_move_to_our_apply_entry_but_replicas_stay() -> None:
    obj = cm("keystone-etc", {"a": "1"})
    live = manual_edit(obj, "kubectl-edit", {"f:data": {"f:extra": {}}, "f:spec": {"f:replicas": {}}})
    taken = ownership.taken_managed_fields(live, ["kubectl-edit"])
    ours = next(e for e in taken if e["manager"] == api.FIELD_MANAGER)
    assert ours["fieldsV1"] == {"f:data": {"f:a": {}, "f:extra": {}}}
    assert [e["fieldsV1"] for e in taken if e["manager"] == "kubectl-edit"] == [{"f:spec": {"f:replicas": {}}}]


def workload(name: str, service: str, kind: str = "Deployment") -> dict[str, Any]:
    raw = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "openstack"}}
    return ownership.stamp(raw, "cloud", service)


def cloud_inventory() -> tuple[list[dict[str, Any]], Inventory]:
    objs = [workload("nova-api", "nova"), workload("nova-conductor", "nova"),
            workload("keystone-api", "keystone"), cm("keystone-etc", {"a": "1"}),
            *(cm(f"nova-cm-{i}", {"a": "1"}, service="nova") for i in range(6))]
    return objs, Inventory({ObjectKey.of(o): entry(o, kobjects.labels_of(o)[api.SERVICE_LABEL]) for o in objs})


@pytest.mark.parametrize(
    ("case", "kept", "switched_on", "refused"),
    [
        ("service-switched-off-prunes-freely", lambda o: "nova" not in o["metadata"]["name"],
         {"keystone"}, ""),
        ("every-workload-of-an-enabled-service", lambda o: o["kind"] != "Deployment" or "keystone" in
         o["metadata"]["name"], {"keystone", "nova"}, "every workload of nova"),
        ("more-than-the-fraction", lambda o: not o["metadata"]["name"].startswith("nova-cm-"),
         {"keystone", "nova"}, "6 of 10 applied objects"),
        ("a-few-objects-of-an-enabled-service", lambda o: o["metadata"]["name"] != "nova-cm-0",
         {"keystone", "nova"}, ""),
        ("one-of-two-workloads", lambda o: o["metadata"]["name"] != "nova-api", {"keystone", "nova"}, ""),
    ],
)
def test_prune_guard(case: str, kept: Any, switched_on: set[str], refused: str) -> None:
    objs, inventory = cloud_inventory()
    wanted = [desired(o, kobjects.labels_of(o)[api.SERVICE_LABEL]) for o in objs if kept(o)]
    live = {ObjectKey.of(o): live_of(o) for o in objs}
    guard = PruneGuard(frozenset(switched_on), max_fraction=0.25)
    if refused:
        with pytest.raises(PruneRefused, match=refused):
            plan(wanted, live, inventory, ORDER, guard)
    else:
        assert plan(wanted, live, inventory, ORDER, guard).of(Action.PRUNE)


# -- the plan of a pass whose render inputs equal the last complete pass's (no render) ----------
def hook_cm(name: str) -> dict[str, Any]:
    obj = cm(name, {"a": "1"})
    obj["metadata"]["annotations"] = {**obj["metadata"].get("annotations", {}), api.HOOK_REVISION_ANNOTATION: "r1"}
    return obj


@pytest.mark.parametrize(("case", "expected"), [
    ("every-object-as-recorded", ["cfg"]),  # the hook is checked, but gets no step, as in plan()
    ("an-object-deleted", None),
    ("a-field-we-own-taken", None),
    ("edited-by-hand", None),
    ("a-hook-edited-by-hand", None),
])
def test_unchanged_plan_holds_only_while_every_object_is_as_recorded(case: str, expected: list[str] | None) -> None:
    objects = {"cfg": cm("cfg", {"a": "1"}), "db-sync": hook_cm("db-sync")}
    inventory = Inventory({ObjectKey.of(o): entry(o) for o in objects.values()})
    live = {ObjectKey.of(o): live_of(o) for o in objects.values()}
    cfg, hook = ObjectKey.of(objects["cfg"]), ObjectKey.of(objects["db-sync"])
    if case == "an-object-deleted":
        del live[cfg]
    elif case == "a-field-we-own-taken":
        live[cfg] = live_of(objects["cfg"], fields={"f:data": {}})
    elif case == "edited-by-hand":
        live[cfg] = live_of(objects["cfg"], other="kubectl-edit")
    elif case == "a-hook-edited-by-hand":
        live[hook] = live_of(objects["db-sync"], other="kubectl-edit")
    result = unchanged_plan(inventory, live)
    if expected is None:
        assert result is None
    else:
        assert result is not None
        assert [(s.key.name, s.action) for s in result.steps] == [(n, Action.UNCHANGED) for n in expected]
