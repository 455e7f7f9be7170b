"""Which workloads the health watcher guards by default, and with what limits: data, pure.

Names are the OpenStack-Helm charts' own (tests/golden/test_charts_render.py checks them against real
renders): the compute node's DaemonSets (nova-compute, libvirt and the switch agent of the network
backend) and the two databases as StatefulSets. A per-workload override in the policy (next step:
the spec's ``healthWatcher.workloads``) replaces an entry by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from healthwatcher.detect import Thresholds
from openstack_gitops.model.catalog import NetworkBackend


@dataclass(frozen=True)
class Watched:
    kind: str
    name: str
    thresholds: Thresholds = field(default_factory=Thresholds)
    database: bool = False
    quorum: int | None = None  # None: a majority of the replicas


COMPUTE = Thresholds()
# A Galera joiner or a RabbitMQ node syncing is not Ready for minutes: give it time before judging it.
DATABASE = Thresholds(restart_limit=5, crash_loop_grace=120.0, not_ready_grace=600.0)

COMMON: tuple[Watched, ...] = (
    Watched("DaemonSet", "nova-compute-default", COMPUTE),
    Watched("DaemonSet", "libvirt-libvirt-default", COMPUTE),
    Watched("StatefulSet", "mariadb-server", DATABASE, database=True),
    Watched("StatefulSet", "rabbitmq-rabbitmq", DATABASE, database=True),
)
SWITCH_AGENTS: dict[NetworkBackend, tuple[Watched, ...]] = {
    NetworkBackend.OPENVSWITCH: (Watched("DaemonSet", "openvswitch", COMPUTE),
                                 Watched("DaemonSet", "neutron-ovs-agent-default", COMPUTE)),
    NetworkBackend.OVN: (Watched("DaemonSet", "ovn-controller-default", COMPUTE),
                         Watched("DaemonSet", "neutron-ovn-metadata-agent-default", COMPUTE)),
}


def defaults(backend: NetworkBackend) -> tuple[Watched, ...]:
    """The workloads guarded by default with ``backend``. Pure."""
    return COMMON + SWITCH_AGENTS[backend]
