"""The health watcher's default workloads: the compute node's DaemonSets and the databases (no I/O)."""

from __future__ import annotations

import pytest

from healthwatcher.workloads import defaults
from openstack_gitops.model.catalog import NetworkBackend


@pytest.mark.parametrize(("backend", "agents"), [
    pytest.param(NetworkBackend.OPENVSWITCH, {"openvswitch", "neutron-ovs-agent-default"}, id="openvswitch"),
    pytest.param(NetworkBackend.OVN, {"ovn-controller-default", "neutron-ovn-metadata-agent-default"}, id="ovn"),
])
def test_defaults(backend: NetworkBackend, agents: set[str]) -> None:
    watched = defaults(backend)
    names = {w.name for w in watched}
    assert names == {"nova-compute-default", "libvirt-libvirt-default", "mariadb-server", "rabbitmq-rabbitmq"} | agents
    assert {w.name for w in watched if w.database} == {"mariadb-server", "rabbitmq-rabbitmq"}
    assert all(w.kind == "StatefulSet" for w in watched if w.database)
    assert all(w.kind == "DaemonSet" for w in watched if not w.database)
    # a database member re-syncing is given longer than a compute agent before it counts as failed
    db = next(w for w in watched if w.database)
    compute = next(w for w in watched if w.name == "nova-compute-default")
    assert db.thresholds.not_ready_grace > compute.thresholds.not_ready_grace
