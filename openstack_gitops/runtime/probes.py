"""One small HTTP server per process: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

Kubernetes probes and Prometheus share the port the manifests already expose. ``/healthz`` says
the process is alive and none of its loops is wedged (a failing liveness probe restarts the pod);
``/readyz`` says it is ready to act (what that means is the process's call: a leader, or a
standby able to take over). Each is a list of checks; the first failing one is the answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Check = Callable[[], tuple[bool, str]]  # (ok, why): why is the probe's response body


def ok() -> tuple[bool, str]:
    return True, "ok"


class Heartbeat:
    """A loop calls ``beat()`` each time round; it is wedged when it has not for ``stale_after`` seconds."""

    def __init__(self, name: str, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.stale_after, self.clock = name, stale_after, clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self.clock()

    def check(self) -> tuple[bool, str]:
        age = self.clock() - self.last
        if age > self.stale_after:
            return False, f"{self.name}: no progress for {age:.0f}s"
        return True, f"{self.name}: ok"


def all_of(checks: Sequence[Check]) -> Check:
    """One check from several: the first failure, else every message."""
    def check() -> tuple[bool, str]:
        messages = []
        for one in checks:
            try:
                good, why = one()
            except Exception as exc:  # a probe never raises: a broken check is a failing one
                good, why = False, f"check failed: {type(exc).__name__}: {exc}"
            if not good:
                return False, why
            messages.append(why)
        return True, "; ".join(messages) or "ok"
    return check


class ProbeServer:
    """Serves the registry at /metrics and the two checks at /healthz and /readyz (200 or 503)."""

    def __init__(self, port: int, registry: CollectorRegistry, healthz: Check = ok, readyz: Check = ok,
                 addr: str = "0.0.0.0") -> None:
        routes: dict[str, Check] = {"/healthz": healthz, "/readyz": readyz}

        class Handler(BaseHTTPRequestHandler):
            timeout = 10  # an idle client does not hold a thread for long

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._send(HTTPStatus.OK, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in routes:
                    good, why = all_of([routes[path]])()
                    self._send(HTTPStatus.OK if good else HTTPStatus.SERVICE_UNAVAILABLE, f"{why}\n".encode(),
                               "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found: /metrics, /healthz, /readyz\n",
                               "text/plain; charset=utf-8")

            def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # probes every few seconds would drown the log

        self.server = ThreadingHTTPServer((addr, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"probes-{port}", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> ProbeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
