"""Pure pieces of the engine: cloud identity, the next inventory from a change set, errors that
cross context managers."""

from __future__ import annotations

from typing import Any

import pytest

from openstack_gitops.api import SOURCE_ANNOTATION
from openstack_gitops.kube.client import ApiError
from openstack_gitops.kube.objects import ObjectKey
from reconciler.engine.changeset import Change, ChangeSet
from reconciler.engine.identity import CloudRef, other_homes, refusal
from reconciler.engine.reconcile import PhaseClock
from reconciler.plan.diff import Action
from reconciler.plan.inventory import Entry, Inventory


def cr(name: str, namespace: str, source: str, applied: bool) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "annotations": {SOURCE_ANNOTATION: source}},
            "status": {"lastAppliedCommit": "abc" if applied else ""}}


@pytest.mark.parametrize(
    ("case", "resources", "applied", "stale"),
    [
        ("first-install", [], [], []),
        ("same-home", [cr("cloud", "openstack", "S", True)], [], []),
        ("namespace-changed", [cr("cloud", "openstack", "S", True)], [CloudRef("cloud", "openstack")], []),
        ("renamed", [cr("old", "openstack2", "S", True)], [CloudRef("old", "openstack2")], []),
        ("other-source-same-name", [cr("cloud", "openstack", "OTHER", True)], [], []),
        ("never-applied-elsewhere", [cr("cloud", "openstack", "S", False)], [], [CloudRef("cloud", "openstack")]),
    ],
)
def test_other_homes(case: str, resources: list[dict[str, Any]], applied: list[CloudRef],
                     stale: list[CloudRef]) -> None:
    here = CloudRef("cloud", "openstack2") if case != "same-home" else CloudRef("cloud", "openstack")
    assert other_homes(resources, here, "S") == (applied, stale)


def test_refusal_names_both_homes_and_what_changed() -> None:
    text = refusal(CloudRef("cloud", "openstack2"), CloudRef("cloud", "openstack"))
    assert text.startswith("spec.namespace changed from openstack/cloud to openstack2/cloud")
    assert "metadata.name changed" in refusal(CloudRef("new", "openstack"), CloudRef("cloud", "openstack"))


def key(name: str) -> ObjectKey:
    return ObjectKey("", "ConfigMap", "openstack", name)


def test_next_inventory_records_applies_drops_prunes_and_keeps_failures() -> None:
    base = Inventory({key("pruned"): Entry("nova", "h", "f", "v1"), key("gone"): Entry("nova", "h", "f", "v1"),
                      key("failed"): Entry("nova", "old", "f", "v1"), key("kept"): Entry("nova", "h", "f", "v1")})
    base = base.with_pending({key("new"): ("nova", "v1"), key("new-failed"): ("nova", "v1")})
    done = Entry("nova", "new-hash", "new-fields", "v1")
    changes = ChangeSet([Change(key("new"), Action.CREATE, "nova", entry=done),
                         Change(key("new-failed"), Action.CREATE, "nova", error="boom"),
                         Change(key("failed"), Action.UPDATE, "nova", error="boom"),
                         Change(key("pruned"), Action.PRUNE, "nova"),
                         Change(key("gone"), Action.FORGET, "nova"),
                         Change(key("kept"), Action.KEEP, "nova")])
    after = changes.next_inventory(base)
    assert set(after.entries) == {key("new"), key("new-failed"), key("failed"), key("kept")}
    assert after.entries[key("new")] == done
    assert after.entries[key("new-failed")].applied_hash == ""  # still named: never orphaned
    assert after.entries[key("failed")].applied_hash == "old"


def test_api_error_crosses_a_context_manager() -> None:
    """It was a frozen dataclass: Python could not set its __traceback__ and raised FrozenInstanceError."""
    clock = PhaseClock()
    with pytest.raises(ApiError) as raised, clock("plan"):
        raise ApiError("Deployment/openstack/x", "get", 0, "ServerUnreachable", "connection refused")
    assert raised.value.status == 0 and "connection refused" in str(raised.value)
    assert "plan" in clock.seconds
