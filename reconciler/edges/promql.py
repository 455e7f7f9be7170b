"""Prometheus' own PromQL parser, through ``promtool`` (Debian's ``prometheus`` package ships it).

``promtool`` has no "parse this expression" command, but ``promtool check rules`` parses every
rule's ``expr`` with the server's parser and names the rule that failed, offline. Each query becomes
one recording rule ``q<index>`` of a scratch rules file; the answer maps each query that does not
parse to Prometheus' message (``1:16: parse error: unclosed left parenthesis``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

_FAILED = re.compile(r'"q(\d+)": could not parse expression: (.*)$')


def find_promtool(explicit: str | None = None) -> str | None:
    """``--promtool``, ``$OPENSTACK_GITOPS_PROMTOOL`` or ``promtool`` on PATH; None when there is none."""
    for candidate in (explicit, os.environ.get("OPENSTACK_GITOPS_PROMTOOL"), "promtool"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def parse_errors(queries: Sequence[str], promtool: str, timeout: float = 30.0) -> Mapping[str, str] | None:
    """query -> Prometheus' parse error, for each query that does not parse (empty: all parse);
    None when promtool could not be run at all (the check is then skipped, as without promtool)."""
    unique = list(dict.fromkeys(queries))
    if not unique:
        return {}
    rules = [{"record": f"q{i}", "expr": q} for i, q in enumerate(unique)]
    with tempfile.TemporaryDirectory(prefix="openstack-gitops-promql-") as scratch:
        path = Path(scratch) / "queries.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "autoscaling", "rules": rules}]}))
        try:
            done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    errors: dict[str, str] = {}
    for line in (done.stdout + done.stderr).splitlines():
        found = _FAILED.search(line)
        if found and int(found.group(1)) < len(unique):
            errors[unique[int(found.group(1))]] = found.group(2).strip()
    if done.returncode != 0 and not errors:  # failed for a reason of its own: say so for every query
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["promtool failed"]
        errors = dict.fromkeys(unique, f"promtool could not check it: {reason[0]}")
    return errors
