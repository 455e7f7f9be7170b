"""The watch verb: every change to one kind, exactly once, across reconnects and compactions.

``Cluster.watch(...)`` returns a :class:`Watch`; iterate it (one consumer) until ``stop()``:

1. LIST (paginated) and remember its resourceVersion. Every listed object arrives as a synthetic
   ADDED, then one RESYNC event carries the whole list.
2. WATCH from that resourceVersion with bookmarks: ADDED/MODIFIED/DELETED as the server sends
   them; a BOOKMARK only moves the remembered resourceVersion on (no event). The server ends each
   watch after ``timeout_seconds`` and the next one resumes where it stopped.
3. A connection error (apiserver restarting, network) or a transient server error: back off
   (exponential, jittered) and WATCH again from the last resourceVersion, so nothing is skipped.
4. 410 Gone (the resourceVersion was compacted away, e.g. after a long outage or an apiserver
   restart): LIST again and diff it against what the watch last knew (:func:`relist_diff`):
   what appeared, changed or vanished meanwhile comes as synthetic ADDED/MODIFIED/DELETED
   events, then a RESYNC with the full list. A consumer that only follows events misses
   nothing; one that keeps its own state can rebuild it from RESYNC instead.
5. A terminal error (403, 404 kind not served, 400 bad selector) is raised to the consumer: a
   watch that silently retried a refusal forever would look healthy and see nothing.

The watch remembers only a tombstone per object (identity, uid, resourceVersion, labels), not
whole objects, so watching thousands of pods costs little memory; a DELETED found by a re-list
carries that tombstone. The parsing and the diff are pure; the loop talks only to a
:class:`WatchSource` (the Kubernetes edge implements it), so this module imports no client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from openstack_gitops.kube.errors import BAD_RESPONSE, ApiError
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.backoff import Backoff

DEFAULT_TIMEOUT_SECONDS = 300  # the server ends a watch after this; the client allows a little more
DEFAULT_PAGE_SIZE = 500
log = logs.get("kube.watch")


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    RESYNC = "RESYNC"  # after every LIST: ``objects`` is the full current list


@dataclass(frozen=True)
class WatchEvent:
    """One change (or a RESYNC) as the consumer sees it.

    ``synthetic`` events come from a LIST (the first one, or a re-list after 410 Gone), not from
    the server's event stream; ``resource_version`` is the object's (the list's for RESYNC and
    for a DELETED found by a re-list).
    """

    type: EventType
    object: Manifest
    resource_version: str
    synthetic: bool = False
    objects: tuple[Manifest, ...] = ()

    @property
    def key(self) -> ObjectKey:
        return ObjectKey.of(self.object)


@dataclass(frozen=True)
class Query:
    """What one watch follows: a kind, optionally in one namespace, optionally filtered."""

    api_version: str
    kind: str
    namespace: str | None = None
    label_selector: str = ""
    field_selector: str = ""


@dataclass(frozen=True)
class Page:
    """One page of a LIST: its items, the list's resourceVersion, the token of the next page ("": last)."""

    items: tuple[Manifest, ...]
    resource_version: str
    continue_token: str = ""


class Stream(Protocol):
    """An open WATCH response: decoded JSON lines until the server ends it."""

    def __iter__(self) -> Iterator[Mapping[str, Any]]: ...

    def close(self) -> None:
        """Callable from any thread: a read in progress returns at once."""


class WatchSource(Protocol):
    """The two requests a watch makes; the Kubernetes edge (``Cluster``) implements them."""

    def list_page(self, query: Query, limit: int, continue_token: str = "") -> Page: ...

    def open_watch(self, query: Query, resource_version: str, timeout_seconds: int) -> Stream: ...


# -- pure: one line of the stream -------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    type: EventType
    object: Manifest
    resource_version: str


@dataclass(frozen=True)
class Bookmark:
    resource_version: str


@dataclass(frozen=True)
class Failure:
    """An ERROR line: the server's Status (code 410 when the resourceVersion is too old)."""

    status: int
    reason: str
    message: str


def resource_version_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def classify(raw: Mapping[str, Any], api_version: str, kind: str) -> Change | Bookmark | Failure:
    """What one decoded line of a WATCH response means. Pure.

    Objects get ``apiVersion``/``kind`` when the server left them out, so ``ObjectKey.of`` works.
    """
    event_type = str(raw.get("type", ""))
    obj = raw.get("object")
    if not isinstance(obj, Mapping):
        return Failure(0, BAD_RESPONSE, f"watch line without an object: {str(raw)[:200]}")
    if event_type == "BOOKMARK":
        return Bookmark(resource_version_of(obj))
    if event_type == "ERROR":
        return Failure(int(obj.get("code") or 500), str(obj.get("reason") or "InternalError"),
                       str(obj.get("message") or obj))
    if event_type in (EventType.ADDED, EventType.MODIFIED, EventType.DELETED):
        full = {"apiVersion": api_version, "kind": kind, **obj}
        return Change(EventType(event_type), full, resource_version_of(full))
    return Failure(0, BAD_RESPONSE, f"unknown watch event type {event_type!r}")


# -- pure: what a re-list tells ---------------------------------------------------------------
def tombstone(obj: Mapping[str, Any]) -> Manifest:
    """What the watch remembers of an object: enough to name it, tell it changed, and select it."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "labels") if meta.get(k)}
    return {"apiVersion": obj.get("apiVersion", ""), "kind": obj.get("kind", ""), "metadata": kept}


def _uid(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def relist_diff(known: Mapping[ObjectKey, Manifest], current: Sequence[Manifest],
                resource_version: str) -> list[WatchEvent]:
    """The events that turn ``known`` (what the watch last knew) into ``current`` (a fresh LIST). Pure.

    Deletions first (sorted), then additions and changes in list order. An object deleted and
    re-created under the same name meanwhile (another uid) is a DELETED of the old one plus an
    ADDED of the new one; an object whose resourceVersion is unchanged gives no event.
    """
    by_key = {ObjectKey.of(o): o for o in current}
    deleted = [WatchEvent(EventType.DELETED, dict(old), resource_version, synthetic=True)
               for key, old in sorted(known.items())
               if key not in by_key or (_uid(old) and _uid(by_key[key]) and _uid(old) != _uid(by_key[key]))]
    gone = {e.key for e in deleted}
    changed: list[WatchEvent] = []
    for key, obj in by_key.items():
        old = known.get(key)
        if old is None or key in gone:
            changed.append(WatchEvent(EventType.ADDED, obj, resource_version_of(obj), synthetic=True))
        elif resource_version_of(old) != resource_version_of(obj):
            changed.append(WatchEvent(EventType.MODIFIED, obj, resource_version_of(obj), synthetic=True))
    return deleted + changed


# -- the loop ---------------------------------------------------------------------------------
@dataclass
class WatchCounters:
    """What the watch went through (for logs, metrics and tests)."""

    lists: int = 0  # LISTs done: 1 at the start, one more per 410 Gone
    expired: int = 0  # 410 Gone answers (resourceVersion compacted away)
    failures: int = 0  # connection and transient errors, each followed by a back-off
    bookmarks: int = 0
    watches: int = 0  # WATCH requests opened


@dataclass(eq=False)
class Watch:
    """Follows one :class:`Query` forever: iterate it once; ``stop()`` from any thread ends it promptly."""

    source: WatchSource
    query: Query
    resource_version: str = ""  # "": LIST first; else resume from here (nothing is known then)
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    page_size: int = DEFAULT_PAGE_SIZE
    backoff: Backoff = field(default_factory=lambda: Backoff(base=1.0, cap=60.0))
    clock: Callable[[], float] = time.monotonic
    counters: WatchCounters = field(default_factory=WatchCounters)
    # what the consumer keeps of each object, applied as each page or event arrives: a LIST of 2,000 pods
    # then holds one page of full objects at a time, not all of them (it must keep apiVersion, kind and
    # metadata name, namespace, uid, resourceVersion and labels: the watch's own bookkeeping reads them)
    transform: Callable[[Manifest], Manifest] | None = None

    def __post_init__(self) -> None:
        self._known: dict[ObjectKey, Manifest] = {}
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._stream: Stream | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def stop(self) -> None:
        """End the iteration: wakes a back-off and unblocks a WATCH being read; returns at once."""
        self._stopped.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()

    def __iter__(self) -> Iterator[WatchEvent]:
        return self.events()

    def events(self) -> Iterator[WatchEvent]:
        what = f"{self.query.kind} in {self.query.namespace or 'all namespaces'}"
        while not self.stopped:
            try:
                if not self.resource_version:
                    yield from self._relist()
                    continue
                healthy = yield from self._follow()
            except ApiError as exc:
                if self.stopped:
                    return
                if exc.gone and self.resource_version:
                    self.counters.expired += 1
                    log.info("watch expired, listing again", extra={"watch": what, "error": exc.message})
                    self.resource_version = ""
                    continue
                if exc.terminal and not exc.gone:
                    raise
                healthy = False
                self.counters.failures += 1
                log.debug("watch interrupted", extra={"watch": what, "error": str(exc)})
            if not healthy:
                self._stopped.wait(self.backoff.next_delay())

    def _relist(self) -> Iterator[WatchEvent]:
        items, resource_version = self._list_all()
        events = relist_diff(self._known, items, resource_version)
        self._known = {ObjectKey.of(o): tombstone(o) for o in items}
        self.resource_version = resource_version
        self.counters.lists += 1
        for event in events:
            if self.stopped:
                return
            yield event
        if not self.stopped:
            yield WatchEvent(EventType.RESYNC, {}, resource_version, synthetic=True, objects=tuple(items))

    def _list_all(self) -> tuple[list[Manifest], str]:
        """Every page of one consistent LIST; a continue token that expired starts it over."""
        while True:
            items: list[Manifest] = []
            token, resource_version = "", ""
            try:
                while True:
                    page = self.source.list_page(self.query, self.page_size, token)
                    resource_version = resource_version or page.resource_version
                    full = ({"apiVersion": self.query.api_version, "kind": self.query.kind, **o} for o in page.items)
                    items.extend(map(self.transform, full) if self.transform else full)
                    token = page.continue_token
                    if not token:
                        return items, resource_version
            except ApiError as exc:
                if not (exc.gone and token):
                    raise
                self.counters.expired += 1

    def _follow(self) -> Generator[WatchEvent, None, bool]:
        """One WATCH request from the remembered resourceVersion, to its end.

        Returns whether it was healthy: it delivered something, or lasted half its timeout (a
        stream that keeps ending at once without a word is backed off like an error).
        """
        stream = self.source.open_watch(self.query, self.resource_version, self.timeout_seconds)
        self.counters.watches += 1
        with self._lock:
            self._stream = stream
        if self.stopped:  # stop() ran before the stream was registered
            stream.close()
        started, delivered = self.clock(), False
        try:
            for raw in stream:
                line = classify(raw, self.query.api_version, self.query.kind)
                if isinstance(line, Failure):
                    raise ApiError(f"{self.query.kind} watch", "watch", line.status, line.reason, line.message)
                if not delivered:
                    delivered = True
                    self.backoff.reset()
                if line.resource_version:
                    self.resource_version = line.resource_version
                if isinstance(line, Bookmark):
                    self.counters.bookmarks += 1
                    continue
                if self.transform is not None:
                    line = Change(line.type, self.transform(line.object), line.resource_version)
                key = ObjectKey.of(line.object)
                if line.type is EventType.DELETED:
                    self._known.pop(key, None)
                else:
                    self._known[key] = tombstone(line.object)
                yield WatchEvent(line.type, line.object, line.resource_version)
                if self.stopped:
                    return True
        finally:
            with self._lock:
                self._stream = None
            stream.close()
        return delivered or self.clock() - started >= self.timeout_seconds / 2
