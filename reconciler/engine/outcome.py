"""What one reconcile came to, in one vocabulary: phases, reasons and retry kinds.

Status conditions, Events, metrics labels and log fields all use these words; ``loop`` reads
``retry`` alone to decide when the next reconcile runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from openstack_gitops.health import Health
from reconciler.engine.changeset import ChangeSet
from reconciler.engine.identity import CloudRef


class Phase(StrEnum):
    FETCH = "fetch"
    LOAD = "load"
    VALIDATE = "validate"
    CREDENTIALS = "credentials"
    RENDER = "render"
    PLAN = "plan"
    DRY_RUN = "dry-run"
    APPLY = "apply"
    UPGRADE = "upgrade"
    HOOKS = "hooks"
    HEALTH = "health"
    RECORD = "record"


class Reason(StrEnum):
    """Why a reconcile ended as it did (CamelCase, as Kubernetes condition reasons are)."""

    APPLIED = "Applied"
    GIT_FETCH_FAILED = "GitFetchFailed"
    SPEC_MISSING = "SpecMissing"
    SPEC_INVALID = "SpecInvalid"
    CLOUD_MOVE_REFUSED = "CloudMoveRefused"
    CREDENTIALS_MISSING = "CredentialsMissing"
    RENDER_FAILED = "RenderFailed"
    RENDER_INVALID = "RenderInvalid"
    POLICY_REFUSED = "PolicyRefused"
    CLUSTER_UNREACHABLE = "ClusterUnreachable"
    PRUNE_REFUSED = "PruneRefused"
    DRY_RUN_FAILED = "DryRunFailed"
    UPGRADE_STALLED = "UpgradeStalled"
    HOOK_FAILED = "HookFailed"  # a Helm hook (db-sync, ks-user, ...) failed or timed out
    APPLY_FAILED = "ApplyFailed"
    LEADERSHIP_LOST = "LeadershipLost"  # this process lost its leader Lease mid-reconcile and stopped writing
    INTERNAL_ERROR = "InternalError"


class Retry(StrEnum):
    """When to reconcile again after a failure."""

    NONE = ""  # it did not fail
    BACKOFF = "backoff"  # transient: soon, backing off exponentially
    WAIT_FOR_CHANGE = "wait-for-change"  # only a new commit fixes it: at the normal interval (or on a push)


class UpgradeStalled(Exception):
    """A service did not become healthy during an upgrade; the services after it were not touched."""


class PhaseFailed(Exception):
    """A phase failed with one reason.

    ``report_to`` names the cloud whose resource reports the failure when it is not the spec's
    own (a refused move is reported on the cloud that stays); ``changes`` is what the phase had
    already done before it failed.
    """

    def __init__(self, phase: Phase, reason: Reason, message: str, retry: Retry = Retry.BACKOFF,
                 report_to: CloudRef | None = None, changes: ChangeSet | None = None) -> None:
        self.phase, self.reason, self.retry = phase, reason, retry
        self.report_to = report_to
        self.changes = changes or ChangeSet()
        super().__init__(message)


@dataclass
class Outcome:
    commit: str
    ok: bool
    reason: Reason
    message: str
    changes: ChangeSet = field(default_factory=ChangeSet)
    health: dict[str, Health] = field(default_factory=dict)
    duration: float = 0.0
    retry: Retry = Retry.NONE
    phase_seconds: dict[str, float] = field(default_factory=dict)
    apply_seconds: dict[str, float] = field(default_factory=dict)  # inside apply: dry-run, objects, hooks
    applied: bool = False  # the commit was applied in full (also when Git failed and the last commit was enforced)

    @property
    def converged(self) -> bool:
        return self.ok and all(h.healthy for h in self.health.values())
