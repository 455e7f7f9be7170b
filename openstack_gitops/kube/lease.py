"""Leader election with a ``coordination.k8s.io/v1`` Lease, as client-go does it; shared by all three processes.

Observe -> decide -> act. :func:`decide` is pure: given the Lease record as read, when this
process last saw that record change, the time now, its identity and the timings, it says what to
do (acquire, renew, wait, or give up: lost). Like client-go, expiry is judged by this process's
own monotonic clock from the moment it last *saw the record change*, never from the remote
``renewTime`` (another host's clock). The :class:`LeaderElector` thread is the thin edge: it
reads the Lease, asks :func:`decide`, and creates or updates the Lease with optimistic
concurrency (``resourceVersion``), so of two processes that act on the same record one fails.

Why no two processes ever act at once: a leader treats itself as leader only until
``renew_deadline`` after it *sent* its last successful renewal (:meth:`LeaderElector.is_leader`
reads the clock, so the fence is exact even while the elector thread waits on a hung request);
another process takes over only ``lease_duration`` after it saw that renewal land, which is
later. With the defaults (15 s / 10 s / 2 s) the gap is 5 s. A process that lost the Lease never
leads again (client-go exits; so do our processes, and Kubernetes restarts them as standbys).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from openstack_gitops.kube.client import ApiError, Cluster
from openstack_gitops.kube.objects import Manifest
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.probes import Check, all_of, ok

log = logs.get("lease")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
DEFAULT_NAMESPACE = "openstack-gitops"
JITTER_FACTOR = 1.2  # client-go's: the renew deadline must leave room for more than one retry


# -- the pure core ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Timings:
    """client-go's three durations (seconds) and their defaults."""

    lease_duration: float = 15.0  # a standby takes over this long after it last saw the record change
    renew_deadline: float = 10.0  # a leader that could not renew for this long stops acting
    retry_period: float = 2.0  # how often to try to acquire, and to renew

    def problems(self) -> list[str]:
        """What is wrong with these timings (client-go's checks); empty when they are usable."""
        out = [f"{name} must be > 0" for name, value in
               (("lease duration", self.lease_duration), ("renew deadline", self.renew_deadline),
                ("retry period", self.retry_period)) if value <= 0]
        if self.lease_duration <= self.renew_deadline:
            out.append("the lease duration must be longer than the renew deadline (that gap is what keeps "
                       "two processes from acting at once)")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            out.append(f"the renew deadline must be longer than {JITTER_FACTOR} x the retry period")
        return out

    @property
    def request_timeout(self) -> float:
        """Per request: short enough that a leader retries a few times before its renew deadline."""
        return max(1.0, min(self.renew_deadline / 2, 2 * self.retry_period))


@dataclass(frozen=True)
class LeaseRecord:
    """The leader-election fields of a Lease's spec (``resourceVersion`` is the edge's business)."""

    holder: str  # "" when released
    lease_duration: float
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0


class Unseen(StrEnum):
    """What an observation can be other than a record."""

    NO_LEASE = "no-lease"  # the Lease does not exist (yet)
    UNREADABLE = "unreadable"  # the read failed: apiserver down, timeout, forbidden


class Verb(StrEnum):
    ACQUIRE = "acquire"  # create the Lease, or update it to name me
    RENEW = "renew"  # update my Lease's renewTime
    WAIT = "wait"  # observe again after ``Action.wait`` seconds
    LOST = "lost"  # stop acting at once, and never act again in this process


@dataclass(frozen=True)
class Action:
    verb: Verb
    why: str
    wait: float = 0.0  # for WAIT: seconds until the next observation is worth making


def decide(seen: LeaseRecord | Unseen, observed_at: float, now: float, me: str, timings: Timings,
           renewed_at: float | None = None) -> Action:
    """What this process does next. Pure.

    ``observed_at``: when (this process's monotonic clock) it last saw ``seen`` change.
    ``renewed_at``: when it sent its last successful acquire/renew while leading; None when it
    does not lead. Expiry of another holder's Lease counts from ``observed_at`` plus the duration
    the record states (client-go's rule); the remote ``renewTime`` is never trusted.
    """
    leading = renewed_at is not None
    if renewed_at is not None and now - renewed_at >= timings.renew_deadline:
        return Action(Verb.LOST, f"not renewed for {now - renewed_at:.1f}s (renew deadline "
                                 f"{timings.renew_deadline:g}s)")
    if seen is Unseen.UNREADABLE:
        return Action(Verb.WAIT, "cannot read the Lease", timings.retry_period)
    if seen is Unseen.NO_LEASE:
        if leading:  # someone deleted it: another process may be creating it right now
            return Action(Verb.LOST, "the Lease was deleted")
        return Action(Verb.ACQUIRE, "no Lease yet: create it")
    if seen.holder == me:
        if leading:
            return Action(Verb.RENEW, "renew my Lease")
        return Action(Verb.ACQUIRE, "the Lease names me (a restart with the same identity): take it back")
    if leading:
        return Action(Verb.LOST, f"the Lease names {seen.holder or 'nobody'}")
    if not seen.holder:
        return Action(Verb.ACQUIRE, "the Lease was released")
    duration = seen.lease_duration or timings.lease_duration
    expires = observed_at + duration
    if now < expires:
        return Action(Verb.WAIT, f"{seen.holder} holds the Lease", min(timings.retry_period, expires - now))
    return Action(Verb.ACQUIRE, f"{seen.holder} did not renew for {now - observed_at:.1f}s "
                                f"(lease duration {duration:g}s): take over")


# -- names ----------------------------------------------------------------------------------------
def default_identity() -> str:
    """hostname_pid_random: unique per process, so a restarted process never mistakes itself for the old one."""
    return f"{socket.gethostname()}_{os.getpid()}_{secrets.token_hex(3)}"


def default_namespace(path: Path = SERVICE_ACCOUNT_NAMESPACE) -> str:
    """The pod's own namespace in a cluster, else the product's."""
    try:
        return path.read_text().strip() or DEFAULT_NAMESPACE
    except OSError:
        return DEFAULT_NAMESPACE


def user_agent(base: str, identity: str) -> str:
    """A process's user agent with its identity appended: the audit log tells the replicas apart by it."""
    return f"{base} ({identity})"


# -- the edge -------------------------------------------------------------------------------------
def _micro_time(when: float) -> str:
    """A Kubernetes MicroTime (for people reading the Lease; expiry never depends on it)."""
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record_of(lease: Manifest) -> LeaseRecord:
    spec = lease.get("spec") or {}
    return LeaseRecord(str(spec.get("holderIdentity") or ""), float(spec.get("leaseDurationSeconds") or 0),
                       str(spec.get("acquireTime") or ""), str(spec.get("renewTime") or ""),
                       int(spec.get("leaseTransitions") or 0))


class LeaderElector:
    """Holds one Lease for this process: acquires it, renews it, and says at every moment whether it leads.

    ``is_leader`` is the fence every write checks. ``on_started`` runs (in the elector's thread)
    once the Lease is acquired; ``on_lost`` once it is lost, after which this elector never leads
    again. ``step_down`` then ``release`` hand the Lease over at shutdown (holder cleared, as
    client-go's ReleaseOnCancel), so a standby takes over at once instead of after the lease duration.
    A watch on the Lease wakes a standby as soon as the record changes; without permission to
    watch it still polls every retry period.
    """

    def __init__(self, cluster: Cluster, namespace: str, name: str, identity: str, timings: Timings = Timings(),
                 on_started: Callable[[], None] = lambda: None, on_lost: Callable[[str], None] = lambda _why: None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.cluster = cluster
        self.namespace, self.name, self.identity, self.timings = namespace, name, identity, timings
        self.on_started, self.on_lost = on_started, on_lost
        self.clock, self.wall = clock, wall
        self.lost = threading.Event()  # set once; this process never leads again
        self.leading = threading.Event()  # set while it holds the Lease (the fence reads the clock too)
        self._stop = threading.Event()
        self._wake = threading.Event()  # the watch saw the Lease change: observe now
        self._lock = threading.Lock()
        self._renewed_at: float | None = None  # when the last successful acquire/renew was sent
        self._stepped_down = False
        self._seen: LeaseRecord | Unseen = Unseen.UNREADABLE  # the last observation
        self._known: LeaseRecord | Unseen = Unseen.UNREADABLE  # the last record actually read (or written)
        self._observed_at = 0.0
        self._read_ok = False  # it has read the Lease (or its absence) at least once
        self._version = ""  # resourceVersion of the record last read or written
        self._renewing = False  # its last write landed: the next renewal needs no read first
        self.last_tick = clock()  # the elector thread's heartbeat (healthz)
        self._thread = threading.Thread(target=self._run, name="leader-elector", daemon=True)
        self._watcher = threading.Thread(target=self._watch, name="lease-watch", daemon=True)

    # -- what the process asks ---------------------------------------------------------------
    def is_leader(self) -> bool:
        """True only while this process may act: it holds the Lease and renewed it within the renew deadline."""
        with self._lock:
            renewed_at, stepped_down = self._renewed_at, self._stepped_down
        return (renewed_at is not None and not stepped_down and not self.lost.is_set()
                and self.clock() - renewed_at < self.timings.renew_deadline)

    def wait_leader(self, timeout: float) -> bool:
        return self.leading.wait(timeout) and self.is_leader()

    def holder(self) -> str:
        return self._known.holder if isinstance(self._known, LeaseRecord) else ""

    def readiness(self) -> tuple[bool, str]:
        """Ready: the leader, or a standby that has read the Lease and can take over (see README)."""
        if self.lost.is_set():
            return False, "lost the Lease; exiting"
        if self._stepped_down:
            return False, "shutting down"
        if self.is_leader():
            return True, "leader"
        if not self._read_ok:
            return False, "has not read the Lease yet"
        return True, f"standby (leader: {self.holder() or 'none'})"

    def alive(self) -> tuple[bool, str]:
        """Healthz: the elector thread runs and is not stuck (each of its requests has a timeout)."""
        if self._stepped_down or self.lost.is_set():
            return True, "elector stopped"
        age = self.clock() - self.last_tick
        limit = self.timings.retry_period + 10 * self.timings.request_timeout  # urllib3 retries a timed-out read
        if not self._thread.is_alive() or age > limit:
            return False, f"leader elector silent for {age:.0f}s"
        return True, "elector running"

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        self._watcher.start()

    def step_down(self) -> None:
        """Stop acting now (the fence closes) and stop renewing; ``release`` may follow."""
        with self._lock:
            self._stepped_down = True
        self.leading.clear()
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(self.timings.request_timeout + 1)

    def release(self) -> bool:
        """Clear the holder so a standby takes over at once (only after ``step_down``, and only
        when nothing of this process writes any more). False when there was nothing to release."""
        with self._lock:
            held = self._renewed_at is not None and not self.lost.is_set()
            self._renewed_at = None
        known = self._known
        if not held or not isinstance(known, LeaseRecord) or known.holder != self.identity:
            return False
        now = self.wall()
        spec = {"holderIdentity": "", "leaseDurationSeconds": 1, "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now), "leaseTransitions": known.transitions}
        try:  # conditional on the version this process last wrote: never clears someone else's Lease
            self.cluster.replace_lease(self._lease(spec, self._version), timeout=self.timings.request_timeout)
        except ApiError as exc:  # a conflict means someone else already holds it: nothing to release
            log.warning("could not release the Lease; it expires on its own", extra={"error": str(exc)})
            return False
        log.info("released the Lease", extra={"lease": f"{self.namespace}/{self.name}", "identity": self.identity})
        return True

    # -- the loop: observe -> decide -> act ---------------------------------------------------
    def _run(self) -> None:
        log.info("leader election: starting", extra={"lease": f"{self.namespace}/{self.name}",
                                                     "identity": self.identity})
        while not self._stop.is_set():
            self.last_tick = self.clock()
            self._wake.clear()
            if not self._renewing:  # client-go's fast path: a leader whose last write landed renews blind
                self._observe()     # (the update is conditional on that write's version: a conflict ends it)
            with self._lock:
                renewed_at = self._renewed_at
            action = decide(self._seen, self._observed_at, self.clock(), self.identity, self.timings, renewed_at)
            if self._stop.is_set():
                return
            if action.verb is Verb.LOST:
                self._lose(action.why)
                return
            if action.verb is Verb.WAIT:
                (self._stop if renewed_at is not None else self._wake).wait(max(0.05, action.wait))
                continue
            self._write(action)
            self._stop.wait(self.timings.retry_period)  # leaders renew every retry period; failures retry then

    def _observe(self) -> None:
        try:
            lease = self.cluster.get_lease(self.namespace, self.name, timeout=self.timings.request_timeout)
        except ApiError as exc:
            if self._seen is not Unseen.UNREADABLE:
                log.warning("cannot read the Lease", extra={"error": str(exc)})
            self._seen = Unseen.UNREADABLE  # what was known (and when it changed) is kept for the next read
            return
        self._read_ok = True
        if lease is None:
            self._note(Unseen.NO_LEASE, "")
            return
        self._note(_record_of(lease), str((lease.get("metadata") or {}).get("resourceVersion") or ""))

    def _note(self, seen: LeaseRecord | Unseen, version: str) -> None:
        """Remember what was read; the clock restarts only when the record changed (client-go's rule),
        so a record that is still the same after an apiserver outage expires on time."""
        if seen != self._known:
            self._observed_at = self.clock()
            if isinstance(seen, LeaseRecord):
                log.debug("lease record changed", extra={"holder": seen.holder, "renew": seen.renew_time})
        self._seen = self._known = seen
        self._version = version

    def _write(self, action: Action) -> None:
        seen = self._seen
        now = _micro_time(self.wall())
        record = seen if isinstance(seen, LeaseRecord) else None
        acquire_time, transitions = now, 0
        if record is not None and record.holder == self.identity:  # renewing (or taking back) my own
            acquire_time, transitions = record.acquire_time or now, record.transitions
        elif record is not None:
            transitions = record.transitions + 1
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": max(1, math.ceil(self.timings.lease_duration)),
                "acquireTime": acquire_time, "renewTime": now, "leaseTransitions": transitions}
        sent = self.clock()
        try:
            if seen is Unseen.NO_LEASE:
                written = self.cluster.create_lease(self._lease(spec), timeout=self.timings.request_timeout)
            else:
                written = self.cluster.replace_lease(self._lease(spec, self._version),
                                                     timeout=self.timings.request_timeout)
        except ApiError as exc:  # 409: someone else wrote first; anything else: try again next period
            self._renewing = False  # read the Lease again before the next attempt
            level = log.info if exc.status == 409 else log.warning
            level(f"leader election: {action.verb} failed", extra={"error": str(exc)})
            return
        self._note(_record_of(written), str((written.get("metadata") or {}).get("resourceVersion") or ""))
        self._renewing = True
        with self._lock:
            first = self._renewed_at is None
            self._renewed_at = sent
            if self._stepped_down:
                return  # stepped down while the request was in flight: it never acts; release() hands it over
        if first:
            log.info("leader election: became the leader", extra={"identity": self.identity, "why": action.why})
            self.leading.set()
            self.on_started()

    def _lose(self, why: str) -> None:
        self.lost.set()
        self.leading.clear()
        log.error("leader election: lost the Lease; acting no more", extra={"why": why, "identity": self.identity})
        self.on_lost(why)

    def _lease(self, spec: dict[str, Any], version: str = "") -> Manifest:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if version:
            meta["resourceVersion"] = version
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def _watch(self) -> None:
        """Wake the loop whenever the Lease changes, so a release is taken over at once."""
        delay = self.timings.retry_period
        while not self._stop.is_set():
            try:
                for _event in self.cluster.watch_lease(self.namespace, self.name, timeout=60):
                    self._wake.set()
                    if self._stop.is_set():
                        return
                delay = self.timings.retry_period
            except ApiError as exc:
                if exc.status == 403:
                    log.warning("no permission to watch the Lease; polling it every retry period",
                                extra={"error": str(exc)})
                    delay = 300.0
                self._stop.wait(delay)
                delay = min(max(delay, 1.0) * 2, 300.0)


def leader_gauge(registry: CollectorRegistry, is_leader: Callable[[], bool]) -> Gauge:
    """``openstack_gitops_leader``: 1 while this process may act, read at scrape time (never stale)."""
    gauge = Gauge("openstack_gitops_leader", "1 while this process holds the leader Lease and may act",
                  registry=registry)
    gauge.set_function(lambda: 1.0 if is_leader() else 0.0)
    return gauge


# -- the command lines' part: the same flags, Lease client and hand-over in every process ---------------
def add_flags(parser: argparse.ArgumentParser, lease_name: str, elect_default: bool | None = True,
              elect_help: str = "act only while holding a coordination.k8s.io Lease (default: on)") -> None:
    """``--leader-elect`` and the Lease's name, namespace, timings and identity, with client-go's defaults."""
    p, t = parser, Timings()
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=elect_default, help=elect_help)
    p.add_argument("--lease-name", default=lease_name)
    p.add_argument("--lease-namespace", help="default: the pod's namespace, else openstack-gitops")
    p.add_argument("--lease-duration", type=float, default=t.lease_duration,
                   help="seconds a standby waits after the last renewal it saw before taking over (%(default)s)")
    p.add_argument("--renew-deadline", type=float, default=t.renew_deadline,
                   help="seconds a leader keeps acting without a successful renewal (%(default)s)")
    p.add_argument("--retry-period", type=float, default=t.retry_period,
                   help="seconds between attempts to acquire or renew (%(default)s)")
    p.add_argument("--identity", help="this replica's name in the Lease (default: hostname_pid_random)")


def timings_of(args: argparse.Namespace) -> Timings:
    return Timings(args.lease_duration, args.renew_deadline, args.retry_period)


def elector_of(args: argparse.Namespace, cluster: Cluster, identity: str,
               on_lost: Callable[[str], None]) -> LeaderElector:
    """The elector the flags ask for, on ``cluster`` (its own connections, so renewals never queue behind
    the process's requests; the user agent names the replica in the audit log)."""
    cluster.api.user_agent = user_agent(cluster.api.user_agent, identity)
    return LeaderElector(cluster, args.lease_namespace or default_namespace(), args.lease_name, identity,
                         timings_of(args), on_lost=on_lost)


def hand_over(elector: LeaderElector | None) -> bool:
    """Stop acting and release the Lease (a standby takes over at once) unless it was lost; True when lost:
    the process exits 1, to be restarted as a standby."""
    if elector is None:
        return False
    elector.step_down()
    if elector.lost.is_set():
        print("lost the leader Lease: exiting, to be restarted as a standby", file=sys.stderr)
        return True
    elector.release()
    return False


def fence(elector: LeaderElector | None) -> Callable[[], bool]:
    """What a process asks before each write: the Lease's fence, or always yes when it runs alone."""
    return elector.is_leader if elector is not None else (lambda: True)


def probes(elector: LeaderElector | None, *alive: Check) -> tuple[Check, Check]:
    """(/healthz, /readyz): alive while ``alive`` and the elector's thread are; ready as the elector says
    (a standby is ready: it keeps watching), always when it runs alone."""
    healthz = all_of([*alive, *([elector.alive] if elector is not None else [])])
    return healthz, (elector.readiness if elector is not None else ok)
