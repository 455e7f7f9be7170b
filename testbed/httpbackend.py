"""One tiny HTTP server behind the test bed's HAProxy (run as a separate process, stdlib only).

    python testbed/httpbackend.py --port 8080 --name keystone-api-1

``GET /``                   -> 200, ``{"server": NAME, "path": ...}``
``GET /healthz``            -> 200, ``ok`` (HAProxy's health check; not logged)
``GET /slow?seconds=N``     -> waits N seconds (at most 600), then 200; it answers at once when
                               the peer closes the connection, so a test can release held sessions.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

MAX_SLOW_SECONDS = 600.0


class Handler(BaseHTTPRequestHandler):
    server_name = "backend"
    protocol_version = "HTTP/1.1"

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionError:  # health checks and released test clients reset the connection
            self.close_connection = True

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
            return
        if url.path == "/slow":
            try:
                seconds = min(float(parse_qs(url.query).get("seconds", ["1"])[0]), MAX_SLOW_SECONDS)
            except ValueError:
                self._reply(400, b"seconds must be a number\n", "text/plain")
                return
            if not self._wait(seconds):
                self.close_connection = True
                return
        body = json.dumps({"server": self.server_name, "path": self.path}).encode() + b"\n"
        self._reply(200, body, "application/json")

    def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; False as soon as the peer closes the connection."""
        readable, _, _ = select.select([self.connection], [], [], max(seconds, 0.0))
        if not readable:
            return True
        try:
            peeked: bytes = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return False
        return peeked != b""

    def _reply(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend-Server", self.server_name)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        if "/healthz" not in self.requestline:
            sys.stderr.write(f"{self.server_name} {self.address_string()} {format % args}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="backend")
    args = parser.parse_args(argv)
    handler = type("NamedHandler", (Handler,), {"server_name": args.name})
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.daemon_threads = True
    sys.stderr.write(f"{args.name} listening on 127.0.0.1:{args.port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
