"""One reconcile, as a straight list of named phases.

fetch -> load -> validate -> credentials -> expand -> render -> plan -> apply (dry-run first,
then stage 1, then services in order, each with its Helm hooks) -> pre-delete hooks -> prune ->
health -> record. Each phase reports progress
and fails with one CamelCase reason; ``loop`` alone decides retry, back-off or wait.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from openstack_gitops import api
from openstack_gitops.health import Health, State, health_of, worst
from openstack_gitops.kube import objects as kobjects
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.model import catalog
from openstack_gitops.model.credentials import complete, lost_credentials, needed_credentials
from openstack_gitops.model.errors import MissingCredentials, SpecInvalid
from openstack_gitops.model.expand import autoscaled_deployments, expand
from openstack_gitops.model.fingerprint import fingerprint
from openstack_gitops.model.releases import UpgradeKind, classify_upgrade
from openstack_gitops.model.spec import Spec
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.backoff import Backoff, poll_until
from reconciler.edges.git import Checkout, GitFetchError, GitSource, redact
from reconciler.edges.helm import Helm, HelmError
from reconciler.engine import identity, inventory_store, pipeline, status
from reconciler.engine.apply import DryRunFailed, Executor
from reconciler.engine.changeset import ChangeSet
from reconciler.engine.hook_runner import DEFAULT_HOOK_TIMEOUT, HookFailed, HookRunner
from reconciler.engine.identity import CloudRef
from reconciler.engine.metrics import Metrics
from reconciler.engine.outcome import Outcome, Phase, PhaseFailed, Reason, Retry, UpgradeStalled
from reconciler.engine.pipeline import PRODUCT_SERVICE, SPEC_FILE
from reconciler.plan import hooks as helm_hooks
from reconciler.plan import manifests, policy
from reconciler.plan.diff import (
    DEFAULT_MAX_PRUNE_FRACTION,
    WRITES,
    Desired,
    Plan,
    PruneGuard,
    PruneRefused,
    plan,
    unchanged_plan,
)
from reconciler.plan.inventory import Inventory

SERVICE_ORDER: tuple[str, ...] = (PRODUCT_SERVICE, *catalog.APPLY_ORDER)
WORKLOAD_KINDS = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
                  ("batch/v1", "Job"))

log = logs.get("reconcile")


Progress = Callable[[str, int, int], None]


class PhaseClock:
    """Wall time per phase of one reconcile (logged, exported, and read by the benchmark)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[phase] = round(time.monotonic() - started, 4)


@dataclass
class Rendered:
    spec: Spec
    values: dict[str, dict[str, Any]]
    desired: list[Desired]
    new_credentials: dict[str, str]
    credential_names: frozenset[str]  # every credential the cloud has after this render (names only)
    hooks: list[helm_hooks.Hook]  # the charts' Helm hooks (test hooks left out): plan.hooks decides when they run
    revisions: dict[str, str]  # chart -> digest of its whole render
    credentials: dict[str, str]  # every credential, for rendering a switched-off chart's pre-delete hooks
    inputs: str = ""  # digest of everything the render depends on (render_inputs)
    shortcut: bool = False  # not rendered: the inputs equal those of the last complete pass (desired is empty)


class Reconciler:
    """Everything one reconcile needs, built once per process; ``reconcile()`` is safe to repeat."""

    def __init__(self, cluster: Cluster, helm: Helm, git: GitSource, metrics: Metrics | None = None,
                 spec_file: str = SPEC_FILE, concurrency: int = 8,
                 progress: Progress = lambda _p, _d, _t: None, upgrade_timeout: float = 1200.0,
                 upgrade_poll: float = 2.0, max_prune_fraction: float = DEFAULT_MAX_PRUNE_FRACTION,
                 still_leader: Callable[[], bool] = lambda: True, hook_timeout: float = DEFAULT_HOOK_TIMEOUT) -> None:
        self.cluster = cluster
        self.helm = helm
        self.git = git
        self.metrics = metrics or Metrics()
        self.spec_file = spec_file
        self.concurrency = concurrency
        self._report = progress
        self.upgrade_timeout = upgrade_timeout  # per service, like rockoon's 1200 s health wait
        self.upgrade_poll = upgrade_poll
        self.max_prune_fraction = max_prune_fraction
        self.still_leader = still_leader  # leader election's fence: checked before every write
        self.hook_timeout = hook_timeout  # per weight group of a chart's Helm hooks
        self.source = identity.source_id(redact(git.url), git.branch, spec_file)
        self.spec: Spec | None = None  # the last spec that loaded and passed validation
        self.inventory = Inventory()  # what we own after the last reconcile (the drift watch compares to it)
        self._facts: tuple[str, list[str]] | None = None
        self._parsed: dict[str, tuple[bytes, list[Desired]]] = {}
        # per-commit memos: a no-op pass re-reads the cluster, not the repo
        self._loaded: tuple[str, Spec] | None = None
        self._validated: tuple[str, str | None] | None = None
        self._rendered: tuple[str, Rendered] | None = None
        self._home: CloudRef | None = None  # the identity last found free of other homes
        self._live: dict[ObjectKey, Manifest] = {}  # what the last plan phase read
        self._apply_seconds: dict[str, float] = {}  # the executor's timings of this pass (Outcome.apply_seconds)
        self._readers = ThreadPoolExecutor(concurrency, thread_name_prefix="list")  # lives as long as we do
        # Git outages: the last good checkout stays enforced, and fetches back off whatever triggers them
        self._checkout: Checkout | None = None
        self._fetch_backoff = Backoff()
        self._fetch_after = 0.0
        self._fetch_error = ""

    def progress(self, phase: str, done: int, total: int) -> None:
        """Progress of a long phase, to the caller (the CLI prints it) and to the metrics."""
        self.metrics.phase.labels(phase).set(done / total if total else 1.0)
        self._report(phase, done, total)

    def _fence(self, phase: Phase, changes: ChangeSet | None = None) -> None:
        """Leader election: a process that lost its Lease stops before its next write, and writes nothing more."""
        if not self.still_leader():
            raise PhaseFailed(phase, Reason.LEADERSHIP_LOST, "no longer the leader: this process writes nothing more",
                              retry=Retry.WAIT_FOR_CHANGE, changes=changes)

    # -- the phases, in order --------------------------------------------------------
    def reconcile(self) -> Outcome:
        started = time.monotonic()
        commit, spec = "", None
        clock = PhaseClock()
        self._apply_seconds = {}
        try:
            self._fence(Phase.FETCH)
            with clock(Phase.FETCH):
                checkout, source_error = self._fetch()  # 1. pin the commit everything below uses
            commit = checkout.commit
            with clock(Phase.LOAD):
                spec = self._load(checkout)  # 2. schema
                ref = CloudRef(spec.name, spec.namespace)
                self._check_home(ref)  # 2b. never move or rename a running cloud
                live_cr = status.read(self.cluster, ref)
                self._validate(spec, checkout, live_cr)  # 2c. meaning
            self.spec = spec
            with clock(Phase.RENDER):
                stored = inventory_store.load(self.cluster, ref)
                rendered = self._render(spec, checkout, stored, live_cr)  # 3-4. credentials, expand, render, parse
            with clock(Phase.PLAN):
                the_plan = self._plan_unchanged(spec, stored.inventory) if rendered.shortcut else None
            if the_plan is None and rendered.shortcut:  # something changed in the cluster: render after all
                with clock(Phase.RENDER):
                    rendered = self._render(spec, checkout, stored, live_cr, shortcut=False)
            if the_plan is None:
                with clock(Phase.PLAN):
                    the_plan = self._plan(spec, rendered, stored.inventory)  # 5. pair desired, live and inventory
            with clock(Phase.APPLY):
                removed = self._removed_hooks(spec, checkout, rendered, stored.inventory)
                due = helm_hooks.plan_hooks(rendered.hooks, rendered.revisions, stored.hook_revisions, removed)
                changes = self._apply(spec, rendered, stored, the_plan, live_cr, due)  # 6-7. dry-run, apply, prune
            with clock(Phase.HEALTH):
                health = self._health(spec, changes)  # 8. workload health per service
            outcome = _applied_outcome(commit, changes, health, source_error)
            with clock(Phase.RECORD):
                self._fence(Phase.RECORD, changes)
                status.record(self.cluster, spec, self.source, commit, checkout.message, outcome, rendered.values,
                              live_cr)  # 9.
        except PhaseFailed as exc:
            outcome = Outcome(commit, False, exc.reason, f"{exc.phase}: {exc}", changes=exc.changes, retry=exc.retry)
            self._record_failure(spec, commit, outcome, exc.report_to)
        except ApiError as exc:  # the cluster went away between phases: the next pass finishes the job
            outcome = Outcome(commit, False, Reason.CLUSTER_UNREACHABLE, logs.scrub(str(exc)), retry=Retry.BACKOFF)
            self._record_failure(spec, commit, outcome)
        except Exception as exc:  # a bug must not kill the loop; it is logged with its traceback
            log.exception("reconcile crashed")
            outcome = Outcome(commit, False, Reason.INTERNAL_ERROR, logs.scrub(f"{type(exc).__name__}: {exc}"),
                              retry=Retry.BACKOFF)
        outcome.duration = time.monotonic() - started
        outcome.phase_seconds = clock.seconds
        outcome.apply_seconds = self._apply_seconds
        self._metrics(outcome)
        return outcome

    def _fetch(self) -> tuple[Checkout, str]:
        """The commit to reconcile, and why it may be stale.

        While Git fails, the last good checkout stays enforced (drift is still corrected) and the
        next fetch waits out an exponential back-off, however often drift or webhooks trigger.
        """
        self.progress("fetch", 0, 1)
        now = time.monotonic()
        if self._checkout is not None and now < self._fetch_after:
            return self._checkout, f"{self._fetch_error} (next fetch in {self._fetch_after - now:.0f}s)"
        try:
            checkout = self.git.fetch()
        except GitFetchError as exc:
            self.metrics.git_errors.labels(exc.reason).inc()
            self._fetch_after = time.monotonic() + self._fetch_backoff.next_delay()
            self._fetch_error = f"{exc.reason}: {exc}"
            if self._checkout is None:
                raise PhaseFailed(Phase.FETCH, Reason.GIT_FETCH_FAILED, self._fetch_error) from exc
            log.warning("git fetch failed; enforcing the last fetched commit",
                        extra={"commit": self._checkout.commit[:12], "error": self._fetch_error})
            return self._checkout, self._fetch_error
        self._fetch_backoff.reset()
        self._fetch_after, self._fetch_error = 0.0, ""
        self._checkout = checkout
        self.progress("fetch", 1, 1)
        log.info("fetched", extra={"commit": checkout.commit[:12], "branch": checkout.branch})
        return checkout, ""

    def _load(self, checkout: Checkout) -> Spec:
        """Load the spec; the same commit gives the same spec, so it is parsed once per commit."""
        if self._loaded is not None and self._loaded[0] == checkout.commit:
            return self._loaded[1]
        spec = self._load_uncached(checkout)
        self._loaded = (checkout.commit, spec)
        return spec

    def _load_uncached(self, checkout: Checkout) -> Spec:
        try:
            return pipeline.load(checkout.path, self.spec_file)
        except pipeline.SpecUnreadable as exc:
            raise PhaseFailed(Phase.LOAD, Reason.SPEC_MISSING, str(exc), retry=Retry.WAIT_FOR_CHANGE) from exc
        except SpecInvalid as exc:
            raise PhaseFailed(Phase.LOAD, Reason.SPEC_INVALID, str(exc), retry=Retry.WAIT_FOR_CHANGE) from exc

    def _check_home(self, ref: CloudRef) -> None:
        """Refuse a spec that moves or renames the cloud this source runs (one LIST per new identity)."""
        if self._home == ref:
            return
        applied, stale = identity.other_homes(status.list_all(self.cluster), ref, self.source)
        if applied:
            raise PhaseFailed(Phase.VALIDATE, Reason.CLOUD_MOVE_REFUSED, identity.refusal(ref, applied[0]),
                              retry=Retry.WAIT_FOR_CHANGE, report_to=applied[0])
        if stale:
            self._fence(Phase.VALIDATE)
        for old in stale:  # a first reconcile that failed there left only its resource behind
            log.info("removing the resource of a never-applied cloud", extra={"cloud": str(old)})
            status.delete(self.cluster, old)
        self._home = ref

    def _validate(self, spec: Spec, checkout: Checkout, live_cr: Manifest | None) -> None:
        current = ((live_cr or {}).get("status") or {}).get("release")
        if self._validated == (checkout.commit, current):
            return  # the same commit against the same running release was valid a moment ago
        errors = pipeline.check(spec, checkout.path, current)
        if not errors:
            self._validated = (checkout.commit, current)
        if errors:
            raise PhaseFailed(Phase.VALIDATE, Reason.SPEC_INVALID, "\n".join(str(e) for e in errors),
                              retry=Retry.WAIT_FOR_CHANGE)

    def _render(self, spec: Spec, checkout: Checkout, stored: inventory_store.Stored,
                live_cr: Manifest | None, shortcut: bool = True) -> Rendered:
        """Expand and render; an unchanged commit with unchanged credentials reuses the last result.

        A fresh process has no last result; when the render's inputs equal those of the last complete
        pass (recorded in the inventory ConfigMap), Helm is not run at all (``shortcut``): the plan
        then checks the live objects against the inventory, and renders after all if any differs.
        """
        ref = CloudRef(spec.name, spec.namespace)
        existing = status.read_credentials(self.cluster, ref)
        self._guard_credentials(spec, existing, stored, live_cr)
        inputs = render_inputs(checkout.commit, fingerprint(existing), self._cluster_facts(), self.helm.binary)
        if self._rendered is not None and self._rendered[0] == inputs:
            return self._rendered[1]
        missing = [name for name in needed_credentials(spec) if not existing.get(name)]
        if shortcut and stored.render_inputs == inputs and not missing:
            logs.redact(*existing.values())
            return Rendered(spec, expand(spec, existing), [], {}, frozenset(existing), [], dict(stored.hook_revisions),
                            existing, inputs, shortcut=True)
        rendered = self._render_uncached(spec, checkout, existing)
        if rendered.new_credentials:  # the next pass reads the completed set back: key the render by it
            inputs = render_inputs(checkout.commit, fingerprint(rendered.credentials), self._cluster_facts(),
                                   self.helm.binary)
        rendered.inputs = inputs
        self._rendered = (inputs, rendered)
        return rendered

    def _guard_credentials(self, spec: Spec, existing: dict[str, str], stored: inventory_store.Stored,
                           live_cr: Manifest | None) -> None:
        """Stop when credentials the running cloud uses are gone from their Secret: new ones would lock
        every service out of its database. Going on needs the Secret restored, or the operator's word."""
        applied_before = bool(((live_cr or {}).get("status") or {}).get("lastAppliedCommit"))
        lost = lost_credentials(existing, needed_credentials(spec), stored.credential_names,
                                cloud_exists=len(stored.inventory) > 0 or applied_before)
        if not lost or status.regenerate_allowed(live_cr):
            return
        ref = CloudRef(spec.name, spec.namespace)
        shown = ", ".join(lost[:6]) + (f" (+{len(lost) - 6} more)" if len(lost) > 6 else "")
        raise PhaseFailed(Phase.CREDENTIALS, Reason.CREDENTIALS_MISSING,
            f"{len(lost)} credential(s) of the running cloud are missing from Secret {ref.namespace}/"
            f"{status.credentials_secret(ref)}: {shown}. New ones would lock their services out of their "
            f"databases, so nothing was applied. Restore the Secret from your backup, or accept new credentials "
            f"with: kubectl -n {ref.namespace} annotate {api.PLURAL} {ref.name} "
            f"{api.REGENERATE_ANNOTATION}=true")

    def _render_uncached(self, spec: Spec, checkout: Checkout, existing: dict[str, str]) -> Rendered:
        credentials, generated = complete(existing, needed_credentials(spec), secrets.token_urlsafe)
        logs.redact(*credentials.values())
        values = expand(spec, credentials)
        kube_version, api_versions = self._cluster_facts()
        try:
            texts = pipeline.render(spec, checkout.path, self.helm, values, kube_version, api_versions,
                                    workers=max(2, min(4, self.concurrency)), progress=self.progress)
        except HelmError as exc:
            raise PhaseFailed(Phase.RENDER, Reason.RENDER_FAILED, logs.scrub(str(exc)),
                              retry=Retry.WAIT_FOR_CHANGE) from exc
        desired = [pipeline.namespace_desired(spec)]
        for chart in values:
            desired.extend(self._desired_of(spec, chart, texts[chart]))
        try:
            objects, hooks = pipeline.split_hooks(desired)
        except manifests.RenderInvalid as exc:
            raise PhaseFailed(Phase.RENDER, Reason.RENDER_INVALID, logs.scrub(str(exc)),
                              retry=Retry.WAIT_FOR_CHANGE) from exc
        errors = pipeline.check_render(spec, objects)
        if errors:
            raise PhaseFailed(Phase.VALIDATE, Reason.SPEC_INVALID, "\n".join(str(e) for e in errors),
                              retry=Retry.WAIT_FOR_CHANGE)
        applied = [*objects, *(Desired(h.key, h.chart, h.manifest) for h in hooks)]
        violations = policy.check(applied, spec.namespace, credentials)
        if violations:
            shown = "; ".join(str(v) for v in violations[:5])
            more = f" (+{len(violations) - 5} more)" if len(violations) > 5 else ""
            raise PhaseFailed(Phase.RENDER, Reason.POLICY_REFUSED,
                              f"{len(violations)} rendered object(s) refused, nothing was applied: {shown}{more}",
                              retry=Retry.WAIT_FOR_CHANGE)
        new = {name: credentials[name] for name in generated}
        revisions = helm_hooks.chart_revisions(objects, hooks)
        return Rendered(spec, values, objects, new, frozenset(credentials), hooks, revisions, credentials)

    def _removed_hooks(self, spec: Spec, checkout: Checkout, rendered: Rendered,
                       inventory: Inventory) -> dict[str, list[helm_hooks.Hook]]:
        """The pre-delete hooks of every chart switched off: the chart rendered once more, as it was on."""
        out: dict[str, list[helm_hooks.Hook]] = {}
        applied = {entry.service for entry in inventory.entries.values()}
        for chart in pipeline.removed_charts(spec, applied):
            ghost = pipeline.spec_with_chart(spec, chart)
            try:
                values = {chart: expand(ghost, rendered.credentials)[chart]}
                kube_version, api_versions = self._cluster_facts()
                text = pipeline.render(ghost, checkout.path, self.helm, values, kube_version, api_versions)[chart]
                _, hooks = pipeline.split_hooks(pipeline.desired_objects(ghost, chart, text))
            except (MissingCredentials, SpecInvalid, HelmError, manifests.RenderInvalid) as exc:
                raise PhaseFailed(Phase.RENDER, Reason.RENDER_FAILED,
                                  f"chart {chart} is switched off, but its pre-delete hooks cannot be rendered, so "
                                  f"nothing of it was deleted: {logs.scrub(str(exc))}",
                                  retry=Retry.WAIT_FOR_CHANGE) from exc
            out[chart] = [h for h in hooks if helm_hooks.Event.PRE_DELETE in h.events]
        return out

    def _desired_of(self, spec: Spec, chart: str, text: str) -> list[Desired]:
        """Parse and stamp one chart's render; cached by its text, so an unchanged chart costs nothing."""
        autoscaled = sorted(autoscaled_deployments(spec))
        key = hashlib.sha256("\0".join([spec.name, spec.namespace, chart, *autoscaled, text]).encode()).digest()
        cached = self._parsed.get(chart)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            out = pipeline.desired_objects(spec, chart, text)
        except manifests.RenderInvalid as exc:
            raise PhaseFailed(Phase.RENDER, Reason.RENDER_INVALID, logs.scrub(str(exc)),
                              retry=Retry.WAIT_FOR_CHANGE) from exc
        self._parsed[chart] = (key, out)  # one entry per chart: the cache never outgrows the cloud
        return out

    def _cluster_facts(self) -> tuple[str, list[str]]:
        if self._facts is None:
            try:
                self._facts = (self.cluster.server_version(), self.cluster.api_versions())
            except ApiError as exc:
                raise PhaseFailed(Phase.RENDER, Reason.CLUSTER_UNREACHABLE, str(exc)) from exc
        return self._facts

    def _plan_unchanged(self, spec: Spec, inventory: Inventory) -> Plan | None:
        """The plan of a render that would equal the last complete one: every inventory object unchanged,
        or None when any live object differs from its record (then the caller renders and plans)."""
        live = self._read_live(spec, [(k, e.api_version) for k, e in inventory.entries.items()])
        return unchanged_plan(inventory, live)

    def _plan(self, spec: Spec, rendered: Rendered, inventory: Inventory) -> Plan:
        live = self._read_live(spec, [*((d.key, str(d.manifest["apiVersion"])) for d in rendered.desired),
                                      *((k, e.api_version) for k, e in inventory.entries.items())])
        guard = PruneGuard(frozenset(spec.charts) | {PRODUCT_SERVICE}, self.max_prune_fraction)
        try:
            return plan(rendered.desired, live, inventory, SERVICE_ORDER, guard,
                        hooks=frozenset(h.key for h in rendered.hooks))
        except PruneRefused as exc:
            raise PhaseFailed(Phase.PLAN, Reason.PRUNE_REFUSED, str(exc), retry=Retry.WAIT_FOR_CHANGE) from exc

    def _read_live(self, spec: Spec, keys: list[tuple[ObjectKey, str]]) -> dict[ObjectKey, Manifest]:
        """Our live objects of every kind among ``keys``: one LIST per kind, in the cloud's namespace for
        namespaced kinds (the policy keeps every namespaced object there), so the reconciler needs no
        cluster-wide read of Secrets."""
        namespaced: dict[tuple[str, str], bool] = {}
        for key, api_version in keys:
            namespaced[(api_version, key.kind)] = bool(key.namespace)
        kinds = set(namespaced)
        selector = pipeline.owned_selector(spec)
        live: dict[ObjectKey, Manifest] = {}
        self.progress("read", 0, len(kinds))

        def list_kind(kind: tuple[str, str]) -> list[Manifest]:
            try:  # the plan reads metadata alone; the health of workloads reads their status
                return self.cluster.list(kind[0], kind[1], selector,
                                         namespace=spec.namespace if namespaced[kind] else None,
                                         metadata_only=kind not in WORKLOAD_KINDS)
            except ApiError as exc:
                if exc.status == 404:
                    return []  # kind not served yet (its CRD is not installed)
                raise

        try:
            for done, items in enumerate(self._readers.map(list_kind, sorted(kinds)), 1):
                live.update(kobjects.index(items))
                self.progress("read", done, len(kinds))
        except ApiError as exc:
            raise PhaseFailed(Phase.PLAN, Reason.CLUSTER_UNREACHABLE, str(exc)) from exc
        self._live = live
        return live

    def _apply(self, spec: Spec, rendered: Rendered, stored: inventory_store.Stored, the_plan: Plan,
               live_cr: Manifest | None, due: dict[str, helm_hooks.ChartHooks]) -> ChangeSet:
        ref = CloudRef(spec.name, spec.namespace)
        inventory = stored.inventory
        current = ((live_cr or {}).get("status") or {}).get("release")
        upgrading = classify_upgrade(current, spec.release) is UpgradeKind.UPGRADE
        order = upgrade_chart_order(spec) if upgrading else SERVICE_ORDER
        names = rendered.credential_names

        def record(pending: Inventory) -> None:  # before any object it names is written
            inventory_store.save(self.cluster, ref, pending, names)

        def save_credentials() -> None:
            status.save_credentials(self.cluster, ref, rendered.new_credentials)
            inventory_store.save(self.cluster, ref, executor.recorded or inventory, names)
            if status.regenerate_allowed(live_cr):
                status.clear_regenerate(self.cluster, ref)

        executor = Executor(self.cluster, inventory, order, self.concurrency, self.progress, record=record)
        self._apply_seconds = executor.seconds
        executor.fence = self.still_leader
        executor.hooks = due
        hooks_total = sum(len(c.hooks) for c in due.values())
        hooks_done = 0

        def hook_done(chart: helm_hooks.ChartHooks, hook: helm_hooks.Hook) -> None:
            nonlocal hooks_done
            hooks_done += 1
            self.metrics.hooks.labels(chart.chart, chart.event.value, "succeeded").inc()
            self.progress("hooks", hooks_done, hooks_total)

        executor.hook_runner = HookRunner(self.cluster, self.still_leader, self.hook_timeout, on_hook_done=hook_done,
                                          job_selector=pipeline.owned_selector(spec))
        if upgrading:
            log.info("upgrade: one service at a time, each healthy before the next",
                     extra={"from": current, "to": spec.release, "order": ",".join(order)})
            executor.gate = lambda service: self._wait_healthy(spec, service)
        if rendered.new_credentials:
            executor.before_first_write = save_credentials
        failure: PhaseFailed | None = None
        try:
            executor.run(the_plan)
        except DryRunFailed as exc:
            failure = PhaseFailed(Phase.DRY_RUN, Reason.DRY_RUN_FAILED, logs.scrub(str(exc)),
                                  retry=Retry.WAIT_FOR_CHANGE)
        except UpgradeStalled as exc:
            failure = PhaseFailed(Phase.UPGRADE, Reason.UPGRADE_STALLED, str(exc))
        except HookFailed as exc:
            event = due[exc.chart].event.value if exc.chart in due else ""
            self.metrics.hooks.labels(exc.chart, event, "failed").inc()
            failure = PhaseFailed(Phase.HOOKS, Reason.HOOK_FAILED, logs.scrub(str(exc)))
        except ApiError as exc:
            failure = PhaseFailed(Phase.APPLY, Reason.APPLY_FAILED, logs.scrub(str(exc)))
        finally:
            executor.hook_runner.close()
        changes = executor.changes
        if any(c.key.kind == "CustomResourceDefinition" and c.action in WRITES and c.ok for c in changes.changes):
            self._facts = None  # the cluster serves new API versions: the next render (and its inputs) sees them
        self._fence(Phase.APPLY, changes)  # the inventory and Events below are writes too
        self.inventory = changes.next_inventory(executor.recorded or inventory)
        revisions = hook_record(stored.hook_revisions, executor.completed, executor.deleted, spec.charts)
        complete = (failure is None and not changes.failed
                    and all(c in executor.completed or c in executor.deleted for c in due))
        inputs = rendered.inputs if complete else ""  # what a fresh process may skip rendering for
        if (self.inventory != inventory or executor.recorded is not None or rendered.new_credentials
                or revisions != stored.hook_revisions or inputs != stored.render_inputs):
            try:
                inventory_store.save(self.cluster, ref, self.inventory, names, revisions, inputs)
            except ApiError as exc:
                log.error("inventory not saved", extra={"error": logs.scrub(str(exc))})
        for change in changes.changes:
            if change.error:
                log.error("apply failed", extra={"object": str(change.key), "error": logs.scrub(change.error)})
        with contextlib.suppress(ApiError):
            status.emit_events(self.cluster, ref, changes)
        if failure is not None:
            failure.changes = changes
            raise failure
        return changes

    def _wait_healthy(self, spec: Spec, service: str) -> None:
        """The upgrade gate: poll one service's workloads until all are healthy, or give up."""
        selector = kobjects.selector({api.OWNER_LABEL: spec.name, api.SERVICE_LABEL: service})
        last = Health(State.PROGRESSING, "not read yet")

        def healthy() -> bool | None:
            nonlocal last
            self._fence(Phase.UPGRADE)  # a gate can wait many minutes: stop waiting once not the leader
            last = worst(health_of(o) for av, kind in WORKLOAD_KINDS
                         for o in self.cluster.list(av, kind, selector, namespace=spec.namespace))
            return True if last.healthy else None

        try:
            poll_until(healthy, self.upgrade_timeout, self.upgrade_poll, f"{service} healthy")
        except TimeoutError:
            raise UpgradeStalled(f"{service} not healthy after {self.upgrade_timeout:.0f}s: {last.message}; "
                                 "later services were not upgraded") from None
        log.info("upgrade: service healthy", extra={"service": service})

    def _health(self, spec: Spec, changes: ChangeSet) -> dict[str, Health]:
        """Health per service; after a pass that wrote nothing, the live objects just read are current."""
        by_service: dict[str, list[Health]] = {chart: [] for chart in spec.charts}
        kinds = {kind for _, kind in WORKLOAD_KINDS}
        if changes.services_changed():
            selector = pipeline.owned_selector(spec)
            try:
                workloads = [obj for api_version, kind in WORKLOAD_KINDS
                             for obj in self.cluster.list(api_version, kind, selector, namespace=spec.namespace)]
            except ApiError as exc:
                log.warning("health not assessed", extra={"error": str(exc)})
                return {s: Health(State.PROGRESSING, "unknown") for s in by_service}
        else:
            workloads = [obj for key, obj in self._live.items() if key.kind in kinds]
        for obj in workloads:
            service = kobjects.labels_of(obj).get(api.SERVICE_LABEL, "")
            by_service.setdefault(service, []).append(health_of(obj))
        return {service: worst(h) for service, h in by_service.items()}

    # -- reporting -------------------------------------------------------------------
    def _record_failure(self, spec: Spec | None, commit: str, outcome: Outcome,
                        report_to: CloudRef | None = None) -> None:
        if not self.still_leader():  # not even the failure is written by a process that lost its Lease
            log.warning("reconcile stopped: not the leader", extra={"reason": outcome.reason,
                                                                    "error": logs.scrub(outcome.message)})
            return
        log.error("reconcile failed", extra={"reason": outcome.reason, "commit": commit[:12],
                                             "error": logs.scrub(outcome.message)})
        spec = spec or self.spec  # a spec that does not load is reported on the resource we last knew
        if spec is None:
            return  # nothing loaded yet: the error is in the logs, the metrics and the exit code
        ref = report_to or CloudRef(spec.name, spec.namespace)
        try:
            if not status.record_failure(self.cluster, ref, commit, outcome) and report_to is None:
                # a first reconcile that fails: make the resource (and its namespace) so status and
                # Events say why, instead of nothing at all
                self.cluster.apply(pipeline.stamped_namespace(spec))
                status.ensure_cr(self.cluster, spec, self.source, None)
                status.record_failure(self.cluster, ref, commit, outcome)
        except ApiError as exc:  # e.g. the apiserver is what failed
            log.warning("status not recorded", extra={"error": logs.scrub(str(exc))})

    def _metrics(self, outcome: Outcome) -> None:
        result = "success" if outcome.ok else "failure"
        self.metrics.duration.labels(result).observe(outcome.duration)
        for phase, seconds in outcome.phase_seconds.items():
            self.metrics.phase_duration.labels(phase).observe(seconds)
        self.metrics.reconciles.labels(result, outcome.reason).inc()
        self.metrics.record_changes(outcome.changes)
        for service, health in outcome.health.items():
            self.metrics.services_healthy.labels(service).set(1 if health.healthy else 0)
        if outcome.ok:
            self.metrics.record_success(outcome.commit, time.time())


def _summary(changes: ChangeSet) -> str:
    counts = changes.by_action()
    text = ", ".join(f"{n} {a}" for a, n in sorted(counts.items()))
    if changes.failed:
        text += f"; {len(changes.failed)} failed: " + "; ".join(str(c) for c in changes.failed[:3])
    return text or "nothing to do"


def render_inputs(commit: str, credentials: str, facts: tuple[str, list[str]], helm: str) -> str:
    """Digest of everything a render depends on: the commit (spec and directory charts; a Helm or OCI
    source is pinned by version in it), the credentials, the cluster's versions, Helm, and this
    product's own code. Equal digests render equal objects, so a fresh process may skip Helm."""
    parts = [commit, credentials, facts[0], *sorted(facts[1]), helm, _helm_stamp(helm), pipeline.code_digest()]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _helm_stamp(binary: str) -> str:
    try:
        stat = os.stat(binary)
    except OSError:
        return ""
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def hook_record(recorded: Mapping[str, str], completed: Mapping[str, str], deleted: set[str],
                charts: Sequence[str]) -> dict[str, str]:
    """The chart revisions whose hooks completed, after this pass: charts gone from the cloud leave it
    (so switching one on again is an install). Pure."""
    out = {**recorded, **completed}
    return {c: r for c, r in sorted(out.items()) if c not in deleted and (c in charts or c in recorded)}


def upgrade_chart_order(spec: Spec) -> tuple[str, ...]:
    """Charts in upgrade order (identity, placement, image, networking, compute, ...), infra first."""
    charts: list[str] = [PRODUCT_SERVICE]
    for service in catalog.upgrade_order(spec.enabled_services):
        own = sorted(catalog.service_charts(service, spec.network_backend), key=catalog.APPLY_ORDER.index)
        charts += [c for c in own if c not in charts]
    return tuple(charts)


def _applied_outcome(commit: str, changes: ChangeSet, health: dict[str, Health], source_error: str) -> Outcome:
    """The outcome of a pass that got through apply; a Git failure makes it a failure that still applied."""
    if changes.failed:
        return Outcome(commit, False, Reason.APPLY_FAILED, _summary(changes), changes, health, retry=Retry.BACKOFF)
    if source_error:
        return Outcome(commit, False, Reason.GIT_FETCH_FAILED,
                       f"fetch: {source_error}; enforcing the last fetched commit {commit[:12]} ({_summary(changes)})",
                       changes, health, retry=Retry.BACKOFF, applied=True)
    return Outcome(commit, True, Reason.APPLIED, _summary(changes), changes, health, applied=True)
