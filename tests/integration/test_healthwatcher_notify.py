"""The health watcher's notifications reach a real Alertmanager and a real webhook, and never block the watch.

Alertmanager is the test bed's (session-wide), so every test labels its alerts with a pod name of its own and
reads back only those; the webhook receiver is a fresh loopback HTTP server per test.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from healthwatcher.edges.notifiers import AlertmanagerSink, Notifier, WebhookSink
from healthwatcher.notify import Notification, Severity
from testbed import process
from testbed.alertmanager import Alertmanager
from testbed.webhookreceiver import WebhookReceiver
from tests.waiting import wait_for

pytestmark = pytest.mark.testbed

FAST = {"backoff_base": 0.05, "backoff_cap": 0.2}  # back-off small enough for a test, still exponential


class Results:
    """What ``on_result`` reported, in order, from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str, Notification]] = []

    def __call__(self, sink: str, result: str, note: Notification) -> None:
        with self._lock:
            self.seen.append((sink, result, note))

    def of(self, sink: str, pod: str | None = None) -> list[str]:
        with self._lock:
            return [r for s, r, n in self.seen if s == sink and (pod is None or n.labels.get("pod") == pod)]


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def results() -> Results:
    return Results()


def restart(pod: str | None = None, **changes: Any) -> Notification:
    pod = pod or f"nova-compute-{uuid.uuid4().hex[:8]}"
    fields: dict[str, Any] = {
        "alertname": "OpenStackPodRestarted", "summary": f"restarted {pod} on compute-1",
        "labels": {"namespace": "openstack", "pod": pod, "node": "compute-1",
                   "workload": "DaemonSet/nova-compute-default", "reason": "restart", "cloud": "site-a"},
        "severity": Severity.WARNING, "at": time.time()}
    return Notification(**{**fields, **changes})


def parse(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def test_restart_notification_reads_back_from_alertmanager(alertmanager: Alertmanager, results: Results) -> None:
    note = restart()
    notifier = Notifier([AlertmanagerSink(alertmanager.url)], on_result=results)
    notifier.start()
    try:
        notifier.notify(note)
        [alert] = wait_for(lambda: alertmanager.alerts({"pod": note.labels["pod"]}), timeout=10, what="the alert")
    finally:
        notifier.stop()
    assert alert["labels"] == {**note.labels, "alertname": "OpenStackPodRestarted", "severity": "warning"}
    assert alert["annotations"] == {"summary": note.summary}
    assert alert["status"]["state"] == "active"
    assert abs(parse(alert["startsAt"]) - note.at) < 0.01
    assert abs(parse(alert["endsAt"]) - (note.at + 900)) < 0.01  # a restart resolves by itself
    assert results.of("alertmanager") == ["sent"]
    last = notifier.last_sent("alertmanager")
    assert last is not None and note.at <= last <= time.time()


def test_firing_breaker_alert_is_refreshed_then_resolved(alertmanager: Alertmanager, hook: WebhookReceiver,
                                                          results: Results) -> None:
    breaker = restart(alertname="OpenStackHealthWatcherBreakerOpen", severity=Severity.CRITICAL,
                      summary="circuit breaker open: 3 of 3 nova-compute pods failed")
    pod = breaker.labels["pod"]
    notifier = Notifier([AlertmanagerSink(alertmanager.url), WebhookSink(hook.url)], on_result=results,
                        resend_interval=0.3)
    notifier.start()
    try:
        notifier.firing(breaker)
        [first] = wait_for(lambda: alertmanager.alerts({"pod": pod}), timeout=10, what="the breaker alert")
        assert first["labels"]["severity"] == "critical"
        # re-sent while open: endsAt keeps moving ahead, so Alertmanager never resolves it by itself
        wait_for(lambda: [a for a in alertmanager.alerts({"pod": pod}) if a["endsAt"] > first["endsAt"]],
                 timeout=10, what="a later endsAt after a re-send")
        assert notifier.resolve(breaker.key, time.time())
        wait_for(lambda: alertmanager.alerts({"pod": pod}) == [], timeout=10, what="the alert resolved (gone)")
        bodies = hook.wait_for(2, timeout=10)
    finally:
        notifier.stop()
    assert notifier.firing_keys() == []
    assert not notifier.resolve(breaker.key, time.time())  # nothing left to resolve
    assert [b["status"] for b in bodies] == ["firing", "resolved"]  # the webhook is told once each, no re-sends
    assert results.of("alertmanager").count("sent") >= 3


def test_webhook_answering_503_twice_gets_the_note_on_the_third_try(hook: WebhookReceiver, results: Results,
                                                                      tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    token = tmp_path / "token"
    token.write_text("first-token-0123456789\n")
    hook.fail_next(2)
    note = restart()
    notifier = Notifier([WebhookSink(hook.url, token_file=token)], on_result=results, **FAST)
    notifier.start()
    caplog.set_level(logging.INFO, logger="openstack_gitops")
    try:
        notifier.notify(note)
        [body] = hook.wait_for(1, timeout=10)
        token.write_text("rotated-token-9876543210\n")  # read again for every request
        notifier.notify(restart())
        hook.wait_for(2, timeout=10)
    finally:
        notifier.stop()
    assert hook.attempts == 4
    assert body["labels"]["pod"] == note.labels["pod"] and body["status"] == "firing"
    assert results.of("webhook", note.labels["pod"]) == ["retry", "retry", "sent"]
    assert hook.authorizations[:3] == ["Bearer first-token-0123456789"] * 3
    assert hook.authorizations[3] == "Bearer rotated-token-9876543210"
    assert "not delivered" in caplog.text and "token-" not in caplog.text


def test_hanging_webhook_neither_blocks_notify_nor_delays_alertmanager(alertmanager: Alertmanager,
                                                                        hook: WebhookReceiver,
                                                                        results: Results) -> None:
    hook.hang()
    notes = [restart() for _ in range(5)]
    notifier = Notifier([AlertmanagerSink(alertmanager.url), WebhookSink(hook.url, timeout=30)], on_result=results)
    notifier.start()
    try:
        took = []
        for note in notes:
            started = time.perf_counter()
            notifier.notify(note)
            took.append(time.perf_counter() - started)
            if note is notes[0]:
                wait_for(lambda: hook.attempts == 1, timeout=10, what="the webhook holding the first request")
        for note in notes:
            wait_for(lambda n=note: alertmanager.alerts({"pod": n.labels["pod"]}), timeout=10,
                     what="Alertmanager's alert while the webhook hangs")
        assert hook.attempts == 1 and hook.bodies() == []  # still held
        assert results.of("webhook") == []
    finally:
        started = time.monotonic()
        notifier.stop(timeout=0.5)
        stopped_in = time.monotonic() - started
    assert max(took) < 0.05, took
    assert stopped_in < 1.5  # the sink stuck in its request does not hold stop() up


def test_full_queue_drops_the_oldest_and_reports_it(hook: WebhookReceiver, results: Results) -> None:
    hook.hang()
    first, *rest = [restart() for _ in range(4)]
    notifier = Notifier([WebhookSink(hook.url, timeout=30)], queue_size=2, on_result=results)
    notifier.start()
    try:
        notifier.notify(first)
        wait_for(lambda: hook.attempts == 1, timeout=10, what="the first note in flight")
        for note in rest:
            notifier.notify(note)
        assert notifier.queued("webhook") == 2
        dropped = [n for s, r, n in results.seen if r == "dropped"]
        assert dropped == [rest[0]]  # the oldest queued note, reported at once on the caller's thread
    finally:
        notifier.stop(timeout=0.2)


def test_undeliverable_note_expires_after_max_age(hook: WebhookReceiver, results: Results) -> None:
    hook.fail_next(1_000_000)
    note = restart()
    notifier = Notifier([WebhookSink(hook.url)], on_result=results, max_age=0.5, **FAST)
    notifier.start()
    try:
        notifier.notify(note)
        wait_for(lambda: "expired" in results.of("webhook"), timeout=10, what="the note expired")
    finally:
        notifier.stop(timeout=1)
    outcomes = results.of("webhook")
    assert outcomes[-1] == "expired" and set(outcomes[:-1]) == {"retry"} and len(outcomes) >= 3
    assert notifier.queued("webhook") == 0


def test_stop_flushes_what_it_can_and_returns_promptly(alertmanager: Alertmanager, results: Results) -> None:
    unreachable = f"http://127.0.0.1:{process.free_port()}/hook"  # nothing listens there
    notifier = Notifier([AlertmanagerSink(alertmanager.url), WebhookSink(unreachable)], on_result=results,
                        backoff_base=60, backoff_cap=60)  # a failed webhook waits a minute before its retry
    notifier.start()
    notes = [restart() for _ in range(3)]
    notifier.notify(notes[0])
    wait_for(lambda: "retry" in results.of("webhook"), timeout=10, what="the webhook backing off")
    for note in notes[1:]:
        notifier.notify(note)
    started = time.monotonic()
    notifier.stop(timeout=5)
    assert time.monotonic() - started < 2
    assert sorted(results.of("alertmanager")) == ["sent"] * 3
    webhook = results.of("webhook")
    assert "sent" not in webhook and webhook.count("dropped") == 3  # one flush attempt, then reported lost
    for note in notes:
        assert alertmanager.alerts({"pod": note.labels["pod"]})
