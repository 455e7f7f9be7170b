"""Supervised child processes of a test bed: started with a log file, tracked by pid, stopped by pid.

Every process the test bed starts is recorded in the test bed's ``state.json`` with its pid and
the executable it runs, so ``down`` from another shell stops exactly those processes (and never a
recycled pid that now belongs to someone else).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import TestbedError

EPHEMERAL_PORTS = (32768, 60999)  # Linux's default ip_local_port_range: where outgoing connections bind
LISTEN_PORTS = (20000, 32000)  # below it, so no client connection takes a port between pick and bind
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago, below the kernel's ephemeral range.

    Ports the OS picks (bind to 0) come from the ephemeral range, where any outgoing connection of a
    busy test run may take one before the service binds it ("port already in use"); ports handed out
    here are never reused by this process either."""
    for _ in range(500):
        port = random.randint(*LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise TestbedError("ports", f"no free loopback port in {LISTEN_PORTS[0]}-{LISTEN_PORTS[1]}")


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Managed:
    """One running child: what it is, where it logs, and its pid."""

    name: str
    pid: int
    exe: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_runs(self.pid, self.exe)

    def exit_code(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None


def pid_runs(pid: int, exe: str) -> bool:
    """True when ``pid`` is alive and still runs ``exe`` (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    if state == "Z":
        return False
    argv0 = cmdline.split(b"\0", 1)[0].decode(errors="replace")
    return argv0 == exe or Path(argv0).name == Path(exe).name


def start(name: str, argv: Sequence[str], log: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> Managed:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(argv)}\n".encode())
        out.flush()
        try:
            popen = subprocess.Popen(
                list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            )
        except OSError as exc:
            raise TestbedError(name, f"cannot start {argv[0]}: {exc}", str(log)) from exc
    return Managed(name=name, pid=popen.pid, exe=str(argv[0]), log=log, popen=popen)


def wait_ready(proc: Managed, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
    """Poll ``ready`` until it holds; fail fast, with the log's tail, if the process dies."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if not proc.alive():
            code = proc.exit_code()
            raise TestbedError(
                proc.name,
                f"exited (code {code}) before it was {what}; last log lines:\n{tail(proc.log)}",
                str(proc.log),
            )
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise TestbedError(proc.name, f"not {what} after {timeout:.0f}s; last log lines:\n{tail(proc.log)}",
                       str(proc.log))


def stop(pid: int, exe: str, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``, then SIGKILL what is left after ``timeout``."""
    if not pid_runs(pid, exe):
        _reap(pid)
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _reap(pid)
            if not pid_runs(pid, exe):
                return
            time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
