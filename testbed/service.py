"""What every test-bed service process shares: one supervised process, stopped by pid, usable in ``with``."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from testbed import process, state


class Service:
    """Base of the Prometheus, HAProxy and git daemon wrappers; subclasses implement ``start``."""

    name = "service"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._proc: process.Managed | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the process (idempotent) and mark it stopped in the test bed's state."""
        if self._proc is None:
            return
        process.stop(self._proc.pid, self._proc.exe)
        state.forget(self.directory, self.name)
        self._proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
