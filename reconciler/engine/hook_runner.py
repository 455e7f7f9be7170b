"""Run one chart's Helm hooks against the cluster: weight group by weight group, each waited for.

What runs when is decided purely in ``reconciler.plan.hooks``; this module only carries it out:
delete a live copy where the hook is re-created, create it, wait until it is done (a Job
Complete; any other kind once it exists), then honour ``hook-delete-policy``. A hook that fails
or does not finish in time stops its chart's later hooks and fails the reconcile, so the chart's
revision is not recorded and the next pass runs them again.

Job hooks are waited for through one WATCH of the namespace's Jobs (``JobWatch``), shared by every
chain of the pass: a chain wakes as soon as its Job changes, instead of a GET per Job every
``poll`` seconds. A Job the watch has not shown yet is read with a GET; without the watch (it
failed), every check is a GET, as the poll interval says.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from openstack_gitops.health import State, health_of
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.kube.watch import EventType
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.backoff import poll_until
from reconciler.engine.changeset import Change, ChangeSet
from reconciler.plan import ownership
from reconciler.plan.diff import Action
from reconciler.plan.hooks import ChartHooks, Hook
from reconciler.plan.inventory import Entry

log = logs.get("hooks")

DEFAULT_HOOK_TIMEOUT = 900.0  # per weight group; Helm's default is 300 s for the whole release


class HookFailed(Exception):
    """A hook failed or timed out; its chart's later hooks did not run."""

    def __init__(self, chart: str, hook: Hook, message: str) -> None:
        self.chart = chart
        self.hook = hook
        super().__init__(f"chart {chart}: hook {hook.key} ({','.join(sorted(hook.events))}, weight {hook.weight}) "
                         f"{message}")


class JobWatch:
    """The Jobs of one namespace (one label selector) as one WATCH shows them, for every hook chain of a pass."""

    def __init__(self, cluster: Cluster, namespace: str, label_selector: str) -> None:
        self._watch = cluster.watch("batch/v1", "Job", namespace=namespace, label_selector=label_selector)
        self._jobs: dict[str, Manifest] = {}
        self._running = True
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._follow, name=f"hook-jobs-{namespace}", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._watch:
                with self._changed:
                    if event.type is EventType.RESYNC:
                        self._jobs = {str(o["metadata"]["name"]): o for o in event.objects}
                    elif event.type is EventType.DELETED:
                        self._jobs.pop(str(event.object["metadata"]["name"]), None)
                    else:
                        self._jobs[str(event.object["metadata"]["name"])] = event.object
                    self._changed.notify_all()
        except ApiError as exc:  # refused (RBAC): the chains read with GETs instead
            log.warning("hook Jobs not watched; polling them", extra={"error": logs.scrub(str(exc))})
        finally:
            with self._changed:
                self._running = False
                self._changed.notify_all()

    def get(self, name: str) -> Manifest | None:
        """The Job as last seen, or None (not seen, or the watch is not running)."""
        with self._changed:
            return self._jobs.get(name) if self._running else None

    @property
    def running(self) -> bool:
        return self._running

    def wait(self, seconds: float) -> None:
        """Until any Job changes, or ``seconds`` passed."""
        with self._changed:
            if self._running:
                self._changed.wait(seconds)

    def stop(self) -> None:
        self._watch.stop()
        self._thread.join(timeout=10)


@dataclass
class HookRunner:
    cluster: Cluster
    fence: Callable[[], bool] = lambda: True  # leader election: checked before every write
    timeout: float = DEFAULT_HOOK_TIMEOUT
    poll: float = 0.5  # between GETs of a Job the watch does not show; the longest wait for a watch event
    concurrency: int = 4
    on_hook_done: Callable[[ChartHooks, Hook], None] = lambda _c, _h: None  # progress
    job_selector: str = ""  # the label selector of our Jobs ("": no watch, every check a GET)
    _watches: dict[str, JobWatch] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def close(self) -> None:
        """Stop the Job watches this runner started (the end of a pass)."""
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop()

    def _jobs(self, namespace: str) -> JobWatch | None:
        if not self.job_selector:
            return None
        with self._lock:
            if namespace not in self._watches:
                self._watches[namespace] = JobWatch(self.cluster, namespace, self.job_selector)
            return self._watches[namespace]

    def run(self, chart: ChartHooks, groups: Sequence[Sequence[Hook]], changes: ChangeSet) -> None:
        """Run ``groups`` in order; raises HookFailed (or ApiError) at the first that does not succeed."""
        for group in groups:
            self._run_group(chart, group, changes)

    def _run_group(self, chart: ChartHooks, group: Sequence[Hook], changes: ChangeSet) -> None:
        with ThreadPoolExecutor(max(1, min(self.concurrency, len(group)))) as pool:
            uids = list(pool.map(lambda hook: self._start(chart, hook, changes), group))
        for hook, uid in zip(group, uids, strict=True):
            self._wait(chart, hook, uid)
            if hook.delete_on_success:
                self.remove(hook)
                changes.add(Change(hook.key, Action.FORGET, chart.chart))
            self.on_hook_done(chart, hook)

    def _start(self, chart: ChartHooks, hook: Hook, changes: ChangeSet) -> str:
        if not self.fence():
            raise HookFailed(chart.chart, hook, "not started: this process is no longer the leader")
        try:
            if hook.recreate and self.cluster.get(hook.api_version, hook.key.kind, hook.key.name,
                                                  hook.key.namespace or None) is not None:
                self.remove(hook)
            applied = self.cluster.apply(hook.manifest)
        except ApiError as exc:
            changes.add(Change(hook.key, Action.HOOK, chart.chart, error=str(exc)))
            raise HookFailed(chart.chart, hook, f"could not be created: {logs.scrub(str(exc))}") from exc
        entry = Entry(chart.chart, ownership.applied_hash(applied) or "", ownership.owned_fields_hash(applied) or "",
                      str(applied.get("apiVersion", hook.api_version)))
        changes.add(Change(hook.key, Action.HOOK, chart.chart, entry=entry))
        log.info("hook started", extra={"chart": chart.chart, "event": chart.event.value, "hook": str(hook.key),
                                        "weight": hook.weight})
        return str((applied.get("metadata") or {}).get("uid", ""))

    def _wait(self, chart: ChartHooks, hook: Hook, uid: str) -> None:
        """Until the hook is done: a Job Complete (the one we created: same uid), anything else at once."""
        if not hook.is_job:
            return
        last = ""
        jobs = self._jobs(hook.key.namespace)

        created = time.monotonic()

        def read() -> Manifest | bool | None:
            """Our Job as the watch shows it; False while the watch has not shown it yet (for up to twice
            ``poll``, far beyond a watch's lag); after that, or without a watch, as a GET reads it."""
            seen = jobs.get(hook.key.name) if jobs is not None else None
            if seen is not None and str((seen.get("metadata") or {}).get("uid", "")) == uid:
                return seen
            if jobs is not None and jobs.running and time.monotonic() - created < 2 * self.poll:
                return False
            return self.cluster.get(hook.api_version, "Job", hook.key.name, hook.key.namespace or None)

        def wait(seconds: float) -> None:
            if jobs is not None and jobs.running:
                jobs.wait(seconds)
            else:
                time.sleep(seconds)

        def done() -> bool | None:
            nonlocal last
            if not self.fence():
                raise HookFailed(chart.chart, hook, "not waited for: this process is no longer the leader")
            live = read()
            if live is False:
                return None
            if not isinstance(live, dict) or str((live.get("metadata") or {}).get("uid", "")) != uid:
                raise HookFailed(chart.chart, hook, "was deleted by someone else while it ran")
            health = health_of(live)
            last = health.message
            if health.state is State.DEGRADED:
                if hook.delete_on_failure:
                    self.remove(hook)
                raise HookFailed(chart.chart, hook, logs.scrub(health.message))
            return True if health.healthy else None

        started = time.monotonic()
        try:
            poll_until(done, self.timeout, self.poll, f"hook {hook.key}", sleep=wait)
        except TimeoutError:
            raise HookFailed(chart.chart, hook, f"did not complete within {self.timeout:.0f}s ({last})") from None
        log.info("hook completed", extra={"chart": chart.chart, "hook": str(hook.key),
                                          "seconds": round(time.monotonic() - started, 2)})

    def remove(self, hook: Hook) -> None:
        """Delete and wait until gone (a re-created hook takes the same name)."""
        self.cluster.delete_and_wait(hook.api_version, hook.key)
