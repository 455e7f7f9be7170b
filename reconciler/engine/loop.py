"""The long-running reconciler: a poll interval with jitter, push webhooks, and back-off on errors.

This outer function alone decides when the next reconcile runs: soon after a push or a drift
watch event, later with exponential back-off after transient failures, and at the normal interval
after a failure that only a new commit can fix.
"""

from __future__ import annotations

import datetime as dt
import threading

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from openstack_gitops.runtime import logs
from openstack_gitops.runtime.backoff import Backoff
from reconciler.engine.outcome import Outcome, Retry
from reconciler.engine.reconcile import Reconciler

log = logs.get("loop")
JOB_ID = "reconcile"


class Loop:
    """Reconciles on an APScheduler interval job; triggers and back-off move its next run time."""

    def __init__(self, reconciler: Reconciler, interval: float = 120.0, jitter: float = 0.1) -> None:
        self.reconciler = reconciler
        self.interval = interval
        self.backoff = Backoff()
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1,
                                                           "misfire_grace_time": None})
        self.jitter = jitter
        self.last: Outcome | None = None
        self.done = threading.Event()  # set after every reconcile (tests and the CLI wait on it)
        self._wanted = threading.Event()  # a trigger arrived while a reconcile was running
        self._stopping = threading.Event()
        self._running = threading.Lock()  # held for the whole of one reconcile

    def start(self) -> None:
        self.scheduler.add_job(self._run, IntervalTrigger(seconds=self.interval, jitter=self.interval * self.jitter),
                               id=JOB_ID, next_run_time=dt.datetime.now())
        self.scheduler.start()

    def trigger(self, why: str) -> None:
        """Reconcile now, or right after the running reconcile (a push, a drift event)."""
        log.info("reconcile requested", extra={"why": why})
        self._wanted.set()
        self._reschedule(0.0)

    def busy(self) -> bool:
        """A reconcile is running now (the liveness check watches how long one goes without progress)."""
        return self._running.locked()

    def stop(self) -> None:
        """Let a running reconcile finish (never cut an apply in half), then stop the scheduler.

        The job must not touch the scheduler while shutdown holds its lock, so it is waited for
        first, with rescheduling switched off.
        """
        self._stopping.set()
        with self._running:
            pass
        self.scheduler.shutdown(wait=True)

    def _reschedule(self, delay: float) -> None:
        if self._stopping.is_set():
            return
        job = self.scheduler.get_job(JOB_ID)
        if job is not None:
            job.modify(next_run_time=dt.datetime.now() + dt.timedelta(seconds=delay))

    def _run(self) -> None:
        with self._running:
            if not self._stopping.is_set():
                self._run_once()

    def _run_once(self) -> None:
        self._wanted.clear()
        outcome = self.reconciler.reconcile()
        self.last = outcome
        log.info("reconciled", extra={"ok": outcome.ok, "reason": outcome.reason, "commit": outcome.commit[:12],
                                      "seconds": round(outcome.duration, 2), "summary": outcome.message})
        if self._wanted.is_set():
            delay = 0.0
        elif outcome.ok:
            self.backoff.reset()
            delay = self.interval if outcome.converged else min(self.interval, 10.0)  # follow a rollout closely
        elif outcome.retry is Retry.BACKOFF:
            delay = self.backoff.next_delay()
        else:
            delay = self.interval  # only a new commit fixes it; a push webhook brings that sooner
        self.done.set()
        self._reschedule(delay)
