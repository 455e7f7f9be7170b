"""Credentials of a test bed: the service-account signing key and static bearer tokens.

The apiserver generates its own self-signed serving certificate in ``--cert-dir``; we only need
a service-account key pair and one token per client, so that the audit log tells clients apart.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from testbed.errors import TestbedError

# user name -> groups; every client of the test bed is a cluster admin with its own identity.
USERS: dict[str, tuple[str, ...]] = {
    "admin": ("system:masters",),
    "kube-controller-manager": ("system:masters",),
    "kube-scheduler": ("system:masters",),
    "kwok": ("system:masters",),
    "openstack-gitops": ("system:masters",),
}


@dataclass(frozen=True)
class Pki:
    directory: Path

    @property
    def sa_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.directory / "sa.pub"

    @property
    def token_file(self) -> Path:
        return self.directory / "tokens.csv"

    @property
    def serving_cert(self) -> Path:
        """Written by kube-apiserver itself (self-signed, with its CA appended)."""
        return self.directory / "apiserver.crt"

    def token(self, user: str) -> str:
        for line in self.token_file.read_text().splitlines():
            token, name = line.split(",")[:2]
            if name == user:
                return token
        raise KeyError(user)


def create(directory: Path) -> Pki:
    """Create keys and tokens once; an existing directory is reused (restarts keep identities)."""
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not pki.sa_key.exists():
        openssl = shutil.which("openssl")
        if openssl is None:
            raise TestbedError("pki", "openssl not found; install it with `apt-get install -y openssl`")
        subprocess.run([openssl, "genrsa", "-out", str(pki.sa_key), "2048"], check=True, capture_output=True)
        subprocess.run([openssl, "rsa", "-in", str(pki.sa_key), "-pubout", "-out", str(pki.sa_pub)],
                       check=True, capture_output=True)
    if not pki.token_file.exists():
        rows = [f'{secrets.token_hex(16)},{user},{user},"{",".join(groups)}"' for user, groups in USERS.items()]
        pki.token_file.write_text("\n".join(rows) + "\n")
        pki.token_file.chmod(0o600)
    return pki
