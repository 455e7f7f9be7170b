"""Which watch events mean drift: only changes to what we applied, never status churn."""

from __future__ import annotations

from typing import Any

from openstack_gitops import api
from openstack_gitops.canonical import canonical_hash
from openstack_gitops.kube.objects import ObjectKey
from reconciler.engine.watch import drifted
from reconciler.plan import ownership
from reconciler.plan.inventory import Entry, Inventory

FIELDS = {"f:spec": {"f:replicas": {}}}


def deployment(fields: dict[str, Any] = FIELDS, status: int = 1) -> dict[str, Any]:
    obj = ownership.stamp({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "nova-api-osapi", "namespace": "openstack"}, "spec": {}}, "cloud", "nova")
    obj["metadata"]["managedFields"] = [{"manager": api.FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields},
                                        {"manager": "kube-controller-manager", "operation": "Update",
                                         "subresource": "status", "fieldsV1": {"f:status": {}}}]
    obj["status"] = {"observedGeneration": status}
    return obj


def inventory_for(obj: dict[str, Any]) -> Inventory:
    return Inventory({ObjectKey.of(obj): Entry("nova", ownership.applied_hash(obj) or "",
                                                canonical_hash(FIELDS), "apps/v1")})


def test_status_update_is_not_drift() -> None:
    obj = deployment(status=7)
    assert drifted("MODIFIED", obj, inventory_for(deployment())) is None


def test_taken_field_is_drift() -> None:
    obj = deployment(fields={"f:spec": {}})
    obj["metadata"]["managedFields"].append({"manager": "kubectl-edit", "operation": "Update",
                                             "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    reason = drifted("MODIFIED", obj, inventory_for(deployment()))
    assert reason is not None and "kubectl-edit" in reason


def test_deleted_owned_object_is_drift_and_unknown_objects_are_ignored() -> None:
    obj = deployment()
    assert drifted("DELETED", obj, inventory_for(obj)) == "Deployment/openstack/nova-api-osapi was deleted"
    assert drifted("DELETED", obj, Inventory()) is None
