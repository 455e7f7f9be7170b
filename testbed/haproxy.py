"""A real HAProxy in front of tiny local HTTP servers, with its Prometheus exporter.

    lb = HAProxy(directory, backends={"keystone-api": 2, "nova-api-osapi": 2})
    lb.start()
    lb.frontend_url("keystone-api")      # http://127.0.0.1:<port>; /slow?seconds=N holds a session
    lb.metrics_url                       # http://127.0.0.1:<port>/metrics (haproxy_backend_* series)
    lb.set_servers("keystone-api", 3)    # starts a server, rewrites haproxy.cfg, reloads
    lb.stop()

HAProxy runs in master-worker mode in the foreground (``haproxy -W -db -f haproxy.cfg``), so its pid
stays the same across reloads (SIGUSR2 to the master). Each backend server is its own small Python
process (``testbed/httpbackend.py``), recorded in ``state.json`` like HAProxy itself.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from testbed import process, state
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "haproxy"
INSTALL_HINT = "apt-get install -y haproxy"
BACKEND_SCRIPT = Path(__file__).resolve().parent / "httpbackend.py"
_PROXY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Server:
    name: str
    port: int
    proc: process.Managed


class HAProxy(Service):
    """One HAProxy frontend and backend per entry of ``backends`` (name -> number of servers)."""

    name = NAME

    def __init__(self, directory: Path, backends: Mapping[str, int], binary: str = "/usr/sbin/haproxy",
                 python: str = sys.executable, timeout: float = 30.0) -> None:
        for backend, count in backends.items():
            if not _PROXY_NAME.match(backend) or backend == "metrics":
                raise ValueError(f"invalid backend name {backend!r}")
            if count < 0:
                raise ValueError(f"backend {backend!r}: negative server count {count}")
        super().__init__(directory)
        self.binary = binary
        self.python = python
        self.timeout = timeout
        self.wanted: dict[str, int] = dict(backends)
        self.frontend_ports: dict[str, int] = {}
        self.metrics_port = 0
        self.servers: dict[str, list[Server]] = {backend: [] for backend in backends}
        self.startup_seconds = 0.0

    @property
    def metrics_address(self) -> str:
        """``127.0.0.1:<port>`` of the exporter frontend (scrape path ``/metrics``)."""
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.metrics_address}/metrics"

    @property
    def config_file(self) -> Path:
        return self.directory / "haproxy.cfg"

    def log_file(self, component: str = NAME) -> Path:
        return self.directory / "logs" / f"{component}.log"

    def frontend_url(self, backend: str) -> str:
        return f"http://127.0.0.1:{self.frontend_ports[backend]}"

    def server_ports(self, backend: str) -> list[int]:
        return [server.port for server in self.servers[backend]]

    def start(self) -> None:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TestbedError(NAME, f"{self.binary} not found; install it with: {INSTALL_HINT}")
        self.binary = exe
        started = time.monotonic()
        try:
            for backend, count in self.wanted.items():
                self._add_servers(backend, count)
            self.metrics_port = process.free_port()
            self.frontend_ports = {backend: process.free_port() for backend in self.wanted}
            self._write_config()
            self._proc = process.start(NAME, [exe, "-W", "-db", "-f", str(self.config_file)],
                                       self.log_file(), cwd=self.directory)
            state.record(self.directory, self._proc, haproxy={
                "metrics": self.metrics_url,
                "frontends": {b: self.frontend_url(b) for b in self.frontend_ports},
            })
            process.wait_ready(self._proc, self._serving_wanted, self.timeout, "serving its metrics")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def set_servers(self, backend: str, count: int) -> None:
        """Scale ``backend`` to ``count`` servers: start or stop servers, rewrite the config, reload."""
        if backend not in self.wanted:
            raise KeyError(f"unknown backend {backend!r}; known: {sorted(self.wanted)}")
        if count < 0:
            raise ValueError(f"negative server count {count}")
        self.wanted[backend] = count
        if self._proc is None:
            return
        self._add_servers(backend, count)
        self._reload()
        for server in self.servers[backend][count:]:
            self._stop_server(server)
        del self.servers[backend][count:]

    def metrics(self) -> str:
        """The exporter's current text exposition."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        super().stop()
        for servers in self.servers.values():
            for server in servers:
                self._stop_server(server)
            servers.clear()


    def _add_servers(self, backend: str, count: int) -> None:
        servers = self.servers[backend]
        new: list[Server] = []
        for index in range(len(servers) + 1, count + 1):
            name = f"{backend}-{index}"
            port = process.free_port()
            component = f"haproxy-server-{name}"
            argv = [self.python, str(BACKEND_SCRIPT), "--port", str(port), "--name", name]
            proc = process.start(component, argv, self.log_file(component))
            server = Server(name, port, proc)
            servers.append(server)
            new.append(server)
            state.record(self.directory, proc)
        for server in new:
            process.wait_ready(server.proc, functools.partial(process.port_in_use, server.port), self.timeout,
                               "listening")

    def _stop_server(self, server: Server) -> None:
        process.stop(server.proc.pid, server.proc.exe)
        state.forget(self.directory, server.proc.name)

    def _write_config(self) -> None:
        lines = [
            "# generated by testbed/haproxy.py",
            "global",
            "    maxconn 1024",
            "    hard-stop-after 10s",
            "",
            "defaults",
            "    mode http",
            "    option abortonclose",
            "    timeout connect 5s",
            "    timeout client 300s",
            "    timeout server 300s",
            "",
            "frontend metrics",
            f"    bind 127.0.0.1:{self.metrics_port}",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    stats enable",
            "    stats uri /stats",
        ]
        for backend in self.wanted:
            lines += [
                "",
                f"frontend {backend}",
                f"    bind 127.0.0.1:{self.frontend_ports[backend]}",
                f"    default_backend {backend}",
                "",
                f"backend {backend}",
                "    balance roundrobin",
                "    option httpchk GET /healthz",
            ]
            lines += [f"    server {s.name} 127.0.0.1:{s.port} check inter 1s"
                      for s in self.servers[backend][: self.wanted[backend]]]
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.config_file.with_suffix(".cfg.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        check = subprocess.run([self.binary, "-c", "-q", "-f", str(tmp)], capture_output=True, text=True,
                               check=False)
        if check.returncode != 0:
            raise TestbedError(NAME, f"generated config {tmp} is invalid:\n{check.stdout}{check.stderr}")
        tmp.replace(self.config_file)

    def _reload(self) -> None:
        assert self._proc is not None
        self._write_config()
        os.kill(self._proc.pid, signal.SIGUSR2)
        process.wait_ready(self._proc, self._serving_wanted, self.timeout, "reloaded")

    def _serving_wanted(self) -> bool:
        """The exporter answers and every backend has exactly its wanted number of active servers."""
        text = self.metrics()
        for backend, count in self.wanted.items():
            found = re.search(rf'^haproxy_backend_active_servers{{proxy="{re.escape(backend)}"}} (\S+)$',
                              text, re.MULTILINE)
            if found is None or float(found.group(1)) != count:
                return False
        return True
