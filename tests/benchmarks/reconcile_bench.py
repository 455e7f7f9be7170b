"""Reconciler benchmark on the test bed against the baseline an operator would otherwise use.

The real OpenStack-Helm charts (the full template cloud, from the loopback Helm repository), on
3 control-plane + N compute nodes (default 100):
- baseline: ``kubectl apply --server-side`` of exactly what the reconciler applies on an install
  (the charts' ordinary objects and their install hooks; ``helm template --skip-tests`` minus the
  pre-delete hooks an install never runs), cold and then repeated;
- reconciler, cold install: time until its last object write and until ``reconcile()`` returns
  (every hook Job completed), with its requests from the audit log (dry-runs, writes, GETs, LISTs)
  and the seconds per phase;
- reconciler, no-op: the long-running loop's pass, and a fresh ``reconcile --once`` process (wall
  time of the whole process, median of several) next to Python's own floor (the interpreter, and
  the interpreter importing ``reconciler.cli``), which no fresh process can go below;
- a one-value change (which objects it writes); peak RSS of a fresh process.
Both sides apply into their own namespace of the same test bed, the reconciler first (the few
cluster-scoped objects are shared: kubectl's field manager on them would read as a hand edit).

Run: .venv/bin/python tests/benchmarks/reconcile_bench.py [--computes 100] [--repeats 5]
Progress on stderr; one JSON object as the last line on stdout; exit 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from openstack_gitops.api import Process
from openstack_gitops.health import health_of
from openstack_gitops.kube.client import Cluster
from openstack_gitops.model.credentials import complete, needed_credentials
from openstack_gitops.model.expand import expand
from reconciler.edges.helm import Helm
from reconciler.engine import pipeline
from reconciler.engine.reconcile import WORKLOAD_KINDS
from reconciler.plan import hooks as helm_hooks
from reconciler.plan.diff import Action
from testbed import bed, build
from testbed.helmrepo import HelmRepo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from reconcile_support import AUDIT_LAG, WRITE_VERBS, ConfigRepo, make_reconciler

KUBECTL_AGENT = "kubectl"
RECONCILER_AGENT = Process.RECONCILER.user_agent
NOOP_SPEEDUP_GOAL = 20.0  # no-op at least this much faster than kubectl's repeated apply
BOOKKEEPING = ("events", "openstackdeployments")  # the reconciler's own writes, not the cloud's objects


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# -- the audit log ---------------------------------------------------------------------------------
def is_dry_run(event: dict[str, Any]) -> bool:
    return "dryRun=All" in str(event.get("requestURI", ""))


def request_counts(events: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Requests by what they are: dry-runs, writes (create/update/patch/delete), GETs, LISTs, WATCHes."""
    counts: Counter[str] = Counter()
    for event in events:
        verb = str(event.get("verb", "?"))
        if verb in WRITE_VERBS:
            counts["dry_runs" if is_dry_run(event) else "writes"] += 1
        elif verb in ("get", "list", "watch"):
            counts[f"{verb}s"] += 1
        else:
            counts["other"] += 1
    return {k: counts[k] for k in ("dry_runs", "writes", "gets", "lists", "watches", "other")}


def stamp(event: dict[str, Any]) -> float:
    """When the request's response completed (the audit log's wall clock, same machine)."""
    text = str(event["stageTimestamp"]).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


class Audit:
    """One client's requests in the audit log since ``mark()``."""

    def __init__(self, tb: bed.TestBed, agent: str) -> None:
        self.tb, self.agent, self.start = tb, agent, 0

    def mark(self) -> None:
        self.start = len(self.tb.audit_events(user_agent_prefix=self.agent))

    def since(self) -> list[dict[str, Any]]:
        time.sleep(AUDIT_LAG)
        return self.tb.audit_events(user_agent_prefix=self.agent)[self.start:]


def writes(events: Iterable[dict[str, Any]]) -> int:
    return request_counts(events)["writes"]


def written_by(events: Iterable[dict[str, Any]]) -> list[str]:
    """The real writes, as ``verb resource/name`` (a no-op should have none)."""
    return [f"{e['verb']} {(e.get('objectRef') or {}).get('resource')}/{(e.get('objectRef') or {}).get('name')}"
            for e in events if e.get("verb") in WRITE_VERBS and not is_dry_run(e)]


Ref = tuple[str, str, str]  # (resource, namespace, name): how the audit log names an object


def ref_of(event: dict[str, Any]) -> Ref:
    ref = event.get("objectRef") or {}
    return str(ref.get("resource", "")), str(ref.get("namespace", "")), str(ref.get("name", ""))


def refs(cluster: Cluster, manifests: Iterable[dict[str, Any]]) -> set[Ref]:
    """The audit log's names of ``manifests`` (a Job and its ServiceAccount share a name, not a resource)."""
    return {(cluster.resource(m["apiVersion"], m["kind"]).name, m["metadata"].get("namespace", ""),
             m["metadata"]["name"]) for m in manifests}


def dry_runs_before_writes(events: list[dict[str, Any]]) -> bool:
    """Every dry-run came before the first write of a cloud object (stage 1, the Namespace and CRDs,
    goes first: what lives in them can only be dry-run once they exist; the inventory is bookkeeping)."""
    stage_one = ("namespaces", "customresourcedefinitions", *BOOKKEEPING)
    dry = [i for i, e in enumerate(events) if e.get("verb") in WRITE_VERBS and is_dry_run(e)]
    real = [i for i, e in enumerate(events) if e.get("verb") in WRITE_VERBS and not is_dry_run(e)
            and ref_of(e)[0] not in stage_one and not ref_of(e)[2].endswith("-inventory")]
    return bool(dry) and (not real or max(dry) < min(real))


def last_write_after(events: Iterable[dict[str, Any]], started_wall: float, names: set[Ref]) -> float:
    """Seconds from ``started_wall`` to the last real write of one of ``names``."""
    times = [stamp(e) for e in events if e.get("verb") in WRITE_VERBS and not is_dry_run(e) and ref_of(e) in names]
    return max(times) - started_wall if times else 0.0


# -- the cluster -----------------------------------------------------------------------------------
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


def baseline_manifests(applied: list[dict[str, Any]], namespace: str, out: Path) -> Path:
    """The objects the reconciler applies, moved into the baseline's own namespace."""
    docs = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    for obj in applied:
        if obj["kind"] == "Namespace":
            continue
        moved = json.loads(json.dumps(obj))
        if moved["metadata"].get("namespace"):
            moved["metadata"]["namespace"] = namespace
        docs.append(moved)
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


# -- processes -------------------------------------------------------------------------------------
def timed_process(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """(wall seconds, exit code, peak RSS MiB of the process itself) of one child process."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.monotonic() - started, proc.returncode, usage.ru_maxrss / 1024


def python_floor(repeats: int) -> dict[str, float]:
    """What a fresh Python process costs before it does anything: the bare interpreter, and the
    interpreter with ``reconciler.cli`` imported (its whole dependency tree: kubernetes, yaml, ...)."""
    bare = [timed_process([sys.executable, "-c", "pass"])[0] for _ in range(repeats)]
    imported = [timed_process([sys.executable, "-c", "import reconciler.cli"],
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})[0]
                for _ in range(repeats)]
    return {"interpreter_seconds": round(statistics.median(bare), 3),
            "import_cli_seconds": round(statistics.median(imported), 3)}


def counting_helm(directory: Path) -> tuple[Path, Callable[[], int]]:
    """A wrapper around the real Helm that counts its runs (a fresh process that skips Helm runs none)."""
    directory.mkdir(parents=True, exist_ok=True)
    calls = directory / "calls"
    wrapper = directory / "helm"
    wrapper.write_text(f"#!/bin/sh\necho x >> {calls}\nexec {build.binary('helm')} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper, lambda: len(calls.read_text().splitlines()) if calls.exists() else 0


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


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
    # every reconciler here runs Helm through one counting wrapper: the binary is part of the render inputs
    helm_wrapper, helm_runs = counting_helm(root / "helm-wrapper")
    reconciler.helm = Helm(str(helm_wrapper), root / "helm-bench")
    kubectl_audit, audit = Audit(tb, KUBECTL_AGENT), Audit(tb, RECONCILER_AGENT)

    # What the reconciler applies on an install: the ordinary objects, and the install hooks as it
    # stamps them (render only, no apply). Test hooks and pre-delete hooks are never applied.
    checkout = reconciler.git.fetch()
    spec = pipeline.load(checkout.path)
    credentials, _ = complete({}, needed_credentials(spec), secrets.token_urlsafe)
    texts = pipeline.render(spec, checkout.path, reconciler.helm, expand(spec, credentials),
                            reconciler.cluster.server_version(), reconciler.cluster.api_versions())
    rendered = [pipeline.namespace_desired(spec)]
    for chart, text in texts.items():
        rendered.extend(pipeline.desired_objects(spec, chart, text))
    objects, hooks = pipeline.split_hooks(rendered)
    install = helm_hooks.plan_hooks(hooks, helm_hooks.chart_revisions(objects, hooks), recorded={})
    install_hooks = [h for chart in install.values() for h in chart.hooks]
    applied = [d.manifest for d in objects] + [h.manifest for h in install_hooks]
    object_names = refs(reconciler.cluster, (d.manifest for d in objects))
    every_name = object_names | refs(reconciler.cluster, (h.manifest for h in install_hooks))
    manifest = baseline_manifests(applied, "baseline", root / "baseline.yaml")
    left_out = sorted(f"{h.key.kind}/{h.key.name}" for h in hooks if h.key not in {i.key for i in install_hooks})
    log(f"{len(applied)} objects applied: {len(objects)} ordinary, {len(install_hooks)} install hooks "
        f"(left out: {len(rendered) - len(objects) - len(hooks)} test hooks, pre-delete hooks {left_out})")

    # Reconciler, cold install: until its last object write, and until reconcile() returns
    # (every hook Job completed; pods are not waited for).
    audit.mark()
    started_wall, started = time.time(), time.monotonic()
    cold = reconciler.reconcile()
    cold_seconds = time.monotonic() - started
    assert cold.ok, cold.message
    cold_events = audit.since()
    cold_requests = request_counts(cold_events)
    cold_last_object = last_write_after(cold_events, started_wall, object_names)
    cold_last_write = last_write_after(cold_events, started_wall, every_name)
    log(f"reconciler cold: last object write {cold_last_object:.2f}s, returned {cold_seconds:.2f}s "
        f"{cold_requests} {cold.phase_seconds} {cold.apply_seconds} ({cold.message}); "
        f"settled after {settle(reconciler.cluster, 'openstack'):.0f}s")

    # Reconciler, no-op passes of the long-running loop, once the converged state is recorded (the first
    # pass after the pods settled writes their health into the status, as the loop does).
    warmup: list[list[str]] = []
    for _ in range(3):
        audit.mark()
        assert reconciler.reconcile().ok
        warmup.append(written_by(audit.since()))
        if not warmup[-1]:
            break
    log(f"reconciler converged: writes of the passes before the first quiet one: {warmup}")
    noop_seconds, noop_requests, noop_phases = [], [], []
    for _ in range(repeats):
        audit.mark()
        started = time.monotonic()
        outcome = reconciler.reconcile()
        noop_seconds.append(time.monotonic() - started)
        events = audit.since()
        noop_requests.append({**request_counts(events), "written": written_by(events)})
        noop_phases.append(outcome.phase_seconds)
        assert outcome.ok, outcome.message
    log(f"reconciler no-op (loop): {median(noop_seconds):.3f}s, writes {[r['writes'] for r in noop_requests]}")

    # Reconciler, no-op as a fresh `reconcile --once` process: the whole process, Python's start included.
    floor = python_floor(repeats)
    env = {**os.environ, "KUBECONFIG": str(tb.kubeconfig_for("openstack-gitops")),
           "OPENSTACK_GITOPS_HELM": str(helm_wrapper)}
    once = [sys.executable, "-m", "reconciler.cli", "reconcile", "--once", "--repo", str(repo.bare)]
    fresh: list[dict[str, Any]] = []
    for i in range(repeats + 1):  # the first records the inputs as a fresh process sees them (see README)
        runs_before = helm_runs()
        audit.mark()
        seconds, code, rss = timed_process([*once, "--workdir", str(root / f"cli-work-{i}")], env=env)
        assert code == 0, "reconcile --once failed"
        events = audit.since()
        fresh.append({"seconds": round(seconds, 3), "writes": writes(events), "written": written_by(events),
                      "helm_runs": helm_runs() - runs_before, "peak_rss_mib": round(rss, 1)})
    steady = fresh[1:]
    fresh_seconds = median([f["seconds"] for f in steady])
    log(f"reconciler no-op (fresh process): {fresh_seconds:.3f}s {fresh}; python floor {floor}")

    # One value changes in Git: only the affected objects are written.
    repo.edit(lambda d: d["spec"]["overrides"]["nova"]["conf"]["nova"]["DEFAULT"].update(cpu_allocation_ratio=16.0),
              "nova: cpu_allocation_ratio 16")
    audit.mark()
    started = time.monotonic()
    change = reconciler.reconcile()
    change_seconds = time.monotonic() - started
    assert change.ok, change.message
    change_requests = request_counts(audit.since())
    written = sorted(str(c.key) for c in change.changes.changes if c.action is not Action.UNCHANGED)
    log(f"one-value change: {change_seconds:.2f}s {change.apply_seconds}, wrote {written}")

    # Baseline: kubectl apply --server-side, cold then repeated (the operator's alternative), after the
    # reconciler: the cluster-scoped objects (CRDs, ClusterRoles) are the same objects on both sides, and
    # kubectl's field manager on them would read as a hand edit to the reconciler.
    kubectl_audit.mark()
    kubectl_cold = kubectl_apply(tb, manifest)
    kubectl_cold_requests = request_counts(kubectl_audit.since())
    log(f"kubectl cold apply: {kubectl_cold:.2f}s {kubectl_cold_requests}; "
        f"settled after {settle(reconciler.cluster, 'baseline'):.0f}s")
    kubectl_repeat, kubectl_repeat_requests = [], []
    for _ in range(repeats):
        kubectl_audit.mark()
        kubectl_repeat.append(kubectl_apply(tb, manifest))
        kubectl_repeat_requests.append(request_counts(kubectl_audit.since()))
    log(f"kubectl repeated apply: {median(kubectl_repeat):.2f}s")

    noop = median(noop_seconds)
    kubectl_rep = median(kubectl_repeat)
    loop_speedup = kubectl_rep / noop
    fresh_speedup = kubectl_rep / fresh_seconds
    floor_speedup = kubectl_rep / floor["import_cli_seconds"]
    result: dict[str, Any] = {
        "benchmark": "reconcile", "nodes": 3 + computes,
        "objects": {"applied": len(applied), "ordinary": len(objects), "install_hooks": len(install_hooks),
                    "test_hooks_left_out": len(rendered) - len(objects) - len(hooks),
                    "pre_delete_hooks_left_out": left_out},
        "kubectl": {"cold_seconds": round(kubectl_cold, 3), "cold_requests": kubectl_cold_requests,
                    "repeat_seconds": kubectl_rep,
                    "repeat_requests": kubectl_repeat_requests[len(kubectl_repeat) // 2]},
        "reconciler_cold": {"last_object_write_seconds": round(cold_last_object, 3),
                            "last_write_seconds": round(cold_last_write, 3),
                            "returned_seconds": round(cold_seconds, 3), "requests": cold_requests,
                            "phase_seconds": cold.phase_seconds, "apply_seconds": cold.apply_seconds},
        "reconciler_noop_loop": {"seconds": noop, "requests": noop_requests[len(noop_requests) // 2],
                                 "writes": [r["writes"] for r in noop_requests], "warmup_written": warmup,
                                 "phase_seconds": noop_phases[len(noop_phases) // 2]},
        "reconciler_noop_fresh_process": {"seconds": fresh_seconds, "first_run": fresh[0], "runs": steady,
                                          "python_floor": floor},
        "one_value_change": {"seconds": round(change_seconds, 3), "requests": change_requests,
                             "apply_seconds": change.apply_seconds, "objects": written},
        "peak_rss_mib": max(f["peak_rss_mib"] for f in fresh),
        "ratios": {"cold_last_object_write_over_kubectl": round(cold_last_object / kubectl_cold, 2),
                   "cold_returned_over_kubectl": round(cold_seconds / kubectl_cold, 2),
                   "noop_loop_speedup_vs_kubectl_repeat": round(loop_speedup, 1),
                   "noop_fresh_process_speedup_vs_kubectl_repeat": round(fresh_speedup, 1),
                   "python_floor_speedup_vs_kubectl_repeat": round(floor_speedup, 1)},
        "goals": {
            "cold_no_slower_than_kubectl": cold_last_object <= kubectl_cold,
            "cold_dry_runs_everything_first": cold_requests["dry_runs"] >= len(applied)
            and dry_runs_before_writes(cold_events),
            "noop_zero_writes": all(r["writes"] == 0 for r in noop_requests) and all(f["writes"] == 0 for f in steady),
            f"noop_loop_at_least_{NOOP_SPEEDUP_GOAL:.0f}x": loop_speedup >= NOOP_SPEEDUP_GOAL,
        },
        "fresh_process": {
            f"at_least_{NOOP_SPEEDUP_GOAL:.0f}x": fresh_speedup >= NOOP_SPEEDUP_GOAL,
            "possible_above_python_floor": floor_speedup >= NOOP_SPEEDUP_GOAL,
            "note": (f"a fresh process cannot beat {NOOP_SPEEDUP_GOAL:.0f}x: starting Python and importing "
                     f"reconciler.cli alone takes {floor['import_cli_seconds']}s, {floor_speedup:.1f}x kubectl's "
                     f"repeated apply" if floor_speedup < NOOP_SPEEDUP_GOAL else
                     f"{fresh_speedup:.1f}x kubectl's repeated apply; Python's floor allows {floor_speedup:.1f}x"),
        },
    }
    print(json.dumps(result))
    return 0 if all(result["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
