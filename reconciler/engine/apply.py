"""Carry out a plan: dry-run every write, record it in the inventory, apply in order, then prune.

Nothing is written until every changed object, and every Helm hook due in this pass, passed a
server-side dry-run. Objects that cannot be dry-run yet (their Namespace or CRD is new) are
dry-run right after stage 1 creates those, before anything else is written. Every object about
to be created is named in the inventory before it is written, so a process killed mid-apply
forgets nothing it created.

Then the lanes of ``plan.schedule``: per chart, its pre-install/pre-upgrade hooks, its objects
in kind groups, then its post-install/post-upgrade hooks. Outside a release upgrade every chart
is a lane of its own, all side by side (their pods wait for their dependencies anyway), their
object writes sharing one pool of ``concurrency`` requests; a release upgrade is one lane, chart
after chart, each followed by the health gate, so the next service starts only after the last
one's db-sync. Charts switched off run their pre-delete hooks before anything is pruned.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import ObjectKey
from reconciler.engine.changeset import Change, ChangeSet
from reconciler.engine.hook_runner import HookFailed, HookRunner
from reconciler.engine.outcome import Phase, PhaseFailed, Reason, Retry
from reconciler.plan import ownership, schedule
from reconciler.plan.diff import Action, Plan, Step
from reconciler.plan.hooks import ChartEvent, ChartHooks, Hook
from reconciler.plan.inventory import Entry, Inventory
from reconciler.plan.order import PREREQUISITE_KINDS, service_rank

Progress = Callable[[str, int, int], None]  # (phase, done, total)


class _Counter:
    """Objects written so far, across lanes (progress), and when the last object write ended."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.last_write = total, 0, 0.0
        self._lock = threading.Lock()

    def add(self, n: int) -> int:
        with self._lock:
            self.done += n
            self.last_write = time.monotonic()
            return self.done


class DryRunFailed(Exception):
    """At least one changed object was refused by the server's dry-run; nothing was written."""

    def __init__(self, errors: Sequence[ApiError], wrote_prerequisites: bool = False) -> None:
        self.errors = list(errors)
        self.wrote_prerequisites = wrote_prerequisites
        lines = "; ".join(str(e) for e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"server-side dry-run refused {len(self.errors)} object(s): {lines}{more}")


@dataclass
class Executor:
    cluster: Cluster
    inventory: Inventory
    service_order: Sequence[str]
    concurrency: int = 8
    progress: Progress = lambda _phase, _done, _total: None
    # called with the inventory plus every object about to be created, before any of them is
    # written (once the Namespace the inventory lives in exists); it must persist it or raise
    record: Callable[[Inventory], None] = lambda _inventory: None
    # called once every dry-run passed and stage 1 exists, before any other write (credentials)
    before_first_write: Callable[[], None] = lambda: None
    # called after each service that had writes, before the next one starts (upgrade health gate)
    gate: Callable[[str], None] | None = None
    # what was done so far: kept when run() raises, so a failed reconcile still reports and records it
    changes: ChangeSet = field(default_factory=ChangeSet)
    recorded: Inventory | None = None  # the inventory ``record`` persisted, pending entries included
    # leader election: False once this process may no longer write; checked before every wave, every
    # inventory or credentials write and every prune, so a process that lost its Lease stops mid-run
    fence: Callable[[], bool] = lambda: True
    # Helm hooks due in this pass, per chart (plan.hooks.plan_hooks), and who runs them
    hooks: Mapping[str, ChartHooks] = field(default_factory=dict)
    hook_runner: HookRunner | None = None
    completed: dict[str, str] = field(default_factory=dict)  # chart -> revision whose hooks all completed
    deleted: set[str] = field(default_factory=set)  # charts switched off whose pre-delete hooks completed
    # where the time went: "dry-run" (every dry-run request), "objects" (the services' lanes until their last
    # object write), "hooks" (after that, until every hook chain completed)
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, plan: Plan) -> ChangeSet:
        changes = self.changes
        for step in plan.of(Action.UNCHANGED, Action.KEEP, Action.FORGET):
            changes.add(Change(step.key, step.action, step.service))
        writes = plan.of(Action.CREATE, Action.UPDATE, Action.RECREATE)
        hook_steps = [Step(h.key, Action.HOOK, h.chart, "hook", h.manifest)
                      for chart in self.hooks.values() for h in chart.hooks]
        new_namespaces = {s.key.name for s in writes if s.key.kind == "Namespace" and s.action is Action.CREATE}
        checked, deferred = self._dry_run([*writes, *hook_steps], new_namespaces)
        writes = [s for s in checked if s.action is not Action.HOOK]
        namespaces = [s for s in writes if s.key.kind == "Namespace"]
        prerequisites = [s for s in writes if s.key.kind in PREREQUISITE_KINDS and s.key.kind != "Namespace"]
        rest = [s for s in writes if s.key.kind not in PREREQUISITE_KINDS]
        if namespaces:  # the inventory lives in the namespace: it must exist before anything is recorded
            self._check_fence("the Namespace")
            self._apply_wave(namespaces, changes)
            if changes.failed:
                return changes
        self._check_fence("recording the inventory")
        self._record_pending([*writes, *hook_steps])
        if prerequisites:
            self._check_fence("the CRDs")
            self._apply_wave(prerequisites, changes)
            if changes.failed:
                return changes
            self._wait_established(prerequisites)
        if deferred:
            checked, _ = self._dry_run([s for s in [*rest, *hook_steps] if s.key in deferred], set(),
                                       after_stage_one=True)
            by_key = {s.key: s for s in checked if s.action is not Action.HOOK}
            rest = [by_key.get(s.key, s) for s in rest]
        if rest or hook_steps:
            self._check_fence("saving credentials")
            self.before_first_write()
        self._apply_services(rest, changes)
        if changes.failed:
            return changes  # never prune after a failed apply: the render may be half-live
        self._pre_delete(changes)
        self._prune(plan.of(Action.PRUNE), changes)
        return changes

    def _apply_services(self, rest: list[Step], changes: ChangeSet) -> None:
        """The lanes of ``plan.schedule`` side by side, the stages of each in order; object writes of every
        lane share one pool of ``concurrency`` requests. A failed write (or a lost Lease, a stalled upgrade)
        stops every lane at its next stage (stages already running finish: a started hook chain is waited
        for); a failed hook ends its own lane only. The first failure is raised once every lane stopped."""
        installs = {c: h for c, h in self.hooks.items() if h.event is not ChartEvent.DELETE}
        lanes = schedule.lanes(rest, installs, self.service_order, upgrade=self.gate is not None)
        progress = _Counter(len(rest))
        stop = threading.Event()
        started = time.monotonic()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="apply") as requests, \
                ThreadPoolExecutor(max(1, len(lanes)), thread_name_prefix="lane") as lane_pool:
            running = [lane_pool.submit(self._run_lane, lane, installs, requests, progress, stop, changes)
                       for lane in lanes]
            failures = [exc for exc in (f.exception() for f in running) if exc is not None]
        self.seconds["objects"] = round(max(progress.last_write, started) - started, 4)
        self.seconds["hooks"] = round(time.monotonic() - max(progress.last_write, started), 4)
        if failures:
            raise failures[0]

    def _run_lane(self, lane: schedule.Lane, installs: Mapping[str, ChartHooks], requests: ThreadPoolExecutor,
                  progress: _Counter, stop: threading.Event, changes: ChangeSet) -> None:
        try:
            for stage in lane:
                if stop.is_set() or changes.failed:
                    return
                chart_hooks = installs.get(stage.service)
                if stage.kind is schedule.StageKind.PRE_HOOKS and chart_hooks is not None:
                    self._run_hooks(chart_hooks, chart_hooks.pre)
                elif stage.kind is schedule.StageKind.OBJECTS:
                    self._check_fence(f"applying {stage.service}")
                    self._apply_wave(stage.steps, changes, requests)
                    self.progress("apply", progress.add(len(stage.steps)), progress.total)
                elif stage.kind is schedule.StageKind.POST_HOOKS and chart_hooks is not None:
                    self._post_hooks(chart_hooks)
                elif stage.kind is schedule.StageKind.GATE and self.gate is not None:
                    self.gate(stage.service)  # raises when the service does not become healthy in time
        except HookFailed:
            raise  # its chart's later hooks do not run; the other charts go on (nothing of theirs waits on it)
        except BaseException:
            stop.set()
            raise

    def _post_hooks(self, chart_hooks: ChartHooks) -> None:
        self._run_hooks(chart_hooks, chart_hooks.post)
        self.completed[chart_hooks.chart] = chart_hooks.revision

    def _run_hooks(self, chart_hooks: ChartHooks, groups: Sequence[Sequence[Hook]]) -> None:
        if not groups:
            return
        if self.hook_runner is None:
            raise HookFailed(chart_hooks.chart, groups[0][0], "not run: this executor has no hook runner")
        self._check_fence(f"running the hooks of {chart_hooks.chart}")
        self.hook_runner.run(chart_hooks, groups, self.changes)

    def _pre_delete(self, changes: ChangeSet) -> None:
        """Charts switched off run their pre-delete hooks, in reverse apply order, before any prune;
        the hook objects go with the chart (Helm would leave them behind)."""
        deletes = [h for h in self.hooks.values() if h.event is ChartEvent.DELETE]
        deletes.sort(key=lambda h: service_rank(h.chart, self.service_order), reverse=True)
        for chart_hooks in deletes:
            self._run_hooks(chart_hooks, chart_hooks.pre)
            for hook in chart_hooks.hooks:
                if self.hook_runner is not None and not hook.keep and not hook.delete_on_success:
                    self._check_fence("removing a pre-delete hook")
                    self.hook_runner.remove(hook)
                    changes.add(Change(hook.key, Action.FORGET, chart_hooks.chart))
            self.deleted.add(chart_hooks.chart)

    def _check_fence(self, what: str) -> None:
        if not self.fence():
            raise PhaseFailed(Phase.APPLY, Reason.LEADERSHIP_LOST,
                              f"no longer the leader before {what}: this process writes nothing more",
                              retry=Retry.WAIT_FOR_CHANGE, changes=self.changes)

    def _record_pending(self, writes: Sequence[Step]) -> None:
        pending = {s.key: (s.service, str((s.manifest or {}).get("apiVersion", ""))) for s in writes
                   if s.key not in self.inventory.entries}
        if pending:
            self.recorded = self.inventory.with_pending(pending)
            self.record(self.recorded)

    # -- dry-run ---------------------------------------------------------------
    def _dry_run(self, steps: list[Step], new_namespaces: set[str],
                 after_stage_one: bool = False) -> tuple[list[Step], set[ObjectKey]]:
        """Dry-run every step; returns the steps (immutable refusals become RECREATE) and the keys
        that can only be dry-run after stage 1 (their Namespace or CRD does not exist yet).
        Any other refusal raises DryRunFailed."""
        errors: list[ApiError] = []
        deferred: set[ObjectKey] = set()
        started = time.monotonic()

        def one(step: Step) -> Step:
            if step.action is Action.RECREATE:
                return step  # the live object's immutable spec is replaced, not patched
            if step.key.namespace in new_namespaces:
                deferred.add(step.key)
                return step
            assert step.manifest is not None
            try:
                self.cluster.apply(step.manifest, dry_run=True)
            except ApiError as exc:
                if exc.immutable and step.action is Action.HOOK:
                    return step  # a hook's live copy is deleted before it is created again
                if exc.immutable:
                    return replace(step, action=Action.RECREATE, reason=f"immutable field changed: {exc.message}")
                if exc.status == 404 and not after_stage_one:
                    deferred.add(step.key)  # a custom resource whose CRD stage 1 creates
                    return step
                errors.append(exc)
            return step

        out: list[Step] = []
        with ThreadPoolExecutor(self.concurrency) as pool:
            for i, result in enumerate(pool.map(one, steps), 1):
                out.append(result)
                if i % 50 == 0 or i == len(steps):
                    self.progress("dry-run", i, len(steps))
        self.seconds["dry-run"] = round(self.seconds.get("dry-run", 0.0) + time.monotonic() - started, 4)
        if errors:
            raise DryRunFailed(errors, wrote_prerequisites=after_stage_one)
        return out, deferred

    # -- apply -----------------------------------------------------------------
    def _apply_wave(self, steps: Iterable[Step], changes: ChangeSet, pool: ThreadPoolExecutor | None = None) -> None:
        """Write ``steps`` side by side; every result is recorded before the first error (a lost Lease) is raised."""
        if pool is None:
            with ThreadPoolExecutor(self.concurrency, thread_name_prefix="apply") as own:
                self._apply_wave(steps, changes, own)
            return
        futures = [pool.submit(self._apply_one, step) for step in steps]
        errors = []
        for future in futures:
            try:
                changes.add(future.result())
            except Exception as exc:  # re-raised below, once every write is recorded
                errors.append(exc)
        if errors:
            raise errors[0]

    def _apply_one(self, step: Step) -> Change:
        assert step.manifest is not None
        api_version = str(step.manifest["apiVersion"])
        self._check_fence(f"writing {step.key}")  # every write: lanes run side by side
        try:
            if step.action is Action.RECREATE:
                self.cluster.delete_and_wait(str(step.manifest["apiVersion"]), step.key)
            if step.takeover:
                self._take_fields(api_version, step)
            applied = self.cluster.apply(step.manifest)
        except ApiError as exc:
            return Change(step.key, step.action, step.service, error=str(exc), drift=step.drift)
        entry = Entry(step.service, ownership.applied_hash(applied) or "", ownership.owned_fields_hash(applied) or "",
                      str(applied.get("apiVersion", api_version)))
        return Change(step.key, step.action, step.service, drift=step.drift, entry=entry)

    def _take_fields(self, api_version: str, step: Step, attempts: int = 5) -> None:
        """Move the fields a person edited into our ownership, so the apply below removes what Git lacks.

        The patch is guarded by the resourceVersion read just before it; a controller writing the
        object meanwhile (a Deployment rolling out after ``kubectl set image``) fails the guard
        with 422/409, and the take is read and tried again.
        """
        for attempt in range(attempts):
            live = self.cluster.get(api_version, step.key.kind, step.key.name, step.key.namespace or None)
            if live is None:
                return
            meta = live.get("metadata") or {}
            try:
                self.cluster.patch_json(api_version, step.key, [
                    {"op": "test", "path": "/metadata/resourceVersion", "value": meta.get("resourceVersion")},
                    {"op": "replace", "path": "/metadata/managedFields",
                     "value": ownership.taken_managed_fields(live, step.takeover)}])
                return
            except ApiError as exc:
                if exc.status not in (409, 422) or attempt == attempts - 1:
                    raise
                time.sleep(0.1 * (attempt + 1))


    def _wait_established(self, steps: Sequence[Step]) -> None:
        """CRDs must be Established before their kinds can be used."""
        for step in steps:
            if step.key.kind == "CustomResourceDefinition":
                self.cluster.wait_crd_established(step.key.name)

    # -- prune -----------------------------------------------------------------
    def _prune(self, steps: Sequence[Step], changes: ChangeSet) -> None:
        for step in steps:  # already in reverse apply order
            self._check_fence("pruning")
            entry = self.inventory.get(step.key)
            api_version = entry.api_version if entry else "v1"
            try:
                self.cluster.delete(api_version, step.key)
            except ApiError as exc:
                changes.add(Change(step.key, Action.PRUNE, step.service, error=str(exc)))
                continue
            changes.add(Change(step.key, Action.PRUNE, step.service))
