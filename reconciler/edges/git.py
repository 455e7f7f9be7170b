"""The Git edge: follow one branch of the config repo and pin a work tree to the exact commit fetched.

Everything downstream reads files from `Checkout.path` and names what it applied by `Checkout.commit`,
so a branch that moves mid-reconcile can never mix two commits. Fetches are shallow (we need the tree
at the tip, never the history) and forced, so a force-pushed branch is simply followed.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import git

Reason = Literal["Unreachable", "AuthFailed", "BranchMissing", "Timeout", "Invalid"]

# First match wins; checked against lowercased stderr (git runs with LC_ALL=C under GitPython).
# Patterns stay specific: stderr also holds paths and URLs, which may contain words like "timeout".
_CLASSIFY: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    ("Timeout", ("timeout: the command",)),  # GitPython's text after kill_after_timeout fired
    ("BranchMissing", ("couldn't find remote ref", "no such ref", "no such branch")),
    ("AuthFailed", ("authentication failed", "could not read username", "could not read password",
                    "returned error: 401", "returned error: 403", "permission denied (publickey",
                    "permission denied, please try again", "host key verification failed")),
    ("Timeout", ("timed out",)),
    ("Unreachable", ("connection refused", "could not resolve", "unable to connect", "failed to connect",
                     "couldn't connect", "does not appear to be a git repository", "no such repository", "not found",
                     "repository not exported", "no route to host", "network is unreachable",
                     "could not read from remote repository")),
)
_BOILERPLATE = ("please make sure you have the correct access rights", "and the repository exists.")
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"]+@")
_BAD_BRANCH = re.compile(r"^[-/.]|\.\.|@\{|//|[\x00-\x20\x7f~^:?*\[\\]|[/.]$|\.lock$")


def redact(text: str) -> str:
    """Replace the user-info of every URL in `text` (`https://user:token@host` -> `https://***@host`)."""
    return _USERINFO.sub(r"\1***@", text)


def classify(stderr: str) -> Reason:
    """Map git's stderr to a reason code; anything unrecognised is Invalid (the operator must look)."""
    text = stderr.lower()
    for reason, needles in _CLASSIFY:
        if any(needle in text for needle in needles):
            return reason
    return "Invalid"


@dataclass(frozen=True)
class Checkout:
    """A work tree at exactly one commit of the followed branch."""

    commit: str
    path: Path
    branch: str
    message: str


class GitFetchError(Exception):
    """The branch could not be fetched; `reason` is the condition reason the reconciler reports."""

    def __init__(self, reason: Reason, url: str, branch: str, detail: str) -> None:
        self.reason: Reason = reason
        super().__init__(redact(f"{reason}: fetching branch {branch!r} of {url}: {detail}"))


class GitSource:
    """One local repository in `workdir` that follows `branch` of `url`; fetch() is serialised."""

    def __init__(self, url: str, branch: str, workdir: Path, timeout: float = 60.0) -> None:
        self.url = _absolute(url)
        self.branch = branch
        self.workdir = workdir.resolve()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._repo: git.Repo | None = None
        self._last: str | None = None
        self._origin: str | None = None  # the URL origin was last set to

    @property
    def last_commit(self) -> str | None:
        """Commit of the last successful fetch (None before the first), so callers can tell a change."""
        return self._last

    def fetch(self) -> Checkout:
        """Shallow-fetch the branch tip and check it out detached; raise GitFetchError with a reason."""
        with self._lock:
            if _BAD_BRANCH.search(self.branch) or not self.branch or not self.url or self.url.startswith("-"):
                raise GitFetchError("Invalid", self.url, self.branch, "bad URL or branch name")
            repo = self._open()
            self._clear_stale_locks()
            tracking = f"refs/remotes/origin/{self.branch}"
            self._run(repo, "fetch", "--quiet", "--no-tags", "--no-recurse-submodules", "--depth", "1",
                      "origin", f"+refs/heads/{self.branch}:{tracking}")
            commit, _, body = self._run(repo, "log", "-1", "--format=%H%n%B", f"{tracking}^{{commit}}").partition("\n")
            commit, body = commit.strip(), body.strip()
            if commit != self._last:  # the work tree is ours: at the commit we last checked out, it is clean
                self._run(repo, "checkout", "--quiet", "--force", "--detach", commit)
                self._run(repo, "clean", "-ffdxq")
            self._last = commit
            return Checkout(commit, self.workdir, self.branch, body.splitlines()[0] if body else "")

    def _open(self) -> git.Repo:
        """Init the local repository once and point `origin` at the current URL."""
        if self._repo is None:
            try:
                self.workdir.mkdir(parents=True, exist_ok=True)
                if (self.workdir / ".git").is_dir():
                    self._repo = git.Repo(self.workdir)
                else:
                    self._repo = git.Repo.init(self.workdir)
            except (git.GitError, OSError) as exc:
                raise GitFetchError("Invalid", self.url, self.branch,
                                    f"cannot open {self.workdir}: {type(exc).__name__}") from None
        if self._origin != self.url:
            configured = self._run(self._repo, "config", "--get", "remote.origin.url", check=False).strip()
            if configured != self.url:
                verb = "set-url" if configured else "add"
                self._run(self._repo, "remote", verb, "origin", self.url)
            self._origin = self.url
        return self._repo

    def _clear_stale_locks(self) -> None:
        """Remove lock files a killed git left behind; under our lock no other git works here."""
        gitdir = self.workdir / ".git"
        for lock in [*gitdir.glob("*.lock"), *(gitdir / "refs").rglob("*.lock")]:
            lock.unlink(missing_ok=True)

    def _run(self, repo: git.Repo, *args: str, check: bool = True) -> str:
        """Run git non-interactively with the timeout; failures become GitFetchError (never chained,
        because GitPython's own error text may carry the URL's credentials)."""
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/true",
            "SSH_ASKPASS": "/bin/true",
            "GCM_INTERACTIVE": "never",
            "GIT_SSH_COMMAND": os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes"),
        }
        status, out, err = repo.git.execute(["git", *args], with_extended_output=True, with_exceptions=False,
                                            kill_after_timeout=self.timeout, env=env)
        if status != 0 and check:
            lines = [line.strip() for line in err.splitlines() if line.strip()]
            detail = "; ".join(line for line in lines if line.lower() not in _BOILERPLATE)[:500]
            raise GitFetchError(classify(err), self.url, self.branch, detail or f"git {args[0]} exited {status}")
        return out


def _absolute(url: str) -> str:
    """Make a local path absolute (git runs inside the work dir); URLs and scp-style `host:path` stay."""
    if "://" in url or ":" in url.split("/", 1)[0] or not url or url.startswith("-"):
        return url
    return str(Path(url).expanduser().resolve())
