"""``openstack-gitops``: validate, render, reconcile and report on an OpenStack config repo."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from openstack_gitops import api
from openstack_gitops.api import crd
from openstack_gitops.kube import lease
from openstack_gitops.kube.client import ApiError, Cluster, load_api_client
from openstack_gitops.kube.lease import (
    LeaderElector,
    default_identity,
    leader_gauge,
    user_agent,
)
from openstack_gitops.model.credentials import complete, needed_credentials
from openstack_gitops.model.errors import SpecError, SpecInvalid
from openstack_gitops.model.expand import expand
from openstack_gitops.model.spec import Spec
from openstack_gitops.runtime import logs
from openstack_gitops.runtime.probes import Heartbeat
from reconciler.edges.git import GitSource
from reconciler.edges.helm import Helm, HelmError, find_helm
from reconciler.engine import pipeline, status
from reconciler.engine.hook_runner import DEFAULT_HOOK_TIMEOUT
from reconciler.engine.loop import Loop
from reconciler.engine.metrics import Metrics
from reconciler.engine.outcome import Outcome
from reconciler.engine.pipeline import SPEC_FILE
from reconciler.engine.reconcile import Reconciler
from reconciler.engine.watch import DriftWatch
from reconciler.engine.webhook import PushEvent, WebhookServer
from reconciler.plan import manifests
from reconciler.plan.diff import DEFAULT_MAX_PRUNE_FRACTION

log = logs.get("cli")
RECONCILE_STALLED_AFTER = 1800.0  # healthz fails when a reconcile reports no progress this long (gates wait 1200 s)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.setup(json_lines=args.log_json, level=args.log_level)
    handler = {"validate": cmd_validate, "render": cmd_render, "reconcile": cmd_reconcile, "status": cmd_status,
               "crd": cmd_crd}[args.command]
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openstack-gitops", description=__doc__)
    parser.add_argument("--log-json", action="store_true", help="log JSON lines instead of text")
    parser.add_argument("--log-level", default=os.environ.get("OPENSTACK_GITOPS_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a config repo's spec (schema and meaning); exit 1 on errors")
    p.add_argument("path", type=Path, help="config repo directory (or the spec file itself)")
    p.add_argument("--render", action="store_true",
                   help="also render the charts with Helm: each autoscaling policy must name a rendered Deployment")
    p.add_argument("--helm", help="helm binary for --render (default: $OPENSTACK_GITOPS_HELM or helm on PATH)")
    p.add_argument("--kube-version", default="v1.36.0")
    p.add_argument("--promtool", help="promtool checking raw PromQL policies (default: $OPENSTACK_GITOPS_PROMTOOL "
                                      "or promtool on PATH; without it PromQL is checked when it runs)")

    p = sub.add_parser("render", help="render every chart of the spec into DIR (credentials are placeholders)")
    p.add_argument("path", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--helm", help="helm binary (default: $OPENSTACK_GITOPS_HELM or helm on PATH)")
    p.add_argument("--kube-version", default="v1.36.0")

    p = sub.add_parser("reconcile", help="make the cluster equal to the branch (loop, or --once)")
    _cluster_args(p)
    p.add_argument("--repo", default=os.environ.get("OPENSTACK_GITOPS_REPO"),
                   help="config repo URL or path (default: $OPENSTACK_GITOPS_REPO; prefer it for a URL that "
                        "carries a token: arguments are visible to every user in ps)")
    p.add_argument("--branch", default="main")
    p.add_argument("--once", action="store_true", help="reconcile once and exit (0 ok, 1 failed)")
    p.add_argument("--wait", type=float, default=0.0,
                   help="with --once: keep reconciling until converged, up to this many seconds")
    p.add_argument("--interval", type=float, default=120.0, help="poll interval in seconds (loop)")
    p.add_argument("--helm", help="helm binary (default: $OPENSTACK_GITOPS_HELM or helm on PATH)")
    p.add_argument("--workdir", type=Path, help="where the repo is checked out (default: a temp dir)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--metrics-port", type=int, default=0, help="serve /metrics on this port (0: off)")
    p.add_argument("--webhook-port", type=int, default=0, help="receive push webhooks on this port (0: off)")
    p.add_argument("--webhook-secret-file", type=Path, help="file holding the webhook HMAC secret/token")
    p.add_argument("--git-timeout", type=float, default=60.0)
    p.add_argument("--max-prune-fraction", type=float, default=DEFAULT_MAX_PRUNE_FRACTION,
                   help="refuse a render that prunes more than this share of the applied objects of services "
                        "the spec still switches on (default: %(default)s)")
    p.add_argument("--hook-timeout", type=float, default=DEFAULT_HOOK_TIMEOUT,
                   help="seconds each weight of a chart's Helm hooks (db-sync, ...) may take (default: %(default)s)")
    lease.add_flags(p, "openstack-gitops-reconciler", elect_default=None,
                    elect_help="act only while holding a coordination.k8s.io Lease, so one of several replicas "
                               "writes (default: on for the loop, off with --once)")

    p = sub.add_parser("status", help="print the OpenStackDeployment status as a table")
    _cluster_args(p)
    p.add_argument("--namespace", default="openstack")
    p.add_argument("--name", default=None, help="resource name (default: the only one)")
    p.add_argument("-o", "--output", choices=["table", "json"], default="table")

    sub.add_parser("crd", help="print the OpenStackDeployment CRD")
    return parser


def _cluster_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="default: $KUBECONFIG")


def _spec_path(path: Path) -> tuple[Path, str]:
    """A config repo directory, or the spec file itself, as (repo root, spec file name)."""
    return (path.parent, path.name) if path.is_file() else (path, SPEC_FILE)


def cmd_validate(args: argparse.Namespace) -> int:
    root, spec_file = _spec_path(args.path)
    try:
        spec = pipeline.load(root, spec_file)
    except (pipeline.SpecUnreadable, SpecInvalid) as exc:
        print(exc, file=sys.stderr)
        return 1
    errors = pipeline.check(spec, root, promtool=args.promtool)
    if not errors and args.render:
        try:
            errors = _render_check(spec, root, args)
        except (HelmError, manifests.RenderInvalid) as exc:
            print(exc, file=sys.stderr)
            return 1
    for error in errors:
        print(error, file=sys.stderr)
    if not errors:
        print(f"{spec_file}: valid ({spec.release}, {spec.size.value}, {len(spec.charts)} charts)")
    return 1 if errors else 0


def _render_check(spec: Spec, root: Path, args: argparse.Namespace) -> list[SpecError]:
    """``validate --render``: render the charts (placeholder credentials) and check what only a render shows."""
    credentials, _ = complete({}, needed_credentials(spec), lambda _n: "GENERATED-IN-CLUSTER")
    values = expand(spec, credentials)
    with Helm(find_helm(args.helm)) as helm:
        texts = pipeline.render(spec, root, helm, values, args.kube_version, progress=ProgressPrinter())
    rendered = [d for chart, text in texts.items() for d in pipeline.desired_objects(spec, chart, text)]
    return pipeline.check_render(spec, rendered)


def cmd_render(args: argparse.Namespace) -> int:
    """What reconcile would apply, through the same pipeline, with placeholder credentials."""
    root, spec_file = _spec_path(args.path)
    try:
        spec = pipeline.load(root, spec_file)
        errors = pipeline.check(spec, root)
        if errors:
            raise SpecInvalid(errors)
        credentials, _ = complete({}, needed_credentials(spec), lambda _n: "GENERATED-IN-CLUSTER")
        values = expand(spec, credentials)
        with Helm(find_helm(args.helm)) as helm:
            texts = pipeline.render(spec, root, helm, values, args.kube_version, progress=ProgressPrinter())
        rendered = [d for chart, text in texts.items() for d in pipeline.desired_objects(spec, chart, text)]
        errors = pipeline.check_render(spec, rendered)
        if errors:
            raise SpecInvalid(errors)
        args.out.mkdir(parents=True, exist_ok=True)
        total = 0
        for chart, text in texts.items():
            objects, hooks = pipeline.split_hooks(pipeline.desired_objects(spec, chart, text))
            (args.out / f"{chart}.yaml").write_text(yaml.safe_dump_all([d.manifest for d in objects], sort_keys=True))
            if hooks:  # Helm hooks run by their own rules (README "Helm hooks"); test hooks are left out
                (args.out / f"{chart}.hooks.yaml").write_text(
                    yaml.safe_dump_all([h.manifest for h in hooks], sort_keys=True))
            total += len(objects) + len(hooks)
            print(f"render: {chart}: {len(objects)} objects, {len(hooks)} hooks", file=sys.stderr)
    except (pipeline.SpecUnreadable, SpecInvalid, HelmError, manifests.RenderInvalid) as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"rendered {total} objects from {len(values)} charts into {args.out}")
    return 0


class ProgressPrinter:
    """Prints the progress of phases that take a while (over half a second), at most once a second."""

    def __init__(self) -> None:
        self.phase = ""
        self.started = 0.0
        self.printed = 0.0

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase != self.phase:
            self.phase, self.started, self.printed = phase, now, 0.0
        slow = now - self.started > 0.5
        if slow and (done == total or now - self.printed > 1.0):
            print(f"  {phase:8} {done}/{total}", file=sys.stderr, flush=True)
            self.printed = now


def cmd_reconcile(args: argparse.Namespace) -> int:
    """The reconcile command; with leader election (the loop's default) it acts only while it holds the Lease."""
    try:
        helm = Helm(find_helm(args.helm))
    except HelmError as exc:
        print(exc, file=sys.stderr)
        return 2
    elect = (not args.once) if args.leader_elect is None else args.leader_elect
    timings = lease.timings_of(args)
    if elect and timings.problems():
        print("leader election: " + "; ".join(timings.problems()), file=sys.stderr)
        return 2
    identity = args.identity or default_identity()
    cluster = Cluster(load_api_client(args.kubeconfig))
    if elect:  # the audit log tells the replicas apart
        cluster.api.user_agent = user_agent(cluster.api.user_agent, identity)
    else:  # an elected leader installs the CRD once it leads: a standby writes nothing
        try:
            status.ensure_crd(cluster)
        except ApiError as exc:
            print(f"cannot reach the cluster: {logs.scrub(str(exc))}", file=sys.stderr)
            return 1
    if not args.repo:
        print("reconcile needs --repo or $OPENSTACK_GITOPS_REPO", file=sys.stderr)
        return 2
    workdir = args.workdir
    if workdir is None:  # ours: removed at exit, like Helm's scratch directory
        workdir = Path(tempfile.mkdtemp(prefix="openstack-gitops-repo-"))
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    stop = threading.Event()  # SIGTERM, SIGINT, or the Lease lost
    loop: Loop | None = None

    def stop_now(*_: object) -> None:
        stop.set()
        if loop is not None:
            loop.done.set()  # a signal handler cannot cut the main thread's wait short; the event can

    elector: LeaderElector | None = None
    if elect:  # its own connections: renewals never queue behind applies
        elector = lease.elector_of(args, Cluster(load_api_client(args.kubeconfig)), identity, on_lost=stop_now)
    still_leader = lease.fence(elector)
    metrics = Metrics()
    leader_gauge(metrics.registry, still_leader)
    main_beat = Heartbeat("main loop", 60)
    reconcile_beat = Heartbeat("reconcile", RECONCILE_STALLED_AFTER)
    printer = ProgressPrinter()

    def progress(phase: str, done: int, total: int) -> None:
        reconcile_beat.beat()
        printer(phase, done, total)

    reconciler = Reconciler(cluster, helm, GitSource(args.repo, args.branch, workdir, timeout=args.git_timeout),
                            metrics, concurrency=args.concurrency, progress=progress,
                            max_prune_fraction=args.max_prune_fraction, still_leader=still_leader,
                            hook_timeout=args.hook_timeout)
    loop = Loop(reconciler, interval=args.interval)
    if args.metrics_port:
        checks = [main_beat.check, lambda: reconcile_beat.check() if loop.busy() else (True, "reconcile: idle")]
        healthz, readyz = lease.probes(elector, *checks)
        metrics.serve(args.metrics_port, healthz=healthz, readyz=readyz)
    webhook = None
    if args.webhook_port and not args.once:

        secret = args.webhook_secret_file.read_bytes().strip() if args.webhook_secret_file else b""
        if not secret:
            print("--webhook-port needs --webhook-secret-file (unsigned pushes are refused)", file=sys.stderr)
            return 2

        def on_push(event: PushEvent) -> None:  # every replica listens: the Service routes to standbys too
            if still_leader():
                loop.trigger(f"push to {event.branch}")
            else:
                log.info("push received by a standby: the leader reconciles it at its next poll")

        webhook = WebhookServer("0.0.0.0", args.webhook_port, secret, args.branch, on_push)
        webhook.start()
    if elect or not args.once:
        signal.signal(signal.SIGTERM, stop_now)
        signal.signal(signal.SIGINT, stop_now)
    if elector is not None:
        elector.start()
        if not _lead(elector, cluster, stop, main_beat):
            if webhook:
                webhook.stop()
            return _shut_down(None, elector, timings.renew_deadline)
    if args.once:
        deadline = time.monotonic() + args.wait
        while True:
            outcome = reconciler.reconcile()
            _print_outcome(outcome)
            if not outcome.ok or outcome.converged or time.monotonic() >= deadline or stop.is_set():
                break
            time.sleep(2)
        code = _shut_down(None, elector, timings.renew_deadline)
        return code or (0 if outcome.ok else 1)
    loop.start()
    watch: DriftWatch | None = None
    watching: tuple[str, str] | None = None
    while not stop.is_set():  # the drift watch follows the cloud the last valid spec names
        main_beat.beat()
        if not loop.done.wait(1):
            continue
        loop.done.clear()
        spec = reconciler.spec
        if spec is not None and (spec.namespace, spec.name) != watching:
            if watch:
                watch.stop()
            watch = DriftWatch(cluster, spec.namespace, spec.name, lambda: reconciler.inventory, loop.trigger)
            watch.start()
            watching = (spec.namespace, spec.name)
    if watch:
        watch.stop()
    code = _shut_down(loop, elector, timings.renew_deadline)
    if webhook:
        webhook.stop()
    return code


def _lead(elector: LeaderElector, cluster: Cluster, stop: threading.Event, beat: Heartbeat) -> bool:
    """Wait until this process leads, then install the CRD (a leader's first write); False when stopped first."""
    while not stop.is_set():
        beat.beat()
        if not elector.wait_leader(1.0):
            continue
        try:
            status.ensure_crd(cluster)
            return True
        except ApiError as exc:
            print(f"cannot reach the cluster: {logs.scrub(str(exc))}", file=sys.stderr)
            stop.wait(elector.timings.retry_period)
    return False


def _shut_down(loop: Loop | None, elector: LeaderElector | None, grace: float) -> int:
    """Stop acting, let a running reconcile end, then hand the Lease over; 1 when the Lease was lost.

    Without leader election the running reconcile finishes (never an apply cut in half). With it,
    the fence closes first, so that reconcile stops at its next write; the Lease is released (a
    standby takes over at once) only when it ended within ``grace``, otherwise the Lease expires.
    """
    if elector is None:
        if loop is not None:
            loop.stop()
        return 0
    elector.step_down()
    if loop is not None:
        stopper = threading.Thread(target=loop.stop, name="loop-stop", daemon=True)
        stopper.start()
        stopper.join(grace)
        if stopper.is_alive():
            print("a reconcile is still running (it writes nothing more); the Lease is left to expire",
                  file=sys.stderr)
            return 1 if elector.lost.is_set() else 0
    if elector.lost.is_set():
        print("lost the leader Lease: exiting, to be restarted as a standby", file=sys.stderr)
        return 1
    elector.release()
    return 0


def _print_outcome(outcome: Outcome) -> None:
    state = "ok" if outcome.ok else f"FAILED ({outcome.reason})"
    healthy = sum(1 for h in outcome.health.values() if h.healthy)
    print(f"reconcile {outcome.commit[:12] or '-'}: {state} in {outcome.duration:.1f}s: {logs.scrub(outcome.message)}"
          + (f"; {healthy}/{len(outcome.health)} services healthy" if outcome.health else ""), file=sys.stderr)


def cmd_status(args: argparse.Namespace) -> int:

    cluster = Cluster(load_api_client(args.kubeconfig))
    try:
        items = cluster.list(api.API_VERSION, api.KIND, label_selector="", namespace=args.namespace)
    except Exception as exc:  # CRD missing or cluster unreachable: say so plainly
        print(f"no OpenStackDeployment found in namespace {args.namespace}: {exc}", file=sys.stderr)
        return 1
    if args.name:
        items = [i for i in items if i["metadata"]["name"] == args.name]
    if not items:
        print(f"no OpenStackDeployment found in namespace {args.namespace}", file=sys.stderr)
        return 1
    for item in items:
        if args.output == "json":
            print(json.dumps(item.get("status") or {}, indent=2, sort_keys=True))
        else:
            print(format_status(item))
    return 0 if all((i.get("status") or {}).get("state") == "Ready" for i in items) else 3


def format_status(item: dict[str, Any]) -> str:
    st = item.get("status") or {}
    meta = item["metadata"]
    lines = [f"OpenStackDeployment {meta['namespace']}/{meta['name']}: {st.get('state', 'Unknown')}"
             f"  release {st.get('release', '?')}  commit {st.get('observedCommitShort', '?')}"
             f"  health {st.get('health', '?')}"]
    rows = [("SERVICE", "STATE", "FINGERPRINT", "MESSAGE")]
    for name, svc in (st.get("services") or {}).items():
        rows.append((name, svc.get("state", ""), svc.get("fingerprint", ""), svc.get("message", "")))
    widths = [max(len(str(r[i])) for r in rows) for i in range(3)]
    lines += [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows]
    if st.get("lastError"):
        lines.append(f"  last error: {st['lastError']}")
    lines += _autoscaler_lines(st.get(api.AUTOSCALER_STATUS) or {})
    lines += _health_watcher_lines(st.get(api.HEALTH_WATCHER_STATUS) or {})
    return "\n".join(lines)


def _autoscaler_lines(section: dict[str, Any]) -> list[str]:
    """The autoscaler's status section (written by that process) as a table under the services."""
    targets = section.get("targets") or {}
    if not targets:
        return []
    head = "  autoscaler" + ("  PAUSED" if section.get("paused") else "") + \
        (f"  leader {section['leader']}" if section.get("leader") else "")
    rows = [("DEPLOYMENT", "REPLICAS", "DESIRED", "MIN-MAX", "METRIC", "VALUE", "REASON", "LAST SCALE")]
    for name, t in sorted(targets.items()):
        last = t.get("lastScale") or {}
        rows.append((name, str(t.get("replicas", "")), str(t.get("desiredReplicas", "")),
                     f"{t.get('minReplicas', '?')}-{t.get('maxReplicas', '?')}", str(t.get("metric", "")),
                     f"{t['value']:g}/{t.get('targetPerReplica', 0):g}" if isinstance(t.get("value"), int | float)
                     else "-", str(t.get("reason", "")) + (" (paused)" if t.get("paused") else ""),
                     f"{last.get('time', '')} {last.get('from', '')}->{last.get('to', '')}" if last else "-"))
    return [head, *_table(rows)]


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as aligned columns, indented under their section (the last column left ragged)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["    " + "  ".join(f"{c:<{w}}" for c, w in zip(r, widths, strict=False)) + "  " + r[-1] for r in rows]


def _health_watcher_lines(section: dict[str, Any]) -> list[str]:
    """The health watcher's status section (written by that process): its workloads, the pods failed
    now with what was decided, and its last actions."""
    workloads = section.get("workloads") or {}
    if not workloads:
        return []
    head = "  health watcher" + ("" if section.get("enabled", True) else "  DISABLED") + \
        f"  restarts {section.get('restartsLastHour', 0)}/{section.get('maxRestartsPerHour', '?')} this hour" + \
        (f"  leader {section['leader']}" if section.get("leader") else "")
    rows = [("WORKLOAD", "KIND", "PODS", "READY", "FAILED", "BREAKER")]
    for name, w in sorted(workloads.items()):
        rows.append((name, str(w.get("kind", "")), str(w.get("pods", "")), str(w.get("ready", "")),
                     str(w.get("failed", "")), str(w.get("breaker", ""))))
    lines = [head, *_table(rows)]
    failing = section.get("failing") or []
    if failing:
        lines.append(f"  failing now ({section.get('failedPods', len(failing))})")
        lines += _table([("POD", "NODE", "RULE", "SINCE", "DECISION")] + [
            (str(f.get("pod", "")), str(f.get("node", "-")), str(f.get("rule", "")), str(f.get("since", "")),
             str(f.get("decision", "-"))) for f in failing])
    recent = section.get("recent") or []
    if recent:
        lines.append("  last actions")
        lines += _table([("TIME", "POD", "NODE", "ACTION", "REASON")] + [
            (str(r.get("time", "")), str(r.get("pod") or r.get("workload", "")), str(r.get("node", "-")),
             str(r.get("action", "")), str(r.get("reason", ""))) for r in recent])
    return lines


def cmd_crd(_args: argparse.Namespace) -> int:

    print(yaml.safe_dump(crd(), sort_keys=False), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
