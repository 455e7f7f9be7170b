"""kwok Stage documents: kwok's own lifecycle stages with our delays, plus crash-loop and ready-again stages.

kwok's stages come from the pinned kwok module (copied next to the binary at build time), so
they match the kwok we run; only their delays are rewritten, to make pods start quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

FAIL_LABEL = "testbed.openstack-gitops.io/fail"
CRASHLOOP_IMAGE_SUFFIX = "-crashloop"  # pods running an image tagged like this crash-loop (rollout tests)
KWOK_FAILED_LABEL = "pod-container-running-failed.stage.kwok.x-k8s.io"

# stage file -> (delay ms, jitter ms); None keeps kwok's own delay.
_DELAYS: dict[str, tuple[int, int] | None] = {
    "node-initialize.yaml": None,
    "node-heartbeat-with-lease.yaml": None,
    "pod-create.yaml": (0, 0),
    "pod-init-container-running.yaml": (0, 0),
    "pod-init-container-completed.yaml": (0, 0),
    "pod-ready.yaml": (-1, -1),  # the configurable "pod becomes Ready" delay
    "pod-complete.yaml": (-1, -1),
    "pod-delete.yaml": (0, 0),
    "pod-container-running-failed.yaml": (200, 0),
    "pvc-provision.yaml": None,
    "pv-bind.yaml": None,
    "pv-delete.yaml": None,
    "pvc-delete.yaml": None,
}

# kwok provisions volumes of these StorageClasses (its own, and the class OpenStack-Helm charts use).
STORAGE_CLASSES = ("kwok-volume", "general")
PROVISIONER = "kwok.x-k8s.io/volume"

_CRASHLOOP_STAGE = f"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: testbed-pod-crashloop
spec:
  resourceRef: {{apiGroup: v1, kind: Pod}}
  selector:
    matchExpressions:
    - key: '.metadata.labels["{FAIL_LABEL}"]'
      operator: In
      values: [crashloop]
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ['True']
  weight: 10000
  delay: {{durationMilliseconds: 200}}
  next:
    statusTemplate: |
      {{{{ $now := Now }}}}
      conditions:
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        type: Ready
      - lastTransitionTime: {{{{ $now | Quote }}}}
        status: "False"
        reason: ContainersNotReady
        type: ContainersReady
      containerStatuses:
      {{{{ range $index, $item := .spec.containers }}}}
      - image: {{{{ $item.image | Quote }}}}
        name: {{{{ $item.name | Quote }}}}
        ready: false
        started: false
        restartCount: 5
        lastState:
          terminated: {{exitCode: 1, reason: Error, finishedAt: {{{{ $now | Quote }}}}}}
        state:
          waiting: {{reason: CrashLoopBackOff, message: "back-off restarting failed container"}}
      {{{{ end }}}}
      phase: Running
"""

# The controller-manager marks every pod of a NotReady node unready (Ready False, ContainersReady
# still True); a kubelet that comes back reports its running containers Ready again, kwok's stages
# never would (they make only Pending pods Ready). Crash-looping pods (ContainersReady False) stay.
_READY_AGAIN_STAGE = """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: testbed-pod-ready-again
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: In
      values: [Running]
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: In
      values: ['False']
    - key: '.status.conditions.[] | select( .type == "ContainersReady" ) | .status'
      operator: In
      values: ['True']
  delay: {durationMilliseconds: 200}
  next:
    statusTemplate: |
      conditions:
      - lastProbeTime: null
        lastTransitionTime: {{ Now | Quote }}
        message: ''
        reason: ''
        status: "True"
        type: Ready
"""


def render(stage_dir: Path, ready_delay_ms: int, jitter_ms: int) -> str:
    """All Stage documents as one multi-document YAML for ``kwok --config``."""
    docs: list[Any] = []
    for name, delay in _DELAYS.items():
        doc = yaml.safe_load((stage_dir / name).read_text())
        if delay is not None:
            ms, jitter = (ready_delay_ms, jitter_ms) if delay[0] < 0 else delay
            spec_delay = doc["spec"].setdefault("delay", {})
            spec_delay["durationMilliseconds"] = ms
            spec_delay["jitterDurationMilliseconds"] = jitter
            # kwok's pod-delete waits out the whole grace period (the deletionTimestamp); a real
            # container usually exits on SIGTERM at once, and mariadb's 600 s would stall every test
            if "deletionTimestamp" in str(spec_delay.get("jitterDurationFrom", "")):
                del spec_delay["jitterDurationFrom"]
        _widen_storage_classes(doc)
        docs.append(doc)
    crashloop = yaml.safe_load(_CRASHLOOP_STAGE)
    docs.append(crashloop)
    by_image = yaml.safe_load(_CRASHLOOP_STAGE)
    by_image["metadata"]["name"] = "testbed-pod-crashloop-by-image"
    by_image["spec"]["selector"]["matchExpressions"][0] = {"cel": {"expression": (
        f"self.spec.containers.exists(c, c.image.endsWith('{CRASHLOOP_IMAGE_SUFFIX}'))")}}
    docs.append(by_image)
    docs.append(yaml.safe_load(_READY_AGAIN_STAGE))
    return yaml.safe_dump_all(docs, sort_keys=False)


def _widen_storage_classes(doc: Any) -> None:
    """kwok's volume stages match only its own class; let them provision every class we create."""
    wanted = "[" + ", ".join(f"'{c}'" for c in STORAGE_CLASSES) + "]"
    for expr in (doc.get("spec", {}).get("selector") or {}).get("matchExpressions") or []:
        cel = expr.get("cel") or {}
        if "storageClassName == 'kwok-volume'" in cel.get("expression", ""):
            cel["expression"] = cel["expression"].replace("== 'kwok-volume'", f"in {wanted}")


def storage_classes() -> list[dict[str, Any]]:
    """StorageClass objects kwok provisions (the first is the cluster default)."""
    return [{"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
             "metadata": {"name": name, "annotations": {"storageclass.kubernetes.io/is-default-class":
                                                        "true" if i == 0 else "false"}},
             "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"}
            for i, name in enumerate(STORAGE_CLASSES)]
