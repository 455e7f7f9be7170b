"""Session-scoped pytest fixtures for the test bed's services: ``prometheus``, ``haproxy``, ``git_server``,
``helm_repo``, ``mariadb``, ``rabbitmq``, ``alertmanager``.

Import them into a conftest (``from testbed.fixtures import git_server, haproxy, helm_repo, prometheus``). Each one
runs in a directory of its own from ``tmp_path_factory`` and stops its processes on teardown, also
when tests failed. The services are independent: a test that wants Prometheus to scrape HAProxy calls
``prometheus.add_target("haproxy", haproxy.metrics_address)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, TypeVar

import pytest

from testbed.alertmanager import Alertmanager
from testbed.gitserver import GitServer
from testbed.haproxy import HAProxy
from testbed.helmrepo import HelmRepo
from testbed.mariadb import MariaDB
from testbed.prometheus import Prometheus
from testbed.rabbitmq import RabbitMQ

#: The HAProxy fixture's backends (name -> servers), named like the OpenStack APIs behind it.
HAPROXY_BACKENDS: dict[str, int] = {"keystone-api": 2, "nova-api-osapi": 2}

__all__ = ["HAPROXY_BACKENDS", "alertmanager", "git_server", "haproxy", "helm_repo", "mariadb", "prometheus",
           "rabbitmq"]


class _Service(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Service)


def _running(service: S) -> Iterator[S]:
    """Start ``service`` for the session and stop it at the end, also when tests failed."""
    try:
        service.start()
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping every 1 s (itself as job ``prometheus``)."""
    yield from _running(Prometheus(tmp_path_factory.mktemp("prometheus"), scrape_interval=1.0))


@pytest.fixture(scope="session")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    """HAProxy with the backends of :data:`HAPROXY_BACKENDS` and its metrics frontend."""
    yield from _running(HAProxy(tmp_path_factory.mktemp("haproxy"), backends=HAPROXY_BACKENDS))


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """``git daemon`` serving ``<dir>/git/*.git`` over git://, pushes enabled."""
    yield from _running(GitServer(tmp_path_factory.mktemp("git-server")))


@pytest.fixture(scope="session")
def helm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Helm repository of the upstream OpenStack-Helm charts on loopback, as operators get
    them (``source: {type: helm, url: ...}``); packaged once per machine (testbed/helmrepo.py)."""
    for server in _running(HelmRepo(tmp_path_factory.mktemp("helm-repo"))):
        yield server.url


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A fresh MariaDB (own data directory) on a loopback port; ``root@'%'`` has a generated password."""
    yield from _running(MariaDB(tmp_path_factory.mktemp("mariadb")))


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """A fresh RabbitMQ (own node, Mnesia and epmd) on loopback ports, management HTTP API on."""
    yield from _running(RabbitMQ(tmp_path_factory.mktemp("rabbitmq")))


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """Alertmanager on loopback, no clustering, every alert routed to a receiver that sends nothing."""
    yield from _running(Alertmanager(tmp_path_factory.mktemp("alertmanager")))
