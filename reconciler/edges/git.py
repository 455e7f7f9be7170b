"""The Git edge: follow one branch of the config repo and pin a work tree to the exact commit fetched.

Everything downstream reads files from `Checkout.path` and names what it applied by `Checkout.commit`,
so a branch that moves mid-reconcile can never mix two commits. Fetches are shallow (we need the tree
at the tip, never the history) and forced, so a force-pushed branch is simply followed.

Credentials in the URL (`https://user:token@host/repo.git`) stay in memory: origin holds the URL without
them, and each git run gets them through its own environment, read by an inline credential helper (see
`_credential_env`). So they reach no file (.git/config, FETCH_HEAD, a user's credential store) and no
process argv, which any local user can read in `ps`; the work dir's .git is kept private (0700) anyway.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

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
_CURL = ("http", "https", "ftp", "ftps")  # transports of git-remote-curl, which asks credential helpers
_USER_VAR, _PASSWORD_VAR = "OPENSTACK_GITOPS_GIT_USERNAME", "OPENSTACK_GITOPS_GIT_PASSWORD"
# Answers git's "get" from the two variables above and ignores "store"/"erase": nothing is kept anywhere.
# A shell function, because git runs `!`-helpers with sh; values are printed, never evaluated.
_HELPER = (f'!f() {{ if test "$1" = get; then printf "username=%s\\npassword=%s\\n" "${_USER_VAR}" "${_PASSWORD_VAR}"; '
           "fi; }; f")


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
        self.url = _absolute(url)  # as given (credentials included): only ever shown through redact()
        self._remote, self._credentials = split_credentials(self.url)
        self.branch = branch
        self.workdir = workdir.resolve()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._repo: git.Repo | None = None
        self._last: str | None = None
        self._origin: str | None = None  # the URL (without credentials) origin was last set to

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
        """Init the local repository once, keep its .git private, and point `origin` at the URL without
        credentials (which also removes credentials an older version wrote there)."""
        if self._repo is None:
            try:
                self.workdir.mkdir(parents=True, exist_ok=True)
                if (self.workdir / ".git").is_dir():
                    self._repo = git.Repo(self.workdir)
                else:
                    self._repo = git.Repo.init(self.workdir)
                (self.workdir / ".git").chmod(0o700)
            except (git.GitError, OSError) as exc:
                raise GitFetchError("Invalid", self.url, self.branch,
                                    f"cannot open {self.workdir}: {type(exc).__name__}") from None
        if self._origin != self._remote:
            configured = self._run(self._repo, "config", "--get", "remote.origin.url", check=False).strip()
            if configured != self._remote:
                verb = "set-url" if configured else "add"
                self._run(self._repo, "remote", verb, "origin", self._remote)
            self._origin = self._remote
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
            **_credential_env(self._credentials),
        }
        status, out, err = repo.git.execute(["git", *args], with_extended_output=True, with_exceptions=False,
                                            kill_after_timeout=self.timeout, env=env)
        if status != 0 and check:
            lines = [line.strip() for line in err.splitlines() if line.strip()]
            detail = "; ".join(line for line in lines if line.lower() not in _BOILERPLATE)[:500]
            raise GitFetchError(classify(err), self.url, self.branch, detail or f"git {args[0]} exited {status}")
        return out


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """`https://user:token@host/p` -> (`https://host/p`, (user, token)), percent-decoded as git does.

    For http(s) git asks a credential helper, so the whole user-info comes out. An ssh user
    (`ssh://git@host/p`) names the account, is no secret, and stays; a password there is dropped, since
    ssh never uses it (BatchMode) and it must not reach .git/config.
    """
    parts = urlsplit(url) if "://" in url else None
    if parts is None or "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if parts.scheme not in _CURL:
        return urlunsplit(parts._replace(netloc=f"{user}@{host}")) if password else url, None
    return urlunsplit(parts._replace(netloc=host)), (unquote(user), unquote(password))


def _credential_env(credentials: tuple[str, str] | None) -> dict[str, str]:
    """Environment for one git run with URL credentials: no credential helper from any config file (so
    none can store the token), then ours, which answers from two variables that only this git process
    and its children see (/proc/PID/environ is private to the user, argv is not).

    The helpers are configured through GIT_CONFIG_COUNT (git >= 2.31), not `-c`, to keep argv plain;
    entries the operator already passes that way are kept (ours come after them, so the reset wins).
    Without URL credentials the user's own helpers (e.g. a mounted credential store) keep working."""
    if credentials is None:
        return {}
    try:
        first = max(int(os.environ.get("GIT_CONFIG_COUNT", "0")), 0)
    except ValueError:
        first = 0
    return {"GIT_CONFIG_COUNT": str(first + 2),
            f"GIT_CONFIG_KEY_{first}": "credential.helper", f"GIT_CONFIG_VALUE_{first}": "",
            f"GIT_CONFIG_KEY_{first + 1}": "credential.helper", f"GIT_CONFIG_VALUE_{first + 1}": _HELPER,
            _USER_VAR: credentials[0], _PASSWORD_VAR: credentials[1]}


def _absolute(url: str) -> str:
    """Make a local path absolute (git runs inside the work dir); URLs and scp-style `host:path` stay."""
    if "://" in url or ":" in url.split("/", 1)[0] or not url or url.startswith("-"):
        return url
    return str(Path(url).expanduser().resolve())
