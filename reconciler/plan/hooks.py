"""Helm hooks, given back the meaning ``helm template`` flattens away. Pure.

``helm install`` and ``helm upgrade`` run a chart's hook objects at lifecycle events; ``helm
template`` prints them as ordinary objects. Applied as such, test Pods fail their dry-run (their
ServiceAccount does not exist), pre-delete Jobs run at install time (glance-clean deletes
Secrets), and the post-install Jobs (db-init, db-sync, ks-user, ...) never run again on an
upgrade because a Job is never re-applied. This module sorts a chart's render into its ordinary
objects and its hooks, and decides, per chart and per pass, which hooks run:

- a chart whose render is new (no recorded revision) is *installed*: pre-install hooks before
  its objects, post-install hooks after them;
- a chart whose render changed since its hooks last completed is *upgraded*: pre-upgrade and
  post-upgrade hooks, every one re-run (delete and re-create), as Helm does on every upgrade;
- a chart whose render did not change runs nothing (a no-op reconcile never touches a hook);
- a chart switched off is *deleted*: its pre-delete hooks run before its objects are pruned;
- test hooks never run (``helm test`` is an operator's command, not a reconcile).
Within a phase hooks run in ``helm.sh/hook-weight`` order, each weight waited for before the next.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import groupby
from types import MappingProxyType
from typing import TypeVar

from openstack_gitops.api import HOOK_REVISION_ANNOTATION
from openstack_gitops.kube import objects as kobjects
from openstack_gitops.kube.objects import Manifest, ObjectKey
from reconciler.plan import ownership
from reconciler.plan.diff import RESOURCE_POLICY_ANNOTATION, Desired
from reconciler.plan.manifests import RenderInvalid

HOOK_ANNOTATION = "helm.sh/hook"
WEIGHT_ANNOTATION = "helm.sh/hook-weight"
DELETE_POLICY_ANNOTATION = "helm.sh/hook-delete-policy"
E = TypeVar("E", bound=StrEnum)


class Event(StrEnum):
    """A Helm hook event (the values of ``helm.sh/hook``)."""

    PRE_INSTALL = "pre-install"
    POST_INSTALL = "post-install"
    PRE_UPGRADE = "pre-upgrade"
    POST_UPGRADE = "post-upgrade"
    PRE_DELETE = "pre-delete"
    POST_DELETE = "post-delete"
    PRE_ROLLBACK = "pre-rollback"
    POST_ROLLBACK = "post-rollback"
    TEST = "test"
    TEST_SUCCESS = "test-success"  # Helm 2's name, still accepted by Helm 3
    TEST_FAILURE = "test-failure"


TEST_EVENTS = frozenset({Event.TEST, Event.TEST_SUCCESS, Event.TEST_FAILURE})


class DeletePolicy(StrEnum):
    """The values of ``helm.sh/hook-delete-policy``."""

    BEFORE_HOOK_CREATION = "before-hook-creation"
    HOOK_SUCCEEDED = "hook-succeeded"
    HOOK_FAILED = "hook-failed"


class ChartEvent(StrEnum):
    """What happens to one chart in this pass, as Helm would name the command."""

    INSTALL = "install"
    UPGRADE = "upgrade"
    DELETE = "delete"


# chart event -> (hook event run before the chart's objects, hook event run after them)
PHASES: Mapping[ChartEvent, tuple[Event, Event | None]] = {
    ChartEvent.INSTALL: (Event.PRE_INSTALL, Event.POST_INSTALL),
    ChartEvent.UPGRADE: (Event.PRE_UPGRADE, Event.POST_UPGRADE),
    ChartEvent.DELETE: (Event.PRE_DELETE, None),  # post-delete would run after the prune: not supported
}


@dataclass(frozen=True)
class Hook:
    """One hook object of a chart, with what its annotations mean."""

    key: ObjectKey
    chart: str
    events: frozenset[Event]
    weight: int
    delete_policies: frozenset[DeletePolicy]
    keep: bool  # helm.sh/resource-policy: keep: never deleted by us, not even to re-create it
    manifest: Manifest

    @property
    def api_version(self) -> str:
        return str(self.manifest.get("apiVersion", ""))

    @property
    def is_job(self) -> bool:
        return self.key.kind == "Job"

    @property
    def recreate(self) -> bool:
        """Delete a live copy before creating this one.

        Helm's default policy is before-hook-creation. A Job is always re-created (its spec is
        immutable and a finished Job never runs again), unless it is kept.
        """
        if self.keep:
            return False
        return self.is_job or not self.delete_policies or DeletePolicy.BEFORE_HOOK_CREATION in self.delete_policies

    @property
    def delete_on_success(self) -> bool:
        return DeletePolicy.HOOK_SUCCEEDED in self.delete_policies and not self.keep

    @property
    def delete_on_failure(self) -> bool:
        return DeletePolicy.HOOK_FAILED in self.delete_policies and not self.keep

    def sort_key(self) -> tuple[int, str, str]:
        return (self.weight, self.key.kind, self.key.name)  # Helm sorts by weight, then kind, then name


@dataclass(frozen=True)
class ChartHooks:
    """The hooks one chart runs in this pass, as weight groups, and the revision they complete."""

    chart: str
    event: ChartEvent
    revision: str  # the chart render these hooks belong to ("" for a delete)
    pre: tuple[tuple[Hook, ...], ...]
    post: tuple[tuple[Hook, ...], ...]

    @property
    def hooks(self) -> list[Hook]:
        return [hook for group in (*self.pre, *self.post) for hook in group]


def parse_hook(d: Desired) -> Hook | None:
    """The hook ``d`` is, or None for an ordinary object; raises RenderInvalid for a malformed one."""
    annotations = kobjects.annotations_of(d.manifest)
    raw = annotations.get(HOOK_ANNOTATION)
    if raw is None:
        return None
    where = f"{d.key.kind}/{d.key.name}"
    events = frozenset(_parse_enum(Event, raw, d.service, where, HOOK_ANNOTATION))
    if not events:
        raise RenderInvalid(d.service, where, f"{HOOK_ANNOTATION} is empty (expected one of: {_names(Event)})")
    weight_text = str(annotations.get(WEIGHT_ANNOTATION, "0")).strip() or "0"
    try:
        weight = int(weight_text)
    except ValueError:
        raise RenderInvalid(d.service, where, f"{WEIGHT_ANNOTATION} {weight_text!r} is not an integer") from None
    policies = frozenset(_parse_enum(DeletePolicy, annotations.get(DELETE_POLICY_ANNOTATION, ""), d.service, where,
                                     DELETE_POLICY_ANNOTATION))
    keep = str(annotations.get(RESOURCE_POLICY_ANNOTATION, "")).strip() == "keep"
    return Hook(d.key, d.service, events, weight, policies, keep, d.manifest)


def _parse_enum(enum: type[E], raw: str, chart: str, where: str, annotation: str) -> list[E]:
    out = []
    for part in str(raw).split(","):
        name = part.strip()
        if not name:
            continue
        try:
            out.append(enum(name))
        except ValueError:
            raise RenderInvalid(chart, where, f"{annotation}: unknown value {name!r} "
                                f"(expected one of: {_names(enum)})") from None
    return out


def _names(enum: type[StrEnum]) -> str:
    return ", ".join(e.value for e in enum)


def split(desired: Iterable[Desired]) -> tuple[list[Desired], list[Hook]]:
    """(ordinary objects, hooks); test hooks are dropped: they are never applied."""
    objects: list[Desired] = []
    hooks: list[Hook] = []
    for d in desired:
        hook = parse_hook(d)
        if hook is None:
            objects.append(d)
        elif not hook.events <= TEST_EVENTS:
            hooks.append(hook)
    return objects, hooks


def chart_revisions(objects: Iterable[Desired], hooks: Iterable[Hook]) -> dict[str, str]:
    """chart -> a digest of its whole render (objects and hooks): it changes exactly when Helm would
    call ``helm upgrade`` with something new, so equal digests mean a no-op for the hooks too."""
    rows: dict[str, list[str]] = {}
    for key, chart, manifest in [*((d.key, d.service, d.manifest) for d in objects),
                                 *((h.key, h.chart, h.manifest) for h in hooks)]:
        rows.setdefault(chart, []).append(f"{key.to_json()}={ownership.applied_hash(manifest) or ''}")
    return {chart: hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]
            for chart, lines in sorted(rows.items())}


def with_revision(hook: Hook, revision: str) -> Hook:
    """The hook stamped with the chart revision it runs for (how a resumed pass knows it already ran)."""
    manifest = copy.deepcopy(hook.manifest)
    manifest.setdefault("metadata", {}).setdefault("annotations", {})[HOOK_REVISION_ANNOTATION] = revision
    return Hook(hook.key, hook.chart, hook.events, hook.weight, hook.delete_policies, hook.keep, manifest)


def chart_event(revision: str, recorded: str | None) -> ChartEvent | None:
    """Install when no run of the chart's hooks ever completed, upgrade when its render changed since."""
    if recorded is None:
        return ChartEvent.INSTALL
    return ChartEvent.UPGRADE if recorded != revision else None


def weight_groups(hooks: Iterable[Hook], event: Event | None) -> tuple[tuple[Hook, ...], ...]:
    """The hooks of ``event``, grouped by weight, lowest first."""
    if event is None:
        return ()
    chosen = sorted((h for h in hooks if event in h.events), key=Hook.sort_key)
    return tuple(tuple(group) for _, group in groupby(chosen, key=lambda h: h.weight))


def plan_hooks(hooks: Sequence[Hook], revisions: Mapping[str, str], recorded: Mapping[str, str],
               removed: Mapping[str, Sequence[Hook]] = MappingProxyType({})) -> dict[str, ChartHooks]:
    """Which hooks run in this pass, per chart.

    ``revisions``: the render's chart revisions; ``recorded``: the revisions whose hooks last
    completed; ``removed``: charts switched off, with their (re-rendered) hooks. A chart with a
    new revision is listed even without hooks, so its revision gets recorded once it applied.
    """
    by_chart: dict[str, list[Hook]] = {}
    for hook in hooks:
        by_chart.setdefault(hook.chart, []).append(hook)
    out: dict[str, ChartHooks] = {}
    for chart, revision in revisions.items():
        event = chart_event(revision, recorded.get(chart))
        if event is None:
            continue
        before, after = PHASES[event]
        own = [with_revision(h, revision) for h in by_chart.get(chart, [])]
        out[chart] = ChartHooks(chart, event, revision, weight_groups(own, before), weight_groups(own, after))
    for chart, own_hooks in removed.items():
        before, _ = PHASES[ChartEvent.DELETE]
        out[chart] = ChartHooks(chart, ChartEvent.DELETE, "", weight_groups(own_hooks, before), ())
    return out
