"""GitSource against real repositories: by path, over git daemon and over authenticated smart HTTP, plus the
ways a fetch can fail."""

from __future__ import annotations

import http.server
import os
import socket
import stat
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.edges.git import Checkout, GitFetchError, GitSource, classify, redact, split_credentials
from testbed.gitserver import GitServer, SmartHTTPServer

HERMETIC_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Committer",
    "GIT_COMMITTER_EMAIL": "committer@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture(autouse=True)
def hermetic_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git config, and an identity for commits, for every git these tests run."""
    for key, value in HERMETIC_ENV.items():
        monkeypatch.setenv(key, value)


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Daemon:
    base: Path
    port: int


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A real `git daemon` (the test bed's, stopped by process group) serving every repository under `base`."""
    server = GitServer(tmp_path_factory.mktemp("served"))
    server.start()
    try:
        yield Daemon(server.root, server.port)
    finally:
        server.stop()


@dataclass(frozen=True)
class Upstream:
    """A bare repository (the config repo) and a work clone that commits and pushes to it."""

    bare: Path
    work: Path
    url: str

    def commit(self, files: dict[str, str | None], message: str) -> str:
        for name, text in files.items():
            path = self.work / name
            if text is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *, force: bool = False) -> None:
        git(self.work, "push", "-q", *(["--force"] if force else []), "origin", "main")


@pytest.fixture(params=["path", "git-daemon"])
def upstream(request: pytest.FixtureRequest, daemon: Daemon, tmp_path: Path) -> Upstream:
    bare = daemon.base / f"config-{uuid.uuid4().hex[:8]}.git"
    git(daemon.base, "init", "-q", "--bare", "-b", "main", str(bare))
    git(bare, "config", "receive.denyDeleteCurrent", "ignore")
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git(work, "remote", "add", "origin", str(bare))
    url = str(bare) if request.param == "path" else f"git://127.0.0.1:{daemon.port}/{bare.name}"
    return Upstream(bare, work, url)


def tree(checkout: Checkout) -> dict[str, str]:
    """Every file of the work tree (outside .git) with its content."""
    return {str(p.relative_to(checkout.path)): p.read_text() for p in sorted(checkout.path.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(checkout.path).parts}


def test_first_fetch_returns_head_and_files(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({"old.yaml": "gone: true\n"}, "older commit")
    head = upstream.commit({"spec.yaml": "replicas: 1\n", "old.yaml": None, "sub/values.yaml": "a: b\n"},
                           "Scale compute\n\nLonger explanation.")
    upstream.push()
    source = GitSource(upstream.url, "main", tmp_path / "checkout")
    assert source.last_commit is None

    checkout = source.fetch()

    assert checkout == Checkout(head, (tmp_path / "checkout").resolve(), "main", "Scale compute")
    assert tree(checkout) == {"spec.yaml": "replicas: 1\n", "sub/values.yaml": "a: b\n"}
    assert source.last_commit == head
    assert git(checkout.path, "rev-parse", "HEAD") == head
    assert git(checkout.path, "rev-parse", "--is-shallow-repository") == "true"  # --depth 1, not the history


def test_new_commit_is_seen_and_local_changes_are_wiped(upstream: Upstream, tmp_path: Path) -> None:
    first = upstream.commit({"spec.yaml": "replicas: 1\n", "drop.yaml": "x\n"}, "first")
    upstream.push()
    source = GitSource(upstream.url, "main", tmp_path / "checkout")
    checkout = source.fetch()
    (checkout.path / "spec.yaml").write_text("edited by hand\n")
    (checkout.path / "stray.txt").write_text("untracked\n")

    second = upstream.commit({"spec.yaml": "replicas: 3\n", "drop.yaml": None}, "second")
    upstream.push()
    again = source.fetch()

    assert (first != second, again.commit, again.message) == (True, second, "second")
    assert tree(again) == {"spec.yaml": "replicas: 3\n"}
    assert source.last_commit == second


def test_force_push_is_followed(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({"spec.yaml": "v: 1\n"}, "base")
    rewritten = upstream.commit({"spec.yaml": "v: 2\n", "extra.yaml": "e\n"}, "to be rewritten")
    upstream.push()
    source = GitSource(upstream.url, "main", tmp_path / "checkout")
    assert source.fetch().commit == rewritten

    git(upstream.work, "reset", "-q", "--hard", "HEAD~1")
    replacement = upstream.commit({"spec.yaml": "v: 3\n"}, "replacement")
    upstream.push(force=True)
    checkout = source.fetch()

    assert checkout.commit == replacement
    assert tree(checkout) == {"spec.yaml": "v: 3\n"}
    assert source.last_commit == replacement


def test_deleted_branch_is_branch_missing_and_keeps_the_checkout(upstream: Upstream, tmp_path: Path) -> None:
    head = upstream.commit({"spec.yaml": "keep: me\n"}, "only")
    upstream.push()
    source = GitSource(upstream.url, "main", tmp_path / "checkout")
    before = source.fetch()
    files = tree(before)

    git(upstream.work, "push", "-q", "origin", "--delete", "main")
    with pytest.raises(GitFetchError) as caught:
        source.fetch()

    assert caught.value.reason == "BranchMissing", str(caught.value)
    assert tree(before) == files
    assert git(before.path, "rev-parse", "HEAD") == head
    assert source.last_commit == head


def test_stale_locks_from_a_killed_fetch_do_not_block_the_next(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit({"spec.yaml": "v: 1\n"}, "first")
    upstream.push()
    source = GitSource(upstream.url, "main", tmp_path / "checkout")
    gitdir = source.fetch().path / ".git"
    (gitdir / "shallow.lock").write_text("")
    (gitdir / "refs" / "remotes" / "origin" / "main.lock").write_text("")

    head = upstream.commit({"spec.yaml": "v: 2\n"}, "second")
    upstream.push()
    assert source.fetch().commit == head


def test_changed_url_repoints_origin(daemon: Daemon, tmp_path: Path) -> None:
    repos = []
    for name in ("a", "b"):
        work = tmp_path / name
        git(tmp_path, "init", "-q", "-b", "main", str(work))
        (work / "name.txt").write_text(name)
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", name)
        repos.append(work)
    assert GitSource(str(repos[0]), "main", tmp_path / "checkout").fetch().message == "a"
    checkout = GitSource(str(repos[1]), "main", tmp_path / "checkout").fetch()
    assert (checkout.message, (checkout.path / "name.txt").read_text()) == ("b", "b")


def closed_port() -> int:
    return free_port()  # bound and released: nothing listens there now


@pytest.mark.parametrize("make_url", [
    pytest.param(lambda d: f"git://127.0.0.1:{closed_port()}/config.git", id="git-closed-port"),
    pytest.param(lambda d: f"http://127.0.0.1:{closed_port()}/config.git", id="http-closed-port"),
    pytest.param(lambda d: f"git://127.0.0.1:{d.port}/no-such-repo.git", id="daemon-unknown-repo"),
    pytest.param(lambda d: str(d.base / "no-such-repo.git"), id="missing-path"),
])
def test_unreachable_fails_fast(make_url: Callable[[Daemon], str], daemon: Daemon, tmp_path: Path) -> None:
    url = make_url(daemon)
    started = time.monotonic()
    with pytest.raises(GitFetchError) as caught:
        GitSource(url, "main", tmp_path / "checkout", timeout=20).fetch()
    assert caught.value.reason == "Unreachable", str(caught.value)
    assert time.monotonic() - started < 5


@pytest.fixture
def unauthorized_http() -> Iterator[int]:
    """An HTTP server that answers every request with 401 Basic, like a private repository."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("userinfo", ["", "deploy:tok3n-SECRET@"], ids=["anonymous", "token-in-url"])
def test_rejected_credentials_are_auth_failed(unauthorized_http: int, userinfo: str, tmp_path: Path) -> None:
    url = f"http://{userinfo}127.0.0.1:{unauthorized_http}/config.git"
    with pytest.raises(GitFetchError) as caught:
        GitSource(url, "main", tmp_path / "checkout", timeout=20).fetch()
    assert caught.value.reason == "AuthFailed", str(caught.value)
    assert "tok3n-SECRET" not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize("port_kind", ["closed", "unauthorized"])
def test_credentials_never_appear_in_errors(port_kind: str, unauthorized_http: int, tmp_path: Path) -> None:
    port = closed_port() if port_kind == "closed" else unauthorized_http
    url = f"https://deploy:tok3n-SECRET@127.0.0.1:{port}/config.git"
    with pytest.raises(GitFetchError) as caught:
        GitSource(url, "main", tmp_path / "checkout", timeout=20).fetch()
    text = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert "tok3n-SECRET" not in text
    assert "deploy" not in text
    assert f"https://***@127.0.0.1:{port}/config.git" in str(caught.value)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers: the network hang a timeout must cut."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


def test_hanging_remote_times_out(silent_server: int, tmp_path: Path) -> None:
    source = GitSource(f"git://127.0.0.1:{silent_server}/config.git", "main", tmp_path / "checkout", timeout=1)
    started = time.monotonic()
    with pytest.raises(GitFetchError) as caught:
        source.fetch()
    elapsed = time.monotonic() - started
    assert caught.value.reason == "Timeout", str(caught.value)
    assert 0.9 < elapsed < 5
    assert source.last_commit is None


@pytest.mark.parametrize("branch", ["", "-upload-pack=touch x", "a..b", "feature/", "with space", "x.lock"])
def test_invalid_branch_is_refused_before_git_runs(branch: str, tmp_path: Path) -> None:
    with pytest.raises(GitFetchError) as caught:
        GitSource(str(tmp_path / "nowhere"), branch, tmp_path / "checkout").fetch()
    assert caught.value.reason == "Invalid"
    assert not (tmp_path / "checkout").exists()


@pytest.mark.parametrize(("text", "expected"), [
    ("fatal: unable to access 'https://***@h/': x", "fatal: unable to access 'https://***@h/': x"),
    ("see https://user:pa55@git.example.com/r.git and ssh://git@h/r", "see https://***@git.example.com/r.git and "
                                                                      "ssh://***@h/r"),
    ("no credentials in https://git.example.com/r.git", "no credentials in https://git.example.com/r.git"),
])
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(("url", "remote", "credentials"), [
    ("https://deploy:t%2Fk%40n@git.example.com/r.git", "https://git.example.com/r.git", ("deploy", "t/k@n")),
    ("HTTP://ghp_token@[::1]:8443/r.git", "http://[::1]:8443/r.git", ("ghp_token", "")),
    ("https://git.example.com/r.git", "https://git.example.com/r.git", None),
    ("ssh://git@git.example.com/r.git", "ssh://git@git.example.com/r.git", None),  # an account, not a secret
    ("ssh://git:unused@git.example.com:22/r.git", "ssh://git@git.example.com:22/r.git", None),
    ("git@git.example.com:r.git", "git@git.example.com:r.git", None),
    ("/srv/git/r.git", "/srv/git/r.git", None),
])
def test_split_credentials(url: str, remote: str, credentials: tuple[str, str] | None) -> None:
    assert split_credentials(url) == (remote, credentials)


@pytest.mark.parametrize(("stderr", "reason"), [
    ("fatal: couldn't find remote ref refs/heads/main", "BranchMissing"),
    ("fatal: could not read Username for 'https://h': terminal prompts disabled", "AuthFailed"),
    ("fatal: unable to access 'https://h/r/': The requested URL returned error: 403", "AuthFailed"),
    ("git@h: Permission denied (publickey).\nfatal: Could not read from remote repository.", "AuthFailed"),
    ("fatal: unable to access 'https://nope/': Could not resolve host: nope", "Unreachable"),
    ("fatal: '/tmp/test_timeout0/x' does not appear to be a git repository", "Unreachable"),
    ("fatal: repository 'http://127.0.0.1:40321/r/' not found", "Unreachable"),
    ("ssh: connect to host h port 22: Connection timed out", "Timeout"),
    ("fatal: not a git repository (or any parent up to mount point /)", "Invalid"),
])
def test_classify(stderr: str, reason: str) -> None:
    assert classify(stderr) == reason


PRIVATE_USER = "deploy-bot-7c1e"
PRIVATE_PASSWORD = "tok3n/P@ss:9d2b"  # needs percent-encoding in a URL, so decoding is exercised too
LEAKS = (PRIVATE_PASSWORD.encode(), b"tok3n%2FP%40ss%3A9d2b", b"tok3n", PRIVATE_USER.encode())


@dataclass
class Private:
    """A private repository over smart HTTP (Basic auth) and every process argv seen while it was fetched."""

    server: SmartHTTPServer
    upstream: Upstream
    argv_leaks: list[str]

    def url(self, password: str = PRIVATE_PASSWORD) -> str:
        return self.server.url("config.git", PRIVATE_USER, password)


def argv_holding(secret: bytes) -> list[str]:
    """The command lines of running processes that hold `secret` (argv is world-readable, unlike environ)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes()
        except OSError:
            continue
        if secret in argv:
            found.append(argv.replace(b"\0", b" ").decode(errors="replace"))
    return found


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Private]:
    leaks: list[str] = []
    root = tmp_path / "served"
    root.mkdir()
    bare = root / "config.git"
    git(root, "init", "-q", "--bare", "-b", "main", str(bare))
    work = tmp_path / "work"
    git(tmp_path, "init", "-q", "-b", "main", str(work))
    git(work, "remote", "add", "origin", str(bare))
    with SmartHTTPServer(root, PRIVATE_USER, PRIVATE_PASSWORD,
                         on_request=lambda: leaks.extend(argv_holding(b"tok3n"))) as server:
        yield Private(server, Upstream(bare, work, server.url("config.git")), leaks)


def files_holding(directory: Path, needles: tuple[bytes, ...]) -> list[str]:
    """Every file under `directory` (.git included) whose bytes contain one of `needles`."""
    return [f"{path}: {needle!r}" for path in sorted(directory.rglob("*")) if path.is_file()
            for needle in needles if needle in path.read_bytes()]


def test_url_credentials_fetch_a_private_repo_and_never_touch_disk(private: Private, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The password authenticates each fetch but lives only in memory and in git's environment."""
    store = tmp_path / "credential-store"  # a user's helper that would persist what git hands it
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f"[credential]\n\thelper = store --file {store}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    private.upstream.commit({"spec.yaml": "replicas: 1\n"}, "first")
    private.upstream.push()
    source = GitSource(private.url(), "main", tmp_path / "checkout", timeout=20)

    assert tree(source.fetch()) == {"spec.yaml": "replicas: 1\n"}
    head = private.upstream.commit({"spec.yaml": "replicas: 2\n"}, "second")
    private.upstream.push()
    checkout = source.fetch()

    assert (checkout.commit, tree(checkout)) == (head, {"spec.yaml": "replicas: 2\n"})
    assert private.server.authorised > 0
    assert files_holding(tmp_path / "checkout", LEAKS) == []
    assert git(checkout.path, "config", "--get", "remote.origin.url") == private.server.url("config.git")
    assert stat.S_IMODE((checkout.path / ".git").stat().st_mode) == 0o700
    assert not store.exists()
    assert private.argv_leaks == []


def test_credentials_written_by_an_older_version_are_removed(private: Private, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A work dir whose origin still holds the token (and a world-readable .git) is repaired by the next fetch."""
    store = tmp_path / "credential-store"  # a helper the operator passes through the environment
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "credential.helper")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", f"store --file {store}")
    head = private.upstream.commit({"spec.yaml": "v: 1\n"}, "only")
    private.upstream.push()
    workdir = tmp_path / "checkout"
    git(tmp_path, "init", "-q", str(workdir))
    git(workdir, "remote", "add", "origin", private.url())
    os.chmod(workdir / ".git", 0o755)

    assert GitSource(private.url(), "main", workdir, timeout=20).fetch().commit == head
    assert files_holding(workdir, LEAKS) == []
    assert stat.S_IMODE((workdir / ".git").stat().st_mode) == 0o700
    assert not store.exists()


def test_wrong_password_is_auth_failed_without_the_password(private: Private, tmp_path: Path) -> None:
    private.upstream.commit({"spec.yaml": "v: 1\n"}, "only")
    private.upstream.push()
    wrong = "wr0ng/P@ss:9d2b"
    with pytest.raises(GitFetchError) as caught:
        GitSource(private.url(wrong), "main", tmp_path / "checkout", timeout=20).fetch()

    text = "".join(traceback.format_exception(caught.value)) + repr(caught.value)
    assert caught.value.reason == "AuthFailed", text
    assert private.server.refused > 0
    for secret in ("wr0ng", PRIVATE_USER):
        assert secret not in text
    assert f"http://***@127.0.0.1:{private.server.port}/config.git" in str(caught.value)
    assert files_holding(tmp_path / "checkout", (b"wr0ng", PRIVATE_USER.encode())) == []
