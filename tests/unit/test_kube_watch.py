"""The watch verb's pure parts (line classification, the re-list diff) and its loop over a scripted source.

The scripted source stands in for our own edge protocol (``WatchSource``: list a page, open a
stream), never for the Kubernetes client; the real thing is tested in tests/integration/test_kube_edge.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from openstack_gitops.kube.errors import ApiError
from openstack_gitops.kube.objects import Manifest, ObjectKey
from openstack_gitops.kube.watch import (
    Bookmark,
    Change,
    EventType,
    Failure,
    Page,
    Query,
    Watch,
    WatchEvent,
    classify,
    relist_diff,
    tombstone,
)
from openstack_gitops.runtime.backoff import Backoff


def cm(name: str, rv: str, uid: str = "", data: str = "") -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv, "uid": uid or f"uid-{name}",
                         "labels": {"app": "x"}, "managedFields": [{"manager": "m"}]},
            "data": {"k": data}}


def known(*objs: Manifest) -> dict[ObjectKey, Manifest]:
    return {ObjectKey.of(o): tombstone(o) for o in objs}


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type.value, e.object.get("metadata", {}).get("name", "")) for e in events]


# -- classify ---------------------------------------------------------------------------------
def test_classify_events_fill_in_api_version_and_kind() -> None:
    line = classify({"type": "MODIFIED", "object": {"metadata": {"name": "a", "resourceVersion": "7"}}},
                    "v1", "ConfigMap")
    assert isinstance(line, Change)
    assert line.type is EventType.MODIFIED and line.resource_version == "7"
    assert ObjectKey.of(line.object) == ObjectKey("", "ConfigMap", "", "a")


def test_classify_bookmark_error_and_garbage() -> None:
    assert classify({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": "9"}}},
                    "v1", "ConfigMap") == Bookmark("9")
    gone = classify({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                 "message": "too old resource version: 1 (500)"}}, "v1", "ConfigMap")
    assert gone == Failure(410, "Expired", "too old resource version: 1 (500)")
    unknown = classify({"type": "SURPRISE", "object": {}}, "v1", "ConfigMap")
    assert isinstance(unknown, Failure) and unknown.status == 0
    assert isinstance(classify({"type": "ADDED"}, "v1", "ConfigMap"), Failure)


# -- relist_diff ------------------------------------------------------------------------------
def test_tombstone_keeps_identity_and_version_only() -> None:
    stone = tombstone(cm("a", "5"))
    assert stone == {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": "a", "namespace": "ns", "uid": "uid-a", "resourceVersion": "5",
                                  "labels": {"app": "x"}}}


def test_relist_diff_reports_what_changed_while_disconnected() -> None:
    before = known(cm("keep", "1"), cm("changed", "2"), cm("gone", "3"))
    now = [cm("keep", "1"), cm("changed", "8"), cm("new", "9")]
    events = relist_diff(before, now, "10")
    assert summary(events) == [("DELETED", "gone"), ("MODIFIED", "changed"), ("ADDED", "new")]
    assert all(e.synthetic for e in events)
    assert events[0].resource_version == "10" and events[1].resource_version == "8"
    assert events[1].object["data"] == {"k": ""}  # the full listed object, not a tombstone


def test_relist_diff_of_a_recreated_object_is_a_deletion_and_an_addition() -> None:
    events = relist_diff(known(cm("pod", "1", uid="old")), [cm("pod", "4", uid="new")], "5")
    assert summary(events) == [("DELETED", "pod"), ("ADDED", "pod")]
    assert events[0].object["metadata"]["uid"] == "old" and events[1].object["metadata"]["uid"] == "new"


def test_relist_diff_of_nothing_known_adds_everything_and_of_no_change_is_empty() -> None:
    assert summary(relist_diff({}, [cm("a", "1"), cm("b", "2")], "3")) == [("ADDED", "a"), ("ADDED", "b")]
    assert relist_diff(known(cm("a", "1")), [cm("a", "1")], "3") == []


# -- the loop over a scripted source ----------------------------------------------------------
Script = list[Any]  # per request: a Page, a list of raw lines, or an ApiError to raise


class ScriptedStream:
    def __init__(self, lines: list[Mapping[str, Any] | ApiError]) -> None:
        self.lines = lines
        self.closed = False

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for line in self.lines:
            if isinstance(line, ApiError):
                raise line
            yield line

    def close(self) -> None:
        self.closed = True


class ScriptedSource:
    """Answers list_page/open_watch from scripts; records what it was asked. Stops the watch when done."""

    def __init__(self, lists: Script, watches: Script) -> None:
        self.lists, self.watches = lists, watches
        self.asked: list[str] = []
        self.watch: Watch | None = None

    def list_page(self, query: Query, limit: int, continue_token: str = "") -> Page:
        self.asked.append(f"list {continue_token}".strip())
        answer = self.lists.pop(0)
        if isinstance(answer, ApiError):
            raise answer
        assert isinstance(answer, Page)
        return answer

    def open_watch(self, query: Query, resource_version: str, timeout_seconds: int) -> ScriptedStream:
        self.asked.append(f"watch {resource_version}")
        if not self.watches:
            assert self.watch is not None
            self.watch.stop()
            return ScriptedStream([])
        answer = self.watches.pop(0)
        if isinstance(answer, ApiError):
            raise answer
        return ScriptedStream(answer)


def run(lists: Script, watches: Script, resource_version: str = "") -> tuple[list[WatchEvent], Watch, ScriptedSource]:
    source = ScriptedSource(lists, watches)
    watch = Watch(source, Query("v1", "ConfigMap", "ns"), resource_version=resource_version,
                  backoff=Backoff(base=0.0, cap=0.0), clock=lambda: 0.0)
    source.watch = watch
    return list(watch), watch, source


def ev(event_type: str, obj: Manifest) -> dict[str, Any]:
    return {"type": event_type, "object": obj}


def unreachable() -> ApiError:
    return ApiError("ConfigMap watch", "watch", 0, "ServerUnreachable", "connection refused")


def test_list_then_watch_with_bookmarks_resumes_from_the_last_version() -> None:
    events, watch, source = run(
        [Page((cm("a", "1"),), "5")],
        [[ev("ADDED", cm("b", "6")), ev("BOOKMARK", {"metadata": {"resourceVersion": "9"}})],
         [ev("DELETED", cm("a", "10"))]])
    assert summary(events) == [("ADDED", "a"), ("RESYNC", ""), ("ADDED", "b"), ("DELETED", "a")]
    assert [e.synthetic for e in events] == [True, True, False, False]
    assert events[1].objects[0]["metadata"]["name"] == "a"
    assert source.asked == ["list", "watch 5", "watch 9", "watch 10"]
    assert watch.counters.bookmarks == 1 and watch.counters.lists == 1 and watch.counters.failures == 0


def test_a_connection_error_backs_off_and_resumes_without_listing_again() -> None:
    events, watch, source = run(
        [Page((), "5")],
        [[ev("ADDED", cm("b", "6")), unreachable()], unreachable(), [ev("MODIFIED", cm("b", "7"))]])
    assert summary(events) == [("RESYNC", ""), ("ADDED", "b"), ("MODIFIED", "b")]
    assert source.asked == ["list", "watch 5", "watch 6", "watch 6", "watch 7"]
    assert watch.counters.failures == 2 and watch.counters.lists == 1


def test_gone_lists_again_and_reports_only_what_changed_meanwhile() -> None:
    gone = {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}}
    events, watch, source = run(
        [Page((cm("keep", "1"), cm("mod", "2"), cm("del", "3")), "5"),
         Page((cm("keep", "1"), cm("mod", "8"), cm("new", "9")), "20")],
        [[gone], [ev("ADDED", cm("later", "21"))]])
    assert summary(events[4:]) == [("DELETED", "del"), ("MODIFIED", "mod"), ("ADDED", "new"), ("RESYNC", ""),
                                   ("ADDED", "later")]
    assert source.asked == ["list", "watch 5", "list", "watch 20", "watch 21"]
    assert watch.counters.expired == 1 and watch.counters.lists == 2


def test_gone_as_an_http_answer_lists_again_too() -> None:
    events, _watch, source = run([Page((), "5"), Page((cm("a", "7"),), "8")],
                                 [ApiError("ConfigMap watch", "watch", 410, "Expired", "too old")])
    assert summary(events) == [("RESYNC", ""), ("ADDED", "a"), ("RESYNC", "")]
    assert source.asked == ["list", "watch 5", "list", "watch 8"]


def test_resuming_from_a_saved_version_lists_only_when_it_expired() -> None:
    events, _watch, source = run([Page((cm("a", "3"),), "40")],
                                 [[{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]],
                                 resource_version="1")
    assert summary(events) == [("ADDED", "a"), ("RESYNC", "")]
    assert source.asked == ["watch 1", "list", "watch 40"]


def test_an_expired_continue_token_starts_the_list_over() -> None:
    expired = ApiError("ConfigMap list", "list", 410, "Expired", "continue token expired")
    events, _watch, source = run(
        [Page((cm("a", "1"),), "5", "tok"), expired, Page((cm("a", "1"),), "6", "tok2"), Page((cm("b", "2"),), "6")],
        [])
    assert summary(events) == [("ADDED", "a"), ("ADDED", "b"), ("RESYNC", "")]
    assert source.asked == ["list", "list tok", "list", "list tok2", "watch 6"]


def test_a_terminal_refusal_reaches_the_consumer() -> None:
    forbidden = ApiError("ConfigMap watch", "watch", 403, "Forbidden", "no")
    with pytest.raises(ApiError) as raised:
        run([Page((), "5")], [forbidden])
    assert raised.value.status == 403


def test_stop_while_consuming_ends_the_iteration_and_closes_the_stream() -> None:
    stream = ScriptedStream([ev("ADDED", cm("a", "6")), ev("ADDED", cm("b", "7"))])
    source = ScriptedSource([Page((), "5")], [])
    source.open_watch = lambda *_a: stream  # type: ignore[method-assign]
    watch = Watch(source, Query("v1", "ConfigMap", "ns"), backoff=Backoff(base=0.0, cap=0.0))
    seen = []
    for event in watch:
        seen.append(event)
        if event.type is EventType.ADDED:
            watch.stop()
    assert summary(seen) == [("RESYNC", ""), ("ADDED", "a")]
    assert stream.closed


def test_a_transform_trims_each_listed_page_and_each_event_and_a_relist_still_diffs() -> None:
    def trim(obj: Manifest) -> Manifest:
        seen.append(obj["metadata"]["name"])
        return {**obj, "data": "trimmed"}

    seen: list[str] = []
    source = ScriptedSource(
        [Page((cm("a", "1"),), "5", continue_token="t"), Page((cm("b", "2"),), "5"), Page((cm("b", "2"),), "20")],
        [[ev("MODIFIED", cm("a", "6"))], ApiError("ConfigMap watch", "watch", 410, "Expired", "too old")])
    watch = Watch(source, Query("v1", "ConfigMap", "ns"), backoff=Backoff(base=0.0, cap=0.0), clock=lambda: 0.0,
                  transform=trim)
    source.watch = watch
    events = list(watch)
    assert seen == ["a", "b", "a", "b"]  # both pages, the event, the re-list
    kept = [o for e in events for o in (e.objects if e.type is EventType.RESYNC else (e.object,))
            if e.type is not EventType.DELETED]
    assert kept and all(o["data"] == "trimmed" for o in kept)
    assert summary(events) == [("ADDED", "a"), ("ADDED", "b"), ("RESYNC", ""), ("MODIFIED", "a"), ("DELETED", "a"),
                               ("RESYNC", "")]
