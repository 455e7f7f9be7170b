"""The health watcher at 2,000 compute nodes (issue 10): failure-to-restart and failure-to-notification
latency, the watcher's CPU and peak RSS, and its apiserver requests at rest, against a polling watchdog.

The bed: 1 control-plane + ``--computes`` kwok compute nodes (2,000 by default), a namespace with an
OpenStackDeployment publishing the policy (crash-loop grace ``--grace`` s, 1,000 restarts an hour in
total, enough per workload for every injected failure, the default 3 per node), and the DaemonSet
``nova-compute-default`` on every compute node, all pods Ready. The watcher runs as its own process
(``python -m healthwatcher --log-json``, leader election on, notifications to a real Alertmanager and to
a loopback webhook receiver that stamps each POST), talking to the apiserver through a loopback TCP
proxy of this process that counts the bytes both ways (the TLS stream, untouched).

Measured in one run:
- startup: process start to every pod watched (the first LISTs of the pods and nodes), CPU and peak RSS;
- ``--batches`` x ``--per-batch`` crash-loop failures (``TestBed.fail_pod``), each on its own node,
  batches ``--gap`` s apart. For each: *visible* = when kwok's write of the pod's CrashLoopBackOff
  status completed (the audit log's stageTimestamp, microseconds; the Ready condition's
  lastTransitionTime is the same instant cut to the second), *restart* = when the apiserver received
  the watcher's delete (audit log), *notified* = when the webhook receiver had the pod's
  OpenStackPodRestarted note. Reported: restart - visible - grace, notified - visible - grace (can be
  below 0: the watcher reads grace from the whole-second lastTransitionTime, so its effective grace
  is between grace-1 s and grace), restart - max(visible, the watcher's due time) (its own reaction),
  the watcher's own ``after`` (log line "restarted"), and from the injection request as well;
  every restart alert checked in Alertmanager's GET /api/v2/alerts;
- at rest (everything settled), for ``--rest`` s: the watcher's requests by verb/resource from the
  audit log (watch (re)opens; the Lease's get/update counted apart), bytes through its proxy, CPU;
- the baseline, in the same run, after the watcher stopped: what a user would otherwise run, a loop
  ``kubectl get pods -n NS -o json`` every ``--poll-interval`` s that deletes (``kubectl delete pod``)
  every pod in CrashLoopBackOff whose Ready condition turned False at least ``--grace`` s ago, as its
  own process (this script with ``--poller``): its requests and bytes at rest for ``--poller-rest`` s,
  CPU (kubectl children included), and its latency for ``--poller-failures`` fresh failures injected
  at random phases of its loop. Ratios poller / watcher.

The machine is shared (2 cores): other test beds may run at the same time, so absolute numbers are
noisy; the ratios are measured side by side in one run.

Run: .venv/bin/python tests/benchmarks/healthwatcher_bench.py [--computes 2000] [--rest 300]
Progress on stderr; one JSON object as the last line on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from openstack_gitops.api import Process
from openstack_gitops.kube.client import Cluster
from testbed import bed, build, kwok_stages, process
from testbed.alertmanager import Alertmanager
from testbed.webhookreceiver import WebhookReceiver
from tests.integration.healthwatcher_support import (
    FAST,
    REPO,
    all_ready,
    compute_daemonset,
    policy,
    publish,
)
from tests.waiting import wait_for

NAMESPACE = "hw-bench"
COMPUTE = "application=nova,component=compute"
WORKLOAD = "nova-compute-default"
WATCHER_AGENT = Process.HEALTH_WATCHER.user_agent.split("/")[0]  # openstack-gitops-health-watcher
KUBECTL_AGENT = "kubectl/"
AUDIT_LAG = 1.5  # the audit log's line lands just after the response


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def stamp(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 0.5), 3), "p99": round(percentile(values, 0.99), 3),
            "min": round(min(values), 3), "max": round(max(values), 3), "mean": round(statistics.fmean(values), 3)}


def proc_stats(pid: int, children: bool = False) -> tuple[float, float]:
    """(CPU seconds, peak RSS MiB) of a live process, from /proc (children: reaped children's CPU too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if children else 0)) / ticks
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- a byte-counting loopback TCP proxy -------------------------------------------------------------
class CountingProxy:
    """127.0.0.1:<port> -> 127.0.0.1:<target>: a plain TCP relay (TLS passes through) counting bytes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = process.free_port()
        self.sent = 0  # client -> apiserver
        self.received = 0  # apiserver -> client
        self.connections = 0
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(64)
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def totals(self) -> tuple[int, int]:
        with self._lock:
            return self.sent, self.received

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            for s in (client, upstream):  # as the clients do: no Nagle delay added by the relay
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, outgoing: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                with self._lock:
                    if outgoing:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
        except OSError:
            pass
        finally:
            for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
                with contextlib.suppress(OSError):
                    s.shutdown(how)


def proxied_kubeconfig(tb: bed.TestBed, proxy: CountingProxy, path: Path) -> Path:
    config = yaml.safe_load(tb.kubeconfig_for("admin").read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# -- the audit log, read incrementally --------------------------------------------------------------
class AuditTail:
    """The requests of interest (by namespace or user agent), one per auditID, read as the log grows."""

    def __init__(self, path: Path, needles: tuple[str, ...]) -> None:
        self.path, self.needles = path, needles
        self.offset = 0
        self.events: dict[str, dict[str, Any]] = {}  # auditID -> event (ResponseComplete wins over Started)

    def read(self) -> list[dict[str, Any]]:
        if self.path.exists():
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
            end = chunk.rfind(b"\n") + 1
            self.offset += end
            for raw in chunk[:end].splitlines():
                line = raw.decode(errors="replace")
                if not any(n in line for n in self.needles):
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("stage") not in ("ResponseStarted", "ResponseComplete"):
                    continue
                known = self.events.get(event["auditID"])
                if known is None or event["stage"] == "ResponseComplete":
                    self.events[event["auditID"]] = event
        return list(self.events.values())

    def by_agent(self, prefix: str, since: float = 0.0, until: float = math.inf) -> list[dict[str, Any]]:
        return [e for e in self.read() if str(e.get("userAgent", "")).startswith(prefix)
                and since <= stamp(e["requestReceivedTimestamp"]) < until]


def ref(event: dict[str, Any]) -> dict[str, Any]:
    return event.get("objectRef") or {}


def classify(event: dict[str, Any]) -> str:
    r = ref(event)
    what = r.get("resource") or event.get("requestURI", "?").split("?")[0]
    if r.get("subresource"):
        what += "/" + r["subresource"]
    return f"{event.get('verb')} {what}"


def requests_table(events: list[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(classify(e) for e in events).items()))


def deletes_of_pods(events: list[dict[str, Any]]) -> dict[str, float]:
    """Pod name -> when the apiserver received the first successful delete (or eviction) of it."""
    out: dict[str, float] = {}
    for e in events:
        r = ref(e)
        if r.get("resource") != "pods" or r.get("namespace") != NAMESPACE:
            continue
        restart = e.get("verb") == "delete" or (e.get("verb") == "create" and r.get("subresource") == "eviction")
        if restart and e.get("stage") == "ResponseComplete" and (e.get("responseStatus") or {}).get("code", 200) < 300:
            at = stamp(e["requestReceivedTimestamp"])
            out[r["name"]] = min(at, out.get(r["name"], math.inf))
    return out


def visible_times(audit: AuditTail, injected: dict[str, float]) -> dict[str, float]:
    """Pod -> when kwok's write of its failed status completed (the first status write after the injection)."""
    out: dict[str, float] = {}
    for e in audit.read():
        r = ref(e)
        name = r.get("name")
        if name not in injected or r.get("subresource") != "status" or e.get("verb") not in ("patch", "update"):
            continue
        if (e.get("user") or {}).get("username") != "kwok" or e.get("stage") != "ResponseComplete":
            continue
        if stamp(e["requestReceivedTimestamp"]) < injected[name]:
            continue
        out[name] = min(stamp(e["stageTimestamp"]), out.get(name, math.inf))
    return out


class ReadyTransitions:
    """Pod -> its Ready=False lastTransitionTime (whole seconds), from a watch on the failed pods only
    (kwok's crash-loop label): what the watcher's and the poller's grace times count from."""

    def __init__(self, tb: bed.TestBed) -> None:
        self.api = tb.api_client()
        self.times: dict[str, float] = {}
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ready-transitions", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        core = client.CoreV1Api(self.api)
        while not self._stop.is_set():
            try:
                for event in self._watch.stream(  # type: ignore[no-untyped-call]
                        core.list_namespaced_pod, NAMESPACE, timeout_seconds=60,
                                                label_selector=f"{kwok_stages.FAIL_LABEL}=crashloop"):
                    pod = event["object"]
                    for c in (pod.status and pod.status.conditions) or []:
                        if c.type == "Ready" and c.status == "False" and c.last_transition_time:
                            self.times.setdefault(pod.metadata.name, c.last_transition_time.timestamp())
            except Exception:  # the apiserver closed it, or we stop: list and watch again
                self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(5)
        self.api.close()  # type: ignore[no-untyped-call]


# -- the watcher process ----------------------------------------------------------------------------
def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def try_scrape(port: int) -> dict[str, float]:
    try:
        return scrape(port)
    except OSError:
        return {}


def start_watcher(kubeconfig: Path, port: int, am: Alertmanager, hook: WebhookReceiver,
                  log_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "healthwatcher", "--log-json", "--kubeconfig", str(kubeconfig),
            "--namespace", NAMESPACE, "--metrics-port", str(port), "--identity", "bench",
            "--lease-namespace", NAMESPACE, "--webhook-url", hook.url, "--alertmanager-url", am.url]
    with log_path.open("wb") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def watcher_log(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


# -- the baseline: a polling watchdog ---------------------------------------------------------------
def poller_main(args: argparse.Namespace) -> int:
    """``kubectl get pods -o json`` every interval; ``kubectl delete pod`` what crash-loops past grace."""
    kubectl = [str(build.binary("kubectl")), f"--kubeconfig={args.kubeconfig}", f"--cache-dir={args.cache_dir}",
               "-n", args.namespace]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        started = time.time()
        got = subprocess.run([*kubectl, "get", "pods", "-o", "json"], capture_output=True, check=False)
        victims = []
        if got.returncode == 0:
            for pod in json.loads(got.stdout).get("items", []):
                if pod["metadata"].get("deletionTimestamp"):
                    continue
                statuses = (pod.get("status") or {}).get("containerStatuses") or []
                crashing = any(((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
                               for c in statuses)
                ready = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
                since = stamp(ready[0]["lastTransitionTime"]) if ready and ready[0].get("status") != "True" else None
                if crashing and since is not None and started - since >= args.grace:
                    victims.append(pod["metadata"]["name"])
        if victims:
            subprocess.run([*kubectl, "delete", "pod", "--wait=false", *victims], capture_output=True, check=False)
        print(json.dumps({"at": started, "list_s": round(time.time() - started, 3), "bytes": len(got.stdout),
                          "deleted": victims}), flush=True)
        stop.wait(max(0.0, args.interval - (time.time() - started)))
    return 0


def start_poller(kubeconfig: Path, interval: float, grace: float, cache_dir: Path,
                 log_path: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--poller", "--kubeconfig", str(kubeconfig),
            "--namespace", NAMESPACE, "--interval", str(interval), "--grace", str(grace),
            "--cache-dir", str(cache_dir)]
    with log_path.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 20) -> int | None:
    if proc is None or proc.poll() is not None:
        return None if proc is None else proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


# -- the run ----------------------------------------------------------------------------------------
def compute_pods(admin: Cluster) -> list[dict[str, Any]]:
    return admin.list("v1", "Pod", COMPUTE, NAMESPACE)


def inject(tb: bed.TestBed, names: list[str]) -> dict[str, float]:
    """Fail each pod (crash-loop); pod -> when the injection request was sent."""
    out = {}
    for name in names:
        out[name] = time.time()
        tb.fail_pod(NAMESPACE, name, "crashloop")
    return out


def rest_window(audit: AuditTail, agent: str, proxy: CountingProxy, pid: int, seconds: float,
                children: bool = False) -> dict[str, Any]:
    """Requests (by verb/resource), bytes and CPU of one client over ``seconds`` of rest."""
    cpu0, _ = proc_stats(pid, children)
    bytes0 = proxy.totals()
    t0 = time.time()
    time.sleep(seconds)
    t1 = time.time()
    cpu1, peak = proc_stats(pid, children)
    bytes1 = proxy.totals()
    time.sleep(AUDIT_LAG)
    events = audit.by_agent(agent, t0, t1)
    minutes = (t1 - t0) / 60
    lease = [e for e in events if ref(e).get("resource") == "leases"]
    other = [e for e in events if ref(e).get("resource") != "leases"]
    received = bytes1[1] - bytes0[1]
    sent = bytes1[0] - bytes0[0]
    return {"seconds": round(t1 - t0, 1), "requests": requests_table(events),
            "requests_per_min_excluding_lease": round(len(other) / minutes, 2),
            "lease_requests_per_min": round(len(lease) / minutes, 2),
            "requests_per_min_total": round(len(events) / minutes, 2),
            "bytes_per_min_received": round(received / minutes), "bytes_per_min_sent": round(sent / minutes),
            "cpu_s": round(cpu1 - cpu0, 3), "cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "peak_rss_mib": round(peak, 1), "rss_mib": round(rss_mib(pid), 1)}


def run(tb: bed.TestBed, root: Path, args: argparse.Namespace, result: dict[str, Any]) -> None:
    grace = float(args.grace)
    admin = Cluster(tb.api_client(), field_manager="bench-admin")
    audit = AuditTail(tb.audit_log, (f'"{NAMESPACE}"', WATCHER_AGENT, KUBECTL_AGENT))
    am = Alertmanager(root / "alertmanager")
    hook = WebhookReceiver()
    apiserver_port = int(tb.control.ports.apiserver)
    watcher_proxy, poller_proxy = CountingProxy(apiserver_port), CountingProxy(apiserver_port)
    watcher = poller = None
    transitions = ReadyTransitions(tb)
    try:
        am.start()
        hook.start()
        # -- the cloud --------------------------------------------------------------------------------
        started = time.monotonic()
        admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        failures = args.batches * args.per_batch
        health = policy(max_per_hour=1000, per_node=3, per_workload=max(200, 2 * failures),
                        **{WORKLOAD: {"graceSeconds": {**FAST, "crashLoop": grace}}})
        publish(admin, NAMESPACE, health)
        admin.apply(compute_daemonset(NAMESPACE))
        wait_for(lambda: all_ready(admin, NAMESPACE, COMPUTE, args.computes), 1200,
                 f"{args.computes} compute pods Ready", every=3)
        result["cloud_ready_s"] = round(time.monotonic() - started, 1)
        log(f"{args.computes} pods of {WORKLOAD} Ready after {result['cloud_ready_s']}s")
        time.sleep(3)  # the status writes of the last pods settle

        # -- the watcher: startup -----------------------------------------------------------------------
        port = process.free_port()
        kubeconfig = proxied_kubeconfig(tb, watcher_proxy, root / "kubeconfig-watcher")
        t_start = time.time()
        watcher = start_watcher(kubeconfig, port, am, hook, root / "watcher.log")

        def synced() -> bool:
            m = try_scrape(port)
            return m.get("openstack_gitops_health_watcher_watched_pods") == args.computes \
                and m.get("openstack_gitops_leader") == 1.0

        wait_for(synced, 300, "the watcher leading with every pod watched", every=0.1)
        t_synced = time.time()
        cpu_startup, peak_startup = proc_stats(watcher.pid)
        time.sleep(AUDIT_LAG)
        startup_events = audit.by_agent(WATCHER_AGENT, t_start - 1, t_synced)
        result["watcher_startup"] = {
            "to_all_pods_watched_s": round(t_synced - t_start, 2), "cpu_s": round(cpu_startup, 2),
            "peak_rss_mib": round(peak_startup, 1), "requests": requests_table(startup_events),
            "bytes_received": watcher_proxy.totals()[1]}
        log(f"watcher synced in {t_synced - t_start:.1f}s: {result['watcher_startup']}")
        time.sleep(5)

        # -- failures ---------------------------------------------------------------------------------
        pods = compute_pods(admin)
        nodes = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods}
        victims_all = random.Random(10).sample(sorted(nodes), failures + args.poller_failures)
        victims, poller_victims = victims_all[:failures], victims_all[failures:]
        assert len({nodes[v] for v in victims_all}) == len(victims_all), "one failure per node"
        cpu0, _ = proc_stats(watcher.pid)
        m0 = scrape(port)
        t_fail = time.time()
        injected: dict[str, float] = {}
        for b in range(args.batches):
            batch = victims[b * args.per_batch:(b + 1) * args.per_batch]
            injected.update(inject(tb, batch))
            log(f"batch {b + 1}/{args.batches}: {len(batch)} pods failed")
            if b + 1 < args.batches:
                time.sleep(args.gap)

        def restarted_and_notified() -> bool:
            done = deletes_of_pods(audit.by_agent(WATCHER_AGENT, t_fail))
            noted = {b["labels"].get("pod") for _, b in hook.received()
                     if b.get("alertname") == "OpenStackPodRestarted"}
            return set(victims) <= set(done) and set(victims) <= noted

        wait_for(restarted_and_notified, 120 + 10 * grace, "every failure restarted and notified", every=0.5)
        t_done = time.time()
        cpu1, peak_failures = proc_stats(watcher.pid)
        m1 = scrape(port)
        time.sleep(AUDIT_LAG)
        watcher_events = audit.by_agent(WATCHER_AGENT, t_fail)
        restarts = deletes_of_pods(watcher_events)
        visible = visible_times(audit, injected)
        notified: dict[str, float] = {}
        for at, body in hook.received():
            pod = body.get("labels", {}).get("pod")
            if body.get("alertname") == "OpenStackPodRestarted" and body.get("status") == "firing":
                notified[pod] = min(at, notified.get(pod, math.inf))
        after = {str(line.get("pod", "")).split("/", 1)[-1]: float(line["after"])
                 for line in watcher_log(root / "watcher.log") if line.get("msg") == "restarted"}
        alerts = am.alerts({"alertname": "OpenStackPodRestarted", "namespace": NAMESPACE})
        alerted = {a["labels"].get("pod") for a in alerts}
        missing_visible = [v for v in victims if v not in visible]
        lat: dict[str, list[float]] = {k: [] for k in (
            "restart", "notify", "restart_ltt", "notify_ltt", "reaction", "inj_restart", "inj_notify", "visible")}
        for v in victims:
            vis = visible.get(v, injected[v])
            due = transitions.times.get(v, math.floor(vis)) + grace  # the watcher's due
            lat["restart"].append(restarts[v] - vis - grace)
            lat["notify"].append(notified[v] - vis - grace)
            lat["restart_ltt"].append(restarts[v] - due)
            lat["notify_ltt"].append(notified[v] - due)
            lat["reaction"].append(restarts[v] - max(vis, due))
            lat["inj_restart"].append(restarts[v] - injected[v] - grace)
            lat["inj_notify"].append(notified[v] - injected[v] - grace)
            lat["visible"].append(vis - injected[v])
        spread = []  # first to last restart of one batch: the restarts of one pass go one after the other
        for b in range(args.batches):
            times = [restarts[v] for v in victims[b * args.per_batch:(b + 1) * args.per_batch]]
            spread.append(max(times) - min(times))
        passes = m1.get("openstack_gitops_health_watcher_pass_duration_seconds_count", 0) - \
            m0.get("openstack_gitops_health_watcher_pass_duration_seconds_count", 0)
        pass_sum = m1.get("openstack_gitops_health_watcher_pass_duration_seconds_sum", 0) - \
            m0.get("openstack_gitops_health_watcher_pass_duration_seconds_sum", 0)
        result["failures"] = {
            "injected": len(victims), "batches": args.batches, "per_batch": args.per_batch, "gap_s": args.gap,
            "distinct_nodes": len({nodes[v] for v in victims}), "grace_s": grace,
            "failure_time": "kwok's CrashLoopBackOff status write completed (audit stageTimestamp, microseconds)",
            "visible_from_known_status_write": len(victims) - len(missing_visible),
            "ready_transition_seen": sum(1 for v in victims if v in transitions.times),
            "restarted": sum(1 for v in victims if v in restarts),
            "notified_webhook": sum(1 for v in victims if v in notified),
            "alerts_in_alertmanager": len(alerted & set(victims)),
            "restart_minus_failure_minus_grace_s": summary(lat["restart"]),
            "notification_minus_failure_minus_grace_s": summary(lat["notify"]),
            "restart_minus_ready_transition_minus_grace_s": summary(lat["restart_ltt"]),
            "notification_minus_ready_transition_minus_grace_s": summary(lat["notify_ltt"]),
            "restart_minus_max_failure_and_watcher_due_s": summary(lat["reaction"]),
            "watcher_after_field_s": summary([after[v] for v in victims if v in after]),
            "restart_spread_within_batch_s": summary(spread),
            "from_injection_restart_minus_grace_s": summary(lat["inj_restart"]),
            "from_injection_notification_minus_grace_s": summary(lat["inj_notify"]),
            "injection_to_failure_visible_s": summary(lat["visible"]),
            "watcher_requests": requests_table(watcher_events),
            "watcher_cpu_s": round(cpu1 - cpu0, 2),
            "watcher_cpu_percent": round(100 * (cpu1 - cpu0) / (t_done - t_fail), 1),
            "watcher_peak_rss_mib": round(peak_failures, 1), "window_s": round(t_done - t_fail, 1),
            "passes": int(passes), "pass_mean_ms": round(1000 * pass_sum / passes, 2) if passes else None,
        }
        log(f"failures: {json.dumps(result['failures'])}")

        # -- at rest --------------------------------------------------------------------------------------
        wait_for(lambda: all_ready(admin, NAMESPACE, COMPUTE, args.computes), 300, "every replacement Ready", every=3)
        time.sleep(10)  # the last status writes, Events and notifications
        log(f"watcher at rest for {args.rest:.0f}s")
        m_rest0 = scrape(port)
        result["watcher_rest"] = rest_window(audit, WATCHER_AGENT, watcher_proxy, watcher.pid, args.rest)
        m_rest1 = scrape(port)
        prefix = "openstack_gitops_health_watcher_watch_events_total"
        result["watcher_rest"]["watch_events_handled"] = {
            k[len(prefix):]: int(v - m_rest0.get(k, 0)) for k, v in m_rest1.items() if k.startswith(prefix)}
        log(f"watcher at rest: {json.dumps(result['watcher_rest'])}")
        _, peak_end = proc_stats(watcher.pid)
        result["watcher_peak_rss_mib"] = round(peak_end, 1)
        code = stop_process(watcher)
        result["watcher_exit_code"] = code
        watcher = None

        # -- the baseline: a polling watchdog ----------------------------------------------------------------
        kubeconfig = proxied_kubeconfig(tb, poller_proxy, root / "kubeconfig-poller")
        poller = start_poller(kubeconfig, args.poll_interval, grace, root / "kubectl-cache", root / "poller.log")
        wait_for(lambda: (root / "poller.log").read_text().count("\n") >= 1, 60, "the poller's first poll", every=0.5)
        log(f"poller at rest for {args.poller_rest:.0f}s")
        result["poller_rest"] = rest_window(audit, KUBECTL_AGENT, poller_proxy, poller.pid, args.poller_rest,
                                            children=True)
        log(f"poller at rest: {json.dumps(result['poller_rest'])}")
        t_pfail = time.time()
        p_injected: dict[str, float] = {}
        rng = random.Random(11)
        for v in poller_victims:
            p_injected.update(inject(tb, [v]))
            time.sleep(rng.uniform(1.0, args.poll_interval / 2))  # land at every phase of its loop
        wait_for(lambda: set(poller_victims) <= set(deletes_of_pods(audit.by_agent(KUBECTL_AGENT, t_pfail))),
                 120, "the poller's deletes", every=0.5)
        time.sleep(AUDIT_LAG)
        p_deletes = deletes_of_pods(audit.by_agent(KUBECTL_AGENT, t_pfail))
        p_visible = visible_times(audit, p_injected)
        p_lat = [p_deletes[v] - p_visible.get(v, p_injected[v]) - grace for v in poller_victims]
        p_lat_ltt = [p_deletes[v] - transitions.times.get(v, math.floor(p_visible.get(v, p_injected[v]))) - grace
                     for v in poller_victims]
        polls = [json.loads(line) for line in (root / "poller.log").read_text().splitlines() if line.startswith("{")]
        result["poller_failures"] = {
            "injected": len(poller_victims), "restarted": sum(1 for v in poller_victims if v in p_deletes),
            "restart_minus_failure_minus_grace_s": summary(p_lat),
            "restart_minus_ready_transition_minus_grace_s": summary(p_lat_ltt),
            "list_s": summary([p["list_s"] for p in polls]),
            "list_bytes_json": int(statistics.median([p["bytes"] for p in polls])) if polls else None}
        log(f"poller failures: {json.dumps(result['poller_failures'])}")
        stop_process(poller)
        poller = None

        # -- ratios -----------------------------------------------------------------------------------------
        w, p = result["watcher_rest"], result["poller_rest"]

        def ratio(a: float, b: float) -> float | None:
            return round(a / b, 1) if b > 0 else None

        ratios: dict[str, Any] = {
            "requests_per_min_at_rest_excluding_lease": ratio(p["requests_per_min_total"],
                                                               w["requests_per_min_excluding_lease"]),
            "requests_per_min_at_rest_including_lease": ratio(p["requests_per_min_total"], w["requests_per_min_total"]),
            "bytes_per_min_received_at_rest_including_lease": ratio(p["bytes_per_min_received"],
                                                                    w["bytes_per_min_received"]),
            "cpu_at_rest": ratio(p["cpu_s"] / p["seconds"], w["cpu_s"] / w["seconds"]),
        }
        for measure in ("restart_minus_ready_transition_minus_grace_s", "restart_minus_failure_minus_grace_s"):
            wl, pl = result["failures"][measure], result["poller_failures"][measure]
            for q in ("p50", "p99"):
                ratios[f"{measure}_{q}"] = ratio(pl[q], wl[q])
        ratios["note"] = ("latency ratios: poller / watcher of the same measure (None where the watcher's is <= 0: "
                          "from the status write it can be, its grace counting from the whole-second transition)")
        result["ratios_poller_over_watcher"] = ratios
        r = result["failures"]
        result["goals"] = {
            "p99_restart_under_5s": r["restart_minus_failure_minus_grace_s"]["p99"] < 5,
            "p99_notification_under_5s": r["notification_minus_failure_minus_grace_s"]["p99"] < 5,
            "peak_rss_under_150_mb": result["watcher_peak_rss_mib"] * 1.048576 < 150,  # MB = 10^6 bytes
            "peak_rss_under_150_mib": result["watcher_peak_rss_mib"] < 150,
            "no_requests_at_rest_beyond_watch_renewals": all(
                k.startswith("watch ") for k in w["requests"] if "leases" not in k),
        }
    finally:
        stop_process(watcher)
        stop_process(poller)
        transitions.stop()
        hook.stop()
        am.stop()
        watcher_proxy.close()
        poller_proxy.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--computes", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--per-batch", type=int, default=10)
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between batches")
    parser.add_argument("--grace", type=float, default=1.0, help="crash-loop grace seconds in the policy")
    parser.add_argument("--rest", type=float, default=300.0,
                        help="seconds of rest measured for the watcher (its watches re-open every 300 s)")
    parser.add_argument("--poll-interval", type=float, default=10.0)
    parser.add_argument("--poller-rest", type=float, default=60.0)
    parser.add_argument("--poller-failures", type=int, default=10)
    parser.add_argument("--workdir", type=Path, help="keep the bed's and processes' logs here (default: a temp dir)")
    # the baseline's own process
    parser.add_argument("--poller", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help=argparse.SUPPRESS)
    parser.add_argument("--interval", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.poller:
        return poller_main(args)
    started = time.monotonic()
    result: dict[str, Any] = {"benchmark": "healthwatcher", "control_plane_nodes": 1, "compute_nodes": args.computes,
                              "note": "shared 2-core machine, other test beds may run meanwhile: absolute "
                                      "numbers are noisy, ratios are measured side by side in one run"}
    with tempfile.TemporaryDirectory(prefix="healthwatcher-bench-") as tmp:
        root = args.workdir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        tb = bed.up(root / "testbed", control_plane=1, compute=args.computes, pod_ready_delay_ms=100, log=log)
        result["bed_up_s"] = round(time.monotonic() - t0, 1)
        try:
            run(tb, root, args, result)
        finally:
            bed.down(tb.directory)
    result["bench_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
