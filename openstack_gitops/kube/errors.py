"""The one error the Kubernetes edge raises: what failed, and whether trying again can help.

Pure (no client imports), so code above the edge (the watch loop, the engine, the autoscaler)
can tell a restarting apiserver from a refusal without ever naming a library exception class.
``openstack_gitops.kube.client`` maps every exception of the Kubernetes client, urllib3 and the
socket layer into this.
"""

from __future__ import annotations

# Statuses worth the same request again later: no answer at all (0), a timeout, throttling, the
# server or its storage failing or (re)starting. Everything else is the server's final answer.
TRANSIENT_STATUSES = frozenset({0, 408, 429, 500, 502, 503, 504})

# reasons of ApiError(status 0): the request got no HTTP answer
UNREACHABLE = "ServerUnreachable"
TIMEOUT = "Timeout"
BAD_RESPONSE = "BadResponse"
NO_CONFIG = "NoConfiguration"
KIND_NOT_SERVED = "KindNotServed"  # status 404: discovery does not know the kind (CRD missing)


class ApiError(Exception):
    """A request about one object failed; says which object and what the server answered.

    A plain exception, not a frozen dataclass: Python sets ``__traceback__`` on whatever it raises,
    and a frozen instance turned every apiserver failure into a ``FrozenInstanceError``.
    ``status`` is the HTTP status, or 0 when there was no answer (unreachable, timed out, garbage).
    """

    def __init__(self, key: str, verb: str, status: int, reason: str, message: str) -> None:
        super().__init__(key, verb, status, reason, message)
        self.key, self.verb, self.status, self.reason, self.message = key, verb, status, reason, message

    def __str__(self) -> str:
        return f"{self.key}: {self.verb} failed: {self.status} {self.reason}: {self.message}"

    @property
    def transient(self) -> bool:
        """True when the same request may succeed later (back off and retry); False: terminal."""
        return self.status in TRANSIENT_STATUSES and self.reason != NO_CONFIG

    @property
    def terminal(self) -> bool:
        return not self.transient

    @property
    def retriable(self) -> bool:
        """The older name of :attr:`transient`."""
        return self.transient

    @property
    def unreachable(self) -> bool:
        """No HTTP answer at all (refused, reset, timed out): the apiserver is down or restarting."""
        return self.status == 0

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def kind_not_served(self) -> bool:
        return self.status == 404 and self.reason == KIND_NOT_SERVED

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        """410: a resourceVersion (or a list's continue token) the server has compacted away."""
        return self.status == 410

    @property
    def forbidden(self) -> bool:
        return self.status in (401, 403)

    @property
    def immutable(self) -> bool:
        return self.status == 422 and "immutable" in self.message
