"""Run every benchmark in this folder; each prints its own JSON object as its last stdout line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    code = 0
    for script in sorted(HERE.glob("*_bench.py")):
        print(f"== {script.name}", file=sys.stderr, flush=True)
        code |= subprocess.run([sys.executable, str(script)], check=False).returncode
    return code


if __name__ == "__main__":
    sys.exit(main())
