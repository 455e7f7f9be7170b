"""Session-scoped pytest fixtures for the test bed's services: ``prometheus``, ``haproxy``, ``git_server``,
``helm_repo``, ``mariadb``, ``rabbitmq``.

Import them into a conftest (``from testbed.fixtures import git_server, haproxy, helm_repo, prometheus``). Each one
runs in a directory of its own from ``tmp_path_factory`` and stops its processes on teardown, also
when tests failed. The services are independent: a test that wants Prometheus to scrape HAProxy calls
``prometheus.add_target("haproxy", haproxy.metrics_address)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testbed.gitserver import GitServer
from testbed.haproxy import HAProxy
from testbed.helmrepo import HelmRepo
from testbed.mariadb import MariaDB
from testbed.prometheus import Prometheus
from testbed.rabbitmq import RabbitMQ

#: The HAProxy fixture's backends (name -> servers), named like the OpenStack APIs behind it.
HAPROXY_BACKENDS: dict[str, int] = {"keystone-api": 2, "nova-api-osapi": 2}

__all__ = ["HAPROXY_BACKENDS", "git_server", "haproxy", "helm_repo", "mariadb", "prometheus", "rabbitmq"]


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """Prometheus scraping every 1 s (itself as job ``prometheus``)."""
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), scrape_interval=1.0)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    """HAProxy with the backends of :data:`HAPROXY_BACKENDS` and its metrics frontend."""
    proxy = HAProxy(tmp_path_factory.mktemp("haproxy"), backends=HAPROXY_BACKENDS)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """``git daemon`` serving ``<dir>/git/*.git`` over git://, pushes enabled."""
    server = GitServer(tmp_path_factory.mktemp("git-server"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def helm_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Helm repository of the upstream OpenStack-Helm charts on loopback, as operators get
    them (``source: {type: helm, url: ...}``); packaged once per machine (testbed/helmrepo.py)."""
    server = HelmRepo(tmp_path_factory.mktemp("helm-repo"))
    try:
        server.start()
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    """A fresh MariaDB (own data directory) on a loopback port; ``root@'%'`` has a generated password."""
    server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQ]:
    """A fresh RabbitMQ (own node, Mnesia and epmd) on loopback ports, management HTTP API on."""
    broker = RabbitMQ(tmp_path_factory.mktemp("rabbitmq"))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
