"""What the health watcher tells operators, as plain values and the JSON documents built from them. Pure.

A :class:`Notification` is one event (a restart, a refused restart) or one long-lived condition (an open
circuit breaker). ``alertmanager_payload`` turns notifications into the body of Alertmanager's
``POST /api/v2/alerts``; ``webhook_payload`` into the stable document a generic webhook receives. The
sending (queues, retries, threads) is ``healthwatcher.edges.notifiers``; nothing here does I/O.

An alert's identity in Alertmanager is its label set, so :attr:`Notification.key` (alert name and
sorted labels) is what a later "resolved" must repeat exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

WEBHOOK_VERSION = "1"  # bump when a field of webhook_payload changes meaning or goes away
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus' label name syntax
_RESERVED = frozenset({"alertname", "severity"})  # set from the fields of the same name


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True)
class Notification:
    """One thing to tell: ``at`` is when it happened (epoch seconds); ``resolved_at`` set means it is over.

    A one-off event resolves by itself ``lifetime`` seconds after ``at`` (Alertmanager's ``endsAt``), so
    nobody has to send a "resolved" for a restart. Labels are strings and never carry a secret.
    """

    alertname: str
    summary: str
    labels: Mapping[str, str]
    severity: Severity
    at: float
    resolved_at: float | None = None
    lifetime: float = 900.0

    def __post_init__(self) -> None:
        if not _LABEL_NAME.match(self.alertname):
            raise ValueError(f"alertname {self.alertname!r} must be an identifier such as OpenStackPodRestarted")
        for name, value in self.labels.items():
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"label name {name!r} is not a valid Prometheus label name")
            if name in _RESERVED:
                raise ValueError(f"label {name!r} is set from the notification's field, not from labels")
            if not isinstance(value, str):
                raise TypeError(f"label {name!r}: value must be a string, not {type(value).__name__}")
        if self.lifetime <= 0:
            raise ValueError(f"lifetime must be > 0, not {self.lifetime}")
        if self.resolved_at is not None and self.resolved_at < self.at:
            raise ValueError("resolved_at is before at")
        # a private read-only copy: a caller mutating its dict cannot change a queued notification
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))
        object.__setattr__(self, "severity", Severity(self.severity))

    @property
    def key(self) -> str:
        """The alert's identity: ``alertname{a="1",b="2"}`` with labels sorted (severity is not part of it)."""
        inner = ",".join(f"{name}={_quote(value)}" for name, value in sorted(self.labels.items()))
        return f"{self.alertname}{{{inner}}}"

    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None

    @property
    def ends_at(self) -> float:
        """When the alert stops firing: its resolution, else ``at + lifetime``."""
        return self.resolved_at if self.resolved_at is not None else self.at + self.lifetime


def rfc3339(epoch: float) -> str:
    """``2024-05-01T12:00:00.250Z``: UTC, milliseconds, as Alertmanager writes times back."""
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alertmanager_payload(notes: Sequence[Notification], generator_url: str = "") -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts``: one postable alert per notification, ``endsAt`` always set."""
    out: list[dict[str, Any]] = []
    for note in notes:
        alert: dict[str, Any] = {
            "labels": {**note.labels, "alertname": note.alertname, "severity": str(note.severity)},
            "annotations": {"summary": note.summary},
            "startsAt": rfc3339(note.at),
            "endsAt": rfc3339(note.ends_at),
        }
        if generator_url:
            alert["generatorURL"] = generator_url
        out.append(alert)
    return out


def webhook_payload(note: Notification) -> dict[str, Any]:
    """The generic webhook's JSON document; fields are only added under the same ``version``."""
    return {
        "version": WEBHOOK_VERSION,
        "status": "resolved" if note.resolved else "firing",
        "alertname": note.alertname,
        "severity": str(note.severity),
        "summary": note.summary,
        "labels": dict(note.labels),
        "key": note.key,
        "at": rfc3339(note.at),
        "resolvedAt": rfc3339(note.resolved_at) if note.resolved_at is not None else None,
        "endsAt": rfc3339(note.ends_at),
    }


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
