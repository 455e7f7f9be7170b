"""Real Git servers for the test bed: ``git daemon`` over git://, and ``git http-backend`` over smart HTTP.

    git = GitServer(directory)
    git.start()
    url = git.create_repo("config", from_dir=Path("config-repo-template"))  # git://127.0.0.1:<port>/config.git
    git.path("config")    # <directory>/git/config.git, for the path transport
    git.stop()

Pushes are allowed (``--enable=receive-pack``). Every git command here runs with :func:`git_env`, a
fixed identity and no user or system config, so it behaves the same on a fresh machine.

A private repository needs HTTP: :class:`SmartHTTPServer` serves the bare repositories under a directory
through ``git http-backend`` and answers 401 unless the request carries the one Basic credential:

    with SmartHTTPServer(directory, "deploy", "s3cret") as http:
        http.url("config.git", "deploy", "s3cret")   # http://deploy:s3cret@127.0.0.1:<port>/config.git
"""

from __future__ import annotations

import base64
import hmac
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote, unquote, urlsplit

from testbed import process, state
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "git-daemon"
INSTALL_HINT = "apt-get install -y git"
AUTHOR_NAME = "openstack-gitops testbed"
AUTHOR_EMAIL = "testbed@openstack-gitops.invalid"
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git commands: fixed author/committer, no global/system config, no prompts."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
        **(extra or {}),
    }


class GitServer(Service):
    """``git daemon`` on 127.0.0.1:<free port> exporting every bare repository under ``<directory>/git``."""

    name = NAME

    def __init__(self, directory: Path, binary: str = "git", timeout: float = 30.0) -> None:
        super().__init__(directory)
        self.binary = binary
        self.timeout = timeout
        self.port = 0
        self.startup_seconds = 0.0

    @property
    def root(self) -> Path:
        return self.directory / "git"

    @property
    def base_url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / f"{NAME}.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{NAME}.pid"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{self.path(name).name}"

    def path(self, name: str) -> Path:
        """The bare repository's directory (``<directory>/git/<name>.git``)."""
        bare = name if name.endswith(".git") else f"{name}.git"
        if not _REPO_NAME.match(bare):
            raise ValueError(f"invalid repository name {name!r}")
        return self.root / bare

    def start(self) -> None:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TestbedError(NAME, f"{self.binary} not found; install it with: {INSTALL_HINT}")
        self.binary = exe
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = process.free_port()
        argv = [exe, "daemon", "--reuseaddr", f"--base-path={self.root}", "--export-all",
                "--enable=receive-pack", "--informative-errors", "--listen=127.0.0.1", f"--port={self.port}",
                f"--pid-file={self.pid_file}"]
        self._proc = process.start(NAME, argv, self.log_file, env=git_env(), cwd=self.directory)
        try:
            state.record(self.directory, self._proc, git={"base_url": self.base_url, "root": str(self.root)})
            process.wait_ready(self._proc, lambda: process.port_in_use(self.port), self.timeout, "listening")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def create_repo(self, name: str, from_dir: Path | None = None, branch: str = "main",
                    message: str = "Initial commit") -> str:
        """Create a bare repository (HEAD -> ``branch``), seeded with one commit of ``from_dir``'s files."""
        bare = self.path(name)
        if bare.exists():
            raise TestbedError(NAME, f"repository {bare} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        self._git(["init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare)])
        if from_dir is not None:
            with tempfile.TemporaryDirectory() as tmp:
                env = {"GIT_DIR": str(bare), "GIT_WORK_TREE": str(from_dir.resolve()),
                       "GIT_INDEX_FILE": str(Path(tmp) / "index")}
                self._git(["add", "--all", "."], env, cwd=from_dir)
                tree = self._git(["write-tree"], env)
                commit = self._git(["commit-tree", tree, "-m", message], env)
                self._git(["update-ref", f"refs/heads/{branch}", commit], env)
        return self.url(name)

    def _git(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TestbedError(NAME, f"{self.binary} not found; install it with: {INSTALL_HINT}")
        done = subprocess.run([exe, *args], env=git_env(env), cwd=cwd, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise TestbedError(NAME, f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()


class SmartHTTPServer:
    """Git's smart HTTP protocol with HTTP Basic auth on 127.0.0.1:<free port>, for private-repository tests.

    It runs in this process (a thread), because a test also wants to look at what happens while a request
    is served (``on_request``); every request runs one ``git http-backend`` (CGI) bounded by ``timeout``.
    ``stop()`` (or leaving the ``with``) shuts the listener and joins the thread.
    """

    def __init__(self, root: Path, username: str, password: str, timeout: float = 30.0,
                 on_request: Callable[[], None] | None = None) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.timeout = timeout
        self.on_request = on_request  # called while an authorised request is served (its client is waiting)
        self.authorised = 0  # requests that carried the right credential
        self.refused = 0  # requests answered 401
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise TestbedError("git-http", "not started")
        return int(self._server.server_address[1])

    def url(self, name: str, username: str | None = None, password: str | None = None) -> str:
        """``http://[user:password@]127.0.0.1:<port>/<name>``, user-info percent-encoded as URLs need it."""
        userinfo = "" if username is None else quote(username, safe="") + (
            "" if password is None else ":" + quote(password, safe="")) + "@"
        return f"http://{userinfo}127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        backend = shutil.which("git")
        if backend is None:
            raise TestbedError("git-http", f"git not found; install it with: {INSTALL_HINT}")
        self.root.mkdir(parents=True, exist_ok=True)
        handler = type("Handler", (_BackendHandler,), {"owner": self, "git": backend})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="git-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and join the serving thread (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def authorised_header(self, header: str | None) -> bool:
        """True when an ``Authorization`` header holds exactly our Basic credential."""
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        scheme, _, value = (header or "").partition(" ")
        return scheme.lower() == "basic" and hmac.compare_digest(value.strip().encode(), expected.encode())


class _BackendHandler(BaseHTTPRequestHandler):
    """Checks Basic auth, then hands the request to ``git http-backend`` as CGI and relays its answer."""

    owner: SmartHTTPServer
    git: str

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        if not self.owner.authorised_header(self.headers.get("Authorization")):
            self.owner.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.owner.authorised += 1
        if self.owner.on_request is not None:
            self.owner.on_request()
        url = urlsplit(self.path)
        env = git_env({
            "GIT_PROJECT_ROOT": str(self.owner.root), "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": self.request_version,
            "REQUEST_METHOD": self.command, "PATH_INFO": unquote(url.path), "QUERY_STRING": url.query,
            "REMOTE_USER": self.owner.username, "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        })
        body = self._body()
        env["CONTENT_LENGTH"] = str(len(body))
        try:
            done = subprocess.run([self.git, "http-backend"], input=body, env=env, capture_output=True,
                                  timeout=self.owner.timeout, check=False)
        except subprocess.TimeoutExpired:
            self.send_error(504, "git http-backend timed out")
            return
        separator = b"\r\n\r\n" if b"\r\n\r\n" in done.stdout else b"\n\n"  # CGI allows either
        head, _, payload = done.stdout.partition(separator)
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self) -> bytes:
        """The request body, de-chunked (git sends large pack negotiations chunked)."""
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():  # trailers, up to the blank line
            pass
        return b"".join(chunks)

    def log_message(self, format: str, *args: object) -> None:
        pass
