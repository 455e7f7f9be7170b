"""Shared fixtures: one real test bed per session, a fresh namespace per test."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from openstack_gitops.api import OWNER_LABEL
from testbed import bed
from testbed.fixtures import alertmanager, git_server, haproxy, helm_repo, mariadb, prometheus, rabbitmq

REPO = Path(__file__).resolve().parent.parent
# session fixtures of the real services
__all__ = ["alertmanager", "git_server", "haproxy", "helm_repo", "mariadb", "prometheus", "rabbitmq"]


_SESSION_BEDS: list[bed.TestBed] = []


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bed.TestBed]:
    """A running control plane with 3 control-plane and 3 compute kwok nodes, stopped at the end.

    Three control-plane nodes because every cloud of the real charts runs a host-network pod there
    (nova-novncproxy, port 6080): one node holds one cloud's, as in a real cluster."""
    directory = tmp_path_factory.mktemp("testbed")
    tb = bed.up(directory, control_plane=3, compute=3, pod_ready_delay_ms=100,
                log=(print if os.environ.get("TESTBED_VERBOSE") else lambda _m: None))
    _SESSION_BEDS.append(tb)
    try:
        yield tb
    finally:
        _SESSION_BEDS.clear()
        bed.down(directory)


@pytest.fixture(scope="module", autouse=True)
def remove_clouds_after_module() -> Iterator[None]:
    """Each module's clouds go when it ends (their namespaces deleted), so the next module's clouds find
    the control-plane nodes' host ports free and the apiserver no busier than one module needs."""
    yield
    if not _SESSION_BEDS:
        return
    with _SESSION_BEDS[0].api_client("admin") as api_client:
        core = client.CoreV1Api(api_client)
        for namespace in core.list_namespace(label_selector=OWNER_LABEL).items:
            core.delete_namespace(namespace.metadata.name)


@pytest.fixture
def api(testbed: bed.TestBed) -> Iterator[client.ApiClient]:
    with testbed.api_client() as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    """A namespace of its own for one test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """logs.setup configures the process-wide tree; put it back so later tests see the usual logging."""
    root = logging.getLogger("openstack_gitops")
    saved = (root.handlers[:], root.level, root.propagate)
    yield
    root.handlers[:], root.level, root.propagate = saved
