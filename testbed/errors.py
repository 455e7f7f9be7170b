"""The one error type of the test bed: which component failed, and where to look."""

from __future__ import annotations


class TestbedError(RuntimeError):
    """A test-bed failure naming the component and, when there is one, its log file."""

    __test__ = False  # not a pytest test class

    def __init__(self, component: str, message: str, log_file: str | None = None) -> None:
        self.component = component
        self.log_file = log_file
        text = f"{component}: {message}"
        if log_file:
            text += f" (log: {log_file})"
        super().__init__(text)
