"""Push webhooks: a push to the followed branch triggers a reconcile at once; the poll loop stays the fallback.

Verification and parsing are pure functions (bytes and headers in, a verdict or a PushEvent out), so every
provider's rules are table-tested; the server around them only routes, limits sizes and answers.
A request that fails verification never reaches `on_push`, and no secret is ever logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from openstack_gitops.runtime import logs

log = logs.get("webhook")  # the configured tree: --log-json and credential scrubbing apply here too

MAX_BODY = 1024 * 1024  # GitHub caps payloads at 25 MB, but a config-repo push is a few KiB
_DRAIN_LIMIT = 8 * MAX_BODY  # read and drop an oversized body up to this, so the client sees the 413
_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GENERIC = "generic"


@dataclass(frozen=True)
class PushEvent:
    """A push to `branch`; `commit` is the new tip when the payload names one (None for a deleted branch)."""

    provider: Provider
    branch: str
    commit: str | None


class WebhookPayloadError(ValueError):
    """The body is not a push payload we can read (answered 400)."""


def _verify_hmac(secret: bytes, body: bytes, header: str | None) -> bool:
    if not secret or header is None or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower().encode("utf-8", "replace"))


def verify_github(secret: bytes, body: bytes, header: str | None) -> bool:
    """Pure. X-Hub-Signature-256 is `sha256=<hex HMAC-SHA256 of the body>`; compared in constant time."""
    return _verify_hmac(secret, body, header)


def verify_gitlab(secret: bytes, header: str | None) -> bool:
    """Pure. GitLab sends the shared secret itself in X-Gitlab-Token; compared in constant time."""
    return bool(secret) and header is not None and hmac.compare_digest(secret, header.encode("utf-8", "replace"))


def verify_generic(secret: bytes, body: bytes, header: str | None) -> bool:
    """Pure. X-Signature-256 carries a GitHub-style HMAC, so any Git host or CI job can sign a push."""
    return _verify_hmac(secret, body, header)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header lookup ignoring case, as HTTP wants (plain dicts in tests, email.Message in the server)."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


def verify_request(provider: Provider | str, secret: bytes, headers: Mapping[str, str], body: bytes) -> bool:
    """Pure. Dispatch to the provider's rule with the header it signs with."""
    match Provider(provider):
        case Provider.GITHUB:
            return verify_github(secret, body, _header(headers, "X-Hub-Signature-256"))
        case Provider.GITLAB:
            return verify_gitlab(secret, _header(headers, "X-Gitlab-Token"))
        case Provider.GENERIC:
            return verify_generic(secret, body, _header(headers, "X-Signature-256"))


def parse_push(provider: Provider | str, headers: Mapping[str, str], body: bytes) -> PushEvent | None:
    """Pure. The branch push in a verified body, or None for events that are not branch pushes (GitHub
    ping, tag pushes, other event kinds); raise WebhookPayloadError when the body cannot be read."""
    provider = Provider(provider)
    if provider is Provider.GITHUB and (_header(headers, "X-GitHub-Event") or "push") != "push":
        return None
    if provider is Provider.GITLAB and (_header(headers, "X-Gitlab-Event") or "Push Hook") != "Push Hook":
        return None
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookPayloadError("body is not JSON") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("ref"), str):
        raise WebhookPayloadError("body is not a push payload: no string 'ref'")
    ref: str = payload["ref"]
    if not ref.startswith("refs/heads/"):
        return None
    candidates = (payload.get("checkout_sha"), payload.get("after"), payload.get("commit"))
    commit = next((c for c in candidates if isinstance(c, str) and _SHA.match(c) and c.strip("0")), None)
    return PushEvent(provider, ref.removeprefix("refs/heads/"), commit)


class WebhookServer:
    """HTTP receiver on `host:port` (0 picks a free port) that calls `on_push` for pushes to `branch`.

    `on_push` runs on the request thread and should only signal the reconcile loop (e.g. set an Event).
    """

    def __init__(self, host: str, port: int, secret: bytes, branch: str, on_push: Callable[[PushEvent], None],
                 *, max_body: int = MAX_BODY) -> None:
        if not secret:
            raise ValueError("webhook secret must not be empty: an unsigned hook lets anyone trigger reconciles")
        self.branch = branch
        self._secret = secret
        self._on_push = on_push
        self.max_body = max_body
        self._server = _Server((host, port), _Handler, self)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        # A short poll interval only bounds how long stop() waits; requests are served as they arrive.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookServer:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def handle(self, provider: Provider, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str]]:
        """Decide the answer to one request whose body fits the limit: verify, parse, match the branch."""
        if not verify_request(provider, self._secret, headers, body):
            log.warning("webhook %s: rejected, signature missing or wrong", provider)
            return 401, {"status": "rejected", "reason": "signature missing or wrong"}
        try:
            event = parse_push(provider, headers, body)
        except WebhookPayloadError as exc:
            return 400, {"status": "rejected", "reason": str(exc)}
        if event is None:
            return 200, {"status": "ignored", "reason": "not a branch push"}
        if event.branch != self.branch:
            return 200, {"status": "ignored", "reason": f"branch {event.branch} is not followed"}
        log.info("webhook %s: push to %s at %s, reconciling now", provider, event.branch, event.commit or "?")
        try:
            self._on_push(event)
        except Exception:
            log.exception("webhook %s: on_push failed", provider)
            return 500, {"status": "error", "reason": "could not trigger a reconcile"}
        return 202, {"status": "accepted", "branch": event.branch, "commit": event.commit or ""}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], hook: WebhookServer) -> None:
        self.hook = hook
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    timeout = 10  # seconds per socket read, so a slow client cannot hold a thread forever
    server: _Server

    def do_POST(self) -> None:
        hook = self.server.hook
        path = self.path.split("?", 1)[0]
        try:
            provider = Provider(path.removeprefix("/hooks/")) if path.startswith("/hooks/") else None
        except ValueError:
            provider = None
        if provider is None:
            self._answer(404, {"status": "rejected", "reason": "unknown hook path"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._answer(411, {"status": "rejected", "reason": "Content-Length required"})
            return
        if length < 0 or length > hook.max_body:
            self._drain(length)
            self._answer(413, {"status": "rejected", "reason": f"body over {hook.max_body} bytes"})
            return
        body = self.rfile.read(length)
        status, answer = hook.handle(provider, dict(self.headers.items()), body)
        self._answer(status, answer)

    def _drain(self, length: int) -> None:
        """Read and drop a refused body (bounded), so closing does not reset the client before it reads 413."""
        remaining = min(length, _DRAIN_LIMIT)
        while remaining > 0 and (chunk := self.rfile.read(min(remaining, 65536))):
            remaining -= len(chunk)

    def _answer(self, status: int, answer: dict[str, str]) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("webhook %s %s", self.address_string(), format % args)
