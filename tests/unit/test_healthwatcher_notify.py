"""The health watcher's notifications as data: identity, Alertmanager's v2 body, the webhook document."""

from __future__ import annotations

from typing import Any

import pytest

from healthwatcher.notify import Notification, Severity, alertmanager_payload, rfc3339, webhook_payload

AT = 1714564800.25  # 2024-05-01T12:00:00.250Z
LABELS = {"namespace": "openstack", "pod": "nova-compute-default-abc12", "node": "compute-1",
          "workload": "DaemonSet/nova-compute-default", "reason": "restart", "cloud": "site-a"}


def restart(**changes: Any) -> Notification:
    fields: dict[str, Any] = {"alertname": "OpenStackPodRestarted", "summary": "restarted nova-compute on compute-1",
                              "labels": LABELS, "severity": Severity.WARNING, "at": AT}
    return Notification(**{**fields, **changes})


def test_times_are_rfc3339_utc_with_milliseconds() -> None:
    assert rfc3339(AT) == "2024-05-01T12:00:00.250Z"
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"


def test_alertmanager_alert_carries_labels_severity_summary_and_times() -> None:
    [alert] = alertmanager_payload([restart()], generator_url="https://watcher.example/x")
    assert alert == {
        "labels": {**LABELS, "alertname": "OpenStackPodRestarted", "severity": "warning"},
        "annotations": {"summary": "restarted nova-compute on compute-1"},
        "startsAt": "2024-05-01T12:00:00.250Z",
        "endsAt": "2024-05-01T12:15:00.250Z",  # at + the default lifetime of 900 s
        "generatorURL": "https://watcher.example/x",
    }
    assert all(isinstance(v, str) for v in alert["labels"].values())


@pytest.mark.parametrize(("changes", "ends_at"), [
    pytest.param({"lifetime": 60.0}, "2024-05-01T12:01:00.250Z", id="one-off-event-ends-after-its-lifetime"),
    pytest.param({"resolved_at": AT + 30}, "2024-05-01T12:00:30.250Z", id="resolved-ends-at-resolution"),
    pytest.param({"resolved_at": AT + 30, "lifetime": 5.0}, "2024-05-01T12:00:30.250Z", id="resolution-wins"),
])
def test_ends_at(changes: dict[str, Any], ends_at: str) -> None:
    [alert] = alertmanager_payload([restart(**changes)])
    assert alert["endsAt"] == ends_at
    assert "generatorURL" not in alert  # no URL given: Alertmanager rejects an empty one


def test_batch_keeps_order() -> None:
    notes = [restart(labels={**LABELS, "pod": f"p-{i}"}) for i in range(3)]
    assert [a["labels"]["pod"] for a in alertmanager_payload(notes)] == ["p-0", "p-1", "p-2"]


def test_key_is_alertname_and_sorted_labels_stable_across_order_and_time() -> None:
    note = restart(labels={"pod": "p", "namespace": "ns"})
    same = restart(labels={"namespace": "ns", "pod": "p"}, at=AT + 100, severity=Severity.CRITICAL,
                   summary="other words", resolved_at=AT + 200)
    assert note.key == same.key == 'OpenStackPodRestarted{namespace="ns",pod="p"}'
    assert restart(labels={"namespace": "ns", "pod": "q"}).key != note.key


def test_key_quotes_values() -> None:
    assert restart(labels={"reason": 'a"b\\c'}).key == 'OpenStackPodRestarted{reason="a\\"b\\\\c"}'


@pytest.mark.parametrize("note", [
    pytest.param(restart(), id="firing"),
    pytest.param(restart(resolved_at=AT + 5), id="resolved"),
])
def test_webhook_document(note: Notification) -> None:
    doc = webhook_payload(note)
    assert doc["version"] == "1"
    assert doc["status"] == ("resolved" if note.resolved_at else "firing")
    assert doc["alertname"] == "OpenStackPodRestarted"
    assert doc["severity"] == "warning"
    assert doc["summary"] == note.summary
    assert doc["labels"] == LABELS
    assert doc["at"] == "2024-05-01T12:00:00.250Z"
    assert doc["resolvedAt"] == ("2024-05-01T12:00:05.250Z" if note.resolved_at else None)
    assert doc["key"] == note.key


def test_labels_are_a_private_read_only_copy() -> None:
    labels = dict(LABELS)
    note = restart(labels=labels)
    labels["pod"] = "changed"
    assert note.labels["pod"] == "nova-compute-default-abc12"
    with pytest.raises(TypeError):
        note.labels["pod"] = "x"  # type: ignore[index]


@pytest.mark.parametrize(("changes", "error"), [
    pytest.param({"labels": {"replicas": 3}}, TypeError, id="non-string-label-value"),
    pytest.param({"labels": {"bad-name": "x"}}, ValueError, id="invalid-label-name"),
    pytest.param({"labels": {"severity": "x"}}, ValueError, id="reserved-severity"),
    pytest.param({"labels": {"alertname": "x"}}, ValueError, id="reserved-alertname"),
    pytest.param({"alertname": "pod restarted"}, ValueError, id="alertname-not-identifier"),
    pytest.param({"lifetime": 0.0}, ValueError, id="zero-lifetime"),
    pytest.param({"resolved_at": AT - 1}, ValueError, id="resolved-before-it-happened"),
])
def test_invalid_notifications_are_refused(changes: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        restart(**changes)
