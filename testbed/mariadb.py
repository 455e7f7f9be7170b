"""A real MariaDB server (Debian's ``mariadb-server``) on loopback, with its own data directory.

    db = MariaDB(directory)              # root password generated, or MariaDB(directory, root_password=...)
    db.start()                           # mariadb-install-db on first start, then mariadbd on 127.0.0.1:<free port>
    db.url("nova", "secret", "nova")     # mysql+pymysql://nova:secret@127.0.0.1:<port>/nova
    db.sql("SELECT user, host FROM mysql.user")   # rows as tab-separated lines, run as root
    db.add_admin("root", "other")        # as a chart's admin Secret sets it; root's is kept across restarts
    db.stop()

No system service and nothing of /etc/mysql is used (``--no-defaults``): the data directory, socket,
pid file and an init file live under ``directory``. mariadbd runs as the current user (``--user``
names it, which mariadbd requires when that user is root). ``root@'%'`` gets the root password over
TCP, as the OpenStack-Helm charts' ``ROOT_DB_CONNECTION`` uses it; the init file re-applies it at
every start. ``<directory>/client.cnf`` lets a person in: ``mariadb --defaults-file=<directory>/client.cnf``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from pathlib import Path

from testbed import process, state
from testbed.errors import TestbedError
from testbed.service import Service

NAME = "mariadb"
INSTALL_HINT = "apt-get install -y mariadb-server"
_SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; mariadbd refuses longer socket paths
_SMALL = ("--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M")  # a test server, not a production one


def sql_string(value: str) -> str:
    """``value`` as a single-quoted SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _option_value(value: str) -> str:
    """``value`` double-quoted for a MariaDB option file."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class MariaDB(Service):
    """``mariadbd`` on 127.0.0.1:<free port>; data, socket, init file and logs under ``directory``."""

    name = NAME

    def __init__(self, directory: Path, root_password: str | None = None, binary: str = "/usr/sbin/mariadbd",
                 install_db: str = "/usr/bin/mariadb-install-db", client: str = "/usr/bin/mariadb",
                 timeout: float = 60.0) -> None:
        super().__init__(directory)
        self.root_password = root_password or secrets.token_urlsafe(24)
        self.binary = binary
        self.install_db = install_db
        self.client = client
        self.timeout = timeout
        self.port = 0
        self.startup_seconds = 0.0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def socket_path(self) -> Path:
        return self.directory / "mysqld.sock"

    @property
    def init_file(self) -> Path:
        return self.directory / "init.sql"

    @property
    def client_config(self) -> Path:
        return self.directory / "client.cnf"

    @property
    def log_file(self) -> Path:
        return self.directory / "logs" / f"{NAME}.log"

    def url(self, user: str = "root", password: str | None = None, database: str = "") -> str:
        """A SQLAlchemy URL (PyMySQL driver) for ``user`` on this server; root's password by default."""
        secret = self.root_password if password is None and user == "root" else (password or "")
        return f"mysql+pymysql://{user}:{secret}@{self.address}/{database}"

    def start(self) -> None:
        exes = {}
        for what in ("binary", "install_db", "client"):
            found = shutil.which(getattr(self, what))
            if found is None:
                raise TestbedError(NAME, f"{getattr(self, what)} not found; install it with: {INSTALL_HINT}")
            exes[what] = found
        if len(str(self.socket_path)) > _SOCKET_PATH_MAX:
            raise TestbedError(NAME, f"socket path {self.socket_path} is too long for a unix socket; "
                               "use a shorter test-bed directory")
        started = time.monotonic()
        user = pwd.getpwuid(os.getuid()).pw_name
        self.directory.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "mysql").is_dir():
            self._install(exes["install_db"], user)
        self.port = process.free_port()
        self._write_secrets()
        argv = [exes["binary"], "--no-defaults", f"--datadir={self.data_dir}", f"--user={user}",
                "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.socket_path}",
                f"--pid-file={self.directory / 'mariadbd.pid'}", f"--init-file={self.init_file}",
                "--skip-name-resolve", "--character-set-server=utf8mb4", "--max-connections=500", *_SMALL]
        self._proc = process.start(NAME, argv, self.log_file, cwd=self.directory)
        try:
            state.record(self.directory, self._proc, mariadb={
                "address": self.address, "client_config": str(self.client_config)})
            process.wait_ready(self._proc, self._answers, self.timeout, "accepting root over TCP")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def sql(self, statements: str) -> list[str]:
        """Run ``statements`` as root with the ``mariadb`` client; the result rows, tab-separated."""
        done = subprocess.run(
            [shutil.which(self.client) or self.client, f"--defaults-file={self.client_config}", "--batch",
             "--skip-column-names", "--connect-timeout=5", "-e", statements],
            capture_output=True, text=True, check=False, timeout=60)
        if done.returncode != 0:
            raise TestbedError(NAME, f"SQL failed: {done.stderr.strip()}", str(self.log_file))
        return done.stdout.splitlines()

    def add_admin(self, user: str, password: str) -> None:
        """``user@'%'`` with every privilege and the grant option, as the OpenStack-Helm mariadb chart's start
        script creates its admin; for ``root`` the password is also the one this object uses from now on."""
        if user == "root":
            self.set_root_password(password)
            return
        account = f"{sql_string(user)}@'%'"
        self.sql(f"CREATE OR REPLACE USER {account} IDENTIFIED BY {sql_string(password)}; "
                 f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION")

    def set_root_password(self, password: str) -> None:
        """Give ``root@'%'`` a new password, now and at every later start."""
        self.sql(f"ALTER USER 'root'@'%' IDENTIFIED BY {sql_string(password)}")
        self.root_password = password
        self._write_secrets()

    def _install(self, install_db: str, user: str) -> None:
        """A fresh system database in ``data_dir`` (about 3 s); root@localhost by unix socket only."""
        log = self.directory / "logs" / "mariadb-install-db.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            done = subprocess.run(
                [install_db, "--no-defaults", f"--datadir={self.data_dir}", f"--user={user}",
                 "--auth-root-authentication-method=socket", "--skip-test-db", *_SMALL],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False, timeout=120,
                cwd=self.directory)
        if done.returncode != 0:
            raise TestbedError(NAME, f"mariadb-install-db failed (code {done.returncode}):\n{process.tail(log)}",
                               str(log))

    def _write_secrets(self) -> None:
        """The init file (root@'%' and its password) and the client option file, both mode 0600."""
        password = sql_string(self.root_password)
        init = (f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY {password};\n"
                f"ALTER USER 'root'@'%' IDENTIFIED BY {password};\n"
                "GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;\n")
        client = (f"[client]\nuser=root\npassword={_option_value(self.root_password)}\n"
                  f"host=127.0.0.1\nport={self.port}\nprotocol=TCP\n")
        for path, text in ((self.init_file, init), (self.client_config, client)):
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.touch(mode=0o600)
            tmp.chmod(0o600)
            tmp.write_text(text)
            tmp.replace(path)

    def _answers(self) -> bool:
        try:
            return self.sql("SELECT 1") == ["1"]
        except (TestbedError, subprocess.TimeoutExpired):
            return False
