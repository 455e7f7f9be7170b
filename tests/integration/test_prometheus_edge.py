"""The autoscaler's Prometheus edge against local HTTP(S) servers: credentials from files (re-read per
query), TLS verified unless told otherwise, a timeout, and every failure a PrometheusError."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from autoscaler.edges.prometheus import Prometheus, PrometheusConfig, PrometheusError
from openstack_gitops.runtime import logs

ANSWER = {"status": "success", "data": {"resultType": "vector",
                                        "result": [{"metric": {"proxy": "a"}, "value": [1.0, "3"]}]}}


class FakePrometheus:
    """A local server answering /api/v1/query, recording each request's Authorization header."""

    def __init__(self, tls: tuple[Path, Path] | None = None, status: int = 200) -> None:
        seen: list[str] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append(self.headers.get("Authorization", ""))
                body = json.dumps(ANSWER if status == 200 else {"status": "error", "error": "bad"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed")
    key, crt = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return crt, key


def test_bearer_token_is_read_from_its_file_for_every_query(tmp_path: Path) -> None:
    server = FakePrometheus()
    token = tmp_path / "token"
    token.write_text("first-token-0123456789\n")
    try:
        edge = Prometheus(PrometheusConfig(server.url, token_file=token))
        assert edge.query("up") == ANSWER["data"]["result"]  # type: ignore[index]
        token.write_text("rotated-token-0123456789")
        edge.query("up")
        assert server.seen == ["Bearer first-token-0123456789", "Bearer rotated-token-0123456789"]
        assert "rotated-token-0123456789" not in logs.scrub("token rotated-token-0123456789")
    finally:
        server.stop()


def test_basic_auth_from_files(tmp_path: Path) -> None:
    server = FakePrometheus()
    (tmp_path / "user").write_text("autoscaler")
    (tmp_path / "password").write_text("s3cret-basic-password")
    try:
        Prometheus(PrometheusConfig(server.url, username_file=tmp_path / "user",
                                    password_file=tmp_path / "password")).query("up")
        assert server.seen == ["Basic " + base64.b64encode(b"autoscaler:s3cret-basic-password").decode()]
    finally:
        server.stop()


def test_tls_is_verified_unless_a_ca_is_given_or_verification_is_switched_off(cert: tuple[Path, Path]) -> None:
    server = FakePrometheus(tls=cert)
    try:
        with pytest.raises(PrometheusError) as refused:
            Prometheus(PrometheusConfig(server.url)).query("up")
        assert refused.value.reason == "unreachable" and "SSL" in str(refused.value)
        assert Prometheus(PrometheusConfig(server.url, ca_file=cert[0])).query("up")
        assert Prometheus(PrometheusConfig(server.url, verify_tls=False)).query("up")
    finally:
        server.stop()


def test_errors_timeouts_and_refusals_are_prometheus_errors() -> None:
    failing = FakePrometheus(status=503)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        with pytest.raises(PrometheusError) as http:
            Prometheus(PrometheusConfig(failing.url)).query("up")
        assert http.value.reason == "http" and "503" in str(http.value)
        with pytest.raises(PrometheusError) as timeout:
            Prometheus(PrometheusConfig(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)).query("up")
        assert timeout.value.reason == "timeout"
        with pytest.raises(PrometheusError) as unreachable:
            Prometheus(PrometheusConfig(f"http://127.0.0.1:{closed_port}")).query("up")
        assert unreachable.value.reason == "unreachable"
    finally:
        failing.stop()
        silent.close()


def test_configuration_problems_are_named() -> None:
    assert PrometheusConfig("prometheus:9090").problems() == ["--prometheus-url must be an http(s) URL, not "
                                                               "'prometheus:9090'"]
    assert "not both" in " ".join(PrometheusConfig("http://p", token_file=Path("t"),
                                                   password_file=Path("p")).problems())
