"""A process's loop (``run(stop)``) in a thread for the length of a ``with`` block, for tests on the test bed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar


class Loop(Protocol):
    def run(self, stop: threading.Event) -> None: ...


L = TypeVar("L", bound=Loop)


@contextmanager
def running(loop: L, name: str, join_seconds: float = 15.0) -> Iterator[L]:
    """``loop.run`` in a thread until the block ends (also when it fails), then stopped and joined."""
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        stop.set()
        thread.join(join_seconds)
