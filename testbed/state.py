"""What a test bed started, persisted in ``<dir>/state.json`` so any process can stop it by pid."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from testbed import process

STATE_FILE = "state.json"


@dataclass
class ProcessRecord:
    name: str
    pid: int
    exe: str
    log: str


@dataclass
class State:
    """The test bed's processes (start order) and facts other tools read (ports, paths)."""

    processes: list[ProcessRecord] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[State]:
    """Read-modify-write the state file under an exclusive lock (fixtures start services in threads)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".state.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load(directory)
        yield state
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2, sort_keys=True))
        tmp.replace(directory / STATE_FILE)


def load(directory: Path) -> State:
    path = directory / STATE_FILE
    if not path.exists():
        return State()
    raw = json.loads(path.read_text())
    return State(processes=[ProcessRecord(**p) for p in raw.get("processes", [])], facts=raw.get("facts", {}))


def record(directory: Path, proc: process.Managed, **facts: Any) -> None:
    """Remember a started process and some facts.

    A restarted process keeps its place in the start order, so ``stop_all`` still stops clients
    before the servers they depend on (an apiserver outliving etcd hangs in shutdown).
    """
    new = ProcessRecord(proc.name, proc.pid, proc.exe, str(proc.log))
    with locked(directory) as state:
        names = [p.name for p in state.processes]
        if proc.name in names:
            state.processes[names.index(proc.name)] = new
        else:
            state.processes.append(new)
        state.facts.update(facts)


def forget(directory: Path, name: str) -> None:
    """Mark a process as stopped, keeping its place in the start order for a restart."""
    with locked(directory) as state:
        for rec in state.processes:
            if rec.name == name:
                rec.pid = 0


def stop_all(directory: Path) -> list[str]:
    """Stop every recorded process, newest first; returns the names stopped."""
    with locked(directory) as state:
        stopped = []
        for rec in reversed(state.processes):
            if rec.pid:
                process.stop(rec.pid, rec.exe)
                stopped.append(rec.name)
        state.processes = []
        return stopped
