"""A real Git server for the test bed: ``git daemon`` serving bare repositories over git://.

    git = GitServer(directory)
    git.start()
    url = git.create_repo("config", from_dir=Path("config-repo-template"))  # git://127.0.0.1:<port>/config.git
    git.path("config")    # <directory>/git/config.git, for the path transport
    git.stop()

Pushes are allowed (``--enable=receive-pack``). Every git command here runs with :func:`git_env`, a
fixed identity and no user or system config, so it behaves the same on a fresh machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from testbed import process, state
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "git-daemon"
INSTALL_HINT = "apt-get install -y git"
AUTHOR_NAME = "openstack-gitops testbed"
AUTHOR_EMAIL = "testbed@openstack-gitops.invalid"
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for git commands: fixed author/committer, no global/system config, no prompts."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": AUTHOR_NAME, "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME, "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
        **(extra or {}),
    }


class GitServer(Service):
    """``git daemon`` on 127.0.0.1:<free port> exporting every bare repository under ``<directory>/git``."""

    name = NAME

    def __init__(self, directory: Path, binary: str = "git", timeout: float = 30.0) -> None:
        super().__init__(directory)
        self.binary = binary
        self.timeout = timeout
        self.port = 0
        self.startup_seconds = 0.0

    @property
    def root(self) -> Path:
        return self.directory / "git"

    @property
    def base_url(self) -> str:
        return f"git://127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / f"{NAME}.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{NAME}.pid"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{self.path(name).name}"

    def path(self, name: str) -> Path:
        """The bare repository's directory (``<directory>/git/<name>.git``)."""
        bare = name if name.endswith(".git") else f"{name}.git"
        if not _REPO_NAME.match(bare):
            raise ValueError(f"invalid repository name {name!r}")
        return self.root / bare

    def start(self) -> None:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TestbedError(NAME, f"{self.binary} not found; install it with: {INSTALL_HINT}")
        self.binary = exe
        started = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = process.free_port()
        argv = [exe, "daemon", "--reuseaddr", f"--base-path={self.root}", "--export-all",
                "--enable=receive-pack", "--informative-errors", "--listen=127.0.0.1", f"--port={self.port}",
                f"--pid-file={self.pid_file}"]
        self._proc = process.start(NAME, argv, self.log_file, env=git_env(), cwd=self.directory)
        try:
            state.record(self.directory, self._proc, git={"base_url": self.base_url, "root": str(self.root)})
            process.wait_ready(self._proc, lambda: process.port_in_use(self.port), self.timeout, "listening")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def create_repo(self, name: str, from_dir: Path | None = None, branch: str = "main",
                    message: str = "Initial commit") -> str:
        """Create a bare repository (HEAD -> ``branch``), seeded with one commit of ``from_dir``'s files."""
        bare = self.path(name)
        if bare.exists():
            raise TestbedError(NAME, f"repository {bare} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        self._git(["init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare)])
        if from_dir is not None:
            with tempfile.TemporaryDirectory() as tmp:
                env = {"GIT_DIR": str(bare), "GIT_WORK_TREE": str(from_dir.resolve()),
                       "GIT_INDEX_FILE": str(Path(tmp) / "index")}
                self._git(["add", "--all", "."], env, cwd=from_dir)
                tree = self._git(["write-tree"], env)
                commit = self._git(["commit-tree", tree, "-m", message], env)
                self._git(["update-ref", f"refs/heads/{branch}", commit], env)
        return self.url(name)



    def _git(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
        exe = shutil.which(self.binary)
        if exe is None:
            raise TestbedError(NAME, f"{self.binary} not found; install it with: {INSTALL_HINT}")
        done = subprocess.run([exe, *args], env=git_env(env), cwd=cwd, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise TestbedError(NAME, f"git {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout.strip()
