"""A real RabbitMQ broker (Debian's ``rabbitmq-server``) on loopback, management plugin on.

    mq = RabbitMQ(directory)             # admin user "admin", password generated
    mq.start()                           # epmd and the broker on 127.0.0.1, free ports (about 10 s)
    mq.amqp_address                      # 127.0.0.1:<port> (AMQP 0-9-1)
    mq.management_url                    # http://127.0.0.1:<port> (the HTTP API rabbitmqadmin speaks)
    mq.api("GET", "/api/users")          # the HTTP API as the admin user
    mq.import_definitions(definitions)   # users, vhosts, permissions, policies (as a definitions file at boot)
    mq.stop()

Nothing of the system's RabbitMQ is used: the broker runs as the current user (the package's
``/usr/sbin`` wrapper would switch to the ``rabbitmq`` user, so the script under
``/usr/lib/rabbitmq/bin`` is started), with its own config, enabled-plugins file, Mnesia and log
directories, node name and Erlang cookie (``HOME`` is ``directory``) under ``directory``. Erlang's
port mapper (epmd) is a process of its own on a free loopback port, so no daemon outlives the test
bed and two test beds never share one. The broker logs to its console, which goes to the log file.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from testbed import process, state
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "rabbitmq"
EPMD_NAME = "rabbitmq-epmd"
INSTALL_HINT = "apt-get install -y rabbitmq-server"
SHELL = "/bin/sh"  # the broker's start script traps SIGTERM and stops the Erlang VM cleanly


class RabbitMQ(Service):
    """The broker on 127.0.0.1 (AMQP, management HTTP, Erlang distribution, epmd: four free ports)."""

    name = NAME

    def __init__(self, directory: Path, admin_user: str = "admin", admin_password: str | None = None,
                 server: str = "/usr/lib/rabbitmq/bin/rabbitmq-server", epmd: str = "/usr/bin/epmd",
                 timeout: float = 120.0) -> None:
        super().__init__(directory)
        self.admin_user = admin_user
        self.admin_password = admin_password or secrets.token_urlsafe(24)
        self.server = server
        self.epmd = epmd
        self.timeout = timeout
        self.amqp_port = 0
        self.management_port = 0
        self.dist_port = 0
        self.epmd_port = 0
        self.node = ""
        self._epmd: process.Managed | None = None
        self.startup_seconds = 0.0

    @property
    def amqp_address(self) -> str:
        return f"127.0.0.1:{self.amqp_port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    @property
    def config_file(self) -> Path:
        return self.directory / "rabbitmq.conf"

    def log_file(self, component: str = NAME) -> Path:
        return self.directory / "logs" / f"{component}.log"

    def start(self) -> None:
        server, epmd = shutil.which(self.server), shutil.which(self.epmd)
        if server is None or epmd is None:
            raise TestbedError(NAME, f"{self.server if server is None else self.epmd} not found; "
                               f"install it with: {INSTALL_HINT}")
        started = time.monotonic()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.amqp_port, self.management_port, self.dist_port, self.epmd_port = (
            process.free_port() for _ in range(4))
        self.node = f"rabbit-testbed-{self.amqp_port}@localhost"
        try:
            self._epmd = process.start(EPMD_NAME, [epmd, "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                       self.log_file(EPMD_NAME))
            state.record(self.directory, self._epmd)
            process.wait_ready(self._epmd, lambda: process.port_in_use(self.epmd_port), 10, "listening")
            self._write_config()
            self._proc = process.start(NAME, [SHELL, server], self.log_file(), env=self._env(),
                                       cwd=self.directory)
            state.record(self.directory, self._proc, rabbitmq={
                "amqp": self.amqp_address, "management": self.management_url, "node": self.node})
            process.wait_ready(self._proc, self._serving, self.timeout, "serving AMQP and its HTTP API")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        super().stop()  # the broker first: it unregisters from epmd on the way out
        if self._epmd is not None:
            process.stop(self._epmd.pid, self._epmd.exe)
            state.forget(self.directory, EPMD_NAME)
            self._epmd = None

    def api(self, method: str, path: str, body: Any = None, user: str | None = None,
            password: str | None = None) -> tuple[int, Any]:
        """One request to the management HTTP API (the admin's by default); status and decoded JSON."""
        user = self.admin_user if user is None else user
        password = self.admin_password if password is None else password
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.management_url}{path}", data=data, method=method)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                code, text = int(response.status), response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            code, text = exc.code, exc.read().decode(errors="replace")
        try:
            return code, json.loads(text) if text else None
        except ValueError:
            return code, text

    def import_definitions(self, definitions: dict[str, Any]) -> None:
        """Load a definitions document (``users`` with password hashes, ``vhosts``, ``permissions``,
        ``policies``...) as the broker loads its definitions file at boot; existing objects are updated."""
        code, reply = self.api("POST", "/api/definitions", definitions)
        if code not in (200, 201, 204):
            raise TestbedError(NAME, f"importing definitions failed (HTTP {code}): {reply}")


    def _env(self) -> dict[str, str]:
        d = self.directory
        return {
            "HOME": str(d),  # the Erlang cookie goes to $HOME/.erlang.cookie
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.config_file),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "logs"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def _write_config(self) -> None:
        """rabbitmq.conf (listeners, the admin, console logging), the plugins file, an empty env file."""
        def conf_value(value: str) -> str:
            if any(c in value for c in "\n\r#") or value != value.strip():
                raise ValueError(f"{value!r} cannot be written to rabbitmq.conf")
            return value

        lines = [
            "# generated by testbed/rabbitmq.py",
            f"listeners.tcp.default = 127.0.0.1:{self.amqp_port}",
            "management.tcp.ip = 127.0.0.1",
            f"management.tcp.port = {self.management_port}",
            f"default_user = {conf_value(self.admin_user)}",
            f"default_pass = {conf_value(self.admin_password)}",
            "default_user_tags.administrator = true",
            "loopback_users = none",
            "log.console = true",
            "log.console.level = info",
            "log.file = false",
        ]
        for path, text in ((self.config_file, "\n".join(lines) + "\n"),
                           (self.directory / "enabled_plugins", "[rabbitmq_management].\n"),
                           (self.directory / "rabbitmq-env.conf", "")):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.touch(mode=0o600)
            tmp.chmod(0o600)
            tmp.write_text(text)
            tmp.replace(path)

    def _serving(self) -> bool:
        code, _ = self.api("GET", "/api/overview")
        return code == 200 and process.port_in_use(self.amqp_port)
