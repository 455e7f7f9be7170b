"""Pure planning: create / update / unchanged / drift / recreate / prune decisions."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.plan import objects
from reconciler.plan.diff import Action, Desired, EmptyRenderRefused, plan
from reconciler.plan.inventory import Entry, Inventory
from reconciler.plan.objects import ObjectKey

ORDER = ("openstack-gitops", "mariadb", "keystone", "nova")
OUR_FIELDS = {"f:data": {"f:a": {}}}


def cm(name: str, data: dict[str, str], service: str = "keystone") -> dict[str, Any]:
    raw = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "openstack"},
           "data": data}
    return objects.stamp(raw, "cloud", service)


def desired(obj: dict[str, Any], service: str = "keystone") -> Desired:
    return Desired(ObjectKey.of(obj), service, obj)


def live_of(obj: dict[str, Any], fields: dict[str, Any] | None = None, other: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {**obj, "metadata": {**obj["metadata"]}}
    managed = [{"manager": objects.FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields or OUR_FIELDS}]
    if other:
        managed.append({"manager": other, "operation": "Update", "fieldsV1": {"f:data": {"f:b": {}}}})
    out["metadata"]["managedFields"] = managed
    return out


def entry(obj: dict[str, Any], service: str = "keystone", fields: dict[str, Any] | None = None) -> Entry:
    return Entry(service, objects.applied_hash(obj) or "", objects.canonical_hash(fields or OUR_FIELDS), "v1")


def test_stamp_is_deterministic_and_hash_covers_content() -> None:
    a, b = cm("x", {"a": "1"}), cm("x", {"a": "1"})
    assert objects.applied_hash(a) == objects.applied_hash(b)
    assert objects.applied_hash(cm("x", {"a": "2"})) != objects.applied_hash(a)
    assert a["metadata"]["labels"][objects.OWNER_LABEL] == "cloud"


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
    if case == "changed-in-git":
        live = {ObjectKey.of(old): live_of(old)}
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
    job = objects.stamp(raw, "cloud", "nova")
    old = {**job, "metadata": {**job["metadata"], "annotations": {objects.HASH_ANNOTATION: "old"}}}
    result = plan([desired(job, "nova")], {ObjectKey.of(job): old}, Inventory(), ORDER)
    assert result.steps[0].action is Action.RECREATE


def test_prune_only_ours_and_not_protected_in_reverse_order() -> None:
    keep = cm("kept", {"a": "1"})
    gone_keystone = cm("gone-ks", {"a": "1"})
    gone_nova = cm("gone-nova", {"a": "1"}, service="nova")
    protected = cm("protected", {"a": "1"})
    protected["metadata"]["annotations"][objects.PRUNE_ANNOTATION] = "disabled"
    foreign = cm("foreign", {"a": "1"})
    foreign["metadata"]["labels"] = {}
    inv = Inventory({ObjectKey.of(o): entry(o, s) for o, s in
                     [(keep, "keystone"), (gone_keystone, "keystone"), (gone_nova, "nova"), (protected, "keystone"),
                      (foreign, "keystone")]})
    live = {ObjectKey.of(o): live_of(o) for o in (keep, gone_keystone, gone_nova, protected, foreign)}
    result = plan([desired(keep)], live, inv, ORDER)
    prunes = [s.key.name for s in result.of(Action.PRUNE)]
    assert prunes == ["gone-nova", "gone-ks"]  # nova after keystone in apply order: deleted first
    assert {s.key.name for s in result.of(Action.KEEP)} == {"protected", "foreign"}


def test_already_deleted_object_is_not_pruned_again() -> None:
    gone = cm("gone", {"a": "1"})
    keep = cm("kept", {"a": "1"})
    inv = Inventory({ObjectKey.of(gone): entry(gone), ObjectKey.of(keep): entry(keep)})
    result = plan([desired(keep)], {ObjectKey.of(keep): live_of(keep)}, inv, ORDER)
    assert result.of(Action.PRUNE) == []


def test_empty_render_is_refused_when_we_own_objects() -> None:
    obj = cm("x", {"a": "1"})
    with pytest.raises(EmptyRenderRefused):
        plan([], {}, Inventory({ObjectKey.of(obj): entry(obj)}), ORDER)
    assert plan([], {}, Inventory(), ORDER).steps == ()


def test_apply_order_namespaces_first_then_services_then_kinds() -> None:
    ns = objects.stamp({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "openstack"}}, "cloud",
                       "openstack-gitops")
    dep = objects.stamp({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "keystone-api", "namespace": "openstack"}}, "cloud", "keystone")
    db = objects.stamp({"apiVersion": "apps/v1", "kind": "StatefulSet",
                        "metadata": {"name": "mariadb-server", "namespace": "openstack"}}, "cloud", "mariadb")
    secret = objects.stamp({"apiVersion": "v1", "kind": "Secret",
                            "metadata": {"name": "keystone-db", "namespace": "openstack"}}, "cloud", "keystone")
    result = plan([desired(dep), desired(db, "mariadb"), desired(secret), desired(ns, "openstack-gitops")],
                  {}, Inventory(), ORDER)
    assert [s.key.name for s in result.steps] == ["openstack", "mariadb-server", "keystone-db", "keystone-api"]


def test_inventory_round_trip() -> None:
    obj = cm("x", {"a": "1"})
    inv = Inventory({ObjectKey.of(obj): entry(obj)})
    assert Inventory.from_json(inv.to_json()) == inv
    assert len(inv.updated({ObjectKey.of(obj): None})) == 0
