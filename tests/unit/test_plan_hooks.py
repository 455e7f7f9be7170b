"""plan.hooks: what each Helm hook annotation becomes, and which hooks run in a pass. Pure, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from openstack_gitops.api import HOOK_REVISION_ANNOTATION
from openstack_gitops.kube.objects import ObjectKey
from reconciler.engine.reconcile import hook_record
from reconciler.plan import ownership
from reconciler.plan.diff import Action, Desired, Plan, plan
from reconciler.plan.hooks import (
    ChartEvent,
    DeletePolicy,
    Event,
    chart_event,
    chart_revisions,
    parse_hook,
    plan_hooks,
    split,
    weight_groups,
)
from reconciler.plan.inventory import Entry, Inventory
from reconciler.plan.manifests import RenderInvalid


def obj(kind: str, name: str, chart: str = "keystone", **annotations: str) -> Desired:
    manifest: dict[str, Any] = {"apiVersion": "batch/v1" if kind == "Job" else "v1", "kind": kind,
                                "metadata": {"name": name, "namespace": "openstack", "annotations": annotations}}
    stamped = ownership.stamp(manifest, "cloud", chart)
    return Desired(ObjectKey.of(stamped), chart, stamped)


def hook(kind: str, name: str, events: str, weight: str | None = None, policy: str | None = None,
         chart: str = "keystone", keep: bool = False) -> Desired:
    annotations = {"helm.sh/hook": events}
    if weight is not None:
        annotations["helm.sh/hook-weight"] = weight
    if policy is not None:
        annotations["helm.sh/hook-delete-policy"] = policy
    if keep:
        annotations["helm.sh/resource-policy"] = "keep"
    return obj(kind, name, chart, **annotations)


# -- what one annotation set means -------------------------------------------------------
@pytest.mark.parametrize(("desired", "events", "weight", "recreate", "on_success", "on_failure"), [
    # OpenStack-Helm's db-sync: post-install,post-upgrade, a weight, Helm's default delete policy
    (hook("Job", "keystone-db-sync", "post-install,post-upgrade", "-4"),
     {Event.POST_INSTALL, Event.POST_UPGRADE}, -4, True, False, False),
    # keystone-fernet-keys: a pre-install Secret that must survive (resource-policy keep, hook-failed)
    (hook("Secret", "keystone-fernet-keys", "pre-install", policy="hook-failed", keep=True),
     {Event.PRE_INSTALL}, 0, False, False, False),
    # keystone-credential-cleanup: pre-delete, removed after it ran, whatever the result
    (hook("Job", "keystone-credential-cleanup", "pre-delete", policy="hook-succeeded, hook-failed"),
     {Event.PRE_DELETE}, 0, True, True, True),
    # a non-Job hook without policy: before-hook-creation (Helm's default) re-creates it
    (hook("ConfigMap", "x", "pre-upgrade", " 5 "), {Event.PRE_UPGRADE}, 5, True, False, False),
    # a non-Job hook with only hook-succeeded: applied over its live copy
    (hook("ConfigMap", "y", "post-install", policy="hook-succeeded"), {Event.POST_INSTALL}, 0, False, True, False),
])
def test_annotations_mean_what_helm_means(desired: Desired, events: set[Event], weight: int, recreate: bool,
                                          on_success: bool, on_failure: bool) -> None:
    parsed = parse_hook(desired)
    assert parsed is not None
    assert (parsed.events, parsed.weight, parsed.recreate, parsed.delete_on_success, parsed.delete_on_failure) == (
        events, weight, recreate, on_success, on_failure)


def test_an_ordinary_object_is_no_hook() -> None:
    assert parse_hook(obj("Deployment", "keystone-api")) is None


@pytest.mark.parametrize(("desired", "message"), [
    (hook("Job", "a", "post-instal"), "unknown value 'post-instal'"),
    (hook("Job", "b", " , "), "is empty"),
    (hook("Job", "c", "post-install", weight="first"), "'first' is not an integer"),
    (hook("Job", "d", "post-install", policy="always"), "unknown value 'always'"),
])
def test_a_malformed_hook_is_refused_naming_the_object(desired: Desired, message: str) -> None:
    with pytest.raises(RenderInvalid) as err:
        parse_hook(desired)
    assert message in str(err.value) and f"Job/{desired.key.name}" in str(err.value)


def test_split_drops_test_hooks_and_keeps_order() -> None:
    api, sync, test_pod, old_test = (obj("Deployment", "api"), hook("Job", "sync", "post-install"),
                                     hook("Pod", "keystone-test", "test"), hook("Pod", "rally", "test-success"))
    objects, hooks = split([api, sync, test_pod, old_test])
    assert objects == [api]
    assert [h.key.name for h in hooks] == ["sync"]
    assert DeletePolicy.HOOK_SUCCEEDED not in hooks[0].delete_policies


# -- which hooks run --------------------------------------------------------------------
@pytest.mark.parametrize(("recorded", "expected"), [
    (None, ChartEvent.INSTALL),  # never completed: install (also after a failed first install)
    ("r1", None),  # unchanged render: a no-op runs no hook
    ("r0", ChartEvent.UPGRADE),  # the chart's render changed
])
def test_chart_event(recorded: str | None, expected: ChartEvent | None) -> None:
    assert chart_event("r1", recorded) == expected


def test_weight_groups_run_lowest_first_then_kind_and_name() -> None:
    _, hooks = split([hook("Job", "ks-endpoints", "post-install", "-1"), hook("Job", "db-init", "post-install", "-5"),
                      hook("Job", "db-sync", "post-install,post-upgrade", "-4"),
                      hook("Job", "ks-user", "post-install", "-1"), hook("Job", "bootstrap", "post-install")])
    groups = weight_groups(hooks, Event.POST_INSTALL)
    assert [[h.key.name for h in g] for g in groups] == [["db-init"], ["db-sync"], ["ks-endpoints", "ks-user"],
                                                         ["bootstrap"]]
    assert [[h.key.name for h in g] for g in weight_groups(hooks, Event.POST_UPGRADE)] == [["db-sync"]]
    assert weight_groups(hooks, None) == ()


def keystone_render() -> tuple[list[Desired], list[Any]]:
    return split([obj("Deployment", "keystone-api"),
                  hook("Secret", "keystone-fernet-keys", "pre-install", policy="hook-failed", keep=True),
                  hook("Job", "keystone-db-sync", "post-install,post-upgrade", "-4"),
                  hook("Job", "keystone-credential-cleanup", "pre-delete"),
                  obj("Deployment", "memcached", chart="memcached")])


def test_install_runs_pre_and_post_install_hooks_stamped_with_the_revision() -> None:
    objects, hooks = keystone_render()
    revisions = chart_revisions(objects, hooks)
    due = plan_hooks(hooks, revisions, recorded={})
    keystone = due["keystone"]
    assert keystone.event is ChartEvent.INSTALL
    assert [[h.key.name for h in g] for g in keystone.pre] == [["keystone-fernet-keys"]]
    assert [[h.key.name for h in g] for g in keystone.post] == [["keystone-db-sync"]]
    assert all(h.manifest["metadata"]["annotations"][HOOK_REVISION_ANNOTATION] == revisions["keystone"]
               for h in keystone.hooks)
    assert due["memcached"].hooks == []  # listed anyway, so its revision is recorded


def test_upgrade_runs_only_upgrade_hooks_and_a_noop_runs_none() -> None:
    objects, hooks = keystone_render()
    revisions = chart_revisions(objects, hooks)
    upgraded = plan_hooks(hooks, revisions, recorded={"keystone": "old", "memcached": revisions["memcached"]})
    assert set(upgraded) == {"keystone"}
    assert upgraded["keystone"].event is ChartEvent.UPGRADE
    assert upgraded["keystone"].pre == ()  # the fernet Secret is pre-install only
    assert [h.key.name for h in upgraded["keystone"].hooks] == ["keystone-db-sync"]
    assert plan_hooks(hooks, revisions, recorded=revisions) == {}


def test_any_change_to_a_chart_changes_its_revision_and_only_its_own() -> None:
    objects, hooks = keystone_render()
    before = chart_revisions(objects, hooks)
    changed = [obj("Deployment", "keystone-api", replicas="2") if d.key.name == "keystone-api" else d for d in objects]
    after = chart_revisions(changed, hooks)
    assert after["keystone"] != before["keystone"] and after["memcached"] == before["memcached"]


def test_a_switched_off_chart_runs_its_pre_delete_hooks() -> None:
    _, hooks = keystone_render()
    due = plan_hooks([], {}, recorded={"keystone": "r"}, removed={"keystone": [h for h in hooks
                                                                              if Event.PRE_DELETE in h.events]})
    assert due["keystone"].event is ChartEvent.DELETE
    assert [h.key.name for h in due["keystone"].hooks] == ["keystone-credential-cleanup"]


@pytest.mark.parametrize(("recorded", "completed", "deleted", "charts", "expected"), [
    ({}, {"keystone": "r1"}, set(), ("keystone",), {"keystone": "r1"}),
    ({"keystone": "r1"}, {"keystone": "r2"}, set(), ("keystone",), {"keystone": "r2"}),
    ({"keystone": "r1", "glance": "g"}, {}, {"glance"}, ("keystone",), {"keystone": "r1"}),  # switched off: forgotten
    ({"keystone": "r1"}, {}, set(), ("keystone",), {"keystone": "r1"}),  # a failed pass keeps the last record
])
def test_hook_record(recorded: dict[str, str], completed: dict[str, str], deleted: set[str],
                     charts: tuple[str, ...], expected: dict[str, str]) -> None:
    assert hook_record(recorded, completed, deleted, charts) == expected


def test_the_plan_neither_applies_nor_prunes_hooks() -> None:
    objects, hooks = keystone_render()
    live = {d.key: d.manifest for d in objects}
    job = next(h for h in hooks if h.key.name == "keystone-db-sync")
    inventory = Inventory({**{d.key: Entry(d.service, d.hash, "", d.manifest["apiVersion"]) for d in objects},
                           job.key: Entry("keystone", "h", "f", "batch/v1")})
    result: Plan = plan(objects, live, inventory, ("keystone", "memcached"), hooks=frozenset(h.key for h in hooks))
    assert job.key not in {s.key for s in result.steps}
    without = plan(objects, live, inventory, ("keystone", "memcached"))
    assert [s.key for s in without.of(Action.PRUNE, Action.FORGET)] == [job.key]  # what the hooks set prevents
