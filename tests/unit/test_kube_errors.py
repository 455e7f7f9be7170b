"""Every library exception becomes the edge's ApiError, and nothing above the edge names one.

The exceptions are the library's own classes, built the way the library builds them; no client
is mocked and nothing here sends a request (a watch body is fed to the edge's reader as chunks).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic.exceptions import ConflictError, NotFoundError, ResourceNotFoundError, api_exception
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError

from openstack_gitops.kube.client import _api_error, _WatchStream
from openstack_gitops.kube.errors import ApiError

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("openstack_gitops", "reconciler", "autoscaler", "healthwatcher")
EDGE = REPO / "openstack_gitops" / "kube" / "client.py"
# the Prometheus edge maps its own (requests') exceptions to PrometheusError and configures urllib3's retries
OTHER_EDGES = (REPO / "autoscaler" / "edges" / "prometheus.py",)


def status_exception(status: int, reason: str, message: str) -> ApiException:
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "code": status, "reason": reason, "message": message})
    return exc


def dynamic(status: int, reason: str, message: str) -> Exception:
    try:
        raise status_exception(status, reason, message)
    except ApiException as exc:
        return api_exception(exc)  # type: ignore[no-any-return]  # what the dynamic client raises


@pytest.mark.parametrize(("exc", "status", "reason", "transient"), [
    (status_exception(422, "Invalid", "spec.selector: field is immutable"), 422, "Invalid", False),
    (dynamic(404, "NotFound", 'configmaps "x" not found'), 404, "NotFound", False),
    (dynamic(409, "Conflict", "the object has been modified"), 409, "Conflict", False),
    (dynamic(410, "Expired", "too old resource version"), 410, "Expired", False),
    (dynamic(403, "Forbidden", "cannot list"), 403, "Forbidden", False),
    (dynamic(429, "TooManyRequests", "storage is (re)initializing"), 429, "TooManyRequests", True),
    (dynamic(503, "ServiceUnavailable", "etcd"), 503, "ServiceUnavailable", True),
    (ResourceNotFoundError("No matches found for {'kind': 'Nope'}"), 404, "KindNotServed", False),
    (MaxRetryError(None, "/api", NewConnectionError(None, "Connection refused")),  # type: ignore[arg-type]
     0, "ServerUnreachable", True),
    (MaxRetryError(None, "/api", ReadTimeoutError(None, "/api", "read timed out")),  # type: ignore[arg-type]
     0, "Timeout", True),
    (ProtocolError("Connection broken: IncompleteRead"), 0, "ServerUnreachable", True),
    (ConnectionResetError(104, "Connection reset by peer"), 0, "ServerUnreachable", True),
    (TimeoutError("timed out"), 0, "Timeout", True),
    (json.JSONDecodeError("Expecting value", "<html>", 0), 0, "BadResponse", True),
    (ConfigException("Invalid kube-config file. No configuration found."), 0, "NoConfiguration", False),
    (ValueError("Host value http://127.0.0.1:6443 should start with https://"), 0, "NoConfiguration", False),
])
def test_library_exceptions_map_to_api_error(exc: Exception, status: int, reason: str, transient: bool) -> None:
    error = _api_error("ConfigMap/ns/x", "get", exc)
    assert isinstance(error, ApiError)
    assert (error.status, error.reason, error.transient, error.terminal) == (status, reason, transient, not transient)
    assert str(error).startswith(f"ConfigMap/ns/x: get failed: {status} {reason}")


def test_the_servers_message_is_kept_and_properties_read_it() -> None:
    immutable = _api_error("Job/ns/x", "apply", status_exception(422, "Invalid", "spec.template: field is immutable"))
    assert immutable.immutable and immutable.message == "spec.template: field is immutable"
    assert _api_error("x", "get", dynamic(410, "Expired", "")).gone
    assert _api_error("x", "get", dynamic(409, "Conflict", "")).conflict
    assert _api_error("x", "get", ResourceNotFoundError("no")).kind_not_served
    assert _api_error("x", "get", NotFoundError(status_exception(404, "NotFound", "gone"))).not_found
    assert _api_error("x", "get", ConflictError(status_exception(409, "Conflict", "c"))).status == 409
    assert _api_error("x", "get", OSError("down")).unreachable


def _names_caught_outside_the_edge() -> list[str]:
    """``except X`` clauses in product code (not the edge) naming a library or transport exception."""
    suspicious = ("ApiException", "DynamicApiError", "NotFoundError", "ConflictError", "ResourceNotFoundError",
                  "MaxRetryError", "ProtocolError", "HTTPError", "ConfigException", "urllib3", "kubernetes")
    found = []
    for package in PRODUCT:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == EDGE or path in OTHER_EDGES:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ExceptHandler) and node.type is not None:
                    text = ast.unparse(node.type)
                    if any(name in text for name in suspicious):
                        found.append(f"{path.relative_to(REPO)}:{node.lineno}: except {text}")
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("kubernetes", "urllib3"):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: from {node.module} import ...")
    return found


def test_no_module_above_the_edge_catches_a_library_exception() -> None:
    assert _names_caught_outside_the_edge() == []


class Chunks:
    """A streamed HTTP body as the transport hands it over: arbitrary chunks, then an error or the end."""

    def __init__(self, *chunks: bytes | Exception) -> None:
        self.chunks = chunks
        self.closed = False

    def stream(self, amt: int | None = None, decode_content: bool = True) -> Iterator[bytes]:
        for chunk in self.chunks:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk

    def close(self) -> None:
        self.closed = True


def test_a_watch_stream_splits_lines_across_chunks_and_maps_a_broken_connection() -> None:
    body = Chunks(b'{"type": "ADDED", "object": {"a"', b': 1}}\n\n{"type": "BOO', b'KMARK", "object": {}}\n{"ty',
                  ProtocolError("Connection broken: IncompleteRead(0 bytes read)"))
    stream = _WatchStream(body, "ConfigMap watch")
    lines = []
    with pytest.raises(ApiError) as raised:
        lines.extend(stream)
    assert lines == [{"type": "ADDED", "object": {"a": 1}}, {"type": "BOOKMARK", "object": {}}]
    assert raised.value.unreachable and raised.value.transient and body.closed
    with pytest.raises(ApiError) as garbage:
        list(_WatchStream(Chunks(b"<html>\n"), "ConfigMap watch"))
    assert garbage.value.reason == "BadResponse"


def test_a_watch_stream_joins_a_character_split_across_chunks_and_maps_bytes_that_are_not_utf8() -> None:
    text = '{"type": "ADDED", "object": {"note": "Stöðvarfjörður ✓"}}\n'.encode()
    cut = text.index("✓".encode()) + 1  # inside the three bytes of one character
    assert list(_WatchStream(Chunks(text[:cut], text[cut:]), "Pod watch")) == [
        {"type": "ADDED", "object": {"note": "Stöðvarfjörður ✓"}}]
    # a line that is not UTF-8 (bytes lost on the way) is a bad answer: the watch reconnects, its thread lives
    with pytest.raises(ApiError) as raised:
        list(_WatchStream(Chunks(b'{"type": "ADDED", "object": {"n": "\xe2\x9c"}}\n'), "Pod watch"))
    assert raised.value.reason == "BadResponse" and raised.value.transient
