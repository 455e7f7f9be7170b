"""Reconciler benchmark on the test bed against the baseline an operator would otherwise use.

Full template cloud (every service), 3 control-plane + N compute nodes (default 100):
- baseline: `kubectl apply --server-side` of the same rendered manifests, cold and repeated;
- reconciler: cold apply, no-op reconcile (and its write count, from the audit log), and a
  one-value change (which objects it writes); peak RSS of a whole `reconcile --once` process.
Both sides apply into their own namespace of the same test bed, one after the other.

Run: .venv/bin/python tests/benchmarks/reconcile_bench.py [--computes 100] [--repeats 3]
Progress on stderr; one JSON object as the last line on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from openstack_gitops.api import Process
from openstack_gitops.health import health_of
from openstack_gitops.kube.client import Cluster
from openstack_gitops.model.credentials import complete, needed_credentials
from openstack_gitops.model.expand import expand
from reconciler.engine import pipeline
from reconciler.engine.reconcile import WORKLOAD_KINDS
from reconciler.plan.diff import Action
from testbed import bed, build
from testbed.helmrepo import HelmRepo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from reconcile_support import WRITE_VERBS, ConfigRepo, make_reconciler

KUBECTL_AGENT = "kubectl"
RECONCILER_AGENT = Process.RECONCILER.user_agent


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def writes(tb: bed.TestBed, agent: str, before: Counter[str]) -> int:
    after = tb.requests_by(user_agent_prefix=agent)
    return sum(after[v] - before[v] for v in WRITE_VERBS)


def settle(cluster: Cluster, namespace: str, timeout: float = 600) -> float:
    """Wait until every workload in ``namespace`` is healthy, so measurements see a quiet cluster."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        workloads = [o for av, kind in WORKLOAD_KINDS for o in cluster.list(av, kind, "", namespace=namespace)]
        if workloads and all(health_of(o).healthy for o in workloads):
            break
        time.sleep(1)
    time.sleep(2)
    return time.monotonic() - started


def kubectl_apply(tb: bed.TestBed, manifest: Path) -> float:
    kubectl = build.binary("kubectl")
    started = time.monotonic()
    subprocess.run([str(kubectl), f"--kubeconfig={tb.kubeconfig_for('admin')}", "apply", "--server-side",
                    "--force-conflicts", "--field-manager=kubectl-bench", "-f", str(manifest)],
                   check=True, capture_output=True)
    return time.monotonic() - started


def baseline_manifests(desired: list[dict[str, Any]], namespace: str, out: Path) -> Path:
    """The reconciler's rendered objects, moved into the baseline's own namespace."""
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    for obj in desired:
        if obj["kind"] == "Namespace":
            continue
        moved = json.loads(json.dumps(obj))
        if moved["metadata"].get("namespace"):
            moved["metadata"]["namespace"] = namespace
        docs.append(moved)
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--computes", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as tmp:
        root = Path(tmp)
        tb = bed.up(root / "testbed", control_plane=3, compute=args.computes, log=log)
        try:
            return run(tb, root, args.repeats, args.computes)
        finally:
            bed.down(tb.directory)


def run(tb: bed.TestBed, root: Path, repeats: int, computes: int) -> int:
    charts = HelmRepo(tb.directory)  # recorded in the test bed's state: bed.down stops it too
    charts.start()
    repo = ConfigRepo(root / "repo", charts.url, name="cloud", namespace="openstack")
    reconciler = make_reconciler(tb, str(repo.bare), root / "work")

    # The rendered manifests, exactly as the reconciler would apply them (render only, no apply).
    checkout = reconciler.git.fetch()
    spec = pipeline.load(checkout.path)
    credentials, _ = complete({}, needed_credentials(spec), secrets.token_urlsafe)
    texts = pipeline.render(spec, checkout.path, reconciler.helm, expand(spec, credentials),
                            reconciler.cluster.server_version(), reconciler.cluster.api_versions())
    desired = [pipeline.namespace_desired(spec).manifest]
    for chart, text in texts.items():
        desired.extend(d.manifest for d in pipeline.desired_objects(spec, chart, text))
    objects_total = len(desired)
    manifest = baseline_manifests(desired, "baseline", root / "baseline.yaml")
    log(f"{objects_total} objects in the full template cloud")

    # Baseline: kubectl apply --server-side, cold then repeated (the operator's alternative).
    before = tb.requests_by(user_agent_prefix=KUBECTL_AGENT)
    kubectl_cold = kubectl_apply(tb, manifest)
    kubectl_cold_writes = writes(tb, KUBECTL_AGENT, before)
    log(f"kubectl cold apply: {kubectl_cold:.2f}s; settled after {settle(reconciler.cluster, 'baseline'):.0f}s")
    kubectl_repeat, kubectl_repeat_writes = [], []
    for _ in range(repeats):
        before = tb.requests_by(user_agent_prefix=KUBECTL_AGENT)
        kubectl_repeat.append(kubectl_apply(tb, manifest))
        kubectl_repeat_writes.append(writes(tb, KUBECTL_AGENT, before))
    log(f"kubectl repeated apply: {statistics.median(kubectl_repeat):.2f}s")

    # Reconciler: cold apply (writes everything, does not wait for pods), then no-op passes.
    before = tb.requests_by(user_agent_prefix=RECONCILER_AGENT)
    started = time.monotonic()
    cold = reconciler.reconcile()
    cold_seconds = time.monotonic() - started
    assert cold.ok, cold.message
    cold_writes = writes(tb, RECONCILER_AGENT, before)
    log(f"reconciler cold apply: {cold_seconds:.2f}s ({cold.message}); "
        f"settled after {settle(reconciler.cluster, 'openstack'):.0f}s")
    reconciler.reconcile()  # records the converged health once (a status write), like the loop does
    noop_seconds, noop_writes, noop_phases = [], [], []
    for _ in range(repeats):
        before = tb.requests_by(user_agent_prefix=RECONCILER_AGENT)
        started = time.monotonic()
        outcome = reconciler.reconcile()
        noop_seconds.append(time.monotonic() - started)
        noop_writes.append(writes(tb, RECONCILER_AGENT, before))
        noop_phases.append(outcome.phase_seconds)
        assert outcome.ok, outcome.message
    log(f"reconciler no-op: {statistics.median(noop_seconds):.3f}s, writes {noop_writes}")

    # One value changes in Git: only the affected objects are written.
    repo.edit(lambda d: d["spec"]["overrides"]["nova"]["conf"]["nova"]["DEFAULT"].update(cpu_allocation_ratio=16.0),
              "nova: cpu_allocation_ratio 16")
    before = tb.requests_by(user_agent_prefix=RECONCILER_AGENT)
    started = time.monotonic()
    change = reconciler.reconcile()
    change_seconds = time.monotonic() - started
    change_writes = writes(tb, RECONCILER_AGENT, before)
    written = sorted(str(c.key) for c in change.changes.changes if c.action is not Action.UNCHANGED)
    log(f"one-value change: {change_seconds:.2f}s, wrote {written}")

    # Peak RSS of a whole reconciler process (a fresh `reconcile --once`, no-op against the cloud).
    env = {**os.environ, "KUBECONFIG": str(tb.kubeconfig_for("openstack-gitops")),
           "OPENSTACK_GITOPS_HELM": str(build.binary("helm"))}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "reconcile", "--once", "--repo", str(repo.bare),
                             "--workdir", str(root / "cli-work")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, code, usage = os.wait4(proc.pid, 0)  # this child's own peak (helm/git children are smaller)
    proc.returncode = os.waitstatus_to_exitcode(code)
    cli_seconds = time.monotonic() - started
    peak_rss_mib = usage.ru_maxrss / 1024
    assert proc.returncode == 0, "reconcile --once failed"

    noop = statistics.median(noop_seconds)
    kubectl_rep = statistics.median(kubectl_repeat)
    result = {
        "benchmark": "reconcile", "nodes": 3 + computes, "objects": objects_total,
        "kubectl_cold_seconds": round(kubectl_cold, 3), "kubectl_cold_writes": kubectl_cold_writes,
        "kubectl_repeat_seconds": round(kubectl_rep, 3), "kubectl_repeat_writes": kubectl_repeat_writes,
        "reconciler_cold_seconds": round(cold_seconds, 3), "reconciler_cold_writes": cold_writes,
        "reconciler_noop_seconds": round(noop, 3), "reconciler_noop_writes": noop_writes,
        "reconciler_noop_phase_seconds": noop_phases[len(noop_phases) // 2],
        "one_value_change_seconds": round(change_seconds, 3), "one_value_change_writes": change_writes,
        "one_value_change_objects": written,
        "reconcile_once_process_seconds": round(cli_seconds, 3), "peak_rss_mib": round(peak_rss_mib, 1),
        "noop_speedup_vs_kubectl_repeat": round(kubectl_rep / noop, 1),
        "cold_ratio_reconciler_over_kubectl": round(cold_seconds / kubectl_cold, 2),
        "goals": {"noop_at_least_10x": kubectl_rep / noop >= 10, "noop_zero_writes": all(w == 0 for w in noop_writes),
                  "cold_no_slower_than_kubectl": cold_seconds <= kubectl_cold},
    }
    print(json.dumps(result))
    return 0 if all(result["goals"].values()) else 1  # type: ignore[union-attr]


if __name__ == "__main__":
    sys.exit(main())
