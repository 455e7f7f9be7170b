"""Build the test bed's Go binaries from the pinned wrapper modules into a versioned cache.

The cache lives outside the repository (``$OPENSTACK_GITOPS_CACHE`` or
``~/.cache/openstack-gitops``) and each tool's directory is keyed by a hash of its wrapper
go.mod/go.sum and the Go version, so a pin bump rebuilds and an unchanged pin costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import TestbedError

GO_DIR = Path(__file__).resolve().parent / "go"

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v3.21.4"


def _k8s_ldflags() -> str:
    major, minor = KUBERNETES_VERSION.lstrip("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={KUBERNETES_VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
            f"-X {pkg}.buildDate=1970-01-01T00:00:00Z",
        ]
    return " ".join(["-s", "-w", *flags])


@dataclass(frozen=True)
class Tool:
    """One wrapper module and the binaries built from it."""

    name: str
    version: str
    packages: dict[str, str]  # binary name -> Go package
    ldflags: str = "-s -w"
    # files copied from the pinned module's source next to the binaries (e.g. kwok's Stage docs)
    module_files: tuple[str, ...] = ()

    @property
    def module_dir(self) -> Path:
        return GO_DIR / self.name


TOOLS: tuple[Tool, ...] = (
    Tool("etcd", ETCD_VERSION, {"etcd": "go.etcd.io/etcd/server/v3"}),
    Tool(
        "kubernetes",
        KUBERNETES_VERSION,
        {
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
            "kubectl": "k8s.io/kubernetes/cmd/kubectl",
        },
        _k8s_ldflags(),
    ),
    Tool(
        "kwok",
        KWOK_VERSION,
        {"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={KWOK_VERSION.lstrip('v')}",
        module_files=(
            "kustomize/stage/node/fast/node-initialize.yaml",
            "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
            "kustomize/stage/pod/general/pod-create.yaml",
            "kustomize/stage/pod/general/pod-init-container-running.yaml",
            "kustomize/stage/pod/general/pod-init-container-completed.yaml",
            "kustomize/stage/pod/general/pod-ready.yaml",
            "kustomize/stage/pod/general/pod-complete.yaml",
            "kustomize/stage/pod/general/pod-delete.yaml",
            "kustomize/stage/pod/chaos/pod-container-running-failed.yaml",
            "kustomize/stage/volume/fast/pvc-provision.yaml",
            "kustomize/stage/volume/fast/pv-bind.yaml",
            "kustomize/stage/volume/fast/pv-delete.yaml",
            "kustomize/stage/volume/fast/pvc-delete.yaml",
        ),
    ),
    Tool(
        "helm",
        HELM_VERSION,
        {"helm": "helm.sh/helm/v3/cmd/helm"},
        f"-s -w -X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
    ),
)


def cache_root() -> Path:
    env = os.environ.get("OPENSTACK_GITOPS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "openstack-gitops"


def _go() -> str:
    """The Go toolchain: $OPENSTACK_GITOPS_GO, else `go` on PATH, else Go's default install path."""
    explicit = os.environ.get("OPENSTACK_GITOPS_GO")
    candidates = [explicit] if explicit else [shutil.which("go"), "/usr/local/go/bin/go"]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise TestbedError(
        "build", f"the Go toolchain was not found ({explicit or 'go on PATH, /usr/local/go/bin/go'}); "
        "install Go >= 1.26 (https://go.dev/dl) or put it on PATH, then run `python -m testbed build` again")


def _go_version(go: str) -> str:
    return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def tool_dir(tool: Tool, go_version: str) -> Path:
    digest = hashlib.sha256(go_version.encode())
    for name in ("go.mod", "go.sum"):
        digest.update((tool.module_dir / name).read_bytes())
    digest.update(tool.ldflags.encode())
    return cache_root() / "bin" / f"{tool.name}-{tool.version}-{digest.hexdigest()[:12]}"


def _built(tool: Tool, target: Path) -> bool:
    files = [*tool.packages, *(Path(f).name for f in tool.module_files)]
    return all((target / f).exists() for f in files)


def _copy_module_files(go: str, tool: Tool, target: Path) -> None:
    if not tool.module_files:
        return
    module = next(iter(tool.packages.values())).split("/cmd/")[0]
    proc = subprocess.run([go, "list", "-m", "-f", "{{.Dir}}", module], cwd=tool.module_dir,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise TestbedError("build", f"cannot locate module {module}: {proc.stderr.strip()}")
    source = Path(proc.stdout.strip())
    for rel in tool.module_files:
        shutil.copyfile(source / rel, target / Path(rel).name)


def bin_dir_for(tool_name: str) -> Path:
    """Where an already-built tool's binaries are; raises if it was never built."""
    go = _go()
    tool = next(t for t in TOOLS if t.name == tool_name)
    path = tool_dir(tool, _go_version(go))
    if not _built(tool, path):
        raise TestbedError(tool_name, f"binaries missing in {path}; run `python -m testbed build`")
    return path


def binary(name: str) -> Path:
    """Path of one built binary (kube-apiserver, etcd, kwok, helm, ...)."""
    tool = next(t for t in TOOLS if name in t.packages)
    return bin_dir_for(tool.name) / name


def build_all(log: Callable[[str], None] = print) -> dict[str, Path]:
    """Build every tool that is not cached yet; returns tool name -> binary directory."""
    go = _go()
    go_version = _go_version(go)
    out: dict[str, Path] = {}
    for tool in TOOLS:
        target = tool_dir(tool, go_version)
        out[tool.name] = target
        if _built(tool, target):
            log(f"build: {tool.name} {tool.version}: cached in {target}")
            continue
        if all((target / b).exists() for b in tool.packages):
            _copy_module_files(go, tool, target)
            continue
        log(f"build: {tool.name} {tool.version}: building {', '.join(tool.packages)} (cold builds take minutes)")
        started = time.monotonic()
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
        for binary_name, package in tool.packages.items():
            cmd = [go, "build", "-trimpath", f"-ldflags={tool.ldflags}", "-o", str(tmp / binary_name), package]
            proc = subprocess.run(cmd, cwd=tool.module_dir, env=env, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise TestbedError("build", f"go build of {package} failed:\n{proc.stderr[-4000:]}")
            log(f"build: {tool.name}: {binary_name} done after {time.monotonic() - started:.0f}s")
        _copy_module_files(go, tool, tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    return out


if __name__ == "__main__":
    try:
        build_all()
    except TestbedError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
