"""The notification edge: Alertmanager's v2 API and a generic webhook, sent from threads that never block the watch.

The watch loop calls :meth:`Notifier.notify`, which only appends to a bounded queue per sink (the oldest
note is dropped when one is full) and returns. Each sink has its own worker thread, so a webhook that
hangs does not delay Alertmanager. A worker sends what is queued in batches; a failed batch goes back to
the front of its queue and is retried with exponential back-off and full jitter, until it is older than
``max_age`` and is dropped as expired. Every outcome goes to ``on_result(sink, result, note)`` (the
loop turns them into metrics) and to a structured log line.

Long-lived conditions (an open circuit breaker) are sent with :meth:`Notifier.firing`: Alertmanager
resolves an alert at its ``endsAt``, so the notifier re-sends it every ``resend_interval`` with ``endsAt``
a few intervals ahead (as Prometheus does) until :meth:`Notifier.resolve` sends it once as resolved.

Bearer tokens are read from their file for every request (a rotated Secret needs no restart) and are
registered with the log scrubber, as are credentials in a URL; TLS certificates are always verified.
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import requests

from healthwatcher.notify import Notification, alertmanager_payload, webhook_payload
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.backoff import Backoff

log = logs.get("healthwatcher.notify")

ResultCallback = Callable[[str, str, Notification], None]


class Result(StrEnum):
    """What happened to one note at one sink: the closed set ``on_result`` sees."""

    SENT = "sent"
    RETRY = "retry"  # this attempt failed; the note stays queued
    DROPPED = "dropped"  # pushed out of a full queue, or still queued when the notifier stopped
    EXPIRED = "expired"  # not delivered within max_age


class SinkError(Exception):
    """A send that did not reach its receiver: unreachable, timed out, refused, or misconfigured."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason  # unreachable | timeout | http | config


class Sink(Protocol):
    """One receiver of notifications; ``send`` raises on any failure (the whole batch is retried)."""

    name: str
    batch_size: int  # at most this many notes per send
    refresh: bool  # receives the periodic re-sends of firing alerts (Alertmanager needs them)

    def send(self, notes: Sequence[Notification]) -> None: ...


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a sink's address (None: it can); says it without its credentials."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return f"must be an http(s) URL, not {safe_url(url)!r}"
    return None


def safe_url(url: str) -> str:
    """``url`` without user info and query, for logs; what was removed is registered with the scrubber."""
    parts = urllib.parse.urlsplit(url)
    logs.redact(*(v for v in (parts.password or "", parts.query) if v))
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


class _HttpSink:
    """POSTs JSON to one URL with a timeout, a bearer token read per request and verified TLS."""

    def __init__(self, name: str, url: str, timeout: float, token_file: Path | None, ca_file: Path | None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{name}: URL must be http(s), not {safe_url(url)!r}")
        if timeout <= 0:
            raise ValueError(f"{name}: timeout must be > 0")
        self.name = name
        self.url = url
        self.display_url = safe_url(url)
        self.timeout = timeout
        self.token_file = token_file
        self._session = requests.Session()
        self._session.verify = str(ca_file) if ca_file else True

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self.token_file is not None:
            try:
                token = self.token_file.read_text().strip()
            except OSError as exc:
                raise SinkError("config", f"cannot read token file {self.token_file}: {exc.strerror}") from None
            logs.redact(token)
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _post(self, url: str, body: Any) -> None:
        try:
            response = self._session.post(url, json=body, headers=self._headers(), timeout=self.timeout)
        except requests.Timeout:
            raise SinkError("timeout", f"no answer from {self.display_url} within {self.timeout:g}s") from None
        except requests.RequestException as exc:
            raise SinkError("unreachable", logs.scrub(f"{self.display_url}: {type(exc).__name__}")) from None
        if not 200 <= response.status_code < 300:
            text = logs.scrub(response.text.strip()[:200])
            raise SinkError("http", f"{self.display_url} answered HTTP {response.status_code}: {text}")

    def close(self) -> None:
        self._session.close()


class AlertmanagerSink(_HttpSink):
    """Alertmanager's ``POST /api/v2/alerts`` under ``url`` (its base URL); batches of up to 64 alerts."""

    batch_size = 64
    refresh = True

    def __init__(self, url: str, timeout: float = 5.0, token_file: Path | None = None, ca_file: Path | None = None,
                 generator_url: str = "", name: str = "alertmanager") -> None:
        super().__init__(name, url, timeout, token_file, ca_file)
        self.generator_url = generator_url

    def send(self, notes: Sequence[Notification]) -> None:
        self._post(f"{self.url.rstrip('/')}/api/v2/alerts", alertmanager_payload(notes, self.generator_url))


class WebhookSink(_HttpSink):
    """A generic webhook: one POST of :func:`webhook_payload` per note, firing and resolved once each."""

    batch_size = 1  # a failed POST never re-sends a note that was already accepted
    refresh = False

    def __init__(self, url: str, timeout: float = 5.0, token_file: Path | None = None, ca_file: Path | None = None,
                 name: str = "webhook") -> None:
        super().__init__(name, url, timeout, token_file, ca_file)

    def send(self, notes: Sequence[Notification]) -> None:
        for note in notes:
            self._post(self.url, webhook_payload(note))


@dataclass(frozen=True)
class _Entry:
    note: Notification
    queued_at: float  # the notifier's clock: max_age counts from here


class _Worker:
    """One sink's queue and thread: batches, back-off, expiry, and the flush at stop."""

    def __init__(self, sink: Sink, queue_size: int, report: Callable[[str, Result, Notification], None],
                 clock: Callable[[], float], max_age: float, backoff: Backoff) -> None:
        self.sink = sink
        self.queue_size = queue_size
        self.report = report
        self.clock = clock
        self.max_age = max_age
        self.backoff = backoff
        self.last_sent: float | None = None
        self._cond = threading.Condition()
        self._pending: deque[_Entry] = deque()
        self._retry_at = 0.0  # monotonic
        self._stopping = False
        self._deadline = 0.0  # monotonic: the flush at stop ends here
        self.thread = threading.Thread(target=self._run, name=f"notify-{sink.name}", daemon=True)

    def depth(self) -> int:
        with self._cond:
            return len(self._pending)

    def put(self, note: Notification) -> None:
        """Queue ``note``; never waits on the sink (only on this queue's lock, held for list operations)."""
        with self._cond:
            if self._stopping:
                dropped = [_Entry(note, 0.0)]
            else:
                self._pending.append(_Entry(note, self.clock()))
                dropped = self._trim()
                self._cond.notify()
        self._report_all(dropped, Result.DROPPED)

    def stop(self, deadline: float) -> None:
        with self._cond:
            self._stopping = True
            self._deadline = deadline
            self._cond.notify()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if self._attempt(batch):
                self.backoff.reset()
                self._retry_at = 0.0
            else:
                self._retry_at = time.monotonic() + self.backoff.next_delay()
                self._requeue(batch)
        self._flush()

    def _next_batch(self) -> list[_Entry] | None:
        """Wait for something to send (and for the back-off to pass); None once stopping."""
        while True:
            with self._cond:
                while not self._stopping and not (self._pending and time.monotonic() >= self._retry_at):
                    self._cond.wait(max(self._retry_at - time.monotonic(), 0.0) if self._pending else None)
                if self._stopping:
                    return None
                batch, expired = self._take()
            self._report_all(expired, Result.EXPIRED)
            if batch:
                return batch

    def _flush(self) -> None:
        """At stop: one attempt per batch while the deadline allows; what is left is reported dropped."""
        while time.monotonic() < self._deadline:
            with self._cond:
                batch, expired = self._take()
            self._report_all(expired, Result.EXPIRED)
            if not batch:
                break
            if not self._attempt(batch):
                self._requeue(batch)
                break
        with self._cond:
            left = list(self._pending)
            self._pending.clear()
        self._report_all(left, Result.DROPPED)

    def _take(self) -> tuple[list[_Entry], list[_Entry]]:
        """Up to ``batch_size`` entries young enough to send, and the expired ones met on the way (lock held)."""
        batch: list[_Entry] = []
        expired: list[_Entry] = []
        oldest = self.clock() - self.max_age
        while self._pending and len(batch) < self.sink.batch_size:
            entry = self._pending.popleft()
            (expired if entry.queued_at < oldest else batch).append(entry)
        return batch, expired

    def _requeue(self, batch: list[_Entry]) -> None:
        with self._cond:
            self._pending.extendleft(reversed(batch))
            dropped = self._trim()
        self._report_all(dropped, Result.DROPPED)

    def _trim(self) -> list[_Entry]:
        """Drop the oldest entries beyond ``queue_size`` (lock held)."""
        dropped = []
        while len(self._pending) > self.queue_size:
            dropped.append(self._pending.popleft())
        return dropped

    def _attempt(self, batch: list[_Entry]) -> bool:
        notes = [entry.note for entry in batch]
        try:
            self.sink.send(notes)
        except Exception as exc:
            reason = exc.reason if isinstance(exc, SinkError) else type(exc).__name__
            log.warning("notification not delivered; will retry", extra={
                "sink": self.sink.name, "reason": reason, "error": logs.scrub(str(exc))[:500],
                "notes": len(notes), "failures": self.backoff.failures + 1})
            self._report_all(batch, Result.RETRY)
            return False
        self.last_sent = self.clock()
        self._report_all(batch, Result.SENT)
        return True

    def _report_all(self, entries: Sequence[_Entry], result: Result) -> None:
        for entry in entries:
            self.report(self.sink.name, result, entry.note)


class Notifier:
    """Fans notifications out to its sinks, one worker thread each; ``notify`` never blocks.

    ``on_result(sink, result, note)`` runs right after each outcome: on the sink's worker thread for
    sent/retry/expired (so the callback's own clock reading is the delivery time), on the caller's
    thread for a drop. It must be quick and must not raise (a raise is logged and ignored).
    """

    def __init__(self, sinks: Sequence[Sink], queue_size: int = 1000, on_result: ResultCallback | None = None,
                 clock: Callable[[], float] = time.time, *, resend_interval: float = 60.0, max_age: float = 600.0,
                 backoff_base: float = 1.0, backoff_cap: float = 60.0) -> None:
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique: {names}")
        if queue_size < 1 or resend_interval <= 0 or max_age <= 0:
            raise ValueError("queue_size, resend_interval and max_age must be positive")
        self.clock = clock
        self.resend_interval = resend_interval
        self._on_result = on_result
        self._workers = {sink.name: _Worker(sink, queue_size, self._report, clock, max_age,
                                            Backoff(base=backoff_base, cap=backoff_cap)) for sink in sinks}
        self._firing: dict[str, Notification] = {}
        self._lock = threading.RLock()  # orders firing, re-sends and resolve in every queue
        self._stop = threading.Event()
        self._resender = threading.Thread(target=self._resend_loop, name="notify-resend", daemon=True)
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        for worker in self._workers.values():
            worker.thread.start()
        self._resender.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop re-sending, give each sink until ``timeout`` to take what is queued, then return.

        A sink stuck in a request does not hold this up: its daemon thread is left to its own timeout."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        for worker in self._workers.values():
            worker.stop(deadline)
        if not self._started:
            return
        for worker in self._workers.values():
            worker.thread.join(max(deadline - time.monotonic(), 0.0))
            if worker.thread.is_alive():
                log.warning("notification sink still busy at stop", extra={"sink": worker.sink.name})
        self._resender.join(max(deadline - time.monotonic(), 0.0))

    def notify(self, note: Notification) -> None:
        """Queue ``note`` for every sink and return at once (a full queue drops its oldest note)."""
        self._fan_out(note, self._workers.values())

    def firing(self, note: Notification) -> None:
        """Send a long-lived alert now, and again every ``resend_interval`` until :meth:`resolve`."""
        with self._lock:
            self._firing[note.key] = note
            self._fan_out(self._refreshed(note), self._workers.values())

    def resolve(self, key: str, at: float) -> bool:
        """Send the firing alert ``key`` once as resolved at ``at`` and forget it; False if none is firing."""
        with self._lock:
            note = self._firing.pop(key, None)
            if note is None:
                return False
            self._fan_out(replace(note, resolved_at=max(at, note.at)), self._workers.values())
        return True

    def firing_keys(self) -> list[str]:
        with self._lock:
            return sorted(self._firing)

    def last_sent(self, sink: str) -> float | None:
        """The clock's reading right after the last successful send to ``sink`` (None: nothing sent yet)."""
        return self._workers[sink].last_sent

    def queued(self, sink: str) -> int:
        """Notes waiting for ``sink`` (not counting a batch in flight): the queue-depth gauge."""
        return self._workers[sink].depth()

    def _refreshed(self, note: Notification) -> Notification:
        """``note`` with ``endsAt`` four re-send intervals from now, so a missed re-send or two does not resolve it."""
        return replace(note, lifetime=max(self.clock() - note.at, 0.0) + 4 * self.resend_interval)

    def _resend_loop(self) -> None:
        while not self._stop.wait(self.resend_interval):
            refreshing = [w for w in self._workers.values() if w.sink.refresh]
            with self._lock:
                for note in self._firing.values():
                    self._fan_out(self._refreshed(note), refreshing)

    def _fan_out(self, note: Notification, workers: Iterable[_Worker]) -> None:
        for worker in workers:
            worker.put(note)

    def _report(self, sink: str, result: Result, note: Notification) -> None:
        extra = {"sink": sink, "result": str(result), "alertname": note.alertname, "key": note.key,
                 "status": "resolved" if note.resolved else "firing"}
        if result is Result.SENT:
            log.info("notification sent", extra=extra)
        elif result is not Result.RETRY:  # a retry is logged once per batch by the worker
            log.warning(f"notification {result}", extra=extra)
        if self._on_result is not None:
            try:
                self._on_result(sink, str(result), note)
            except Exception:
                log.exception("on_result callback failed", extra={"sink": sink, "result": str(result)})
