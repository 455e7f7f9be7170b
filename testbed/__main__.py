"""``python -m testbed build|up|down|status``: the local control plane from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from testbed import bed, build
from testbed.errors import TestbedError


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__)
    parser.add_argument("--dir", type=Path, default=None,
                        help=f"test bed directory (default {bed.DEFAULT_ROOT / 'default'}); one per test bed")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the pinned Go binaries into the cache (idempotent)")
    up = sub.add_parser("up", help="start a test bed; prints the kubeconfig path last")
    up.add_argument("--control-plane", type=int, default=1, help="control-plane nodes (default 1)")
    up.add_argument("--compute", type=int, default=2, help="compute nodes (default 2)")
    up.add_argument("--pod-ready-delay-ms", type=int, default=300, help="kwok delay before pods are Ready")
    sub.add_parser("down", help="stop every process the test bed started")
    demo_cmd = sub.add_parser("demo", help="test bed + template config repo + reconciler until converged")
    demo_cmd.add_argument("--control-plane", type=int, default=3)
    demo_cmd.add_argument("--compute", type=int, default=5)
    demo_cmd.add_argument("--timeout", type=float, default=600, help="seconds to wait for convergence")
    sub.add_parser("status", help="exit 0 while the test bed is up")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            build.build_all(log=_log)
            return 0
        if args.command == "up":
            try:
                tb = bed.up(args.dir, args.control_plane, args.compute, args.pod_ready_delay_ms, log=_log)
            except KeyboardInterrupt:
                bed.down(args.dir)
                return 130
            print(tb.kubeconfig)
            return 0
        if args.command == "demo":
            from testbed import demo  # noqa: PLC0415 -- only the demo needs the product's CLI

            return demo.run(args.dir, args.control_plane, args.compute, args.timeout)
        if args.command == "down":
            stopped = bed.down(args.dir)
            _log(f"testbed: stopped {', '.join(stopped) if stopped else 'nothing (not running)'}")
            return 0
        info = bed.status(args.dir)
        procs = info.get("processes", {})
        for name, proc in procs.items():
            print(f"{name}: {'running' if proc['running'] else 'STOPPED'} pid={proc['pid']} log={proc['log']}")
        if "kubeconfig" in info:
            print(f"kubeconfig: {info['kubeconfig']}")
            print(f"audit-log: {info['audit_log']}")
        up_now = bool(procs) and all(p["running"] for p in procs.values())
        print("status: up" if up_now else "status: down")
        return 0 if up_now else 1
    except TestbedError as exc:
        _log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
