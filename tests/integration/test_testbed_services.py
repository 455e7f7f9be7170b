"""The test bed's services are real: Prometheus scrapes HAProxy's exporter, git:// clones and pushes."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import process, state
from testbed.errors import TestbedError
from testbed.fixtures import HAPROXY_BACKENDS
from testbed.gitserver import GitServer, git_env
from testbed.haproxy import HAProxy
from testbed.prometheus import Prometheus
from tests.waiting import wait_for

pytestmark = pytest.mark.testbed

HELD = 6  # connections a test holds open through HAProxy



def git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"git {' '.join(args)} failed: {done.stderr}"
    return done.stdout.strip()


def served_by(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(json.loads(response.read())["server"])


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    seed = tmp_path / "seed"
    (seed / "clusters").mkdir(parents=True)
    (seed / "README.md").write_text("config repo\n")
    (seed / "clusters" / "site.yaml").write_text("nova:\n  replicas: 2\n")
    return seed


# --- Prometheus + HAProxy ----------------------------------------------------------------------


def test_prometheus_scrapes_itself(prometheus: Prometheus) -> None:
    result = wait_for(lambda: prometheus.query('up{job="prometheus"} == 1'), what="prometheus up")
    assert result[0]["metric"]["instance"] == prometheus.address
    assert prometheus.query('absent(up{job="no-such-job"})')  # a real PromQL engine answers


def test_haproxy_balances_over_real_servers(haproxy: HAProxy) -> None:
    for backend, count in HAPROXY_BACKENDS.items():
        seen = {served_by(haproxy.frontend_url(backend)) for _ in range(2 * count + 2)}
        assert seen == {f"{backend}-{i}" for i in range(1, count + 1)}
    assert f'haproxy_backend_active_servers{{proxy="keystone-api"}} {HAPROXY_BACKENDS["keystone-api"]}' \
        in haproxy.metrics()


def _sessions(prometheus: Prometheus, haproxy: HAProxy, backend: str) -> float | None:
    result = prometheus.query(f'haproxy_backend_current_sessions{{job="haproxy",'
                              f'instance="{haproxy.metrics_address}",proxy="{backend}"}}')
    return float(result[0]["value"][1]) if result else None


def _hold(url_port: int, count: int, seconds: int) -> list[socket.socket]:
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", url_port), timeout=10)
        sock.sendall(f"GET /slow?seconds={seconds} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
        held.append(sock)
    return held


def test_prometheus_sees_haproxy_sessions_rise_and_fall(prometheus: Prometheus, haproxy: HAProxy) -> None:
    backend = "keystone-api"
    prometheus.add_target("haproxy", haproxy.metrics_address)
    wait_for(lambda: _sessions(prometheus, haproxy, backend) is not None, what="first scrape of HAProxy")
    assert _sessions(prometheus, haproxy, backend) == 0

    held = _hold(haproxy.frontend_ports[backend], HELD, seconds=120)
    try:
        wait_for(lambda: (_sessions(prometheus, haproxy, backend) or 0) >= HELD, timeout=20,
                 what=f"{HELD} current sessions in Prometheus")
        # The other backend saw none of it.
        assert _sessions(prometheus, haproxy, "nova-api-osapi") == 0
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: _sessions(prometheus, haproxy, backend) == 0, timeout=20,
             what="sessions back to 0 after the clients closed")


def test_slow_endpoint_answers_after_the_delay(haproxy: HAProxy) -> None:
    started = time.monotonic()
    assert served_by(haproxy.frontend_url("keystone-api") + "/slow?seconds=1").startswith("keystone-api-")
    assert 1.0 <= time.monotonic() - started < 5


def test_set_servers_scales_a_backend(haproxy: HAProxy) -> None:
    backend = "nova-api-osapi"
    before = HAPROXY_BACKENDS[backend]
    try:
        haproxy.set_servers(backend, before + 1)
        assert f'haproxy_backend_active_servers{{proxy="{backend}"}} {before + 1}' in haproxy.metrics()
        seen = {served_by(haproxy.frontend_url(backend)) for _ in range(2 * before + 4)}
        assert f"{backend}-{before + 1}" in seen
        removed = haproxy.servers[backend][-1]
    finally:
        haproxy.set_servers(backend, before)
    assert len(haproxy.server_ports(backend)) == before
    assert not process.pid_runs(removed.proc.pid, removed.proc.exe)
    wait_for(lambda: not process.port_in_use(removed.port), timeout=5, what="the removed server's port to close")
    seen = {served_by(haproxy.frontend_url(backend)) for _ in range(2 * before + 2)}
    assert seen == {f"{backend}-{i}" for i in range(1, before + 1)}


# --- Git server --------------------------------------------------------------------------------


def test_clone_over_git_protocol(git_server: GitServer, seed_dir: Path, tmp_path: Path) -> None:
    url = git_server.create_repo("clone-me", from_dir=seed_dir)
    assert url == f"git://127.0.0.1:{git_server.port}/clone-me.git"
    assert git_server.url("clone-me") == url
    git("clone", url, str(tmp_path / "work"))
    work = tmp_path / "work"
    assert (work / "clusters" / "site.yaml").read_text() == "nova:\n  replicas: 2\n"
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=work) == "main"
    assert git("log", "--format=%an <%ae>|%cn", cwd=work) == \
        "openstack-gitops testbed <testbed@openstack-gitops.invalid>|openstack-gitops testbed"
    assert git("ls-files", cwd=work).splitlines() == ["README.md", "clusters/site.yaml"]


def test_unknown_repository_is_refused(git_server: GitServer, tmp_path: Path) -> None:
    done = subprocess.run(["git", "ls-remote", git_server.url("no-such-repo")], env=git_env(),
                          capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "no-such-repo" in done.stderr


def test_push_is_seen_by_a_fresh_fetch(git_server: GitServer, seed_dir: Path, tmp_path: Path) -> None:
    url = git_server.create_repo("push-fetch", from_dir=seed_dir)
    writer, reader = tmp_path / "writer", tmp_path / "reader"
    git("clone", url, str(writer))
    git("clone", url, str(reader))
    (writer / "clusters" / "site.yaml").write_text("nova:\n  replicas: 3\n")
    git("commit", "-am", "Scale nova to 3", cwd=writer)
    pushed = git("rev-parse", "HEAD", cwd=writer)
    git("push", "origin", "main", cwd=writer)

    assert git("rev-parse", "origin/main", cwd=reader) != pushed
    git("fetch", "origin", cwd=reader)
    assert git("rev-parse", "origin/main", cwd=reader) == pushed
    assert git("show", "origin/main:clusters/site.yaml", cwd=reader) == "nova:\n  replicas: 3"
    # The daemon wrote into the bare repository itself.
    assert git("--git-dir", str(git_server.path("push-fetch")), "rev-parse", "main") == pushed


def test_path_transport_and_empty_repo(git_server: GitServer, seed_dir: Path, tmp_path: Path) -> None:
    git_server.create_repo("by-path", from_dir=seed_dir)
    assert git_server.path("by-path") == git_server.root / "by-path.git"
    git("clone", str(git_server.path("by-path")), str(tmp_path / "local"))
    assert (tmp_path / "local" / "README.md").read_text() == "config repo\n"

    empty = git_server.create_repo("empty")
    assert git("ls-remote", empty) == ""
    with pytest.raises(TestbedError, match="already exists"):
        git_server.create_repo("empty")


# --- Life cycle and errors ----------------------------------------------------------------------


def _service(kind: str, directory: Path, binary: str | None = None) -> Prometheus | HAProxy | GitServer:
    if kind == "prometheus":
        return Prometheus(directory) if binary is None else Prometheus(directory, binary=binary)
    if kind == "haproxy":
        backends = {"keystone-api": 1}
        return HAProxy(directory, backends) if binary is None else HAProxy(directory, backends, binary=binary)
    return GitServer(directory) if binary is None else GitServer(directory, binary=binary)


@pytest.mark.parametrize(("kind", "hint"), [
    ("prometheus", "apt-get install -y prometheus"),
    ("haproxy", "apt-get install -y haproxy"),
    ("git", "apt-get install -y git"),
])
def test_missing_binary_names_the_install_command(kind: str, hint: str, tmp_path: Path) -> None:
    service = _service(kind, tmp_path, binary=str(tmp_path / "no-such-binary"))
    with pytest.raises(TestbedError, match=hint) as raised:
        service.start()
    assert "no-such-binary" in str(raised.value)
    assert all(rec.pid == 0 for rec in state.load(tmp_path).processes)


@pytest.fixture(params=["prometheus", "haproxy", "git"])
def started(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Prometheus | HAProxy | GitServer]:
    service = _service(str(request.param), tmp_path)
    try:
        service.start()
        yield service
    finally:
        service.stop()


def test_stop_ends_every_recorded_process(started: Prometheus | HAProxy | GitServer) -> None:
    records = state.load(started.directory).processes
    assert records and all(process.pid_runs(rec.pid, rec.exe) for rec in records)
    assert started.startup_seconds > 0
    daemon = int(started.pid_file.read_text()) if isinstance(started, GitServer) else None
    started.stop()
    assert all(not process.pid_runs(rec.pid, rec.exe) for rec in records)
    if daemon is not None:  # git's own child, /usr/lib/git-core/git-daemon
        assert not process.pid_runs(daemon, "git-daemon")
    assert all(rec.pid == 0 for rec in state.load(started.directory).processes)
    started.stop()  # idempotent
