"""``openstack-gitops-autoscaler``: scale the OpenStack APIs from load-balancer metrics in Prometheus.

Reads its policies from the OpenStackDeployment resources in the cluster (never from Git), and
acts only while it holds the Lease ``openstack-gitops-autoscaler`` (``--no-leader-elect`` to run
alone). Exit codes: 0 stopped by a signal, 1 lost the Lease or ``--once`` failed, 2 bad flags.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from autoscaler.edges.prometheus import Prometheus, PrometheusConfig
from autoscaler.loop import Autoscaler
from autoscaler.metrics import Metrics
from openstack_gitops.api import Process
from openstack_gitops.kube import lease
from openstack_gitops.kube.client import ApiError, Cluster, load_api_client
from openstack_gitops.kube.lease import LeaderElector, default_identity, leader_gauge, user_agent
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.probes import Heartbeat

log = logs.get("autoscaler.cli")
LOOP_STALLED_AFTER = 120.0  # healthz fails when the loop has not come round for this long


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openstack-gitops-autoscaler", description=__doc__.split("\n\n")[0])
    p.add_argument("--prometheus-url", default=os.environ.get("OPENSTACK_GITOPS_PROMETHEUS_URL"),
                   help="the Prometheus to read load from (default: $OPENSTACK_GITOPS_PROMETHEUS_URL)")
    p.add_argument("--prometheus-token-file", type=Path, help="file holding a bearer token (re-read per query)")
    p.add_argument("--prometheus-username-file", type=Path, help="basic auth: file holding the user name")
    p.add_argument("--prometheus-password-file", type=Path, help="basic auth: file holding the password")
    p.add_argument("--prometheus-ca-file", type=Path, help="CA bundle to verify Prometheus' TLS certificate")
    p.add_argument("--prometheus-insecure-skip-tls-verify", action="store_true",
                   help="do not verify Prometheus' TLS certificate (verification is on by default)")
    p.add_argument("--prometheus-timeout", type=float, default=10.0, help="seconds per query (%(default)s)")
    p.add_argument("--namespace", default=None, help="only clouds in this namespace (default: every namespace)")
    p.add_argument("--paused", action="store_true",
                   help="never scale, only report (every target paused; annotate a Deployment or the "
                        "OpenStackDeployment openstack-gitops.io/autoscaling=paused to pause one or a cloud)")
    p.add_argument("--once", action="store_true", help="one tick of every target, then exit")
    p.add_argument("--metrics-port", type=int, default=0, help="/metrics, /healthz, /readyz on this port (0: off)")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="default: $KUBECONFIG, else in-cluster")
    lease.add_flags(p, "openstack-gitops-autoscaler", elect_default=None,
                    elect_help="act only while holding a coordination.k8s.io Lease (default: on, except with --once)")
    p.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    p.add_argument("--log-level", default=os.environ.get("OPENSTACK_GITOPS_LOG_LEVEL", "INFO"))
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(json_lines=args.log_json, level=args.log_level)
    if not args.prometheus_url:
        print("the autoscaler needs --prometheus-url or $OPENSTACK_GITOPS_PROMETHEUS_URL", file=sys.stderr)
        return 2
    prom_config = PrometheusConfig(args.prometheus_url, args.prometheus_token_file, args.prometheus_username_file,
                                   args.prometheus_password_file, args.prometheus_ca_file,
                                   not args.prometheus_insecure_skip_tls_verify, args.prometheus_timeout)
    elect = (not args.once) if args.leader_elect is None else args.leader_elect
    problems = prom_config.problems() + (lease.timings_of(args).problems() if elect else [])
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 2
    identity = args.identity or default_identity()
    try:
        cluster = Cluster(load_api_client(args.kubeconfig, Process.AUTOSCALER), Process.AUTOSCALER)
    except ApiError as exc:
        print(f"cannot load the cluster config: {logs.scrub(str(exc))}", file=sys.stderr)
        return 2
    if elect:  # the audit log tells the replicas apart
        cluster.api.user_agent = user_agent(cluster.api.user_agent, identity)
    stop = threading.Event()

    def stop_now(*_: object) -> None:
        stop.set()

    elector: LeaderElector | None = None
    if elect:
        elector = lease.elector_of(args, Cluster(load_api_client(args.kubeconfig, Process.AUTOSCALER),
                                                 Process.AUTOSCALER), identity, on_lost=stop_now)
    still_leader = lease.fence(elector)
    metrics = Metrics()
    leader_gauge(metrics.registry, still_leader)
    prometheus = Prometheus(prom_config)
    autoscaler = Autoscaler(cluster, prometheus, metrics, namespace=args.namespace, paused=args.paused,
                            still_leader=still_leader, identity=identity)
    beat = Heartbeat("autoscaler loop", LOOP_STALLED_AFTER)
    server = None
    if args.metrics_port:
        healthz, readyz = lease.probes(elector, beat.check)
        server = metrics.serve(args.metrics_port, healthz=healthz, readyz=readyz)
    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    if elector is not None:
        elector.start()
    try:
        if args.once:
            if elector is not None:
                while not stop.is_set() and not elector.wait_leader(1.0):
                    beat.beat()
            report = autoscaler.tick(force=True)
            for key, before, after, reason in report.scaled:
                print(f"{key}: {before} -> {after} ({reason})")
            if report.error:
                print(report.error, file=sys.stderr)
            return 1 if report.error else 0
        log.info("autoscaler started", extra={"identity": identity, "prometheus": args.prometheus_url,
                                              "namespace": args.namespace or "(all)", "paused": args.paused})
        autoscaler.run(stop, beat.beat)
    finally:
        lost = lease.hand_over(elector)
        prometheus.close()
        if server is not None:
            server.stop()
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
