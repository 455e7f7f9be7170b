"""The health watcher's loop: watch -> judge -> decide -> act, on every change and on every due timer.

One thread per watched kind follows the cluster (``Cluster.watch``: LIST, then WATCH with bookmarks,
re-list on 410, reconnect; never polling) and queues its events. The loop's thread alone owns the
:class:`~healthwatcher.view.View`: it drains the queue, judges again the pods the events touched
(a node's change touches its pods), and wakes by itself when a pod's grace time runs out or a
refusal's ``retry_at`` comes (timers, not polling). Only the leader decides and acts; a standby keeps
its view warm, so a takeover acts on the first pass. A new leader first reads the restarts its
predecessors recorded (Events) so rate limits and back-off carry over.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

from healthwatcher import act, discovery, report
from healthwatcher.decide import (
    Decision,
    Failure,
    History,
    Reason,
    Workload,
    WorkloadRef,
    decide,
)
from healthwatcher.hostdiscovery import HostDiscovery
from healthwatcher.hostdiscovery import Reason as Discovered
from healthwatcher.metrics import Metrics
from healthwatcher.notify import Notification
from healthwatcher.view import TRIMS, Cloud, PodKey, View, pod_ready
from healthwatcher.workloads import limits
from openstack_gitops import api
from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.kube.watch import EventType, Watch, WatchEvent
from openstack_gitops.runtime import logs

log = logs.get("healthwatcher")

# (kind, apiVersion, cluster-scoped, label selector): what the watcher follows
WATCHED_KINDS: tuple[tuple[str, str, bool, str], ...] = (
    (api.KIND, api.API_VERSION, False, ""),
    ("Node", "v1", True, ""),
    ("DaemonSet", "apps/v1", False, ""),
    ("StatefulSet", "apps/v1", False, ""),
    ("PodDisruptionBudget", "policy/v1", False, ""),
    ("Pod", "v1", False, ""),
    ("Job", "batch/v1", False, f"{discovery.LABEL}=true"),  # host discovery's own Jobs: when they end
)
NEEDED = frozenset({api.KIND, "Node", "DaemonSet", "StatefulSet", "Pod"})  # judged only once these are listed
STATUS_INTERVAL = 2.0  # at most one status write per cloud this often
GAUGES_REFRESH = 10.0  # the gauges over every pod are computed again when something changed, else this often
STATUS_REFRESH = 60.0  # the status is computed again at least this often (restartsLastHour ages)
RETRY_AFTER_ERROR = 5.0
RETRY_AFTER_PDB = 10.0
RESTARTING_FOR = 900.0  # a database member restarted by us counts as restarting until Ready, at most this long
ACTED_FOR = 3600.0
HISTORY_WINDOW = 3600.0
MAX_BATCH = 20000
COMPUTE_DAEMONSET = "nova-compute-default"  # its pods joining new nodes start host discovery
CELL_SETUP_CRONJOB = "nova-cell-setup"


class Notifier(Protocol):
    """What the loop needs of the notifications edge (``healthwatcher.edges.notifiers.Notifier``)."""

    def notify(self, note: Notification) -> None: ...

    def firing(self, note: Notification) -> None: ...

    def resolve(self, key: str, at: float) -> object: ...


@dataclass(frozen=True)
class Done:
    """One restart as the loop did it (tests and the benchmark read these)."""

    at: float
    namespace: str
    pod: str
    node: str | None
    action: str
    due: float  # when the failure's grace ran out


@dataclass
class _Cloudstate:
    history: History = field(default_factory=History)
    breakers: set[WorkloadRef] = field(default_factory=set)
    decisions: dict[PodKey, Decision] = field(default_factory=dict)
    recent: deque[report.Recent] = field(default_factory=lambda: deque(maxlen=report.RECENT))
    retry_at: float = math.inf
    written: object = None
    written_at: float = -math.inf
    stale: bool = True  # something changed since the status was last computed
    computed_at: float = -math.inf


class HealthWatcher:
    """One per process. ``run`` until stopped; ``pass_once`` is one iteration (tests drive it)."""

    def __init__(self, cluster: Cluster, metrics: Metrics, notifier: Notifier | None = None,
                 namespace: str | None = None, still_leader: Callable[[], bool] = lambda: True,
                 identity: str = "", clock: Callable[[], float] = time.time, dry_run: bool = False) -> None:
        self.cluster, self.metrics, self.notifier = cluster, metrics, notifier
        self.namespace, self.still_leader, self.identity = namespace, still_leader, identity
        self.clock, self.dry_run = clock, dry_run
        self.view = View()
        self.queue: queue.Queue[tuple[str, WatchEvent]] = queue.Queue()
        self.failed: dict[PodKey, Failure] = {}
        self._gauged_at = -math.inf
        self._backlog: set[PodKey] = set()  # touched before every kind was listed
        self.unwell: dict[PodKey, WorkloadRef] = {}  # showing a failed state, still within its grace time
        self.timers: dict[PodKey, float] = {}
        self.acted: dict[str, float] = {}  # uid -> when we restarted it (it is on its way out)
        self.reported: dict[PodKey, tuple[str, Reason]] = {}  # the refusal last reported per pod
        self.restarting: dict[str, tuple[WorkloadRef, str, float]] = {}  # slot -> (workload, old uid, at)
        self.clouds: dict[str, _Cloudstate] = defaultdict(_Cloudstate)
        self.done: list[Done] = []
        self.discoveries: dict[str, HostDiscovery] = {}  # cloud namespace -> its host discovery
        self.leading = False
        self.watches: list[Watch] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # -- the watches ----------------------------------------------------------------------------
    def start_watches(self) -> None:
        for kind, api_version, cluster_scoped, selector in WATCHED_KINDS:
            scope = None if cluster_scoped else self.namespace
            t = threading.Thread(target=self._follow, args=(kind, api_version, scope, selector),
                                 name=f"watch-{kind}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for w in list(self.watches):
            w.stop()
        for t in self._threads:
            t.join(timeout=5)

    def _follow(self, kind: str, api_version: str, namespace: str | None, selector: str = "") -> None:
        """Queue every event of one kind until stopped; a kind not served yet (no CRD) is looked for again."""
        while not self._stop.is_set():
            try:
                watch = self.cluster.watch(api_version, kind, namespace, label_selector=selector,
                                           transform=TRIMS.get(kind))
            except ApiError as exc:
                log.info("cannot watch yet", extra={"kind": kind, "error": str(exc)})
                if exc.kind_not_served and kind == api.KIND:  # no clouds until the reconciler installs the CRD
                    self.queue.put((kind, WatchEvent(EventType.RESYNC, {}, "", synthetic=True)))
                self._stop.wait(15.0)
                continue
            self.watches.append(watch)
            try:
                for event in watch:
                    if event.synthetic and event.type is not EventType.RESYNC:
                        continue  # the RESYNC that follows carries the whole list
                    self.queue.put((kind, event))
            except ApiError as exc:
                self.metrics.errors.labels(f"watch-{kind}").inc()
                log.warning("watch refused, retrying", extra={"kind": kind, "error": str(exc)})
            except Exception:  # a watch thread that died would leave the watcher blind to its kind, silently
                self.metrics.errors.labels(f"watch-{kind}").inc()
                log.exception("watch failed, watching again", extra={"kind": kind})
            finally:
                self.watches.remove(watch)
            self._stop.wait(5.0)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, stop: threading.Event, beat: Callable[[], None] = lambda: None) -> None:
        """Until ``stop``: never raises (a failed pass is logged and the next one comes)."""
        self.start_watches()
        try:
            while not stop.is_set():
                beat()
                batch = self._drain(self._timeout())
                try:
                    self.pass_once(batch)
                except Exception:  # the watcher must survive anything one pass meets; the log says what
                    log.exception("pass failed")
                    stop.wait(1.0)
        finally:
            self.stop()

    def _timeout(self) -> float:
        now = self.clock()
        discovery = [d for h in self.discoveries.values() if (d := h.due()) is not None]
        wake = min([*self.timers.values(), *(c.retry_at for c in self.clouds.values()), *discovery, now + 1.0])
        return min(1.0, max(0.01, wake - now))

    def _drain(self, timeout: float) -> list[tuple[str, WatchEvent]]:
        try:
            batch = [self.queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def synced(self) -> bool:
        return self.view.synced >= NEEDED

    def pass_once(self, batch: Iterable[tuple[str, WatchEvent]] = ()) -> None:
        """Apply the events, judge what they touched and what is due, decide and act when leading."""
        started = time.monotonic()
        dirty: set[PodKey] = set()
        changed_ns: set[str] = set()
        for kind, event in batch:
            self.metrics.events.labels(kind).inc()
            if kind == "Job":
                self._job_changed(event)
                continue
            if event.type is EventType.RESYNC:
                touched = self.view.resync(kind, event.objects)
            else:
                touched = self.view.apply(kind, event.type.value, event.object)
            dirty |= touched
            if kind in (api.KIND, "DaemonSet", "StatefulSet", "PodDisruptionBudget"):
                changed_ns.add(str((event.object.get("metadata") or {}).get("namespace") or ""))
        now = self.clock()
        dirty |= {k for k, due in self.timers.items() if due <= now}
        if not self.synced():  # judged once every kind is listed: a pod's node may not be known yet
            self._backlog |= dirty
            return
        dirty |= self._backlog
        self._backlog.clear()
        self._judge(dirty, now)
        self._track_restarting(now)
        self._observe_compute({k[0] for k in dirty}, now)
        leading = self.still_leader()
        if leading and not self.leading:
            self._take_over(now)
        self.leading = leading
        if leading:
            changed_ns |= {k[0] for k in dirty}
            for namespace, cloud in sorted(self.view.clouds.items()):
                state = self.clouds[namespace]
                if namespace in changed_ns or now >= state.retry_at:
                    self._decide(cloud, state, now)
                    state.stale = True
                if state.stale or now - state.computed_at > STATUS_REFRESH:
                    self._write_status(cloud, state, now)
                self._discover(namespace, now)
        if dirty or now - self._gauged_at > GAUGES_REFRESH:
            self._gauges()
            self._gauged_at = now
        self.metrics.pass_seconds.observe(time.monotonic() - started)

    # -- judge ----------------------------------------------------------------------------------
    def _judge(self, dirty: set[PodKey], now: float) -> None:
        for key in dirty:
            self.timers.pop(key, None)
            self.unwell.pop(key, None)
            previous = self.failed.pop(key, None)
            got = self.view.verdict(key, now)
            if got is None:
                self.reported.pop(key, None)
                continue
            ref, verdict = got
            uid = self._uid(key)
            if uid in self.acted:
                continue  # restarted by us: its controller is replacing it
            if verdict.failed:
                failure = self.view.failure(key, ref, verdict)
                self.failed[key] = failure
                if previous is None or previous.verdict.rule != verdict.rule:
                    self.metrics.failures.labels(key[0], ref.name, str(verdict.rule)).inc()
                    log.warning("pod failed", extra={"pod": f"{key[0]}/{key[1]}", "node": failure.node,
                                                     "workload": str(ref), "rule": str(verdict.rule),
                                                     "detail": verdict.message})
            else:
                self.reported.pop(key, None)
                if verdict.due is not None:
                    self.timers[key] = verdict.due
                    self.unwell[key] = ref

    def _uid(self, key: PodKey) -> str:
        return str(((self.view.pods.get(key) or {}).get("metadata") or {}).get("uid") or "")

    def _track_restarting(self, now: float) -> None:
        """A database member we restarted counts as restarting until its successor is Ready."""
        for slot, (ref, old_uid, at) in list(self.restarting.items()):
            pod = self.view.pods.get((ref.namespace, slot.split("/", 1)[-1]))
            back = pod is not None and pod_ready(pod) and (pod.get("metadata") or {}).get("uid") != old_uid
            if back or now - at > RESTARTING_FOR:
                del self.restarting[slot]
        for uid, at in list(self.acted.items()):
            if now - at > ACTED_FOR:
                del self.acted[uid]

    def _restarting_counts(self) -> dict[WorkloadRef, int]:
        counts: dict[WorkloadRef, int] = defaultdict(int)
        for ref, _, _ in self.restarting.values():
            counts[ref] += 1
        return counts

    # -- host discovery ---------------------------------------------------------------------------
    def _observe_compute(self, namespaces: set[str], now: float) -> None:
        """Tell each cloud's host discovery where nova-compute runs Ready now (leader or not: a standby that
        takes over knows which nodes joined during the failover)."""
        for namespace in sorted(namespaces):
            ref = WorkloadRef("DaemonSet", namespace, COMPUTE_DAEMONSET)
            if namespace not in self.view.clouds or self.view.watched(ref) is None:
                self.discoveries.pop(namespace, None)
                continue
            if ref not in self.view.workloads:
                continue
            hd = self.discoveries.get(namespace)
            if hd is None:
                hd = self.discoveries[namespace] = HostDiscovery(
                    self.cluster, namespace, on_event=functools.partial(self._discovery_event, namespace))
            hd.observe(self.view.ready_nodes_of(ref), now)

    def _job_changed(self, event: WatchEvent) -> None:
        jobs = event.objects if event.type is EventType.RESYNC else (event.object,)
        for job in jobs:
            hd = self.discoveries.get(str((job.get("metadata") or {}).get("namespace") or ""))
            if hd is not None and event.type is not EventType.DELETED:
                hd.job_changed(job, self.clock())

    def _discover(self, namespace: str, now: float) -> None:
        hd = self.discoveries.get(namespace)
        due = hd.due() if hd is not None else None
        if hd is not None and due is not None and due <= now and not self.dry_run:
            hd.tick(now)

    def _discovery_event(self, namespace: str, reason: str, message: str) -> None:
        self.metrics.discovery.labels(namespace, reason).inc()
        failed = reason in (Discovered.FAILED, Discovered.CREATE_FAILED, Discovered.CRONJOB_MISSING)
        (log.warning if failed else log.info)("host discovery", extra={"namespace": namespace, "reason": reason,
                                                                       "detail": message})
        note = act.Note(act.RecordKind.DISCOVERY, reason, message, warning=failed)
        regarding = {"apiVersion": "batch/v1", "kind": "CronJob", "name": CELL_SETUP_CRONJOB, "namespace": namespace}
        act.emit(self.cluster, act.event(note, regarding, None, self.clock()))

    # -- decide and act -------------------------------------------------------------------------
    def _take_over(self, now: float) -> None:
        """A new leader: what its predecessors restarted counts against the limits and back-off."""
        try:
            seeded = act.read_history(self.cluster, self.view.clouds, now - HISTORY_WINDOW)
        except ApiError as exc:
            log.warning("cannot read the restart history; limits start empty", extra={"error": str(exc)})
            return
        for namespace in self.view.clouds:
            state = self.clouds[namespace]
            theirs = [r for r in seeded.restarts if r.workload.namespace == namespace]
            merged = sorted(set(state.history.restarts) | set(theirs), key=lambda r: (r.at, r.slot))
            state.history = History(tuple(merged))
            state.written = None  # write the status once as the new leader
        log.info("leading: restart history read", extra={"restarts": len(seeded.restarts)})

    def _decide(self, cloud: Cloud, state: _Cloudstate, now: float) -> None:
        failures = [f for k, f in self.failed.items() if k[0] == cloud.namespace]
        if not failures and not state.breakers:
            state.decisions.clear()
            state.retry_at = math.inf
            return
        workloads = self.view.workload_states(self._restarting_counts())
        unwell: dict[WorkloadRef, int] = defaultdict(int)
        for key, ref in self.unwell.items():
            if key[0] == cloud.namespace:
                unwell[ref] += 1
        outcome = decide(failures, workloads, cloud.policy, state.history, now, limits(cloud.policy), unwell)
        state.history = outcome.history
        by_key = {(f.namespace, f.pod): f for f in failures}
        state.decisions = {(d.namespace, d.pod): d for d in outcome.decisions}
        retry = math.inf
        records: list[Manifest] = []  # the owners' Events of this pass's restarts: after every restart is sent
        for d in outcome.decisions:
            f = by_key[(d.namespace, d.pod)]
            if d.restarts:
                retry = min(retry, self._restart(cloud, state, f, d, now, records))
            else:
                self._refused(cloud, state, f, d, now)
                if d.retry_at is not None:
                    retry = min(retry, d.retry_at)
        act.emit(self.cluster, *records)
        self._breakers(cloud, state, set(outcome.breakers), failures, workloads, now)
        state.retry_at = retry

    def _restart(self, cloud: Cloud, state: _Cloudstate, f: Failure, d: Decision, now: float,
                 records: list[Manifest]) -> float:
        """Do one restart; returns when to decide again if it did not happen (else infinity). The owner's
        Event goes to ``records``: the next restart of the pass need not wait for it."""
        key = (f.namespace, f.pod)
        uid = self._uid(key)
        if self.dry_run:
            self._undo(state, f, now)
            self._refused(cloud, state, f, replace(d, reason=Reason.DISABLED, detail="--dry-run: reporting only"), now)
            return math.inf
        pod_event, owner_event = act.restart_events(d, f, now)
        act.emit(self.cluster, pod_event)  # the intent first: a successor counts it even if we die now
        try:
            result = act.restart(self.cluster, d, uid)
        except ApiError as exc:
            act.retract(self.cluster, pod_event)
            self._undo(state, f, now)
            self.metrics.errors.labels("restart").inc()
            self._refused(cloud, state, f, replace(d, reason=Reason.REQUEST_FAILED, detail=str(exc)), now)
            return now + RETRY_AFTER_ERROR
        if result is not act.Result.DONE:
            act.retract(self.cluster, pod_event)
        if result is act.Result.PDB_REFUSED:
            self._undo(state, f, now)
            self._refused(cloud, state, f, replace(d, reason=Reason.PDB_REFUSED,
                                                  detail="its PodDisruptionBudget allows no disruption now"), now)
            return now + RETRY_AFTER_PDB
        if result is act.Result.GONE:
            self._undo(state, f, now)
            return math.inf
        sent = self.clock()  # not the pass's start: earlier restarts of the pass count in the latency
        self.acted[uid] = now
        self.failed.pop(key, None)
        self.reported.pop(key, None)
        due = f.verdict.due if f.verdict.due is not None else now
        self.metrics.restarts.labels(f.namespace, f.workload.name, d.action.value).inc()
        self.metrics.latency.observe(max(0.0, sent - due))
        watched = self.view.watched(f.workload)
        if f.workload.kind == "StatefulSet" and watched is not None and watched.database:
            self.restarting[f.slot] = (f.workload, uid, now)
        self.done.append(Done(sent, f.namespace, f.pod, f.node, d.action.value, due))
        state.recent.append(report.Recent(now, f.pod, f.node, f.workload, d.action.value, d.reason.value,
                                          f.verdict.message))
        log.warning("restarted", extra={"pod": f"{f.namespace}/{f.pod}", "node": f.node, "workload": str(f.workload),
                                        "action": d.action.value, "rule": str(f.verdict.rule),
                                        "detail": f.verdict.message, "after": round(sent - due, 3)})
        records.append(owner_event)
        if self.notifier is not None:
            self.notifier.notify(report.restart_notification(cloud.name, f, d, now))
        return math.inf

    def _undo(self, state: _Cloudstate, f: Failure, now: float) -> None:
        """A granted restart that did not happen must not count against the limits."""
        state.history = History(tuple(r for r in state.history.restarts if not (r.at == now and r.slot == f.slot)))

    def _refused(self, cloud: Cloud, state: _Cloudstate, f: Failure, d: Decision, now: float) -> None:
        """Report a refusal once per pod and reason (not on every pass)."""
        key = (f.namespace, f.pod)
        uid = self._uid(key)
        state.decisions[key] = d
        if self.reported.get(key) == (uid, d.reason):
            return
        self.reported[key] = (uid, d.reason)
        self.metrics.refusals.labels(f.namespace, f.workload.name, d.reason.value).inc()
        if d.reason is Reason.BREAKER_OPEN:
            return  # the breaker is reported once for the workload, not once per pod
        log.warning("not restarting", extra={"pod": f"{f.namespace}/{f.pod}", "node": f.node,
                                             "workload": str(f.workload), "reason": d.reason.value,
                                             "detail": d.detail})
        state.recent.append(report.Recent(now, f.pod, f.node, f.workload, "refuse", d.reason.value, d.detail))
        act.emit(self.cluster, *act.refusal_events(d, f, now))
        if self.notifier is not None:
            self.notifier.notify(report.refusal_notification(cloud.name, f, d, now))

    def _breakers(self, cloud: Cloud, state: _Cloudstate, open_now: set[WorkloadRef], failures: list[Failure],
                  workloads: Mapping[WorkloadRef, Workload], now: float) -> None:
        failed: dict[WorkloadRef, int] = defaultdict(int)
        for f in failures:
            failed[f.workload] += 1
        for ref in sorted(open_now ^ state.breakers):
            opened = ref in open_now
            w = workloads.get(ref)
            pods = w.pods if w is not None else 0
            self.metrics.breaker.labels(ref.namespace, ref.name).set(1 if opened else 0)
            act.emit(self.cluster, act.breaker_event(ref, failed[ref], pods, opened, now))
            note = report.breaker_notification(cloud.name, ref, failed[ref], pods, now)
            state.recent.append(report.Recent(now, "", None, ref, "breaker-open" if opened else "breaker-closed",
                                              Reason.BREAKER_OPEN.value, note.summary))
            if opened:
                log.error("circuit breaker open: not restarting", extra={"workload": str(ref), "failed": failed[ref],
                                                                         "pods": pods})
                if self.notifier is not None:
                    self.notifier.firing(note)
            else:
                log.info("circuit breaker closed", extra={"workload": str(ref)})
                if self.notifier is not None:
                    self.notifier.resolve(note.key, now)
        state.breakers = set(open_now)

    # -- report ---------------------------------------------------------------------------------
    def _write_status(self, cloud: Cloud, state: _Cloudstate, now: float) -> None:
        if now - state.written_at < STATUS_INTERVAL:
            return
        failing = [(f, state.decisions.get(k)) for k, f in self.failed.items() if k[0] == cloud.namespace]
        workloads = {ref: w for ref, w in self.view.workload_states(self._restarting_counts()).items()
                     if ref.namespace == cloud.namespace}
        recent_restarts = sum(1 for r in state.history.restarts if r.at > now - HISTORY_WINDOW)
        section = report.status_section(cloud.policy, workloads, failing, sorted(state.breakers), list(state.recent),
                                        recent_restarts, self.identity, now)
        comparable = report.comparable(section)
        last = state.written if state.written is not None else report.comparable(cloud.status)
        state.stale, state.computed_at = False, now
        if comparable == last:
            state.written = comparable
            return
        try:
            self.cluster.patch_status(api.API_VERSION, api.KIND, cloud.name, cloud.namespace,
                                      {api.HEALTH_WATCHER_STATUS: section})
        except ApiError as exc:
            self.metrics.errors.labels("status").inc()
            log.warning("cannot write the status", extra={"cloud": f"{cloud.namespace}/{cloud.name}",
                                                          "error": str(exc)})
            return
        state.written, state.written_at = comparable, now

    def _gauges(self) -> None:
        self.metrics.watched.set(sum(1 for p in self.view.pods.values() if self.view.guarded(p) is not None))
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for f in self.failed.values():
            counts[(f.namespace, f.workload.name)] += 1
        for ref in self.view.workloads:
            if self.view.watched(ref) is not None:
                self.metrics.failed.labels(ref.namespace, ref.name).set(counts.get((ref.namespace, ref.name), 0))

