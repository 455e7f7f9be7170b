"""A webhook receiver on loopback, in the test's own process, that records what is POSTed to it.

    with WebhookReceiver() as hook:
        hook.url                    # http://127.0.0.1:<port>/hook
        hook.fail_next(2)           # the next 2 POSTs get 503 (their bodies are still counted in ``attempts``)
        hook.hang()                 # POSTs are read and never answered, until ``release()`` or ``stop()``
        hook.wait_for(1)            # the first JSON body accepted (answered 200)
        hook.received()             # [(epoch seconds when it arrived, body), ...] of the accepted bodies

It runs in-process (not as a test-bed process like ``httpbackend.py``) so a test reads what it received
directly; it is still a real HTTP server on a real socket.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from testbed import process
from testbed.errors import TestbedError

NAME = "webhook-receiver"


class WebhookReceiver:
    """Accepts POSTed JSON: 200 and recorded, or 503 while told to fail, or no answer while hanging."""

    def __init__(self, path: str = "/hook") -> None:
        self.path = path
        self.port = 0
        self.attempts = 0  # POSTs received, answered or not
        self.authorizations: list[str] = []
        self._bodies: list[Any] = []
        self._received_at: list[float] = []  # time.time() when each accepted body had been read
        self._fail = 0
        self._fail_status = 503
        self._hanging = False
        self._release = threading.Event()
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def bodies(self) -> list[Any]:
        """The JSON bodies accepted so far (answered 200), oldest first."""
        with self._lock:
            return list(self._bodies)

    def received(self) -> list[tuple[float, Any]]:
        """The accepted bodies with their receive times (epoch seconds, taken once the body was read)."""
        with self._lock:
            return list(zip(self._received_at, self._bodies, strict=True))

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._fail = count
            self._fail_status = status

    def hang(self) -> None:
        """Read every POST and never answer it, until :meth:`release`."""
        with self._lock:
            self._hanging = True
            self._release.clear()

    def release(self) -> None:
        """Stop hanging; requests held so far are closed without an answer."""
        with self._lock:
            self._hanging = False
            self._release.set()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Any]:
        """The accepted bodies once there are at least ``count``; TestbedError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._bodies) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestbedError(NAME, f"{len(self._bodies)} of {count} bodies after {timeout:.0f}s")
                self._lock.wait(left)
            return list(self._bodies)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._received(body, self.headers.get("Authorization", ""), time.time())
                if status is None:
                    receiver._release.wait()
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.port = process.free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name=NAME, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _received(self, body: bytes, authorization: str, at: float) -> int | None:
        """The status to answer (None: hang), recording an accepted body."""
        with self._lock:
            self.attempts += 1
            self.authorizations.append(authorization)
            if self._hanging:
                return None
            if self._fail > 0:
                self._fail -= 1
                return self._fail_status
            try:
                self._bodies.append(json.loads(body))
            except ValueError:
                return 400
            self._received_at.append(at)
            self._lock.notify_all()
            return 200

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
