"""``openstack-gitops-health-watcher``: restart failed compute and database pods, safely, and say so.

Watches the pods of the workloads each OpenStackDeployment's ``healthWatcher`` policy guards (read
from the cluster, never from Git) and acts only while it holds the Lease
``openstack-gitops-health-watcher`` (``--no-leader-elect`` to run alone). Exit codes: 0 stopped by a
signal, 1 lost the Lease, 2 bad flags.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from healthwatcher.edges.notifiers import AlertmanagerSink, Notifier, Sink, WebhookSink, url_problem
from healthwatcher.loop import HealthWatcher
from healthwatcher.metrics import Metrics
from openstack_gitops.api import Process
from openstack_gitops.kube import lease
from openstack_gitops.kube.client import ApiError, Cluster, load_api_client
from openstack_gitops.kube.lease import LeaderElector, default_identity, leader_gauge, user_agent
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.probes import Heartbeat

log = logs.get("healthwatcher.cli")
LOOP_STALLED_AFTER = 60.0  # healthz fails when the loop has not come round for this long


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="openstack-gitops-health-watcher", description=__doc__.split("\n\n")[0])
    p.add_argument("--namespace", default=None, help="only clouds in this namespace (default: every namespace)")
    p.add_argument("--dry-run", action="store_true", help="detect and report, never restart")
    p.add_argument("--alertmanager-url", default=os.environ.get("OPENSTACK_GITOPS_ALERTMANAGER_URL"),
                   help="notify this Alertmanager's v2 API (default: $OPENSTACK_GITOPS_ALERTMANAGER_URL)")
    p.add_argument("--alertmanager-token-file", type=Path, help="file holding a bearer token for Alertmanager")
    p.add_argument("--alertmanager-ca-file", type=Path, help="CA bundle to verify Alertmanager's TLS certificate")
    p.add_argument("--webhook-url", default=os.environ.get("OPENSTACK_GITOPS_WEBHOOK_URL"),
                   help="POST every notification as JSON to this URL (default: $OPENSTACK_GITOPS_WEBHOOK_URL)")
    p.add_argument("--webhook-token-file", type=Path, help="file holding a bearer token for the webhook")
    p.add_argument("--webhook-ca-file", type=Path, help="CA bundle to verify the webhook's TLS certificate")
    p.add_argument("--metrics-port", type=int, default=0, help="/metrics, /healthz, /readyz on this port (0: off)")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="default: $KUBECONFIG, else in-cluster")
    lease.add_flags(p, "openstack-gitops-health-watcher")
    p.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    p.add_argument("--log-level", default=os.environ.get("OPENSTACK_GITOPS_LOG_LEVEL", "INFO"))
    return p


def problems(args: argparse.Namespace) -> list[str]:
    """Settings that cannot work, named before anything starts (a typo must not mean silent alerts)."""
    out = []
    for flag, url in (("--alertmanager-url", args.alertmanager_url), ("--webhook-url", args.webhook_url)):
        problem = url_problem(url) if url else None
        if problem:
            out.append(f"{flag} {problem}")
    for flag, path in (("--alertmanager-token-file", args.alertmanager_token_file),
                       ("--alertmanager-ca-file", args.alertmanager_ca_file),
                       ("--webhook-token-file", args.webhook_token_file), ("--webhook-ca-file", args.webhook_ca_file)):
        if path is not None and not path.is_file():
            out.append(f"{flag}: {path} is not a readable file")
    if args.alertmanager_token_file and not args.alertmanager_url:
        out.append("--alertmanager-token-file needs --alertmanager-url")
    if args.webhook_token_file and not args.webhook_url:
        out.append("--webhook-token-file needs --webhook-url")
    if args.leader_elect:
        out += lease.timings_of(args).problems()
    return out


def sinks(args: argparse.Namespace) -> list[Sink]:
    out: list[Sink] = []
    if args.alertmanager_url:
        out.append(AlertmanagerSink(args.alertmanager_url, token_file=args.alertmanager_token_file,
                                    ca_file=args.alertmanager_ca_file))
    if args.webhook_url:
        out.append(WebhookSink(args.webhook_url, token_file=args.webhook_token_file, ca_file=args.webhook_ca_file))
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(json_lines=args.log_json, level=args.log_level)
    unusable = problems(args)
    if unusable:
        print("; ".join(unusable), file=sys.stderr)
        return 2
    identity = args.identity or default_identity()
    try:
        cluster = Cluster(load_api_client(args.kubeconfig, Process.HEALTH_WATCHER), Process.HEALTH_WATCHER)
    except ApiError as exc:
        print(f"cannot load the cluster config: {logs.scrub(str(exc))}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def stop_now(*_: object) -> None:
        stop.set()

    elector: LeaderElector | None = None
    if args.leader_elect:  # the audit log tells the replicas apart
        cluster.api.user_agent = user_agent(cluster.api.user_agent, identity)
        elector = lease.elector_of(args, Cluster(load_api_client(args.kubeconfig, Process.HEALTH_WATCHER),
                                                 Process.HEALTH_WATCHER), identity, on_lost=stop_now)
    still_leader = lease.fence(elector)
    metrics = Metrics()
    leader_gauge(metrics.registry, still_leader)
    notify_to = sinks(args)
    notifier = Notifier(notify_to, on_result=lambda sink, result, _note: metrics.notifications.labels(
        sink, result).inc())
    watcher = HealthWatcher(cluster, metrics, notifier, namespace=args.namespace, still_leader=still_leader,
                            identity=identity, dry_run=args.dry_run)
    beat = Heartbeat("health watcher loop", LOOP_STALLED_AFTER)
    server = None
    if args.metrics_port:
        healthz, readyz = lease.probes(elector, beat.check)
        server = metrics.serve(args.metrics_port, healthz=healthz, readyz=readyz)
    signal.signal(signal.SIGTERM, stop_now)
    signal.signal(signal.SIGINT, stop_now)
    notifier.start()
    if elector is not None:
        elector.start()
    log.info("health watcher started", extra={"identity": identity, "namespace": args.namespace or "(all)",
                                              "dry_run": args.dry_run,
                                              "notify": [s.name for s in notify_to]})
    try:
        watcher.run(stop, beat.beat)
    finally:
        lost = lease.hand_over(elector)
        notifier.stop()
        if server is not None:
            server.stop()
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
