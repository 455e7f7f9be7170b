"""Leader election's decision table: one row per situation, a fixed clock, readable identities.

Times are seconds on this process's monotonic clock; NOW is 1000. ``observed`` is how long ago
this process saw the record change, ``renewed`` how long ago it sent its last successful renewal
(None: it does not lead). Default timings: lease 15 s, renew deadline 10 s, retry 2 s.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from openstack_gitops.kube.lease import Action, LeaseRecord, Timings, Unseen, Verb, decide

NOW = 1000.0
ME, OTHER = "pod-a", "pod-b"
T = Timings()


def held_by(holder: str, duration: float = 15) -> LeaseRecord:
    # renewTime says "just now" on purpose: a remote clock is never trusted for expiry
    return LeaseRecord(holder, duration, "2030-01-01T00:00:00.000000Z", "2030-01-01T00:00:00.000000Z", 3)


@dataclass(frozen=True)
class Row:
    case: str
    seen: LeaseRecord | Unseen
    observed: float  # seconds ago
    renewed: float | None  # seconds ago; None: not leading
    want: Verb
    wait: float = 0.0


TABLE = [
    # standby
    Row("no Lease yet: create it", Unseen.NO_LEASE, 0, None, Verb.ACQUIRE),
    Row("held by another, renewed 3 s ago as I saw it: wait a retry period", held_by(OTHER), 3, None, Verb.WAIT, 2),
    Row("held by another, 14 s ago: wait only until it expires", held_by(OTHER), 14, None, Verb.WAIT, 1),
    Row("held by another, exactly 15 s ago: expired", held_by(OTHER), 15, None, Verb.ACQUIRE),
    Row("held by another, 16 s ago (its renewTime says now): my clock decides", held_by(OTHER), 16, None,
        Verb.ACQUIRE),
    Row("held by another with a 30 s lease, 20 s ago: the record's duration counts", held_by(OTHER, 30), 20, None,
        Verb.WAIT, 2),
    Row("released (holder cleared on SIGTERM): take it at once", held_by(""), 0, None, Verb.ACQUIRE),
    Row("names me but I do not lead (restart, same identity): take it back", held_by(ME), 0, None, Verb.ACQUIRE),
    Row("unreadable (apiserver down): wait a retry period", Unseen.UNREADABLE, 30, None, Verb.WAIT, 2),
    # leader
    Row("mine, renewed 2 s ago: renew", held_by(ME), 2, 2, Verb.RENEW),
    Row("mine, renewed 9.9 s ago: still renew", held_by(ME), 9.9, 9.9, Verb.RENEW),
    Row("mine, renewed 10 s ago: past the renew deadline", held_by(ME), 10, 10, Verb.LOST),
    Row("unreadable, renewed 5 s ago: keep leading, retry", Unseen.UNREADABLE, 5, 5, Verb.WAIT, 2),
    Row("unreadable, renewed 10.5 s ago: lost", Unseen.UNREADABLE, 10.5, 10.5, Verb.LOST),
    Row("another holds it while I think I lead: lost", held_by(OTHER), 0, 1, Verb.LOST),
    Row("released by someone else while I lead: lost", held_by(""), 0, 1, Verb.LOST),
    Row("deleted while I lead: lost (another may be creating it)", Unseen.NO_LEASE, 0, 1, Verb.LOST),
]


@pytest.mark.parametrize("row", TABLE, ids=[r.case for r in TABLE])
def test_decide(row: Row) -> None:
    renewed_at = None if row.renewed is None else NOW - row.renewed
    action = decide(row.seen, NOW - row.observed, NOW, ME, T, renewed_at)
    assert action.verb is row.want, action.why
    assert action.wait == pytest.approx(row.wait)
    assert action.why


def test_decide_is_pure() -> None:
    """The same inputs give the same action (no clock, no I/O inside)."""
    args = (held_by(OTHER), NOW - 3, NOW, ME, T, None)
    assert decide(*args) == decide(*args) == Action(Verb.WAIT, f"{OTHER} holds the Lease", 2.0)


def test_no_two_leaders_with_one_clock_rate() -> None:
    """The leader stops acting (renew deadline after its last renewal was sent) before any standby
    may take over (lease duration after it saw that renewal land), for every moment in between."""
    sent = 100.0
    for tenth in range(0, 300):
        now = sent + tenth / 10
        leader = decide(Unseen.UNREADABLE, sent, now, OTHER, T, renewed_at=sent).verb is not Verb.LOST
        standby = decide(held_by(OTHER), sent + 0.01, now, ME, T).verb is Verb.ACQUIRE
        assert not (leader and standby), now - sent


@pytest.mark.parametrize(("timings", "problem"), [
    (Timings(10, 10, 2), "longer than the renew deadline"),
    (Timings(15, 2, 2), "1.2 x the retry period"),
    (Timings(15, 10, 0), "retry period must be > 0"),
])
def test_timings_checked_like_client_go(timings: Timings, problem: str) -> None:
    assert any(problem in p for p in timings.problems())
    assert Timings().problems() == []
